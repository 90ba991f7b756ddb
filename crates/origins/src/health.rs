//! Active health of backends that `pingora-load-balancing` does not check for us (buckets):
//! a rise/fall state machine and the background service that probes each bucket.

use super::s3::S3Backend;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Healthy or not, flipped by `fall` consecutive failed checks or `rise` consecutive passes.
/// Starts healthy, as Pingora's pools do.
#[derive(Debug)]
pub struct Health {
    healthy: AtomicBool,
    /// Consecutive checks that disagreed with `healthy`.
    streak: AtomicUsize,
    rise: usize,
    fall: usize,
}

impl Health {
    /// A healthy state with these thresholds (each at least 1).
    pub fn new(rise: usize, fall: usize) -> Health {
        Health {
            healthy: AtomicBool::new(true),
            streak: AtomicUsize::new(0),
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    /// Whether the backend is considered healthy.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Takes one check's result (only the checker calls this); `Some(new state)` on a flip.
    pub fn observe(&self, passed: bool) -> Option<bool> {
        let healthy = self.healthy();
        if passed == healthy {
            self.streak.store(0, Ordering::Relaxed);
            return None;
        }
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        let needed = if passed { self.rise } else { self.fall };
        if streak < needed {
            return None;
        }
        self.streak.store(0, Ordering::Relaxed);
        self.healthy.store(passed, Ordering::Relaxed);
        Some(passed)
    }
}

/// Probes each bucket every `interval` of its own, until shutdown.
pub struct BucketChecks {
    buckets: Vec<(Arc<S3Backend>, Duration)>,
}

impl BucketChecks {
    /// A service for these buckets and their intervals.
    pub fn new(buckets: Vec<(Arc<S3Backend>, Duration)>) -> BucketChecks {
        BucketChecks { buckets }
    }

    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[async_trait]
impl BackgroundService for BucketChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tasks = tokio::task::JoinSet::new();
        for (bucket, interval) in &self.buckets {
            let bucket = bucket.clone();
            let interval = *interval;
            let mut stop = shutdown.clone();
            tasks.spawn(async move {
                loop {
                    let passed = bucket.check_health().await;
                    match bucket.health().observe(passed) {
                        Some(true) => tracing::info!(backend = %bucket.name, "bucket passes health checks again"),
                        Some(false) => tracing::warn!(backend = %bucket.name, "bucket fails health checks"),
                        None => {}
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = stop.changed() => return,
                    }
                }
            });
        }
        let _ = shutdown.changed().await;
        tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_after_consecutive_checks() {
        let h = Health::new(2, 3);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None); // the streak is broken
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
        assert!(!h.healthy());
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
        assert!(h.healthy());
    }
}
