//! The RFC 9211 `Cache-Status` entry the gateway adds to every response: whether the cache
//! answered (`hit`, with the entry's remaining freshness as `ttl`, negative when stale, and the
//! tier in `detail`) or forwarded (`fwd=` why, `fwd-status`, `stored`, `collapsed` for a
//! request that waited for another's fill), or was not involved (`fwd=bypass`, why in
//! `detail`). The entry is appended to any `Cache-Status` the backend sent (RFC 9211 §2: the
//! list runs from the origin towards the client).

use super::tier::TierName;
use http::HeaderValue;
use std::fmt::Write;
use std::time::SystemTime;

/// The name this cache reports under.
pub const CACHE_NAME: &str = "assetgate";

/// What happened to one request, as `Cache-Status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report<'a> {
    /// Answered from `tier`; `ttl` seconds of freshness left (negative: served stale).
    Hit {
        /// The tier that answered.
        tier: Option<TierName>,
        /// Seconds of freshness left.
        ttl: i64,
    },
    /// Sent on to the backend.
    Forward {
        /// RFC 9211 `fwd` value: `uri-miss`, `stale` (revalidation or refetch), `method`,
        /// `request`.
        why: &'static str,
        /// The backend's status, when one arrived.
        status: Option<u16>,
        /// Seconds of freshness of the stored response, when it was stored.
        stored_ttl: Option<i64>,
        /// This request waited for another request's fill of the same key.
        collapsed: bool,
        /// Why the response was not stored, when it was not.
        not_stored: Option<&'a str>,
    },
    /// The cache was not involved; `detail` says why (e.g. `uncached-route`).
    Bypass {
        /// Why.
        detail: &'a str,
    },
}

impl Report<'_> {
    /// This cache's entry, e.g. `assetgate; hit; ttl=42; detail=memory`.
    pub fn entry(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str(CACHE_NAME);
        match *self {
            Report::Hit { tier, ttl } => {
                let _ = write!(out, "; hit; ttl={ttl}");
                if let Some(t) = tier {
                    let _ = write!(out, "; detail={}", t.label());
                }
            }
            Report::Forward {
                why,
                status,
                stored_ttl,
                collapsed,
                not_stored,
            } => {
                let _ = write!(out, "; fwd={why}");
                if let Some(s) = status {
                    let _ = write!(out, "; fwd-status={s}");
                }
                if let Some(ttl) = stored_ttl {
                    let _ = write!(out, "; stored; ttl={ttl}");
                }
                if collapsed {
                    out.push_str("; collapsed");
                }
                if let Some(reason) = not_stored {
                    let _ = write!(out, "; detail={}", token(reason));
                }
            }
            Report::Bypass { detail } => {
                let _ = write!(out, "; fwd=bypass; detail={}", token(detail));
            }
        }
        out
    }

    /// The header value: `existing` (the backend's) followed by this cache's entry. The
    /// bypass entries of uncached traffic are static values: no allocation per response.
    pub fn header_value(&self, existing: Option<&HeaderValue>) -> Option<HeaderValue> {
        let existing = existing.filter(|v| !v.is_empty());
        if let (None, Report::Bypass { detail }) = (existing, self) {
            if let Some(v) = static_bypass(detail) {
                return Some(v);
            }
        }
        let entry = self.entry();
        let text = match existing
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        {
            Some(before) => format!("{before}, {entry}"),
            None => entry,
        };
        HeaderValue::from_str(&text).ok()
    }
}

/// The bypass entries every uncached request carries, prebuilt.
fn static_bypass(detail: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_static(match detail {
        "uncached-route" => "assetgate; fwd=bypass; detail=uncached-route",
        "method" => "assetgate; fwd=bypass; detail=method",
        "no-route" => "assetgate; fwd=bypass; detail=no-route",
        "request" => "assetgate; fwd=bypass; detail=request",
        _ => return None,
    }))
}

/// Seconds from `now` to `fresh_until`: positive while fresh, negative once stale (RFC 9211
/// `ttl`).
pub fn seconds_left(fresh_until: SystemTime, now: SystemTime) -> i64 {
    match fresh_until.duration_since(now) {
        Ok(left) => left.as_secs() as i64,
        Err(past) => -(past.duration().as_secs() as i64),
    }
}

/// A structured-field token: reasons are made of `[a-z0-9_-]`; anything else becomes `_`.
fn token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let hit = Report::Hit {
            tier: Some(TierName::Memory),
            ttl: 42,
        };
        assert_eq!(hit.entry(), "assetgate; hit; ttl=42; detail=memory");
        let stale = Report::Hit {
            tier: Some(TierName::Memory),
            ttl: -3,
        };
        assert_eq!(stale.entry(), "assetgate; hit; ttl=-3; detail=memory");
        let miss = Report::Forward {
            why: "uri-miss",
            status: Some(200),
            stored_ttl: Some(60),
            collapsed: false,
            not_stored: None,
        };
        assert_eq!(
            miss.entry(),
            "assetgate; fwd=uri-miss; fwd-status=200; stored; ttl=60"
        );
        let waiter = Report::Forward {
            why: "uri-miss",
            status: None,
            stored_ttl: None,
            collapsed: true,
            not_stored: None,
        };
        assert_eq!(waiter.entry(), "assetgate; fwd=uri-miss; collapsed");
        let refused = Report::Forward {
            why: "uri-miss",
            status: Some(200),
            stored_ttl: None,
            collapsed: false,
            not_stored: Some("set_cookie"),
        };
        assert_eq!(
            refused.entry(),
            "assetgate; fwd=uri-miss; fwd-status=200; detail=set_cookie"
        );
        let bypass = Report::Bypass {
            detail: "uncached route",
        };
        assert_eq!(
            bypass.entry(),
            "assetgate; fwd=bypass; detail=uncached_route"
        );
    }

    #[test]
    fn appended_after_the_backends_entry() {
        let hit = Report::Hit { tier: None, ttl: 1 };
        let before = HeaderValue::from_static("origin-cache; hit");
        assert_eq!(
            hit.header_value(Some(&before)).unwrap(),
            "origin-cache; hit, assetgate; hit; ttl=1"
        );
        assert_eq!(hit.header_value(None).unwrap(), "assetgate; hit; ttl=1");
    }

    #[test]
    fn prebuilt_bypass_values_match_what_entry_writes() {
        for detail in ["uncached-route", "method", "no-route", "request"] {
            let report = Report::Bypass { detail };
            assert_eq!(static_bypass(detail).unwrap(), report.entry().as_str());
            assert_eq!(report.header_value(None).unwrap(), report.entry().as_str());
            let before = HeaderValue::from_static("up; hit");
            assert_eq!(
                report.header_value(Some(&before)).unwrap(),
                format!("up; hit, {}", report.entry()).as_str()
            );
        }
        assert!(static_bypass("auth_denied").is_none());
        let now = SystemTime::now();
        let d = std::time::Duration::from_secs(30);
        assert_eq!(seconds_left(now + d, now), 30);
        assert_eq!(seconds_left(now - d, now), -30);
    }
}
