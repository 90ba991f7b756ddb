//! Every metric the gateway exports, on one registry made at start and handed to each
//! domain's build step: each domain defines and registers its own set (`routing::metrics`,
//! `auth::metrics`, `limits::metrics`, `cache::metrics`, `backend::metrics`,
//! `variants::metrics`, `assets::metrics`); this module adds the gateway's own two and
//! renders them all for `/metrics`. Names start with `assetgate_`; label values come from the
//! config (host names, route names, backend names), never from raw request data, so
//! cardinality stays bounded.

use crate::backend::metrics::OriginMetrics;
use access::metrics::AccessMetrics;
use cache::metrics::CacheMetrics;
use kit::metrics::Registrar;
use limits::metrics::LimitMetrics;
use media::assets::metrics::AssetMetrics;
use media::variants::metrics::VariantMetrics;
use prometheus::{Encoder, IntCounterVec, Registry, TextEncoder};
use routing::metrics::RoutingMetrics;

/// Label used for requests that matched no configured host/route.
pub const UNMATCHED: &str = "_unmatched";

/// The gateway's metrics, by domain, and the registry that holds them.
pub struct Metrics {
    registry: Registry,
    /// `assetgate_rejected_requests_total{reason}`: requests that matched no route.
    pub rejected: IntCounterVec,
    /// Requests per route, steering and failovers.
    pub routing: RoutingMetrics,
    /// Access policies' refusals and revocation reloads.
    pub access: AccessMetrics,
    /// Connections, request-head deadlines, rate limits.
    pub limits: LimitMetrics,
    /// The shared cache: routes, tiers, purges, the fleet feed.
    pub cache: CacheMetrics,
    /// Backends and pool members.
    pub origins: OriginMetrics,
    /// Image variants.
    pub variants: VariantMetrics,
    /// The asset store's lookups.
    pub assets: AssetMetrics,
}

impl Metrics {
    /// Every metric, registered on a new registry. Made once per gateway (tests make as
    /// many as they like: nothing is global).
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = Registrar(&registry);
        r.gauge(
            "assetgate_build_info",
            "Build information; the value is always 1.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        Metrics {
            rejected: r.counter(
                "assetgate_rejected_requests_total",
                "Requests that matched no route, by reason (bad_path, no_route, headers_too_large).",
                &["reason"],
            ),
            routing: RoutingMetrics::register(r),
            access: AccessMetrics::register(r),
            limits: LimitMetrics::register(r),
            cache: CacheMetrics::register(r),
            origins: OriginMetrics::register(r),
            variants: VariantMetrics::register(r),
            assets: AssetMetrics::register(r),
            registry,
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_registers_on_the_one_registry() {
        let metrics = Metrics::new();
        metrics.cache.tier("memory").hits.inc();
        metrics
            .routing
            .route("h", "r")
            .observe(200, Default::default(), 5);
        metrics.limits.limited("client");
        let text = String::from_utf8(metrics.render()).unwrap();
        for name in [
            "assetgate_build_info{version=",
            "assetgate_cache_tier_hits_total{tier=\"memory\"} 1",
            "assetgate_requests_total{host=\"h\",route=\"r\",status=\"200\"} 1",
            "assetgate_rate_limited_total{limit=\"client\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        // A second gateway's metrics are its own.
        let other = Metrics::new();
        assert!(!String::from_utf8(other.render())
            .unwrap()
            .contains("assetgate_cache_tier_hits_total{"));
    }
}
