//! The asset store's metrics on the request path. Registered once on the registry the
//! server hands in.

use kit::metrics::Registrar;
use prometheus::IntCounterVec;

/// Every asset store metric.
#[derive(Clone)]
pub struct AssetMetrics {
    /// `assetgate_asset_lookups_total{outcome}`: lookups answered from memory (`memory`), by
    /// a query (`query`), or by waiting for another request's query of the same hash
    /// (`shared`).
    pub lookups: IntCounterVec,
}

impl AssetMetrics {
    /// Registers every asset store metric on `r`.
    pub fn register(r: Registrar<'_>) -> AssetMetrics {
        AssetMetrics {
            lookups: r.counter(
                "assetgate_asset_lookups_total",
                "Asset store lookups on the request path, by how they were answered.",
                &["outcome"],
            ),
        }
    }

    /// A set on a registry of its own that nothing reads, for tests.
    pub fn unregistered() -> AssetMetrics {
        AssetMetrics::register(Registrar(&prometheus::Registry::new()))
    }
}
