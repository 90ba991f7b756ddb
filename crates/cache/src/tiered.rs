//! The composite [`Storage`] pingora-cache sees: a route's tiers, top first. A lookup answers
//! from the first tier that holds the entry and copies it into the tiers above as the body is
//! read (committed in the background once the whole body went by); a miss writes through to
//! every tier that admits it; a 304 revalidation rewrites the metadata in every tier.
//!
//! A tier that errors is skipped and counted; the request goes on with the others.

use super::admit::declared_length;
use super::fleet::{FleetLock, Lease, Turn};
use super::index::PurgeIndex;
use super::key::EntryKey;
use super::labels::{Labels, UrlLabel};
use super::tier::{Tier, TierBody, TierName, TierWriter};
use async_trait::async_trait;
use bytes::Bytes;
use pingora::cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType,
};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{CacheKey, CacheMeta, Storage};
use pingora::{Error, ErrorType, Result};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A writer into one tier, beside the tier (for its name and metrics).
type TierCopy = (Arc<dyn Tier>, Box<dyn TierWriter>);

/// One route's tiers as a pingora-cache [`Storage`].
pub struct TieredStorage {
    tiers: Vec<Arc<dyn Tier>>,
    /// The fleet's fill lock, when the route shares a Redis tier, and how long a waiter
    /// waits before it asks the backend itself.
    fleet: Option<(Arc<FleetLock>, Duration)>,
    /// Fleet leases taken by lookups, claimed by the fill that follows.
    leases: Mutex<HashMap<EntryKey, Lease>>,
    /// Response headers whose values tag an entry for purges.
    tag_headers: Arc<[http::HeaderName]>,
    /// The node's purge index (recent purges keep fills that began before them out).
    index: Arc<PurgeIndex>,
}

impl TieredStorage {
    /// Storage over `tiers`, top first (at least one), with the fleet lock when given,
    /// tagging entries from the headers `tag_headers`, checking fills against the purges
    /// `index` remembers.
    pub fn new(
        tiers: Vec<Arc<dyn Tier>>,
        fleet: Option<(Arc<FleetLock>, Duration)>,
        tag_headers: Arc<[http::HeaderName]>,
        index: Arc<PurgeIndex>,
    ) -> TieredStorage {
        TieredStorage {
            tiers,
            fleet,
            leases: Mutex::new(HashMap::new()),
            tag_headers,
            index,
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<EntryKey, Lease>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frees a fleet lease a lookup took for `key` when no fill claimed it (the response was
    /// not stored, or the backend failed): other gateways stop waiting at once.
    pub fn abandon(&self, key: &CacheKey) {
        if self.fleet.is_none() {
            return;
        }
        let lease = self.leases().remove(&EntryKey::of(key));
        drop(lease);
    }

    /// The first tier holding `entry` (filed under `key`), as a hit that promotes into the
    /// tiers above it.
    async fn find(&self, key: &CacheKey, entry: &EntryKey) -> Option<TieredHit> {
        for (i, tier) in self.tiers.iter().enumerate() {
            match tier.lookup(entry).await {
                Ok(Some(found)) => {
                    let size = declared_length(found.meta.headers());
                    let (promote, guard) = if i == 0 {
                        (Vec::new(), None)
                    } else {
                        let labels = Arc::new(Labels::of(key, &found.meta, &self.tag_headers));
                        let writers =
                            Self::writers(&self.tiers[..i], *entry, &found.meta, size, &labels)
                                .await;
                        let guard = key.extensions.get::<UrlLabel>().map(|u| PurgeGuard {
                            index: self.index.clone(),
                            labels,
                            asked_at: u.asked_at,
                        });
                        (writers, guard)
                    };
                    return Some(TieredHit {
                        tier: tier.name(),
                        meta: Some(found.meta),
                        body: found.body,
                        promote,
                        guard,
                        waited: None,
                    });
                }
                Ok(None) => {}
                Err(e) => failed(tier.as_ref(), "look up", &e),
            }
        }
        None
    }

    /// After a miss in every tier: lead the fill (`None`: go to the backend), or wait for the
    /// gateway that leads it and answer from the shared tier.
    async fn wait_for_fleet(&self, key: &CacheKey, entry: &EntryKey) -> Option<TieredHit> {
        let (fleet, patience) = self.fleet.as_ref()?;
        let started = Instant::now();
        let deadline = started + *patience;
        loop {
            match fleet.take_turn(entry).await {
                Turn::Lead(lease) => {
                    self.leases().insert(*entry, lease);
                    return None;
                }
                Turn::Alone => return None,
                Turn::Follow(ticket) => {
                    let gave_up = fleet.wait(ticket, deadline).await;
                    if let Some(mut hit) = self.find(key, entry).await {
                        hit.waited = Some(started.elapsed());
                        return Some(hit);
                    }
                    if gave_up {
                        return None;
                    }
                }
            }
        }
    }

    /// Removes the entry under `key` from every tier; true when any held it.
    pub async fn remove(&self, key: &EntryKey) -> bool {
        let mut removed = false;
        for tier in &self.tiers {
            match tier.remove(key).await {
                Ok(r) => removed |= r,
                Err(e) => failed(tier.as_ref(), "remove", &e),
            }
        }
        removed
    }

    /// Writers for `key` in `tiers`, skipping those that decline or fail.
    async fn writers(
        tiers: &[Arc<dyn Tier>],
        key: EntryKey,
        meta: &CacheMeta,
        size: Option<usize>,
        labels: &Arc<Labels>,
    ) -> Vec<TierCopy> {
        let mut out = Vec::with_capacity(tiers.len());
        for tier in tiers {
            match tier.writer(key, meta, size, labels).await {
                Ok(Some(w)) => out.push((tier.clone(), w)),
                Ok(None) => {}
                Err(e) => failed(tier.as_ref(), "open a writer", &e),
            }
        }
        out
    }
}

/// Counts and logs a tier operation that failed and was skipped.
fn failed(tier: &dyn Tier, what: &str, e: &Error) {
    tier.metrics().errors.inc();
    let tier = tier.name().label();
    tracing::warn!(tier, error = %e, "cache tier could not {what}; skipped");
}

/// Writes `data` to every writer; a writer that fails is dropped (its tier keeps nothing).
async fn write_all(writers: &mut Vec<TierCopy>, data: &Bytes) {
    let mut i = 0;
    while i < writers.len() {
        match writers[i].1.write(data.clone()).await {
            Ok(()) => i += 1,
            Err(e) => {
                let (tier, _) = writers.swap_remove(i);
                tracing::debug!(tier = tier.name().label(), error = %e, "tier copy abandoned");
            }
        }
    }
}

#[async_trait]
impl Storage for TieredStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let entry = EntryKey::of(key);
        let hit = match self.find(key, &entry).await {
            Some(hit) => Some(hit),
            None => self.wait_for_fleet(key, &entry).await,
        };
        Ok(hit.map(|mut hit| {
            let meta = hit.meta.take().expect("a found entry has its metadata");
            (meta, Box::new(hit) as HitHandler)
        }))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let entry = EntryKey::of(key);
        let lease = self.leases().remove(&entry);
        let labels = Arc::new(Labels::of(key, meta, &self.tag_headers));
        let size = declared_length(meta.headers());
        let writers = Self::writers(&self.tiers, entry, meta, size, &labels).await;
        if writers.is_empty() {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no cache tier admits this response",
            ));
        }
        Ok(Box::new(TieredMiss {
            writers,
            size: 0,
            lease,
            guard: key.extensions.get::<UrlLabel>().map(|u| PurgeGuard {
                index: self.index.clone(),
                labels,
                asked_at: u.asked_at,
            }),
        }))
    }

    /// pingora-cache purges by its 128-bit hash, which cannot name a tier entry (tiers file
    /// entries under the full SHA-256 of the key); assetgate purges through
    /// [`TieredStorage::remove`] with full keys, and configures no pingora eviction manager
    /// or purge method that would call this.
    async fn purge(
        &'static self,
        _target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        Err(Error::explain(
            ErrorType::InternalError,
            "tiered storage purges by full key only",
        ))
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let entry = EntryKey::of(key);
        let mut updated = false;
        for tier in &self.tiers {
            match tier.update_meta(&entry, meta).await {
                Ok(u) => updated |= u,
                Err(e) => failed(tier.as_ref(), "update metadata", &e),
            }
        }
        Ok(updated)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// A hit: the tier that answered, its body, and copies being made into the tiers above.
pub struct TieredHit {
    tier: TierName,
    /// The entry's metadata until it is handed to pingora-cache.
    meta: Option<CacheMeta>,
    body: Box<dyn TierBody>,
    promote: Vec<TierCopy>,
    /// Keeps the copies out when a purge of the entry came while it was read.
    guard: Option<PurgeGuard>,
    /// How long this request waited for another gateway's fill of the key.
    waited: Option<Duration>,
}

/// Whether an entry read or fetched for a request was purged since the request arrived.
struct PurgeGuard {
    index: Arc<PurgeIndex>,
    labels: Arc<Labels>,
    asked_at: Instant,
}

impl PurgeGuard {
    fn purged(&self) -> bool {
        self.index.purged_since(&self.labels, self.asked_at)
    }
}

impl TieredHit {
    /// The tier that answered.
    pub fn tier(&self) -> TierName {
        self.tier
    }

    /// How long the request waited for another gateway's fill, when it did.
    pub fn waited(&self) -> Option<Duration> {
        self.waited
    }
}

#[async_trait]
impl HandleHit for TieredHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        let chunk = self.body.read().await?;
        match &chunk {
            Some(data) if !self.promote.is_empty() => write_all(&mut self.promote, data).await,
            Some(_) => {}
            None => {
                let promote = std::mem::take(&mut self.promote);
                if self.guard.as_ref().is_some_and(PurgeGuard::purged) {
                    // Read from a lower tier before a purge of it came: not copied up.
                    return Ok(chunk);
                }
                for (tier, writer) in promote {
                    tokio::spawn(async move {
                        match writer.commit().await {
                            Ok(_) => tier.metrics().promotions.inc(),
                            Err(e) => failed(tier.as_ref(), "store a promoted entry", &e),
                        }
                    });
                }
            }
        }
        Ok(chunk)
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        // Copies of a body that was not read to the end are dropped: nothing half-written.
        Ok(())
    }

    fn can_seek(&self) -> bool {
        self.body.can_seek()
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        // Only part of the body will be read: no copy can be made from it.
        self.promote.clear();
        self.body.seek(start, end)
    }

    fn should_count_access(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A fill: one writer per tier that admitted the response, and the fleet lease it holds
/// (freed when the fill ends: `done` once stored, `failed` if it is dropped unfinished).
struct TieredMiss {
    writers: Vec<TierCopy>,
    size: usize,
    lease: Option<Lease>,
    /// A purge since the request arrived keeps the entry out of every tier.
    guard: Option<PurgeGuard>,
}

#[async_trait]
impl HandleMiss for TieredMiss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        self.size += data.len();
        write_all(&mut self.writers, &data).await;
        if self.writers.is_empty() {
            return Err(Error::explain(
                ErrorType::InternalError,
                "every cache tier abandoned this response",
            ));
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        if self.guard.as_ref().is_some_and(PurgeGuard::purged) {
            // Fetched before a purge of it arrived: it may be what the purge removed.
            // Dropping the writers stores nothing; dropping the lease frees the fleet lock.
            return Err(Error::explain(
                ErrorType::InternalError,
                "purged while it was being fetched; not stored",
            ));
        }
        let mut stored = false;
        let mut shared = false;
        for (tier, writer) in self.writers {
            match writer.commit().await {
                Ok(_) => {
                    stored = true;
                    shared |= tier.name().is_shared();
                }
                Err(e) => failed(tier.as_ref(), "store an entry", &e),
            }
        }
        if let Some(lease) = self.lease {
            lease.release(shared).await;
        }
        if !stored {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no cache tier stored this response",
            ));
        }
        Ok(MissFinishType::Created(self.size))
    }
}
