//! Whether a response is stored, and for how long: RFC 9111 (§3 storing, §4.2 freshness,
//! §3.5 requests with `Authorization`), RFC 5861 stale windows, then the route's policy (TTL
//! override and default, size limit, the query rule) and the gateway's own never-store rules.

use super::policy::{NeverStore, RoutePolicy};
use pingora::cache::cache_control::{CacheControl, Cacheable, InterpretCacheControl};
use pingora::cache::filters::{calculate_fresh_until, calculate_serve_stale_durations};
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
}

/// Why a response was not stored (the `reason` label of `assetgate_cache_not_stored_total`).
pub type NotStored = &'static str;

/// Statuses stored when their freshness is known (RFC 9111 §3 and the heuristically
/// cacheable list of RFC 9110 §15.1, less the ones a gateway produces itself).
fn storable_status(status: u16) -> bool {
    matches!(status, 200 | 203 | 204 | 300 | 301 | 308 | 404 | 410)
}

/// Decides whether `resp` is stored under `policy`; its metadata when it is.
pub fn decide(
    policy: &RoutePolicy,
    resp: &ResponseHeader,
    now: SystemTime,
    c: Circumstances<'_>,
) -> Result<CacheMeta, NotStored> {
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
    if !storable_status(status) {
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
    if declared_length(&resp.headers).is_some_and(|l| l > policy.max_size) {
        return Err("too_large");
    }
    let cc = CacheControl::from_resp_headers(resp);
    let defaults = CacheMetaDefaults::new(
        |_| None,
        secs(policy.stale_while_revalidate),
        secs(policy.stale_if_error),
    );
    let fresh_until = match policy.ttl {
        Some(ttl) => {
            let refused = cc
                .as_ref()
                .is_some_and(|cc| cc.is_cacheable() == Cacheable::No)
                || (c.authorization_forwarded
                    && !cc
                        .as_ref()
                        .is_some_and(|cc| cc.allow_caching_authorized_req()));
            (!refused).then(|| now + ttl)
        }
        None => calculate_fresh_until(now, cc.as_ref(), resp, c.authorization_forwarded, &defaults)
            .or_else(|| default_freshness(policy, cc.as_ref(), c, now)),
    };
    let Some(fresh_until) = fresh_until else {
        return Err(if c.authorization_forwarded {
            "authorization"
        } else if cc
            .as_ref()
            .is_some_and(|cc| cc.is_cacheable() == Cacheable::No)
        {
            "origin_no_store"
        } else {
            "no_freshness"
        });
    };
    let (swr, sie) = calculate_serve_stale_durations(cc.as_ref(), &defaults);
    let mut header = resp.clone();
    if let Some(cc) = &cc {
        cc.strip_private_headers(&mut header);
    }
    Ok(CacheMeta::new(fresh_until, now, swr, sie, header))
}

/// The route's default lifetime for a response with no freshness of its own, unless the
/// response forbids storing or an `Authorization` was forwarded without permission.
fn default_freshness(
    policy: &RoutePolicy,
    cc: Option<&CacheControl>,
    c: Circumstances<'_>,
    now: SystemTime,
) -> Option<SystemTime> {
    let ttl = policy.default_ttl?;
    if cc.is_some_and(|cc| cc.is_cacheable() == Cacheable::No) {
        return None;
    }
    if c.authorization_forwarded && !cc.is_some_and(|cc| cc.allow_caching_authorized_req()) {
        return None;
    }
    Some(now + ttl)
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
    resp.headers
        .get_all(http::header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*")
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
    use crate::cache::tier::TierName;

    fn policy() -> RoutePolicy {
        RoutePolicy {
            tiers: vec![TierName::Memory],
            default_ttl: None,
            ttl: None,
            max_size: 1 << 20,
            query_keys: None,
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
            decide(&p, &resp(502, &fresh), now, ok()).err(),
            Some("status")
        );
        assert_eq!(
            decide(&p, &resp(403, &fresh), now, ok()).err(),
            Some("status")
        );
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
}
