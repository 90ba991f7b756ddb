//! The asset store's metrics on the request path. Registered once on the registry the
//! server hands in.

use kit::metrics::Registrar;
use prometheus::{Gauge, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

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
    /// `assetgate_asset_ingest_total{path,result}`: uploads by how they came (`api`: `PUT
    /// /v1/assets`, `route`: an upload route, `presigned`: a completed presigned upload) and
    /// result (`stored`, `same` — the object held the bytes already —, `too_large`,
    /// `unsupported_type`, `refused`, `aborted`, `failed`).
    pub ingest: IntCounterVec,
    /// `assetgate_asset_ingest_bytes_total`: bytes of the uploads recorded.
    pub ingest_bytes: IntCounter,
    /// `assetgate_asset_ingest_duration_seconds{path}`: time from the first byte to the
    /// answer, recorded uploads only.
    pub ingest_duration: HistogramVec,
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
            ingest: r.counter(
                "assetgate_asset_ingest_total",
                "Uploads into the asset store, by path and result.",
                &["path", "result"],
            ),
            ingest_bytes: r.plain_counter(
                "assetgate_asset_ingest_bytes_total",
                "Bytes of the uploads recorded in the asset store.",
            ),
            ingest_duration: r.histogram(
                "assetgate_asset_ingest_duration_seconds",
                "Time to stream, hash, place and record an upload.",
                &["path"],
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
