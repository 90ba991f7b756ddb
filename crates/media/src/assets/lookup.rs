//! What the request path asks of a content hash, answered from memory for a short time: a
//! viral variant or a flood of random hashes costs the database one query per hash per TTL,
//! not one per request. Concurrent lookups of one hash not yet remembered wait for one query.
//! Bounded by entries; unknown hashes are remembered too.

use super::store::{AssetStore, HashAccess};
use super::StoreError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A remembered answer: the access facts, or `None` for a hash nothing references.
type Remembered = Option<Arc<HashAccess>>;

/// A query under way, shared by every lookup of its hash meanwhile (errors as text: the
/// driver's error is not `Clone`).
type InFlight = Arc<tokio::sync::OnceCell<Result<Remembered, String>>>;

/// The store as the request path sees it: not yet connected until the start-up service has
/// connected and migrated, then the store behind a bounded, short-lived cache of answers.
pub struct AccessCache {
    store: OnceLock<AssetStore>,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Remembered)>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    queries: AtomicU64,
    metrics: super::metrics::AssetMetrics,
}

impl AccessCache {
    /// A cache keeping at most `capacity` answers for `ttl` each, counting lookups in
    /// `metrics`.
    pub fn new(
        ttl: Duration,
        capacity: usize,
        metrics: super::metrics::AssetMetrics,
    ) -> AccessCache {
        AccessCache {
            store: OnceLock::new(),
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            queries: AtomicU64::new(0),
            metrics,
        }
    }

    /// Makes the connected store available (once; later calls are ignored).
    pub fn connected(&self, store: AssetStore) {
        let _ = self.store.set(store);
    }

    /// The store, once connected.
    pub fn store(&self) -> Option<&AssetStore> {
        self.store.get()
    }

    /// Whether the store is connected and migrated.
    pub fn ready(&self) -> bool {
        self.store.get().is_some()
    }

    /// What may be served of `hash`, from memory when asked within the TTL.
    pub async fn access(&self, hash: &str) -> Result<Remembered, StoreError> {
        let now = Instant::now();
        if let Some((at, answer)) = lock(&self.entries).get(hash) {
            if now.duration_since(*at) < self.ttl {
                self.count("memory");
                return Ok(answer.clone());
            }
        }
        let store = self.store.get().ok_or(StoreError::NotReady)?;
        let cell = lock(&self.in_flight)
            .entry(hash.to_string())
            .or_default()
            .clone();
        let mut queried = false;
        let result = cell
            .get_or_init(|| {
                queried = true;
                self.queries.fetch_add(1, Ordering::Relaxed);
                async move {
                    let answer = store.access(hash).await.map_err(|e| e.to_string())?;
                    let answer = answer.map(Arc::new);
                    self.remember(hash, &answer);
                    Ok(answer)
                }
            })
            .await
            .clone();
        if queried {
            let mut in_flight = lock(&self.in_flight);
            if in_flight.get(hash).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                in_flight.remove(hash);
            }
        }
        self.count(if queried { "query" } else { "shared" });
        result.map_err(StoreError::Lookup)
    }

    /// Keeps `answer` for `hash`, within the bound.
    fn remember(&self, hash: &str, answer: &Remembered) {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                // Still full of live answers: start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(hash.to_string(), (now, answer.clone()));
    }

    fn count(&self, outcome: &str) {
        self.metrics.lookups.with_label_values(&[outcome]).inc();
    }

    /// How many queries this cache sent to the store.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Forgets what is remembered of `hash` (after this process changed it).
    pub fn forget(&self, hash: &str) {
        lock(&self.entries).remove(hash);
    }

    /// How many answers are remembered.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::metrics::AssetMetrics;

    #[tokio::test]
    async fn answers_are_bounded_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let cache = AccessCache::new(Duration::from_millis(50), 2, AssetMetrics::unregistered());
        assert!(matches!(
            cache.access(&"00".repeat(32)).await,
            Err(StoreError::NotReady)
        ));
        cache.connected(AssetStore::connect(&url).await.unwrap());
        for i in 0..5u8 {
            let hash = format!("{i:02x}").repeat(32);
            assert_eq!(cache.access(&hash).await.unwrap(), None);
            assert!(cache.len() <= 2);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_of_one_hash_send_one_query() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let cache = Arc::new(AccessCache::new(
            Duration::from_secs(5),
            100,
            AssetMetrics::unregistered(),
        ));
        cache.connected(AssetStore::connect(&url).await.unwrap());
        let hash = "ab".repeat(32);
        let lookups: Vec<_> = (0..50)
            .map(|_| {
                let (cache, hash) = (cache.clone(), hash.clone());
                tokio::spawn(async move { cache.access(&hash).await.unwrap() })
            })
            .collect();
        for l in lookups {
            assert_eq!(l.await.unwrap(), None);
        }
        assert_eq!(cache.queries(), 1);
        cache.access(&hash).await.unwrap();
        assert_eq!(cache.queries(), 1, "remembered within the TTL");
    }
}
