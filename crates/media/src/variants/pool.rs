//! The bounded pool of decode/encode workers, off the async runtime. At most `workers` jobs
//! run at once (each on a blocking thread) and at most `queue` wait; a job beyond that is
//! refused at once with [`VariantError::Busy`] (503 with `Retry-After`) instead of queueing
//! without bound. Each job has a time limit; a job past it is answered as timed out while it
//! finishes on its thread, still holding its worker, so occupancy is always what runs. A
//! panicking job (a codec bug, an unwinding C library) fails that request only.

use super::metrics::VariantMetrics;
use super::VariantError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The worker pool.
pub struct WorkerPool {
    workers: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    metrics: VariantMetrics,
}

/// Decrements a gauge when dropped.
struct Occupied(prometheus::IntGauge);

impl Occupied {
    fn new(gauge: &prometheus::IntGauge) -> Occupied {
        gauge.inc();
        Occupied(gauge.clone())
    }
}

impl Drop for Occupied {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl WorkerPool {
    /// A pool of `workers` threads' worth of jobs with room for `queue` more to wait, its
    /// occupancy shown in `metrics`.
    pub fn new(workers: usize, queue: usize, metrics: VariantMetrics) -> WorkerPool {
        let workers = workers.max(1);
        WorkerPool {
            workers: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
            metrics,
        }
    }

    /// Runs `job` on a worker within `limit` (counted from now, waiting included).
    pub async fn run<T, F>(&self, limit: Duration, job: F) -> Result<T, VariantError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, VariantError> + Send + 'static,
    {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| VariantError::Busy)?;
        let deadline = Instant::now() + limit;
        let waiting = Occupied::new(&self.metrics.queue);
        let worker = tokio::time::timeout_at(deadline, self.workers.clone().acquire_owned())
            .await
            .map_err(|_| VariantError::TimedOut)?
            .map_err(|_| VariantError::Busy)?;
        drop(waiting);
        let busy = self.metrics.workers_busy.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let _held = (worker, admitted, Occupied::new(&busy));
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
        });
        match tokio::time::timeout_at(deadline, handle).await {
            Err(_) => Err(VariantError::TimedOut),
            Ok(Err(_)) | Ok(Ok(Err(_))) => Err(VariantError::Panicked),
            Ok(Ok(Ok(result))) => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saturation_is_refused_not_queued() {
        let pool = Arc::new(WorkerPool::new(1, 1, VariantMetrics::unregistered()));
        let slow = |ms| {
            move || {
                std::thread::sleep(Duration::from_millis(ms));
                Ok(ms)
            }
        };
        let a = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(Duration::from_secs(5), slow(300)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(Duration::from_secs(5), slow(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // One running, one waiting: the third is refused at once.
        assert_eq!(
            pool.run(Duration::from_secs(5), slow(10)).await,
            Err(VariantError::Busy)
        );
        assert_eq!(a.await.unwrap(), Ok(300));
        assert_eq!(b.await.unwrap(), Ok(10));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn panics_and_overruns_fail_one_job() {
        let pool = WorkerPool::new(2, 0, VariantMetrics::unregistered());
        let panicked = pool
            .run(Duration::from_secs(5), || -> Result<(), VariantError> {
                panic!("codec bug")
            })
            .await;
        assert_eq!(panicked, Err(VariantError::Panicked));
        let late = pool
            .run(Duration::from_millis(50), || {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .await;
        assert_eq!(late, Err(VariantError::TimedOut));
        assert_eq!(pool.run(Duration::from_secs(5), || Ok(7)).await, Ok(7));
    }
}
