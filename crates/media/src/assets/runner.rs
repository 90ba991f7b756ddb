//! The gateway's job runner (a background service): claims due jobs from the asset database
//! one at a time, runs them, and settles them (done, retried with backoff, or failed), so the
//! moves and removals the API asked for happen even across restarts and on any gateway of
//! the fleet. Every job kind is safe to run twice (a lapsed lease hands a job to another
//! gateway).
//!
//! Kinds: `delete_object` `{"backend", "key"}` removes an object's bytes; `move`
//! `{"asset"}` moves an asset's bytes to its visibility's placement
//! ([`super::publish::move_to_placement`]).

use super::ingest::Destinations;
use super::jobs::{Job, Retry};
use super::lookup::AccessCache;
use super::metrics::AssetMetrics;
use super::originals::OriginalStores;
use super::placement::Placements;
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

/// How long a claimed job may run before another gateway may take it over.
const LEASE: Duration = Duration::from_secs(300);
/// How often the runner looks for due jobs when it found none.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often the job counts are refreshed for the metrics.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Runs the durable jobs of one asset store.
pub struct JobRunner {
    lookups: Arc<AccessCache>,
    stores: OriginalStores,
    placements: Placements,
    retry: Retry,
    owner: String,
    wake: Arc<tokio::sync::Notify>,
    metrics: AssetMetrics,
}

impl JobRunner {
    /// A runner for the store behind `lookups` (it waits until connected), writing through
    /// `stores` as `placements` say; `wake` makes it look for jobs at once.
    pub fn new(
        lookups: Arc<AccessCache>,
        stores: OriginalStores,
        placements: Placements,
        wake: Arc<tokio::sync::Notify>,
        metrics: AssetMetrics,
    ) -> JobRunner {
        JobRunner {
            lookups,
            stores,
            placements,
            retry: Retry::default(),
            owner: format!("gateway-{}", kit::ids::random_hex128()),
            wake,
            metrics,
        }
    }

    /// Runs `job` once: `Ok` when it is done.
    async fn run(&self, store: &AssetStore, job: &Job) -> Result<(), String> {
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
                    .stores
                    .get(&backend)
                    .ok_or_else(|| format!("backend \"{backend}\" is not configured"))?;
                target
                    .delete_original(&key)
                    .await
                    .map_err(|e| e.to_string())
            }
            MOVE => {
                let to = Destinations {
                    stores: &self.stores,
                    placements: &self.placements,
                };
                super::publish::move_to_placement(store, &to, &field("asset")?)
                    .await
                    .map(|_| ())
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
                Ok(()) => store.job_done(&job.id, &self.owner).await.map(|_| "done"),
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

    async fn count(&self, store: &AssetStore) {
        if let Ok(counts) = store.job_counts().await {
            for (state, n) in counts {
                self.metrics
                    .jobs
                    .with_label_values(&[state.as_str()])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
}

#[async_trait]
impl BackgroundService for JobRunner {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut counted = std::time::Instant::now() - COUNT_EVERY;
        loop {
            if let Some(store) = self.lookups.store() {
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
