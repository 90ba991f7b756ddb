//! The seam between the composite storage ([`super::tiered`]) and one tier: look an entry up,
//! stream its body, write a new one, rewrite its metadata, remove it.
//!
//! Tiers are independent: each files entries under the same [`EntryKey`], admits or declines
//! on its own (size, space), and a tier that fails is skipped, never turned into an error the
//! other tiers could have avoided.

use super::key::EntryKey;
use super::labels::Labels;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::cache::CacheMeta;
use pingora::Result;
use std::sync::Arc;

/// Which tier, top (fastest) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TierName {
    /// In-process memory ([`super::memory`]).
    Memory,
    /// Local files ([`super::disk`]).
    Disk,
    /// A Redis shared by the fleet ([`super::redis`]).
    Redis,
}

impl TierName {
    /// Stable label for metrics, `Cache-Status` and config.
    pub fn label(self) -> &'static str {
        match self {
            TierName::Memory => "memory",
            TierName::Disk => "disk",
            TierName::Redis => "redis",
        }
    }

    /// The tier a config name means; the planned tiers are named in the error.
    pub fn parse(text: &str) -> Result<TierName, String> {
        match text {
            "memory" => Ok(TierName::Memory),
            "disk" => Ok(TierName::Disk),
            "redis" => Ok(TierName::Redis),
            "object" => Err(
                "the object tier is not available yet (planned); use memory, disk or redis"
                    .to_string(),
            ),
            other => Err(format!(
                "\"{other}\" is not a cache tier; use memory, disk or redis"
            )),
        }
    }
}

/// An entry a tier found.
pub struct Found {
    /// Its metadata and response header.
    pub meta: CacheMeta,
    /// Its body.
    pub body: Box<dyn TierBody>,
}

/// One cache tier.
#[async_trait]
pub trait Tier: Send + Sync {
    /// Which tier this is.
    fn name(&self) -> TierName;

    /// The entry filed under `key`, if the tier holds an intact one.
    async fn lookup(&self, key: &EntryKey) -> Result<Option<Found>>;

    /// A writer for a new entry; `None` when the tier declines it (too large, no space).
    /// `size` is the body length when the response declared one; `labels` are what the
    /// entry can be purged by.
    async fn writer(
        &self,
        key: EntryKey,
        meta: &CacheMeta,
        size: Option<usize>,
        labels: &Arc<Labels>,
    ) -> Result<Option<Box<dyn TierWriter>>>;

    /// Replaces the metadata of the entry under `key` (a 304 revalidation); false when the
    /// tier does not hold it.
    async fn update_meta(&self, key: &EntryKey, meta: &CacheMeta) -> Result<bool>;

    /// Removes the entry under `key`; false when the tier did not hold it.
    async fn remove(&self, key: &EntryKey) -> Result<bool>;
}

/// A found entry's body, read in order.
#[async_trait]
pub trait TierBody: Send + Sync {
    /// The next chunk; `None` at the end.
    async fn read(&mut self) -> Result<Option<Bytes>>;

    /// Whether [`TierBody::seek`] works (Range requests answered from the entry).
    fn can_seek(&self) -> bool {
        false
    }

    /// Restricts the rest of the body to bytes `start..end` (`end` exclusive; `None`: to the
    /// end).
    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()>;
}

/// A new entry being written; dropped without [`TierWriter::commit`], nothing is stored.
#[async_trait]
pub trait TierWriter: Send + Sync {
    /// Appends body bytes; an error abandons this tier's copy only.
    async fn write(&mut self, data: Bytes) -> Result<()>;

    /// Makes the entry visible to lookups; returns the body length stored.
    async fn commit(self: Box<Self>) -> Result<usize>;
}

/// A body held whole in memory (memory and Redis entries), seekable.
pub struct WholeBody {
    body: Bytes,
    done: bool,
}

impl WholeBody {
    /// A body of `body`.
    pub fn new(body: Bytes) -> WholeBody {
        WholeBody { body, done: false }
    }
}

#[async_trait]
impl TierBody for WholeBody {
    async fn read(&mut self) -> Result<Option<Bytes>> {
        if std::mem::replace(&mut self.done, true) || self.body.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.body.clone()))
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let end = end.unwrap_or(self.body.len()).min(self.body.len());
        if start > end {
            return Err(pingora::Error::explain(
                pingora::ErrorType::InternalError,
                "seek past the end of an entry",
            ));
        }
        self.body = self.body.slice(start..end);
        self.done = false;
        Ok(())
    }
}
