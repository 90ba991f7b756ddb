//! The seam between the composite storage ([`super::tiered`]) and one tier: look an entry up,
//! stream its body, write a new one, rewrite its metadata, remove it.
//!
//! Tiers are independent: each files entries under the same [`EntryKey`], admits or declines
//! on its own (size, space), and a tier that fails is skipped, never turned into an error the
//! other tiers could have avoided.

use super::key::EntryKey;
use super::labels::Labels;
use super::metrics::TierMetrics;
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
    /// An object-store bucket shared by the fleet ([`super::object`]).
    Object,
}

impl TierName {
    /// Stable label for metrics, `Cache-Status` and config.
    pub fn label(self) -> &'static str {
        match self {
            TierName::Memory => "memory",
            TierName::Disk => "disk",
            TierName::Redis => "redis",
            TierName::Object => "object",
        }
    }

    /// The tier a config name means.
    pub fn parse(text: &str) -> Result<TierName, String> {
        match text {
            "memory" => Ok(TierName::Memory),
            "disk" => Ok(TierName::Disk),
            "redis" => Ok(TierName::Redis),
            "object" => Ok(TierName::Object),
            other => Err(format!(
                "\"{other}\" is not a cache tier; use memory, disk, redis or object"
            )),
        }
    }

    /// Whether every gateway pointing at the same store shares this tier's entries.
    pub fn is_shared(self) -> bool {
        matches!(self, TierName::Redis | TierName::Object)
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

    /// This tier's metrics.
    fn metrics(&self) -> &TierMetrics;

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

/// pingora's serialised metadata as one byte string (the Redis tier's `m` field, the object
/// tier's metadata object): u32 length of the internal metadata, then it, then the header
/// metadata.
pub fn encode_meta(meta: &CacheMeta) -> Result<Vec<u8>> {
    let (internal, header) = meta.serialize()?;
    let mut out = Vec::with_capacity(4 + internal.len() + header.len());
    out.extend_from_slice(&(internal.len() as u32).to_le_bytes());
    out.extend_from_slice(&internal);
    out.extend_from_slice(&header);
    Ok(out)
}

/// The metadata [`encode_meta`] wrote; `None` when damaged.
pub fn decode_meta(raw: &[u8]) -> Option<CacheMeta> {
    let len = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
    let internal = raw.get(4..4 + len)?;
    let header = raw.get(4 + len..)?;
    CacheMeta::deserialize(internal, header).ok()
}

/// A shared tier's back-off: after a failed call the tier is skipped for a second (no
/// request waits on a store that is down), then tried again.
#[derive(Default)]
pub struct Backoff {
    /// Unix milliseconds until which the tier is skipped.
    until_ms: std::sync::atomic::AtomicU64,
}

impl Backoff {
    /// How long the tier is skipped after a failure.
    pub const PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

    /// Whether the tier is being skipped now.
    pub fn skipping(&self) -> bool {
        kit::time::unix_millis() < self.until_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The tier answers again: stop skipping it.
    pub fn clear(&self) {
        self.until_ms.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// A call failed: skip the tier for [`Backoff::PAUSE`].
    pub fn failed(&self) {
        self.until_ms.store(
            kit::time::unix_millis() + Self::PAUSE.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// Until when a shared tier keeps an entry: its freshness plus the longer of its stale
/// windows, so stale serving works from those tiers too.
pub fn kept_until(meta: &CacheMeta) -> std::time::SystemTime {
    let stale = meta
        .stale_while_revalidate_sec()
        .max(meta.stale_if_error_sec());
    meta.fresh_until() + std::time::Duration::from_secs(stale as u64)
}

/// The bytes `start..end` (`end` exclusive, `None`: to the end) of a body of `len` bytes, as
/// [`TierBody::seek`] takes them; `None` when `start` is past the end.
pub fn seek_range(start: usize, end: Option<usize>, len: u64) -> Option<(u64, u64)> {
    let end = end.map_or(len, |e| (e as u64).min(len));
    let start = start as u64;
    (start <= end).then_some((start, end))
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
        let (start, end) = seek_range(start, end, self.body.len() as u64).ok_or_else(|| {
            pingora::Error::explain(
                pingora::ErrorType::InternalError,
                "seek past the end of an entry",
            )
        })?;
        self.body = self.body.slice(start as usize..end as usize);
        self.done = false;
        Ok(())
    }
}
