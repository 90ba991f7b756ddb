//! The limits' metrics: client connections (open, refused), request heads that did not
//! arrive in time, and requests answered 429. Registered once on the registry the server
//! hands in.

use kit::metrics::Registrar;
use prometheus::{IntCounter, IntCounterVec, IntGauge};

/// Every limit metric.
#[derive(Clone)]
pub struct LimitMetrics {
    /// `assetgate_client_connections`: client connections open now.
    pub connections_open: IntGauge,
    /// `assetgate_client_connections_refused_total`: connections closed on arrival because
    /// `limits.connections_per_client` or `limits.connections` was reached.
    pub connections_refused: IntCounter,
    /// `assetgate_request_head_timeouts_total{stage}`: connections closed because a request
    /// head did not arrive within `limits.header_timeout`.
    head_timeouts: IntCounterVec,
    /// `assetgate_rate_limited_total{limit}`: requests answered 429, by the limit that ran out
    /// (`client`: `limits.client`; `route`: a route's `rate_limit`).
    rate_limited: IntCounterVec,
    /// `assetgate_rate_limit_fallbacks_total`: requests a fleet-shared rate limit counted in
    /// this gateway's own buckets because Redis failed or was skipped.
    pub rate_limit_fallbacks: IntCounter,
}

impl LimitMetrics {
    /// Registers every limit metric on `r`.
    pub fn register(r: Registrar<'_>) -> LimitMetrics {
        LimitMetrics {
            connections_open: r.plain_gauge(
                "assetgate_client_connections",
                "Client connections open now.",
            ),
            connections_refused: r
                .counter(
                    "assetgate_client_connections_refused_total",
                    "Client connections closed on arrival: limits.connections_per_client or limits.connections was reached.",
                    &[],
                )
                .with_label_values::<&str>(&[]),
            head_timeouts: r.counter(
                "assetgate_request_head_timeouts_total",
                "Connections closed because a request head did not arrive within limits.header_timeout (partial: answered 408; idle: nothing came).",
                &["stage"],
            ),
            rate_limited: r.counter(
                "assetgate_rate_limited_total",
                "Requests answered 429, by the limit that ran out (client, route).",
                &["limit"],
            ),
            rate_limit_fallbacks: r
                .counter(
                    "assetgate_rate_limit_fallbacks_total",
                    "Requests a fleet-shared rate limit counted in this gateway's own buckets because Redis failed.",
                    &[],
                )
                .with_label_values::<&str>(&[]),
        }
    }

    /// A set on a registry of its own that nothing reads, for tests.
    pub fn unregistered() -> LimitMetrics {
        LimitMetrics::register(Registrar(&prometheus::Registry::new()))
    }

    /// The head-timeout counters: `(partial, idle)`.
    pub fn head_timeouts(&self) -> HeadTimeouts {
        HeadTimeouts {
            partial: self.head_timeouts.with_label_values(&["partial"]),
            idle: self.head_timeouts.with_label_values(&["idle"]),
        }
    }

    /// Counts one request answered 429 by `limit` (`client` or `route`).
    pub fn limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }
}

/// `assetgate_request_head_timeouts_total` by stage, resolved once.
#[derive(Clone)]
pub struct HeadTimeouts {
    /// Part of a head came and was answered 408.
    pub partial: IntCounter,
    /// Nothing came; the connection was closed without an answer.
    pub idle: IntCounter,
}
