//! How long a response stays fresh and how old it already is when it arrives (RFC 9111 §4.2):
//! the explicit lifetime (`s-maxage`, `max-age`, `Expires` − `Date`), the heuristic one (a
//! tenth of the time since `Last-Modified`), and the corrected initial age (`Age`, `Date`
//! and the time the exchange took).

use http::{header, HeaderMap};
use pingora::cache::cache_control::{CacheControl, DirectiveKey};
use std::time::{Duration, SystemTime};

/// Share of the time since `Last-Modified` a response is heuristically fresh for (RFC 9111
/// §4.2.2 suggests 10%).
const HEURISTIC_FRACTION: u32 = 10;

/// When one response was asked for and when its header arrived.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// The request was sent (`request_time`).
    pub sent: SystemTime,
    /// The response header arrived (`response_time`).
    pub received: SystemTime,
}

/// The response's age on arrival, RFC 9111 §4.2.3's `corrected_initial_age`: the larger of
/// its apparent age (`received` − `Date`) and its `Age` plus the time the exchange took.
/// `None` when `Age` is present but invalid — not a non-negative integer as its first member
/// — which makes the response too old to be fresh.
pub fn initial_age(headers: &HeaderMap, exchange: Exchange) -> Option<Duration> {
    let age_value = match headers.get(header::AGE) {
        None => Duration::ZERO,
        Some(v) => Duration::from_secs(delta_seconds(first_member(v.as_bytes()))?),
    };
    let apparent_age = http_date(headers, header::DATE)
        .and_then(|date| exchange.received.duration_since(date).ok())
        .unwrap_or_default();
    let response_delay = exchange
        .received
        .duration_since(exchange.sent)
        .unwrap_or_default();
    // In whole seconds, as HTTP counts ages: the milliseconds an exchange takes do not
    // shorten a lifetime.
    let age = apparent_age.max(age_value + response_delay);
    Some(Duration::from_secs(age.as_secs()))
}

/// The lifetime the response gives itself (RFC 9111 §4.2.1), for a shared cache:
/// `s-maxage`, else `max-age`, else `Expires` − `Date`. `Some(ZERO)` (stale at once) for
/// `no-cache`, an invalid lifetime directive, or an invalid `Expires`; `None` when the
/// response gives none.
pub fn explicit_lifetime(
    cc: Option<&CacheControl>,
    headers: &HeaderMap,
    received: SystemTime,
) -> Option<Duration> {
    if let Some(cc) = cc {
        if cc.no_cache() {
            return Some(Duration::ZERO);
        }
        for key in [DirectiveKey::SMaxAge, DirectiveKey::MaxAge] {
            if cc.has_directive(&key) {
                let secs = match key {
                    DirectiveKey::SMaxAge => cc.s_maxage(),
                    _ => cc.max_age(),
                };
                // A value that is not delta-seconds: "caches are encouraged to consider
                // the response to be stale" (§4.2.1).
                return Some(Duration::from_secs(
                    secs.ok().flatten().map_or(0, u64::from),
                ));
            }
        }
    }
    let mut expires = headers.get_all(header::EXPIRES).iter();
    let first = expires.next()?;
    let expires = match (expires.next(), parse_date(first.as_bytes())) {
        // Only one, valid: measured against the response's own clock (`Date`).
        (None, Some(at)) => at,
        // Invalid or repeated: a time in the past (§5.3).
        _ => return Some(Duration::ZERO),
    };
    let date = http_date(headers, header::DATE).unwrap_or(received);
    Some(expires.duration_since(date).unwrap_or_default())
}

/// A lifetime guessed from `Last-Modified` (RFC 9111 §4.2.2): a tenth of the time between it
/// and `Date` (or `received`), at most `max`. `None` without a usable `Last-Modified`.
pub fn heuristic_lifetime(
    headers: &HeaderMap,
    received: SystemTime,
    max: Duration,
) -> Option<Duration> {
    if max.is_zero() {
        return None;
    }
    let modified = http_date(headers, header::LAST_MODIFIED)?;
    let date = http_date(headers, header::DATE).unwrap_or(received);
    let since = date.duration_since(modified).ok()?;
    Some((since / HEURISTIC_FRACTION).min(max))
}

/// Statuses a cache may store with a heuristic (or configured default) lifetime: RFC 9110
/// §15.1's heuristically cacheable list, less 206 (partial bodies are not stored).
pub fn heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// The first member of a list-valued field (RFC 9111 §5.1: "use the first member").
fn first_member(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|b| *b == b',').unwrap_or(value.len());
    value[..end].trim_ascii()
}

/// `delta-seconds` (RFC 9111 §1.2.2): one or more digits; values past 2^31 are 2^31.
fn delta_seconds(text: &[u8]) -> Option<u64> {
    const GREATEST: u64 = 1 << 31;
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for digit in text {
        value = (value * 10 + u64::from(digit - b'0')).min(GREATEST);
    }
    Some(value)
}

/// The single, valid HTTP-date of `name`; `None` when absent, repeated or invalid.
fn http_date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_date(first.as_bytes())
}

fn parse_date(value: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    const NOW: u64 = 1_800_000_000;

    fn exchange(delay: u64) -> Exchange {
        Exchange {
            sent: at(NOW - delay),
            received: at(NOW),
        }
    }

    #[test]
    fn age_is_the_first_member_and_must_be_digits() {
        let age = |v: &str| initial_age(&headers(&[("age", v)]), exchange(0));
        assert_eq!(age("7200"), Some(Duration::from_secs(7200)));
        assert_eq!(age("7200, 0"), Some(Duration::from_secs(7200)));
        assert_eq!(age("0,7200"), Some(Duration::ZERO));
        assert_eq!(age("99999999999"), Some(Duration::from_secs(1 << 31)));
        for bad in ["abc", "-7200", "7200.0", "7200;foo=bar", ""] {
            assert_eq!(age(bad), None, "{bad:?}");
        }
        let two = headers(&[("age", "7200"), ("age", "0")]);
        assert_eq!(
            initial_age(&two, exchange(0)),
            Some(Duration::from_secs(7200))
        );
    }

    #[test]
    fn age_takes_the_larger_of_apparent_and_corrected() {
        // A Date 100 s behind our clock, Age 10, 3 s in flight: apparent age wins.
        let h = headers(&[("date", &date(NOW - 100)), ("age", "10")]);
        assert_eq!(initial_age(&h, exchange(3)), Some(Duration::from_secs(100)));
        // A Date ahead of our clock adds nothing; Age plus the delay does.
        let h = headers(&[("date", &date(NOW + 100)), ("age", "10")]);
        assert_eq!(initial_age(&h, exchange(3)), Some(Duration::from_secs(13)));
        assert_eq!(
            initial_age(&HeaderMap::new(), exchange(2)),
            Some(Duration::from_secs(2))
        );
    }

    fn explicit(pairs: &[(&str, &str)]) -> Option<u64> {
        let h = headers(pairs);
        let mut resp = pingora::http::ResponseHeader::build(200, None).unwrap();
        for (n, v) in pairs {
            resp.append_header(n.to_string(), *v).unwrap();
        }
        let cc = CacheControl::from_resp_headers(&resp);
        explicit_lifetime(cc.as_ref(), &h, at(NOW)).map(|d| d.as_secs())
    }

    #[test]
    fn explicit_lifetime_prefers_s_maxage_then_max_age_then_expires() {
        assert_eq!(
            explicit(&[("cache-control", "max-age=60, s-maxage=5")]),
            Some(5)
        );
        assert_eq!(explicit(&[("cache-control", "max-age=60")]), Some(60));
        assert_eq!(
            explicit(&[
                ("cache-control", "max-age=60"),
                ("expires", &date(NOW - 10))
            ]),
            Some(60)
        );
        assert_eq!(
            explicit(&[("cache-control", "no-cache, max-age=60")]),
            Some(0)
        );
        assert_eq!(explicit(&[("cache-control", "max-age=-1")]), Some(0));
        assert_eq!(explicit(&[("cache-control", "public")]), None);
        assert_eq!(explicit(&[]), None);
    }

    #[test]
    fn expires_is_measured_against_date() {
        // The origin's clock runs an hour slow: Expires − Date is still 10 minutes.
        let slow = [
            ("date", date(NOW - 3600)),
            ("expires", date(NOW - 3600 + 600)),
        ];
        let pairs: Vec<(&str, &str)> = slow.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(explicit(&pairs), Some(600));
        // No Date: against the time it arrived.
        assert_eq!(explicit(&[("expires", &date(NOW + 30))]), Some(30));
        // Invalid, repeated or already past: stale.
        assert_eq!(explicit(&[("expires", "0")]), Some(0));
        let future = date(NOW + 30);
        assert_eq!(
            explicit(&[("expires", &future), ("expires", &future)]),
            Some(0)
        );
        assert_eq!(explicit(&[("expires", &date(NOW - 30))]), Some(0));
    }

    #[test]
    fn heuristic_is_a_tenth_of_the_time_since_modification_capped() {
        let day = Duration::from_secs(86_400);
        let h = headers(&[("last-modified", &date(NOW - 10_000))]);
        assert_eq!(
            heuristic_lifetime(&h, at(NOW), day),
            Some(Duration::from_secs(1000))
        );
        let old = headers(&[("last-modified", &date(NOW - 100 * 86_400))]);
        assert_eq!(heuristic_lifetime(&old, at(NOW), day), Some(day));
        assert_eq!(heuristic_lifetime(&h, at(NOW), Duration::ZERO), None);
        assert_eq!(heuristic_lifetime(&HeaderMap::new(), at(NOW), day), None);
        let future = headers(&[("last-modified", &date(NOW + 50))]);
        assert_eq!(heuristic_lifetime(&future, at(NOW), day), None);
    }

    #[test]
    fn heuristically_cacheable_statuses() {
        for s in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            assert!(heuristically_cacheable(s), "{s}");
        }
        for s in [201, 202, 206, 302, 307, 403, 500, 502, 503, 504, 599] {
            assert!(!heuristically_cacheable(s), "{s}");
        }
    }

    proptest::proptest! {
        /// Whatever bytes Age, Date, Expires and Last-Modified hold: an answer, never a panic,
        /// and an age no larger than the greatest delta-seconds plus the clock's reach.
        #[test]
        fn any_field_values_give_an_answer(
            age in proptest::collection::vec(proptest::num::u8::ANY, 0..24),
            date in "[ -~]{0,40}",
            expires in "[ -~]{0,40}",
            modified in "[ -~]{0,40}",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&age) {
                h.insert(header::AGE, v);
            }
            for (name, text) in [
                (header::DATE, &date),
                (header::EXPIRES, &expires),
                (header::LAST_MODIFIED, &modified),
            ] {
                if let Ok(v) = HeaderValue::from_str(text) {
                    h.insert(name, v);
                }
            }
            let _ = initial_age(&h, exchange(1));
            let _ = explicit_lifetime(None, &h, at(NOW));
            let _ = heuristic_lifetime(&h, at(NOW), Duration::from_secs(86_400));
        }
    }
}
