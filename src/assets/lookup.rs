//! What the request path asks of a content hash, answered from memory for a short time: a
//! viral variant or a flood of random hashes costs the database one query per hash per TTL,
//! not one per request. Bounded by entries; unknown hashes are remembered too.

use super::store::{AssetStore, HashAccess};
use super::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A remembered answer: the access facts, or `None` for a hash nothing references.
type Remembered = Option<Arc<HashAccess>>;

/// The store as the request path sees it: not yet connected until the start-up service has
/// connected and migrated, then the store behind a bounded, short-lived cache of answers.
pub struct AccessCache {
    store: OnceLock<AssetStore>,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Remembered)>>,
}

impl AccessCache {
    /// A cache keeping at most `capacity` answers for `ttl` each.
    pub fn new(ttl: Duration, capacity: usize) -> AccessCache {
        AccessCache {
            store: OnceLock::new(),
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
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
        if let Some((at, answer)) = self.lock().get(hash) {
            if now.duration_since(*at) < self.ttl {
                return Ok(answer.clone());
            }
        }
        let store = self.store.get().ok_or(StoreError::NotReady)?;
        let answer = store.access(hash).await?.map(Arc::new);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                // Still full of live answers: start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(hash.to_string(), (now, answer.clone()));
        Ok(answer)
    }

    /// Forgets what is remembered of `hash` (after this process changed it).
    pub fn forget(&self, hash: &str) {
        self.lock().remove(hash);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Remembered)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many answers are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_are_bounded_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let cache = AccessCache::new(Duration::from_millis(50), 2);
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
}
