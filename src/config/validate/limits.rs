//! `[limits]` and a route's `rate_limit`: request head size and request rates.

use super::*;
use crate::config::raw::{RawLimits, RawRate};
use ::cache::tier::TierName;
use ::limits::{LimitSettings, Rate, RateLimit, Scope, DEFAULT_HEADER_BYTES};

/// The most `limits.header_count` accepts (Pingora itself reads at most 256 fields).
const MAX_HEADER_COUNT: usize = 256;
/// The most `limits.header_bytes` accepts (Pingora itself reads at most 1 MiB of head).
const MAX_HEADER_BYTES: usize = 1 << 20;
/// The shortest non-zero `limits.header_timeout`: less would cut off real clients on a slow
/// link.
const MIN_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest `limits.header_timeout`.
const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(3600);

impl Validator<'_> {
    /// `[limits]`; see [`RawLimits`] for each key's meaning and default.
    pub(super) fn limits(&mut self, value: Option<toml::Value>) -> LimitSettings {
        let raw = value
            .and_then(|v| item::<RawLimits>(self.problems, "limits", v))
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
                rate: self.rate("limits.client", &r)?,
                scope: Scope::Client,
                shared: r.shared.unwrap_or(false),
            })
        });
        settings
    }

    /// A `shared` limit needs the Redis tier its buckets live in (checked once `[cache]` is
    /// known).
    pub(super) fn shared_limit_has_redis(&mut self, at: &str, limit: Option<&RateLimit>) {
        if limit.is_some_and(|l| l.shared) && !self.cache_tiers.contains(&TierName::Redis) {
            self.problems.add(
                format!("{at}.shared"),
                "needs [cache.redis]: the fleet's buckets live there",
            );
        }
    }

    /// A route's `rate_limit`.
    pub(super) fn rate_limit(&mut self, path: &str, raw: Option<RawRate>) -> Option<RateLimit> {
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
        let rate = self.rate(&at, &raw)?;
        let limit = RateLimit {
            rate,
            scope,
            shared: raw.shared.unwrap_or(false),
        };
        self.shared_limit_has_redis(&at, Some(&limit));
        Some(limit)
    }

    fn rate(&mut self, at: &str, raw: &RawRate) -> Option<Rate> {
        if !(raw.rate.is_finite() && raw.rate > 0.0) {
            self.problems.add(
                format!("{at}.rate"),
                "must be a number of requests per second above 0",
            );
            return None;
        }
        let burst = raw.burst.unwrap_or(raw.rate.ceil().max(1.0));
        if !(burst.is_finite() && burst >= 1.0) {
            self.problems
                .add(format!("{at}.burst"), "must be at least 1 request");
            return None;
        }
        Some(Rate {
            per_second: raw.rate,
            burst,
        })
    }
}
