//! A route's cache policy, compiled once from its config: its intended freshness from
//! `cache_control` (RFC 9111 §5.2.2) and, for a cached route, [`RoutePolicy`] from
//! `[hosts.routes.cache]`.
//!
//! The route's `Cache-Control` is sent to clients as decoration (by the proxy);
//! [`Freshness`] is the same intent as a value the shared cache
//! reads: its lifetime is the default TTL of a response the backend sent without one.

use http::HeaderMap;
use std::time::Duration;

/// Why one response must never be stored in a shared cache tier (recorded in the request
/// context, honoured by [`super::admit`], logged as `never_store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeverStore {
    /// The response sets a cookie: it belongs to one client.
    SetCookie,
    /// `Cache-Control: private` or `no-store`.
    Private,
    /// The origin marked the answer as degraded (e.g. `x-token-valid: false` on a watermarked fallback).
    Degraded,
}

impl NeverStore {
    /// Stable label for logs.
    pub fn label(self) -> &'static str {
        match self {
            NeverStore::SetCookie => "set_cookie",
            NeverStore::Private => "private",
            NeverStore::Degraded => "degraded",
        }
    }
}

/// Why a response with these headers must never be stored in a shared tier, if it must not;
/// `degraded`: its origin marked it as a degraded answer.
pub fn never_store(headers: &HeaderMap, degraded: bool) -> Option<NeverStore> {
    if headers.contains_key(http::header::SET_COOKIE) {
        return Some(NeverStore::SetCookie);
    }
    let private = kit::fields::list_members(headers, http::header::CACHE_CONTROL)
        .map(|d| d.split_once('=').map_or(d, |(n, _)| n).trim())
        .any(|d| d.eq_ignore_ascii_case("private") || d.eq_ignore_ascii_case("no-store"));
    if private {
        return Some(NeverStore::Private);
    }
    degraded.then_some(NeverStore::Degraded)
}

/// How a cached route uses the shared tiers (`[hosts.routes.cache]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    /// Tiers looked up and written, top first.
    pub tiers: Vec<super::tier::TierName>,
    /// Freshness of a response the backend sent without one (`default_ttl`, else the route's
    /// `cache_control` lifetime); `None`: such responses are not stored.
    pub default_ttl: Option<Duration>,
    /// Freshness replacing the backend's (`ttl`).
    pub ttl: Option<Duration>,
    /// Longest lifetime guessed from `Last-Modified` for a response with no lifetime of its
    /// own and no `default_ttl` (`heuristic_max`); zero turns the guess off.
    pub heuristic_max: Duration,
    /// Largest body stored, in bytes.
    pub max_size: usize,
    /// Query parameter names in the key; `None`: every parameter the backend sees. Only
    /// these reach an origin.
    pub query_keys: Option<Vec<String>>,
    /// Request headers that reach the backend and are part of the key; of the override
    /// headers ([`super::forward::OVERRIDE_HEADERS`]), only these reach it.
    pub key_headers: Vec<http::HeaderName>,
    /// Stored only when the query has every one of these `name=value` pairs.
    pub store_if_query: Vec<(String, String)>,
    /// `stale-while-revalidate` when the backend sends none.
    pub stale_while_revalidate: Duration,
    /// `stale-if-error` when the backend sends none.
    pub stale_if_error: Duration,
    /// The route's own `cache_control` says `private` or `no-store`: nothing is stored.
    pub route_forbids: bool,
}

/// The default `heuristic_max` of a cached route: a day, as Apache Traffic Server's.
pub const DEFAULT_HEURISTIC_MAX: Duration = Duration::from_secs(86_400);

/// The default `max_size` of a cached route.
pub const DEFAULT_MAX_SIZE: usize = 64 << 20;

/// How long, and whether, a shared cache may keep a route's successful responses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Lifetime in a shared cache: `s-maxage`, else `max-age`; `None` when the route says none.
    pub shared_ttl: Option<Duration>,
    /// `no-store` or `private`: a shared cache must not keep it at all.
    pub never_store: bool,
    /// `no-cache`: stored, but validated with the backend before every use.
    pub revalidate_always: bool,
    /// `must-revalidate` / `proxy-revalidate`: never served stale.
    pub must_revalidate: bool,
    /// `immutable`: the representation never changes while fresh.
    pub immutable: bool,
    /// `stale-while-revalidate` (RFC 5861 §3).
    pub stale_while_revalidate: Option<Duration>,
    /// `stale-if-error` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

/// A directive the policy cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{directive}: {reason}")]
pub struct PolicyError {
    /// The directive as written.
    pub directive: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Freshness {
    /// Compiles a `Cache-Control` value. Unknown directives are ignored, as RFC 9111 §5.2.3
    /// requires of caches; malformed delta-seconds on a known one are errors.
    pub fn from_cache_control(value: &str) -> Result<Freshness, PolicyError> {
        let mut f = Freshness::default();
        let mut max_age = None;
        let mut s_maxage = None;
        for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            let seconds = || delta_seconds(directive, arg);
            match name.to_ascii_lowercase().as_str() {
                "max-age" => max_age = Some(seconds()?),
                "s-maxage" => s_maxage = Some(seconds()?),
                "stale-while-revalidate" => f.stale_while_revalidate = Some(seconds()?),
                "stale-if-error" => f.stale_if_error = Some(seconds()?),
                "no-store" | "private" => f.never_store = true,
                "no-cache" => f.revalidate_always = true,
                "must-revalidate" | "proxy-revalidate" => f.must_revalidate = true,
                "immutable" => f.immutable = true,
                _ => {}
            }
        }
        f.shared_ttl = s_maxage.or(max_age);
        Ok(f)
    }

    /// Whether a shared cache may store the route's responses at all.
    pub fn storable(&self) -> bool {
        !self.never_store && self.shared_ttl.is_some()
    }
}

fn delta_seconds(directive: &str, arg: Option<&str>) -> Result<Duration, PolicyError> {
    let error = |reason| PolicyError {
        directive: directive.to_string(),
        reason,
    };
    let arg = arg.ok_or_else(|| error("needs a number of seconds"))?;
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error("is not a whole number of seconds"));
    }
    // RFC 9111 §1.2.2: a value too large to represent is taken as 2^31 seconds.
    let secs = arg.parse::<u64>().unwrap_or(u64::MAX).min(1 << 31);
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    #[test]
    fn never_store_reasons() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in pairs {
                h.append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            h
        };
        // `degraded`: whether the response's origin marked it (the origins' marker decides
        // that and is tested with the http backend).
        let cookie = headers(&[("set-cookie", "a=1")]);
        assert_eq!(never_store(&cookie, false), Some(NeverStore::SetCookie));
        assert_eq!(never_store(&cookie, true), Some(NeverStore::SetCookie));
        assert_eq!(
            never_store(&headers(&[("cache-control", "max-age=60, Private")]), false),
            Some(NeverStore::Private)
        );
        assert_eq!(
            never_store(&headers(&[("cache-control", "private=\"x\"")]), false),
            Some(NeverStore::Private)
        );
        let marked = headers(&[("x-token-valid", " FALSE ")]);
        assert_eq!(never_store(&marked, true), Some(NeverStore::Degraded));
        assert_eq!(never_store(&marked, false), None);
        assert_eq!(
            never_store(&headers(&[("cache-control", "public, max-age=60")]), false),
            None
        );
    }
    use proptest::prelude::*;

    #[test]
    fn year_long_immutable_assets() {
        let f = Freshness::from_cache_control("public, max-age=31536000, immutable").unwrap();
        assert_eq!(f.shared_ttl, Some(Duration::from_secs(31_536_000)));
        assert!(f.immutable && f.storable());
    }

    #[test]
    fn shared_lifetime_prefers_s_maxage_and_private_is_never_stored() {
        let f = Freshness::from_cache_control("max-age=60, s-maxage=600").unwrap();
        assert_eq!(f.shared_ttl, Some(Duration::from_secs(600)));
        let f = Freshness::from_cache_control("private, max-age=60").unwrap();
        assert!(!f.storable());
        let f = Freshness::from_cache_control("no-store").unwrap();
        assert!(!f.storable());
        let f = Freshness::from_cache_control(
            "max-age=10, stale-while-revalidate=30, stale-if-error=\"86400\", no-cache",
        )
        .unwrap();
        assert_eq!(f.stale_while_revalidate, Some(Duration::from_secs(30)));
        assert_eq!(f.stale_if_error, Some(Duration::from_secs(86400)));
        assert!(f.revalidate_always);
        let f = Freshness::from_cache_control("max-age=99999999999999999999").unwrap();
        assert_eq!(f.shared_ttl, Some(Duration::from_secs(1 << 31)));
    }

    #[test]
    fn malformed_lifetimes_are_errors() {
        for bad in [
            "max-age",
            "max-age=",
            "max-age=-1",
            "s-maxage=1h",
            "stale-if-error=x",
        ] {
            assert!(Freshness::from_cache_control(bad).is_err(), "{bad}");
        }
        // Unknown directives are ignored.
        assert!(Freshness::from_cache_control("x-custom=1, public").is_ok());
    }

    proptest! {
        #[test]
        fn any_text_compiles_or_errors(value in "[ -~]{0,80}") {
            let _ = Freshness::from_cache_control(&value);
        }
    }
}
