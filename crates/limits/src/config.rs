//! The config of limits: `[limits]` and a route's `rate_limit`, as written (serde structs that
//! refuse unknown keys) and as checked into [`LimitSettings`] and [`RateLimit`]. Whether a
//! `shared` limit has the Redis tier its buckets need is the application's check: it spans
//! the cache's config.

use crate::{LimitSettings, Rate, RateLimit, Scope, DEFAULT_HEADER_BYTES};
use kit::problems::Check;
use serde::Deserialize;
use std::time::Duration;

/// `[limits]`: what one request and one client may ask of the gateway.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request head — target plus header fields — e.g. `32KiB` (default 32KiB, 1KiB
    /// to 1MiB); a larger one is answered 431.
    pub header_bytes: Option<String>,
    /// Most header fields in a request (default 100, 8 to 256); more are answered 431.
    pub header_count: Option<usize>,
    /// Longest time to receive a request's whole head, e.g. `30s` (default 30s, 1s to 1h;
    /// `0s`: no limit past Pingora's 60 s per read). Counted from the connection's accept for
    /// its first request and from the first byte of each later one; past it the client is
    /// answered 408 and the connection closed (closed silently if nothing was sent).
    pub header_timeout: Option<String>,
    /// Each client address's request rate over every route ([`RawRate`]; default none).
    pub client: Option<RawRate>,
    /// Most connections open at once from one address, IPv6 by its /64 (default 1024; 0:
    /// unlimited); more are closed as they arrive.
    pub connections_per_client: Option<usize>,
    /// Most client connections open at once in all (default 0: unlimited).
    pub connections: Option<usize>,
}

/// A request rate: a token bucket of `burst` requests refilled at `rate` per second. Past it,
/// requests are answered 429 with `Retry-After`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    /// Requests per second, sustained (may be fractional: `0.5` is one every two seconds).
    pub rate: f64,
    /// Requests allowed at once after a quiet spell (default: `rate`, at least 1).
    pub burst: Option<f64>,
    /// On a route: `client` (each client address its own bucket, the default) or `route`
    /// (one bucket for all of the route's requests).
    pub per: Option<String>,
    /// `true`: the buckets live in Redis (`[cache.redis]`), one for the whole fleet, instead
    /// of one per gateway (default false). If Redis fails, each gateway counts on its own.
    pub shared: Option<bool>,
}

/// The most `limits.header_count` accepts (Pingora itself reads at most 256 fields).
const MAX_HEADER_COUNT: usize = 256;
/// The most `limits.header_bytes` accepts (Pingora itself reads at most 1 MiB of head).
const MAX_HEADER_BYTES: usize = 1 << 20;
/// The shortest non-zero `limits.header_timeout`: less would cut off real clients on a slow
/// link.
const MIN_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest `limits.header_timeout`.
const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(3600);

/// Checks limits' sections; every problem goes to the [`Check`] with its key path.
pub trait CheckLimits {
    /// `[limits]`; see [`RawLimits`] for each key's meaning and default.
    fn limits(&mut self, value: Option<toml::Value>) -> LimitSettings;
    /// A route's `rate_limit`, at `path.rate_limit`.
    fn rate_limit(&mut self, path: &str, raw: Option<RawRate>) -> Option<RateLimit>;
}

impl CheckLimits for Check<'_> {
    fn limits(&mut self, value: Option<toml::Value>) -> LimitSettings {
        let raw = value
            .and_then(|v| self.item::<RawLimits>("limits", v))
            .unwrap_or_default();
        let mut settings = LimitSettings::default();
        if let Some(text) = raw.header_bytes {
            match kit::units::parse_size(&text).map(usize::try_from) {
                Ok(Ok(n)) if (1024..=MAX_HEADER_BYTES).contains(&n) => settings.header_bytes = n,
                Ok(_) => self
                    .problems
                    .add("limits.header_bytes", "must be 1KiB to 1MiB"),
                Err(e) => self.problems.add("limits.header_bytes", e),
            }
        }
        if let Some(n) = raw.header_count {
            if (8..=MAX_HEADER_COUNT).contains(&n) {
                settings.header_count = n;
            } else {
                self.problems.add(
                    "limits.header_count",
                    format!("must be 8 to {MAX_HEADER_COUNT}"),
                );
            }
        }
        if let Some(text) = raw.header_timeout {
            match kit::units::parse_duration(&text) {
                Ok(d) if d.is_zero() || (MIN_HEADER_TIMEOUT..=MAX_HEADER_TIMEOUT).contains(&d) => {
                    settings.header_timeout = d
                }
                Ok(_) => self
                    .problems
                    .add("limits.header_timeout", "must be 1s to 1h, or 0s for none"),
                Err(e) => self.problems.add("limits.header_timeout", e),
            }
        }
        if settings.header_bytes < DEFAULT_HEADER_BYTES / 8 {
            self.problems.add(
                "limits.header_bytes",
                "leaves too little room for cookies and tokens",
            );
        }
        if let Some(n) = raw.connections_per_client {
            settings.connections_per_client = n;
        }
        if let Some(n) = raw.connections {
            settings.connections = n;
        }
        settings.client = raw.client.and_then(|r| {
            if r.per.is_some() {
                self.problems.add(
                    "limits.client.per",
                    "is for a route's rate_limit; limits.client is always per client",
                );
            }
            Some(RateLimit {
                rate: rate(self, "limits.client", &r)?,
                scope: Scope::Client,
                shared: r.shared.unwrap_or(false),
            })
        });
        settings
    }

    fn rate_limit(&mut self, path: &str, raw: Option<RawRate>) -> Option<RateLimit> {
        let raw = raw?;
        let at = format!("{path}.rate_limit");
        let scope = match raw.per.as_deref() {
            None | Some("client") => Scope::Client,
            Some("route") => Scope::Route,
            Some(other) => {
                self.problems.add(
                    format!("{at}.per"),
                    format!("\"{other}\" is not `client` or `route`"),
                );
                Scope::Client
            }
        };
        let rate = rate(self, &at, &raw)?;
        Some(RateLimit {
            rate,
            scope,
            shared: raw.shared.unwrap_or(false),
        })
    }
}

/// A rate's `rate` and `burst`.
fn rate(cx: &mut Check<'_>, at: &str, raw: &RawRate) -> Option<Rate> {
    if !(raw.rate.is_finite() && raw.rate > 0.0) {
        cx.problems.add(
            format!("{at}.rate"),
            "must be a number of requests per second above 0",
        );
        return None;
    }
    let burst = raw.burst.unwrap_or(raw.rate.ceil().max(1.0));
    if !(burst.is_finite() && burst >= 1.0) {
        cx.problems
            .add(format!("{at}.burst"), "must be at least 1 request");
        return None;
    }
    Some(Rate {
        per_second: raw.rate,
        burst,
    })
}
