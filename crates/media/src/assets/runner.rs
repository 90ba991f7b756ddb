//! The gateway's job runner (a background service): claims due jobs from the asset database
//! one at a time, runs them, and settles them (done, retried with backoff, or failed), so the
//! moves and removals the API asked for happen even across restarts and on any gateway of
//! the fleet. Every job kind is safe to run twice (a lapsed lease hands a job to another
//! gateway).
//!
//! Kinds: `delete_object` `{"backend", "key"}` removes an object's bytes; `move`
//! `{"asset"}` moves an asset's bytes to its visibility's placement
//! ([`super::publish::move_to_placement`]); `retention` applies `[assets.retention]`
//! ([`super::retention::sweep`]); `reconcile` compares the database with the backends
//! ([`super::reconcile::reconcile`]).
//!
//! Scheduled kinds (retention, reconcile) are queued by every gateway's runner as the job of the current
//! period (`retention-<n>`, n = now ÷ `every`): [`AssetStore::enqueue_once`] makes that one
//! job however many gateways ask, so the fleet runs each period once.

use super::fleet::Fleet;
use super::ingest::Destinations;
use super::jobs::{Job, Retry};
use super::lookup::AccessCache;
use super::metrics::AssetMetrics;
use super::originals::OriginalStores;
use super::placement::Placements;
use super::reconcile::ReconcileSettings;
use super::retention::Retention;
use super::store::AssetStore;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// `delete_object`: removes the bytes of an object nothing references.
pub const DELETE_OBJECT: &str = "delete_object";
/// `move`: moves an asset's bytes to its visibility's placement.
pub const MOVE: &str = "move";
/// `retention`: deletes the assets `[assets.retention]` finds expired.
pub const RETENTION: &str = "retention";
/// `reconcile`: compares the database with the backends.
pub const RECONCILE: &str = "reconcile";

/// How long a claimed job may run before another gateway may take it over.
const LEASE: Duration = Duration::from_secs(300);
/// How often the runner looks for due jobs when it found none.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often the job counts are refreshed for the metrics.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// What the jobs work with.
pub struct Work {
    /// The backends placements write to.
    pub stores: OriginalStores,
    /// Where each visibility's assets go.
    pub placements: Placements,
    /// `[assets.retention]` (defaults without the section).
    pub retention: Retention,
    /// `[assets.reconcile]`.
    pub reconcile: ReconcileSettings,
    /// What deletions tell the fleet.
    pub fleet: Arc<dyn Fleet>,
}

/// Runs the durable jobs of one asset store.
pub struct JobRunner {
    lookups: Arc<AccessCache>,
    work: Work,
    retry: Retry,
    owner: String,
    wake: Arc<tokio::sync::Notify>,
    metrics: AssetMetrics,
}

impl JobRunner {
    /// A runner for the store behind `lookups` (it waits until connected), doing `work`;
    /// `wake` makes it look for jobs at once.
    pub fn new(
        lookups: Arc<AccessCache>,
        work: Work,
        wake: Arc<tokio::sync::Notify>,
        metrics: AssetMetrics,
    ) -> JobRunner {
        JobRunner {
            lookups,
            work,
            retry: Retry::default(),
            owner: format!("gateway-{}", kit::ids::random_hex128()),
            wake,
            metrics,
        }
    }

    /// The scheduled kinds and how often each runs.
    fn schedules(&self) -> Vec<(&'static str, Duration)> {
        let mut out = Vec::new();
        out.push((RETENTION, self.work.retention.every));
        if let Some(every) = self.work.reconcile.every {
            out.push((RECONCILE, every));
        }
        out
    }

    /// Queues the job of the current period of each scheduled kind whose period changed since
    /// `last` (once per fleet: see the module's doc).
    async fn schedule(&self, store: &AssetStore, last: &mut Vec<(&'static str, u128)>) {
        let now = u128::from(kit::time::unix_millis());
        for (kind, every) in self.schedules() {
            let period = now / every.as_millis().max(1);
            if last.contains(&(kind, period)) {
                continue;
            }
            let id = format!("{kind}-{period}");
            match store.enqueue_once(&id, kind, "{}", &self.retry).await {
                Ok(_) => {
                    last.retain(|(k, _)| *k != kind);
                    last.push((kind, period));
                }
                Err(e) => tracing::warn!(error = %e, %kind, "cannot queue a scheduled job"),
            }
        }
    }

    /// Runs `job` once: `Ok` with what it reports (JSON or empty) when it is done.
    async fn run(&self, store: &AssetStore, job: &Job) -> Result<String, String> {
        let payload: serde_json::Value =
            serde_json::from_str(&job.payload).map_err(|e| format!("payload: {e}"))?;
        let field = |name: &str| {
            payload[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("payload has no \"{name}\""))
        };
        match job.kind.as_str() {
            DELETE_OBJECT => {
                let (backend, key) = (field("backend")?, field("key")?);
                let target = self
                    .work
                    .stores
                    .get(&backend)
                    .ok_or_else(|| format!("backend \"{backend}\" is not configured"))?;
                target
                    .delete_original(&key)
                    .await
                    .map(|_| String::new())
                    .map_err(|e| e.to_string())
            }
            MOVE => {
                let to = Destinations {
                    stores: &self.work.stores,
                    placements: &self.work.placements,
                };
                super::publish::move_to_placement(store, &to, &field("asset")?)
                    .await
                    .map(|_| String::new())
                    .map_err(|e| e.to_string())
            }
            RETENTION => {
                let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
                let w = &self.work;
                let r = &w.retention;
                super::retention::sweep(store, &w.stores, w.fleet.as_ref(), r, now, false)
                    .await
                    .map(|report| report.to_json(&r.rules).to_string())
                    .map_err(|e| e.to_string())
            }
            RECONCILE => {
                let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
                let w = &self.work;
                super::reconcile::reconcile(store, &w.stores, w.fleet.as_ref(), &w.reconcile, now)
                    .await
                    .map(|report| report.to_json().to_string())
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("unknown job kind \"{other}\"")),
        }
    }

    /// Claims and runs due jobs until none is left.
    async fn drain(&self, store: &AssetStore) {
        loop {
            let job = match store.claim(&self.owner, LEASE).await {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a job");
                    return;
                }
            };
            let result = match self.run(store, &job).await {
                Ok(result) => store
                    .job_done(&job.id, &self.owner, &result)
                    .await
                    .map(|_| "done"),
                Err(e) => {
                    tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed");
                    store
                        .job_failed(&job, &self.owner, &e, &self.retry)
                        .await
                        .map(|state| if state == "failed" { "failed" } else { "retry" })
                }
            };
            match result {
                Ok(label) => self
                    .metrics
                    .job_runs
                    .with_label_values(&[job.kind.as_str(), label])
                    .inc(),
                Err(e) => tracing::warn!(job = %job.id, error = %e, "cannot settle a job"),
            }
        }
    }

    /// Refreshes the job counts and the last reconciliation's numbers (whichever gateway
    /// ran it) in the metrics.
    async fn count(&self, store: &AssetStore) {
        if let Ok(counts) = store.job_counts().await {
            for (state, n) in counts {
                self.metrics
                    .jobs
                    .with_label_values(&[state.as_str()])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        if let Ok(Some(result)) = store.last_result(RECONCILE).await {
            if let Ok(report) = serde_json::from_str::<serde_json::Value>(&result) {
                show_reconciliation(&self.metrics, &report);
            }
        }
    }
}

/// Sets the drift metrics from a reconciliation report (its JSON, as recorded).
fn show_reconciliation(m: &AssetMetrics, report: &serde_json::Value) {
    let n = |field: &str| i64::try_from(report[field].as_u64().unwrap_or(0)).unwrap_or(i64::MAX);
    m.reconcile_checked
        .with_label_values(&["rows"])
        .set(n("rows_checked"));
    m.reconcile_checked
        .with_label_values(&["objects"])
        .set(n("objects_checked"));
    for (kind, field) in [
        ("missing", "missing"),
        ("orphan", "orphans"),
        ("size", "size_mismatches"),
    ] {
        m.reconcile_mismatches
            .with_label_values(&[kind])
            .set(n(field));
    }
    m.drift_ratio
        .set(report["drift_ratio"].as_f64().unwrap_or(0.0));
    m.reconciled_at.set(n("at"));
}

#[async_trait]
impl BackgroundService for JobRunner {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut counted = std::time::Instant::now() - COUNT_EVERY;
        let mut scheduled = Vec::new();
        loop {
            if let Some(store) = self.lookups.store() {
                self.schedule(store, &mut scheduled).await;
                self.drain(store).await;
                if counted.elapsed() >= COUNT_EVERY {
                    self.count(store).await;
                    counted = std::time::Instant::now();
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
