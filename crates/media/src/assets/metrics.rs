//! The asset store's metrics on the request path. Registered once on the registry the
//! server hands in.

use kit::metrics::Registrar;
use prometheus::{IntCounterVec, IntGaugeVec};

/// Every asset store metric.
#[derive(Clone)]
pub struct AssetMetrics {
    /// `assetgate_asset_lookups_total{outcome}`: lookups answered from memory (`memory`), by
    /// a query (`query`), or by waiting for another request's query of the same hash
    /// (`shared`).
    pub lookups: IntCounterVec,
    /// `assetgate_asset_jobs{state}`: durable jobs in the database by state (`queued`,
    /// `running`, `done`, `failed`), as this gateway last counted them.
    pub jobs: IntGaugeVec,
    /// `assetgate_asset_job_runs_total{kind,result}`: job runs on this gateway by kind and
    /// result (`done`, `retry`, `failed`).
    pub job_runs: IntCounterVec,
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
            jobs: r.gauge(
                "assetgate_asset_jobs",
                "Durable asset jobs in the database, by state.",
                &["state"],
            ),
            job_runs: r.counter(
                "assetgate_asset_job_runs_total",
                "Durable asset job runs on this gateway, by kind and result.",
                &["kind", "result"],
            ),
        }
    }

    /// A set on a registry of its own that nothing reads, for tests.
    pub fn unregistered() -> AssetMetrics {
        AssetMetrics::register(Registrar(&prometheus::Registry::new()))
    }
}
