//! Whether a response is stored, and for how long: RFC 9111 (§3 storing, §4.2 freshness,
//! §3.5 requests with `Authorization`), RFC 5861 stale windows, then the route's policy (TTL
//! override and default, size limit, the query rule) and the gateway's own never-store rules.

use super::freshness::{self, Exchange};
use super::policy::{NeverStore, RoutePolicy};
use kit::fields::list_members;
use pingora::cache::cache_control::{CacheControl, DirectiveKey, InterpretCacheControl};
use pingora::cache::filters::calculate_serve_stale_durations;
use pingora::cache::{CacheMeta, CacheMetaDefaults};
use pingora::http::ResponseHeader;
use std::time::{Duration, SystemTime};

/// What the rest of the request established about a response before it may be stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Circumstances<'a> {
    /// The gateway replaced the backend's answer with its own error.
    pub gateway_error: bool,
    /// Why the backend's answer must not be stored (cookie, `private`, degraded).
    pub never_store: Option<NeverStore>,
    /// The route's backup answered: its copy is not filed under the target's key.
    pub from_backup: bool,
    /// The client's `Authorization` header reached the backend (RFC 9111 §3.5 applies).
    pub authorization_forwarded: bool,
    /// The request's query (for the route's `store_if_query` rule).
    pub query: Option<&'a str>,
    /// When the request was sent to the backend (the response's age counts the time since);
    /// the decision's `now` when unknown.
    pub sent_at: Option<SystemTime>,
}

/// Why a response was not stored (the `reason` label of `assetgate_cache_not_stored_total`).
pub type NotStored = &'static str;

/// Decides whether `resp` is stored under `policy`; its metadata when it is.
///
/// Any final status is stored when the response gives its own lifetime (RFC 9111 §3); the
/// heuristically cacheable ones also with the route's `default_ttl`, a heuristic lifetime
/// from `Last-Modified`, or the route's `ttl`. The entry's age starts at the response's
/// corrected initial age (RFC 9111 §4.2.3), so an `Age` from upstream counts against it.
pub fn decide(
    policy: &RoutePolicy,
    resp: &ResponseHeader,
    now: SystemTime,
    c: Circumstances<'_>,
) -> Result<CacheMeta, NotStored> {
    refused_by_circumstances(policy, resp, &c)?;
    let cc = CacheControl::from_resp_headers(resp);
    refused_by_directives(resp, cc.as_ref(), &c)?;
    let status = resp.status.as_u16();
    let exchange = Exchange {
        sent: c.sent_at.unwrap_or(now).min(now),
        received: now,
    };
    let lifetime = lifetime(policy, cc.as_ref(), resp, now).ok_or(
        if freshness::heuristically_cacheable(status) || cc.as_ref().is_some_and(|cc| cc.public()) {
            "no_freshness"
        } else {
            "status"
        },
    )?;
    // An invalid `Age` makes the response too old to be fresh.
    let age = freshness::initial_age(&resp.headers, exchange);
    let epoch = now
        .checked_sub(age.unwrap_or_default())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let fresh_until = match (policy.ttl, age) {
        (Some(ttl), _) => now + ttl,
        (None, Some(_)) if !lifetime.is_zero() => epoch + lifetime,
        // Stale on arrival: stored, to be revalidated before use.
        _ => now - Duration::from_secs(1),
    };
    let defaults = CacheMetaDefaults::new(
        |_| None,
        secs(policy.stale_while_revalidate),
        secs(policy.stale_if_error),
    );
    let (swr, sie) = calculate_serve_stale_durations(cc.as_ref(), &defaults);
    let mut header = resp.clone();
    if let Some(cc) = &cc {
        cc.strip_private_headers(&mut header);
    }
    let mut meta = CacheMeta::new(fresh_until, now, swr, sie, header);
    if epoch < now {
        meta.set_epoch_override(epoch);
    }
    Ok(meta)
}

/// What refuses a response before its caching directives are read: how it came (a gateway
/// error, a backup, the origin's never-store marks), the route's rules, its status, `Vary`
/// and size.
fn refused_by_circumstances(
    policy: &RoutePolicy,
    resp: &ResponseHeader,
    c: &Circumstances<'_>,
) -> Result<(), NotStored> {
    if c.gateway_error {
        return Err("gateway_error");
    }
    if let Some(never) = c.never_store {
        return Err(never.label());
    }
    if policy.route_forbids {
        return Err("route_private");
    }
    let status = resp.status.as_u16();
    if status == 206 {
        return Err("partial");
    }
    if !(200..600).contains(&status) || status == 304 {
        return Err("status");
    }
    if c.from_backup {
        return Err("backup");
    }
    if !query_rule_holds(&policy.store_if_query, c.query) {
        return Err("query_rule");
    }
    if varies_on_everything(resp) {
        return Err("vary_star");
    }
    if vary_names(resp) > super::MAX_VARY_HEADERS {
        // The key could hold only the first of them: later requests differing in the
        // rest would be answered with this response.
        return Err("vary_too_many");
    }
    if declared_length(&resp.headers).is_some_and(|l| l > policy.max_size) {
        return Err("too_large");
    }
    Ok(())
}

/// What the response's own `Cache-Control` refuses (RFC 9111 §3, §3.5, §5.2.2.3).
fn refused_by_directives(
    resp: &ResponseHeader,
    cc: Option<&CacheControl>,
    c: &Circumstances<'_>,
) -> Result<(), NotStored> {
    // `must-understand` (RFC 9111 §5.2.2.3): stored only if the status's caching rules are
    // known here, and then its `no-store` (there for caches that do not know it) is ignored.
    let must_understand = cc.is_some_and(|cc| cc.has_directive(&DirectiveKey::MustUnderstand));
    if must_understand && resp.status.canonical_reason().is_none() {
        return Err("must_understand");
    }
    let forbidden = cc.is_some_and(|cc| cc.private() || (cc.no_store() && !must_understand));
    if forbidden {
        return Err("origin_no_store");
    }
    if c.authorization_forwarded && !cc.is_some_and(|cc| cc.allow_caching_authorized_req()) {
        return Err("authorization");
    }
    Ok(())
}

/// The response's freshness lifetime under `policy`: the route's `ttl`; else the response's
/// own; else, for a heuristically cacheable status (or a `public` response), the route's
/// `default_ttl`, then a heuristic one from `Last-Modified`. `None`: not storable.
fn lifetime(
    policy: &RoutePolicy,
    cc: Option<&CacheControl>,
    resp: &ResponseHeader,
    now: SystemTime,
) -> Option<Duration> {
    let explicit = freshness::explicit_lifetime(cc, &resp.headers, now);
    let guessable = freshness::heuristically_cacheable(resp.status.as_u16())
        || cc.is_some_and(|cc| cc.public());
    if let Some(ttl) = policy.ttl {
        return (explicit.is_some() || guessable).then_some(ttl);
    }
    explicit.or_else(|| {
        guessable.then(|| {
            policy
                .default_ttl
                .or_else(|| freshness::heuristic_lifetime(&resp.headers, now, policy.heuristic_max))
        })?
    })
}

fn secs(d: Duration) -> u32 {
    d.as_secs().min(u32::MAX as u64) as u32
}

/// The body length a header map declares (`Content-Length`), when it declares one.
pub fn declared_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Vary: *`: no later request can be known to match (RFC 9111 §4.1).
fn varies_on_everything(resp: &ResponseHeader) -> bool {
    list_members(&resp.headers, http::header::VARY).any(|t| t == "*")
}

/// How many header names `Vary` lists (RFC 9111 §4.1).
fn vary_names(resp: &ResponseHeader) -> usize {
    list_members(&resp.headers, http::header::VARY).count()
}

/// Every `name=value` pair of `rule` is in `query` (values compared after decoding).
fn query_rule_holds(rule: &[(String, String)], query: Option<&str>) -> bool {
    if rule.is_empty() {
        return true;
    }
    let pairs: Vec<(String, String)> = super::key::query_pairs(query).collect();
    rule.iter()
        .all(|(name, value)| pairs.iter().any(|(n, v)| n == name && v == value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::TierName;

    fn policy() -> RoutePolicy {
        RoutePolicy {
            tiers: vec![TierName::Memory],
            default_ttl: None,
            ttl: None,
            heuristic_max: crate::policy::DEFAULT_HEURISTIC_MAX,
            max_size: 1 << 20,
            query_keys: None,
            key_headers: vec![],
            store_if_query: vec![],
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            route_forbids: false,
        }
    }

    fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(status, None).unwrap();
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    fn ok() -> Circumstances<'static> {
        Circumstances::default()
    }

    fn fresh_secs(meta: &CacheMeta, now: SystemTime) -> u64 {
        meta.fresh_until().duration_since(now).unwrap().as_secs()
    }

    #[test]
    fn origin_freshness_is_used_and_s_maxage_wins() {
        let now = SystemTime::now();
        let m = decide(
            &policy(),
            &resp(200, &[("cache-control", "max-age=60")]),
            now,
            ok(),
        );
        assert_eq!(fresh_secs(&m.unwrap(), now), 60);
        let r = resp(200, &[("cache-control", "max-age=60, s-maxage=600")]);
        assert_eq!(
            fresh_secs(&decide(&policy(), &r, now, ok()).unwrap(), now),
            600
        );
    }

    #[test]
    fn no_freshness_needs_a_route_default() {
        let now = SystemTime::now();
        let r = resp(200, &[]);
        assert_eq!(decide(&policy(), &r, now, ok()).err(), Some("no_freshness"));
        let p = RoutePolicy {
            default_ttl: Some(Duration::from_secs(300)),
            ..policy()
        };
        assert_eq!(fresh_secs(&decide(&p, &r, now, ok()).unwrap(), now), 300);
        // An explicit lifetime from the origin is not replaced by the default.
        let r = resp(200, &[("cache-control", "max-age=5")]);
        assert_eq!(fresh_secs(&decide(&p, &r, now, ok()).unwrap(), now), 5);
    }

    #[test]
    fn ttl_overrides_but_never_stores_what_the_origin_forbids() {
        let now = SystemTime::now();
        let p = RoutePolicy {
            ttl: Some(Duration::from_secs(3600)),
            ..policy()
        };
        let r = resp(200, &[("cache-control", "max-age=5")]);
        assert_eq!(fresh_secs(&decide(&p, &r, now, ok()).unwrap(), now), 3600);
        for cc in ["no-store", "private", "private, max-age=60"] {
            let r = resp(200, &[("cache-control", cc)]);
            assert!(decide(&p, &r, now, ok()).is_err(), "{cc}");
        }
    }

    #[test]
    fn never_stored() {
        let now = SystemTime::now();
        let fresh = [("cache-control", "max-age=60")];
        let p = policy();
        let r = resp(200, &fresh);
        let cases: [(Circumstances, &str); 4] = [
            (
                Circumstances {
                    gateway_error: true,
                    ..ok()
                },
                "gateway_error",
            ),
            (
                Circumstances {
                    never_store: Some(NeverStore::SetCookie),
                    ..ok()
                },
                "set_cookie",
            ),
            (
                Circumstances {
                    never_store: Some(NeverStore::Degraded),
                    ..ok()
                },
                "degraded",
            ),
            (
                Circumstances {
                    from_backup: true,
                    ..ok()
                },
                "backup",
            ),
        ];
        for (c, reason) in cases {
            assert_eq!(decide(&p, &r, now, c).err(), Some(reason));
        }
        assert_eq!(
            decide(&p, &resp(206, &fresh), now, ok()).err(),
            Some("partial")
        );
        assert_eq!(
            decide(&p, &resp(304, &fresh), now, ok()).err(),
            Some("status")
        );
        // Without a lifetime of its own, only a heuristically cacheable status is guessed.
        let modified = [("last-modified", "Wed, 01 Jan 2020 00:00:00 GMT")];
        for status in [403, 502] {
            assert_eq!(
                decide(&p, &resp(status, &modified), now, ok()).err(),
                Some("status")
            );
        }
        let vary = resp(200, &[("cache-control", "max-age=60"), ("vary", "*")]);
        assert_eq!(decide(&p, &vary, now, ok()).err(), Some("vary_star"));
        let big = resp(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("content-length", "2000000"),
            ],
        );
        assert_eq!(decide(&p, &big, now, ok()).err(), Some("too_large"));
        let forbids = RoutePolicy {
            route_forbids: true,
            ..policy()
        };
        assert_eq!(decide(&forbids, &r, now, ok()).err(), Some("route_private"));
    }

    #[test]
    fn forwarded_authorization_needs_the_origins_permission() {
        let now = SystemTime::now();
        let c = Circumstances {
            authorization_forwarded: true,
            ..ok()
        };
        let r = resp(200, &[("cache-control", "max-age=60")]);
        assert_eq!(decide(&policy(), &r, now, c).err(), Some("authorization"));
        for cc in [
            "public, max-age=60",
            "s-maxage=60",
            "max-age=60, must-revalidate",
        ] {
            let r = resp(200, &[("cache-control", cc)]);
            assert!(decide(&policy(), &r, now, c).is_ok(), "{cc}");
        }
        let p = RoutePolicy {
            default_ttl: Some(Duration::from_secs(60)),
            ..policy()
        };
        assert_eq!(
            decide(&p, &resp(200, &[]), now, c).err(),
            Some("authorization")
        );
    }

    #[test]
    fn the_query_rule_selects_what_is_stored() {
        let now = SystemTime::now();
        let p = RoutePolicy {
            store_if_query: vec![("output_format".into(), "file".into())],
            ..policy()
        };
        let r = resp(200, &[("cache-control", "max-age=60")]);
        let with = |q| Circumstances {
            query: Some(q),
            ..ok()
        };
        assert!(decide(&p, &r, now, with("text=hi&output_format=file")).is_ok());
        assert_eq!(
            decide(&p, &r, now, with("output_format=stream")).err(),
            Some("query_rule")
        );
        assert_eq!(decide(&p, &r, now, ok()).err(), Some("query_rule"));
    }

    #[test]
    fn stale_windows_come_from_the_origin_then_the_route() {
        let now = SystemTime::now();
        let p = RoutePolicy {
            stale_while_revalidate: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(600),
            ..policy()
        };
        let m = decide(&p, &resp(200, &[("cache-control", "max-age=1")]), now, ok()).unwrap();
        assert_eq!(
            (m.stale_while_revalidate_sec(), m.stale_if_error_sec()),
            (30, 600)
        );
        let r = resp(
            200,
            &[("cache-control", "max-age=1, stale-while-revalidate=5")],
        );
        let m = decide(&p, &r, now, ok()).unwrap();
        assert_eq!(m.stale_while_revalidate_sec(), 5);
        let r = resp(200, &[("cache-control", "max-age=1, must-revalidate")]);
        let m = decide(&p, &r, now, ok()).unwrap();
        assert_eq!(
            (m.stale_while_revalidate_sec(), m.stale_if_error_sec()),
            (0, 0)
        );
    }

    #[test]
    fn no_cache_is_stored_but_always_stale() {
        let now = SystemTime::now();
        let r = resp(200, &[("cache-control", "no-cache"), ("etag", "\"v1\"")]);
        let m = decide(&policy(), &r, now, ok()).unwrap();
        assert!(!m.is_fresh(now));
    }

    #[test]
    fn more_vary_names_than_the_key_holds_are_not_stored() {
        let now = SystemTime::now();
        let names: Vec<String> = (0..=crate::MAX_VARY_HEADERS)
            .map(|i| format!("x-h{i}"))
            .collect();
        let many = names.join(", ");
        let r = resp(200, &[("cache-control", "max-age=60"), ("vary", &many)]);
        assert_eq!(
            decide(&policy(), &r, now, ok()).err(),
            Some("vary_too_many")
        );
        let few = names[..crate::MAX_VARY_HEADERS].join(", ");
        let r = resp(200, &[("cache-control", "max-age=60"), ("vary", &few)]);
        assert!(decide(&policy(), &r, now, ok()).is_ok());
    }

    #[test]
    fn any_final_status_with_its_own_lifetime_is_stored() {
        let now = SystemTime::now();
        for status in [201, 302, 403, 500, 502, 599] {
            let r = resp(status, &[("cache-control", "max-age=60")]);
            assert_eq!(
                fresh_secs(&decide(&policy(), &r, now, ok()).unwrap(), now),
                60
            );
        }
        let r = resp(
            599,
            &[
                ("cache-control", "public"),
                ("last-modified", &ago(now, 1000)),
            ],
        );
        assert_eq!(
            fresh_secs(&decide(&policy(), &r, now, ok()).unwrap(), now),
            100
        );
    }

    fn ago(now: SystemTime, secs: u64) -> String {
        httpdate::fmt_http_date(now - Duration::from_secs(secs))
    }

    #[test]
    fn upstream_age_counts_against_the_lifetime() {
        let now = SystemTime::now();
        let r = resp(200, &[("cache-control", "max-age=3600"), ("age", "7200")]);
        let m = decide(&policy(), &r, now, ok()).unwrap();
        assert!(!m.is_fresh(now));
        assert_eq!(m.age().as_secs() / 10, 720);
        let r = resp(200, &[("cache-control", "max-age=3600"), ("age", "600")]);
        let m = decide(&policy(), &r, now, ok()).unwrap();
        assert!(m.is_fresh(now));
        assert_eq!(fresh_secs(&m, now) / 10, 300);
        // An invalid Age: too old to be fresh, but kept for revalidation.
        let r = resp(200, &[("cache-control", "max-age=3600"), ("age", "abc")]);
        assert!(!decide(&policy(), &r, now, ok()).unwrap().is_fresh(now));
        // Expires is measured against the response's Date, not our clock.
        let r = resp(
            200,
            &[("date", &ago(now, 3600)), ("expires", &ago(now, 3000))],
        );
        let m = decide(&policy(), &r, now, ok()).unwrap();
        assert!(!m.is_fresh(now));
    }

    #[test]
    fn heuristic_freshness_from_last_modified() {
        let now = SystemTime::now();
        let r = resp(200, &[("last-modified", &ago(now, 10_000))]);
        assert_eq!(
            fresh_secs(&decide(&policy(), &r, now, ok()).unwrap(), now),
            1000
        );
        let off = RoutePolicy {
            heuristic_max: Duration::ZERO,
            ..policy()
        };
        assert_eq!(decide(&off, &r, now, ok()).err(), Some("no_freshness"));
        let with_default = RoutePolicy {
            default_ttl: Some(Duration::from_secs(30)),
            ..policy()
        };
        assert_eq!(
            fresh_secs(&decide(&with_default, &r, now, ok()).unwrap(), now),
            30
        );
    }

    #[test]
    fn must_understand_stores_only_known_statuses_and_overrides_no_store() {
        let now = SystemTime::now();
        let cc = [("cache-control", "max-age=60, must-understand, no-store")];
        assert!(decide(&policy(), &resp(200, &cc), now, ok()).is_ok());
        assert_eq!(
            decide(&policy(), &resp(599, &cc), now, ok()).err(),
            Some("must_understand")
        );
        let private = [("cache-control", "max-age=60, must-understand, private")];
        assert_eq!(
            decide(&policy(), &resp(200, &private), now, ok()).err(),
            Some("origin_no_store")
        );
    }
}
