//! The asset store's metrics on the request path. Registered once on the registry the
//! server hands in.

use kit::metrics::Registrar;
use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec};

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
    /// `assetgate_asset_reconcile_checked{what}`: rows (`rows`) and stored objects
    /// (`objects`) the last reconciliation compared (every gateway shows the fleet's last).
    pub reconcile_checked: IntGaugeVec,
    /// `assetgate_asset_reconcile_mismatches{kind}`: what the last reconciliation found
    /// wrong, by kind (`missing`, `orphan`, `size`).
    pub reconcile_mismatches: IntGaugeVec,
    /// `assetgate_asset_drift_ratio`: mismatches ÷ (rows + orphans) of the last
    /// reconciliation (alert at e.g. 0.0001, 0.01%).
    pub drift_ratio: Gauge,
    /// `assetgate_asset_reconcile_timestamp_seconds`: when the last reconciliation ran.
    pub reconciled_at: IntGauge,
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
            reconcile_checked: r.gauge(
                "assetgate_asset_reconcile_checked",
                "Rows and stored objects the last reconciliation compared.",
                &["what"],
            ),
            reconcile_mismatches: r.gauge(
                "assetgate_asset_reconcile_mismatches",
                "Mismatches the last reconciliation found, by kind.",
                &["kind"],
            ),
            drift_ratio: r.ratio_gauge(
                "assetgate_asset_drift_ratio",
                "Mismatches of the last reconciliation over rows and orphan objects.",
            ),
            reconciled_at: r.plain_gauge(
                "assetgate_asset_reconcile_timestamp_seconds",
                "Unix time of the last reconciliation.",
            ),
        }
    }

    /// A set on a registry of its own that nothing reads, for tests.
    pub fn unregistered() -> AssetMetrics {
        AssetMetrics::register(Registrar(&prometheus::Registry::new()))
    }
}
