//! The composite [`Storage`] pingora-cache sees: a route's tiers, top first. A lookup answers
//! from the first tier that holds the entry and copies it into the tiers above as the body is
//! read (committed in the background once the whole body went by); a miss writes through to
//! every tier that admits it; a 304 revalidation rewrites the metadata in every tier.
//!
//! A tier that errors is skipped and counted; the request goes on with the others.

use super::key::EntryKey;
use super::tier::{Tier, TierBody, TierName, TierWriter};
use crate::metrics::Metrics;
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
use std::sync::Arc;

/// One route's tiers as a pingora-cache [`Storage`].
pub struct TieredStorage {
    tiers: Vec<Arc<dyn Tier>>,
}

impl TieredStorage {
    /// Storage over `tiers`, top first (at least one).
    pub fn new(tiers: Vec<Arc<dyn Tier>>) -> TieredStorage {
        TieredStorage { tiers }
    }

    /// The tiers, top first.
    pub fn tiers(&self) -> impl Iterator<Item = TierName> + '_ {
        self.tiers.iter().map(|t| t.name())
    }

    /// Removes the entry under `key` from every tier; true when any held it.
    pub async fn remove(&self, key: &EntryKey) -> bool {
        let mut removed = false;
        for tier in &self.tiers {
            match tier.remove(key).await {
                Ok(r) => removed |= r,
                Err(e) => failed(tier.name(), "remove", &e),
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
    ) -> Vec<(TierName, Box<dyn TierWriter>)> {
        let mut out = Vec::with_capacity(tiers.len());
        for tier in tiers {
            match tier.writer(key, meta, size).await {
                Ok(Some(w)) => out.push((tier.name(), w)),
                Ok(None) => {}
                Err(e) => failed(tier.name(), "open a writer", &e),
            }
        }
        out
    }
}

/// Counts and logs a tier operation that failed and was skipped.
fn failed(tier: TierName, what: &str, e: &Error) {
    Metrics::global()
        .tier_errors
        .with_label_values(&[tier.label()])
        .inc();
    tracing::warn!(tier = tier.label(), error = %e, "cache tier could not {what}; skipped");
}

/// The body length a response header declares.
fn declared_size(meta: &CacheMeta) -> Option<usize> {
    meta.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Writes `data` to every writer; a writer that fails is dropped (its tier keeps nothing).
async fn write_all(writers: &mut Vec<(TierName, Box<dyn TierWriter>)>, data: &Bytes) {
    let mut i = 0;
    while i < writers.len() {
        match writers[i].1.write(data.clone()).await {
            Ok(()) => i += 1,
            Err(e) => {
                let (tier, _) = writers.swap_remove(i);
                tracing::debug!(tier = tier.label(), error = %e, "tier copy abandoned");
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
        for (i, tier) in self.tiers.iter().enumerate() {
            match tier.lookup(&entry).await {
                Ok(Some(found)) => {
                    let size = declared_size(&found.meta);
                    let promote = Self::writers(&self.tiers[..i], entry, &found.meta, size).await;
                    let hit = TieredHit {
                        tier: tier.name(),
                        body: found.body,
                        promote,
                    };
                    return Ok(Some((found.meta, Box::new(hit))));
                }
                Ok(None) => {}
                Err(e) => failed(tier.name(), "look up", &e),
            }
        }
        Ok(None)
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let writers =
            Self::writers(&self.tiers, EntryKey::of(key), meta, declared_size(meta)).await;
        if writers.is_empty() {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no cache tier admits this response",
            ));
        }
        Ok(Box::new(TieredMiss { writers, size: 0 }))
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
                Err(e) => failed(tier.name(), "update metadata", &e),
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
    body: Box<dyn TierBody>,
    promote: Vec<(TierName, Box<dyn TierWriter>)>,
}

impl TieredHit {
    /// The tier that answered.
    pub fn tier(&self) -> TierName {
        self.tier
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
                for (tier, writer) in std::mem::take(&mut self.promote) {
                    tokio::spawn(async move {
                        match writer.commit().await {
                            Ok(_) => Metrics::global()
                                .tier_promotions
                                .with_label_values(&[tier.label()])
                                .inc(),
                            Err(e) => failed(tier, "store a promoted entry", &e),
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

/// A fill: one writer per tier that admitted the response.
struct TieredMiss {
    writers: Vec<(TierName, Box<dyn TierWriter>)>,
    size: usize,
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
        let mut stored = false;
        for (tier, writer) in self.writers {
            match writer.commit().await {
                Ok(_) => stored = true,
                Err(e) => failed(tier, "store an entry", &e),
            }
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
