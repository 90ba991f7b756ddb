//! The memory tier: whole entries in process memory, bounded by bytes, kept by TinyLFU
//! admission and S3-FIFO eviction (the `tinyufo` crate, lock-free), so a one-off scan of cold
//! keys passes through the small queue without flushing the hot set.
//!
//! TinyUFO weighs entries in `u16` units; this tier's unit is one KiB of body plus header, so
//! an entry weighs at most 64 MiB and a tier is bounded to within a KiB per entry. TinyUFO
//! files entries under a 64-bit hash of the key; each entry keeps its full [`EntryKey`] and a
//! lookup that finds another key's entry there is a miss, never that entry.

use super::index::PurgeIndex;
use super::key::EntryKey;
use super::labels::Labels;
use super::metrics::TierMetrics;
use super::tier::{Found, Tier, TierName, TierWriter, WholeBody};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::cache::key::HashBinary;
use pingora::cache::CacheMeta;
use pingora::http::ResponseHeader;
use pingora::Result;
use std::sync::Arc;
use std::time::SystemTime;
use tinyufo::TinyUfo;

/// Bytes per weight unit.
const UNIT: usize = 1024;
/// Bookkeeping charged to every entry beyond its body and header bytes.
const OVERHEAD: usize = 256;
/// The largest entry a weight can describe.
pub const MAX_ENTRY: usize = u16::MAX as usize * UNIT;

/// What a stored entry's metadata is rebuilt from on every hit: cloning these is cheaper than
/// deserialising pingora's wire form.
#[derive(Clone)]
struct StoredMeta {
    fresh_until: SystemTime,
    /// When the entry was last stored or revalidated: the reference for its age.
    updated: SystemTime,
    stale_while_revalidate: u32,
    stale_if_error: u32,
    variance: Option<HashBinary>,
    epoch_override: Option<SystemTime>,
    header: ResponseHeader,
}

impl StoredMeta {
    fn of(meta: &CacheMeta) -> StoredMeta {
        StoredMeta {
            fresh_until: meta.fresh_until(),
            updated: meta.updated(),
            stale_while_revalidate: meta.stale_while_revalidate_sec(),
            stale_if_error: meta.stale_if_error_sec(),
            variance: meta.variance(),
            epoch_override: meta.epoch_override(),
            header: meta.response_header().clone(),
        }
    }

    /// The entry's metadata. `created` is reported as the last update: pingora reads it only
    /// to order `Vary` variants after a purge of their primary, where a later time can cost a
    /// refetch and never serves a purged variant.
    fn rebuild(&self) -> CacheMeta {
        let mut meta = CacheMeta::new(
            self.fresh_until,
            self.updated,
            self.stale_while_revalidate,
            self.stale_if_error,
            self.header.clone(),
        );
        if let Some(v) = self.variance {
            meta.set_variance(v);
        }
        if let Some(e) = self.epoch_override {
            meta.set_epoch_override(e);
        }
        meta
    }

    fn header_bytes(&self) -> usize {
        self.header
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum()
    }
}

struct Entry {
    key: EntryKey,
    meta: StoredMeta,
    body: Bytes,
    labels: Arc<Labels>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.body.len() + self.meta.header_bytes() + OVERHEAD
    }
}

/// The memory tier.
pub struct MemoryTier(Arc<Store>);

/// The entries, shared with the writers filling them.
struct Store {
    entries: TinyUfo<EntryKey, Arc<Entry>>,
    max_entry: usize,
    metrics: TierMetrics,
    /// Where this tier's entries are recorded for purges.
    index: Arc<PurgeIndex>,
}

impl MemoryTier {
    /// A tier holding at most `size` bytes, entries of at most `max_entry` bytes each,
    /// recording what it holds in `index`.
    pub fn new(
        size: usize,
        max_entry: usize,
        metrics: TierMetrics,
        index: Arc<PurgeIndex>,
    ) -> MemoryTier {
        let units = (size / UNIT).max(1);
        // TinyLFU's sketch and the bucket map are sized for the entries expected: assume
        // 8 KiB on average, at least a thousand.
        let expected = (size / (8 * UNIT)).max(1024);
        MemoryTier(Arc::new(Store {
            entries: TinyUfo::new(units, expected),
            max_entry: max_entry.min(MAX_ENTRY),
            metrics,
            index,
        }))
    }
}

impl MemoryTier {
    /// The entry under `key` when it can answer a request as it is: fresh at `now` and
    /// without `Vary` variance (those go through pingora-cache's variant lookup).
    pub fn fresh(&self, key: &EntryKey, now: SystemTime) -> Option<FreshHit> {
        let entry = self.0.get(key)?;
        if entry.meta.variance.is_some() || entry.meta.fresh_until < now {
            return None;
        }
        self.0.metrics.hits.inc();
        Some(FreshHit(entry))
    }
}

/// A fresh memory entry, answered without pingora-cache's hit machinery.
pub struct FreshHit(Arc<Entry>);

impl FreshHit {
    /// The stored response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.0.meta.header
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.0.body
    }

    /// Seconds since the entry was stored or revalidated (its `Age`).
    pub fn age(&self, now: SystemTime) -> u64 {
        let epoch = self.0.meta.epoch_override.unwrap_or(self.0.meta.updated);
        now.duration_since(epoch).map_or(0, |d| d.as_secs())
    }

    /// Seconds of freshness left.
    pub fn ttl(&self, now: SystemTime) -> i64 {
        super::status::seconds_left(self.0.meta.fresh_until, now)
    }
}

impl Store {
    fn get(&self, key: &EntryKey) -> Option<Arc<Entry>> {
        self.entries.get(key).filter(|e| e.key == *key)
    }

    /// Stores `entry`, replacing any entry under its key, and accounts for what TinyUFO
    /// evicted (or declined: a new entry less popular than the one it would evict).
    fn insert(&self, entry: Entry) {
        let key = entry.key;
        if let Some(old) = self.entries.remove(&key) {
            self.forget(&old);
            if old.key != key {
                self.index.forget(&old.key, TierName::Memory);
            }
        }
        let bytes = entry.bytes();
        let weight = bytes.div_ceil(UNIT).min(u16::MAX as usize) as u16;
        self.metrics.bytes.add(bytes as i64);
        self.metrics.entries.inc();
        self.index.record(key, TierName::Memory, &entry.labels);
        for evicted in self.entries.put(key, Arc::new(entry), weight) {
            self.forget(&evicted.data);
            self.index.forget(&evicted.data.key, TierName::Memory);
            self.metrics.evictions.inc();
        }
    }

    /// Takes an entry out of the accounting (the index is the caller's).
    fn forget(&self, entry: &Entry) {
        self.metrics.bytes.sub(entry.bytes() as i64);
        self.metrics.entries.dec();
    }
}

#[async_trait]
impl Tier for MemoryTier {
    fn name(&self) -> TierName {
        TierName::Memory
    }

    fn metrics(&self) -> &TierMetrics {
        &self.0.metrics
    }

    async fn lookup(&self, key: &EntryKey) -> Result<Option<Found>> {
        let found = self.0.get(key);
        self.0.metrics.looked_up(found.is_some());
        Ok(found.map(|entry| Found {
            meta: entry.meta.rebuild(),
            body: Box::new(WholeBody::new(entry.body.clone())),
        }))
    }

    async fn writer(
        &self,
        key: EntryKey,
        meta: &CacheMeta,
        size: Option<usize>,
        labels: &Arc<Labels>,
    ) -> Result<Option<Box<dyn TierWriter>>> {
        if size.is_some_and(|s| s > self.0.max_entry) {
            return Ok(None);
        }
        Ok(Some(Box::new(MemoryWriter {
            key,
            labels: labels.clone(),
            meta: StoredMeta::of(meta),
            body: BytesMut::with_capacity(size.unwrap_or(0)),
            store: self.0.clone(),
        })))
    }

    async fn update_meta(&self, key: &EntryKey, meta: &CacheMeta) -> Result<bool> {
        let Some(old) = self.0.get(key) else {
            return Ok(false);
        };
        self.0.insert(Entry {
            key: *key,
            meta: StoredMeta::of(meta),
            body: old.body.clone(),
            labels: old.labels.clone(),
        });
        Ok(true)
    }

    async fn remove(&self, key: &EntryKey) -> Result<bool> {
        if self.0.get(key).is_none() {
            return Ok(false);
        }
        if let Some(old) = self.0.entries.remove(key) {
            self.0.forget(&old);
        }
        self.0.index.forget(key, TierName::Memory);
        Ok(true)
    }
}

/// Collects a new entry's body; stored whole at commit.
struct MemoryWriter {
    key: EntryKey,
    labels: Arc<Labels>,
    meta: StoredMeta,
    body: BytesMut,
    store: Arc<Store>,
}

#[async_trait]
impl TierWriter for MemoryWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        if self.body.len() + data.len() > self.store.max_entry {
            return Err(pingora::Error::explain(
                pingora::ErrorType::InternalError,
                "entry larger than the memory tier's max_entry",
            ));
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<usize> {
        let MemoryWriter {
            key,
            labels,
            meta,
            body,
            store,
        } = *self;
        let len = body.len();
        store.insert(Entry {
            key,
            meta,
            body: body.freeze(),
            labels,
        });
        store.metrics.writes.inc();
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CacheMetrics;
    use std::time::Duration;

    fn key(n: u64) -> EntryKey {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&n.to_be_bytes());
        EntryKey(k)
    }

    fn meta() -> CacheMeta {
        let now = SystemTime::now();
        let header = ResponseHeader::build(200, None).unwrap();
        CacheMeta::new(now + Duration::from_secs(60), now, 0, 0, header)
    }

    async fn put(tier: &MemoryTier, n: u64, size: usize) {
        let mut w = tier
            .writer(key(n), &meta(), Some(size), &Arc::default())
            .await
            .unwrap()
            .unwrap();
        w.write(Bytes::from(vec![n as u8; size])).await.unwrap();
        w.commit().await.unwrap();
    }

    async fn hit(tier: &MemoryTier, n: u64) -> bool {
        tier.lookup(&key(n)).await.unwrap().is_some()
    }

    fn tier(size: usize) -> MemoryTier {
        MemoryTier::new(
            size,
            size,
            CacheMetrics::unregistered().tier("memory-test"),
            Arc::default(),
        )
    }

    #[tokio::test]
    async fn stores_reads_and_seeks() {
        let t = tier(1 << 20);
        put(&t, 1, 3000).await;
        let mut found = t.lookup(&key(1)).await.unwrap().unwrap();
        assert_eq!(found.meta.response_header().status, 200);
        assert!(found.body.can_seek());
        found.body.seek(10, Some(20)).unwrap();
        assert_eq!(found.body.read().await.unwrap().unwrap().len(), 10);
        assert!(found.body.read().await.unwrap().is_none());
        assert!(!hit(&t, 2).await);
        assert!(t.remove(&key(1)).await.unwrap());
        assert!(!hit(&t, 1).await);
    }

    #[tokio::test]
    async fn declines_entries_over_max_entry() {
        let t = MemoryTier::new(
            1 << 20,
            4096,
            CacheMetrics::unregistered().tier("memory-test"),
            Arc::default(),
        );
        let none = Arc::default();
        assert!(t
            .writer(key(1), &meta(), Some(5000), &none)
            .await
            .unwrap()
            .is_none());
        let mut w = t
            .writer(key(1), &meta(), None, &none)
            .await
            .unwrap()
            .unwrap();
        assert!(w.write(Bytes::from(vec![0; 5000])).await.is_err());
    }

    #[tokio::test]
    async fn stays_within_its_bytes_under_churn() {
        let size = 256 * 1024;
        let t = tier(size);
        for n in 0..2000 {
            put(&t, n, 1000 + (n as usize % 7) * 500).await;
        }
        let weight_units: usize = (0..2000u64)
            .filter_map(|n| t.0.get(&key(n)))
            .map(|e| e.bytes().div_ceil(UNIT))
            .sum();
        assert!(weight_units * UNIT <= size, "{weight_units} KiB held");
        assert!(weight_units * UNIT > size / 2, "{weight_units} KiB held");
    }

    /// The purge index holds exactly what the tier holds, through churn and removals.
    #[tokio::test]
    async fn the_purge_index_follows_what_the_tier_holds() {
        let t = tier(64 * 1024);
        for n in 0..500 {
            put(&t, n, 2000).await;
        }
        assert!(t.remove(&key(499)).await.unwrap() || !hit(&t, 499).await);
        let held = (0..500u64).filter(|&n| t.0.get(&key(n)).is_some()).count();
        assert!(held > 0 && held < 500);
        assert_eq!(t.0.index.len(), held);
    }

    /// A hot set that fits survives a one-off scan of twice the capacity: at least 80% of it
    /// still hits afterwards.
    #[tokio::test]
    async fn a_scan_does_not_flush_the_hot_set() {
        let entry = 4 * 1024;
        let capacity = 1000 * entry;
        let t = tier(capacity);
        let hot: Vec<u64> = (0..400).collect();
        for &n in &hot {
            put(&t, n, entry - 1024).await;
        }
        for _ in 0..3 {
            for &n in &hot {
                assert!(hit(&t, n).await);
            }
        }
        // One pass over cold keys worth twice the capacity, each missed then filled.
        for n in 10_000..10_000 + 2000 {
            assert!(!hit(&t, n).await);
            put(&t, n, entry - 1024).await;
        }
        let survived = hot.iter().filter(|&&n| t.0.get(&key(n)).is_some()).count();
        assert!(
            survived * 100 >= hot.len() * 80,
            "{survived} of {} survived",
            hot.len()
        );
    }
}
