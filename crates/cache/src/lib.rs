//! The shared cache: pingora-cache with one composite [`tiered::TieredStorage`] per cached
//! route over the process's tiers.
//!
//! - [`policy`]: a route's freshness intent and its [`policy::RoutePolicy`];
//! - [`admit`]: whether a response is stored and for how long (RFC 9111, RFC 5861, route),
//!   with [`freshness`] (lifetimes and ages) and [`revalidation`] (what a 304 updates);
//! - [`key`]: what a stored response is filed under; [`forward`]: what of a request reaches
//!   the backend of a cached route (everything else of it is keyed or removed);
//! - [`invalidation`]: the other URIs an unsafe request's response invalidates;
//! - [`tier`]: the seam one tier implements; [`memory`]: the in-process tier; [`disk`]: local
//!   files; [`redis`]: shared by the fleet; [`object`]: a cache bucket shared by the fleet;
//! - [`tiered`]: the tiers as one pingora-cache `Storage`, with promotion;
//! - [`fleet`]: the fill lock across gateways sharing a Redis, woken by pub/sub;
//! - [`labels`]: what an entry is purged by (URL, tags); [`index`]: the node-local purge
//!   index; [`purge`]: what a purge selects and removing it; [`feed`]: purges and
//!   revocations carried to every gateway sharing the Redis;
//! - [`status`]: the RFC 9211 `Cache-Status` entry.
//!
//! A route without `[hosts.routes.cache]` is never stored.

pub mod admit;
pub mod config;
pub mod disk;
pub mod feed;
pub mod fleet;
pub mod forward;
pub mod freshness;
pub mod index;
pub mod invalidation;
pub mod key;
pub mod labels;
pub mod memory;
pub mod metrics;
pub mod object;
pub mod policy;
pub mod purge;
pub mod redis;
pub mod revalidation;
pub mod settings;
pub mod status;
pub mod tier;
pub mod tiered;

use metrics::{CacheMetrics, RouteCacheMetrics};
use pingora::cache::key::HashBinary;
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora::cache::{CacheMeta, HttpCache, VarianceBuilder};
use pingora::http::RequestHeader;
use policy::RoutePolicy;
use settings::CacheSettings;
use std::sync::Arc;
use std::time::Duration;
use tier::{Tier, TierName};
use tiered::TieredStorage;

/// Most `Vary` header names a stored response may list; more are not stored.
pub const MAX_VARY_HEADERS: usize = 16;

/// The process's cache tiers and fill lock, built once from `[cache]`. pingora-cache wants
/// `'static` storage and locks: they are leaked once per process (config changes restart the
/// process through a graceful upgrade).
pub struct CacheLayer {
    memory: Option<Arc<memory::MemoryTier>>,
    disk: Option<Arc<disk::DiskTier>>,
    redis: Option<Arc<redis::RedisTier>>,
    object: Option<Arc<object::ObjectTier>>,
    fleet: Option<Arc<fleet::FleetLock>>,
    metrics: CacheMetrics,
    lock: &'static CacheKeyLockImpl,
    lock_timeout: Duration,
    tag_headers: Arc<[http::HeaderName]>,
    index: Arc<index::PurgeIndex>,
    purger: Arc<purge::Purger>,
    /// Where the disk tier keeps the fleet feed's position, when there is one.
    feed_cursor: Option<std::path::PathBuf>,
}

impl CacheLayer {
    /// The tiers `[cache]` configures, the object tier in `bucket` (the `s3` backend
    /// `cache.object.backend` names), counting into `metrics`; fails when the disk tier's
    /// folder cannot be created or the object tier has no bucket.
    pub fn new(
        settings: &CacheSettings,
        bucket: Option<Arc<dyn object::EntryBucket>>,
        metrics: CacheMetrics,
    ) -> Result<CacheLayer, String> {
        let index: Arc<index::PurgeIndex> = Arc::default();
        let memory = settings.memory.as_ref().map(|m| {
            Arc::new(memory::MemoryTier::new(
                m.size,
                m.max_entry,
                metrics.tier(TierName::Memory.label()),
                index.clone(),
            ))
        });
        let disk = match &settings.disk {
            Some(d) => Some(Arc::new(
                disk::DiskTier::open(d, metrics.tier(TierName::Disk.label()), index.clone())
                    .map_err(|e| format!("cache.disk.path: {}: {e}", d.path.display()))?,
            )),
            None => None,
        };
        let redis = match &settings.redis {
            Some(r) => Some(Arc::new(
                redis::RedisTier::new(r, metrics.tier(TierName::Redis.label()))
                    .map_err(|e| format!("cache.redis.url: {e}"))?,
            )),
            None => None,
        };
        let object = match (&settings.object, bucket) {
            (Some(o), Some(bucket)) => Some(Arc::new(object::ObjectTier::new(
                o,
                bucket,
                metrics.tier(TierName::Object.label()),
            ))),
            (Some(o), None) => {
                return Err(format!(
                    "cache.object.backend: no s3 backend \"{}\"",
                    o.backend
                ))
            }
            (None, _) => None,
        };
        let fleet = settings
            .redis
            .as_ref()
            .filter(|r| r.fill_lock)
            .zip(redis.clone())
            .map(|(r, tier)| fleet::FleetLock::new(tier, r.lease));
        let lock: &'static CacheLock = Box::leak(Box::new(CacheLock::new(settings.lock_timeout)));
        let purger = Arc::new(purge::Purger::new(
            index.clone(),
            memory.clone(),
            disk.clone(),
            redis.clone(),
            object.clone(),
        ));
        Ok(CacheLayer {
            memory,
            disk,
            redis,
            object,
            fleet,
            metrics,
            lock,
            lock_timeout: settings.lock_timeout,
            tag_headers: settings.tag_headers.clone().into(),
            index,
            purger,
            feed_cursor: settings
                .disk
                .as_ref()
                .map(|d| d.path.join(feed::CURSOR_FILE)),
        })
    }

    /// The Redis tier, when `[cache.redis]` configures one (fleet-shared rate limits keep
    /// their buckets there).
    pub fn redis(&self) -> Option<Arc<redis::RedisTier>> {
        self.redis.clone()
    }

    /// Removes purged entries from this gateway's tiers.
    pub fn purger(&self) -> Arc<purge::Purger> {
        self.purger.clone()
    }

    /// The fleet feed (purges and revocations shared through Redis), when a Redis tier is
    /// configured.
    pub fn feed(&self) -> Option<Arc<feed::Feed>> {
        let redis = self.redis.clone()?;
        Some(Arc::new(feed::Feed::new(
            redis,
            self.feed_cursor.clone(),
            self.metrics.clone(),
        )))
    }

    fn tier(&self, name: TierName) -> Option<Arc<dyn Tier>> {
        match name {
            TierName::Memory => self.memory.clone().map(|m| m as Arc<dyn Tier>),
            TierName::Disk => self.disk.clone().map(|d| d as Arc<dyn Tier>),
            TierName::Redis => self.redis.clone().map(|r| r as Arc<dyn Tier>),
            TierName::Object => self.object.clone().map(|o| o as Arc<dyn Tier>),
        }
    }

    /// The subscription waking this gateway's fleet-lock waiters (a background service),
    /// when the fleet lock is on.
    pub fn notifications(&self) -> Option<fleet::Notifications> {
        self.fleet.clone().map(fleet::Notifications::new)
    }

    /// What the route `route_name` of host `host_label` needs to use its tiers under
    /// `policy`; `None` for a route that is not cached.
    pub fn route(
        &self,
        host_label: &str,
        route_name: &str,
        policy: Option<&RoutePolicy>,
    ) -> Option<Arc<RouteCache>> {
        let policy = policy?.clone();
        let tiers: Vec<Arc<dyn Tier>> = policy.tiers.iter().filter_map(|t| self.tier(*t)).collect();
        if tiers.is_empty() {
            return None;
        }
        let fleet = self
            .fleet
            .clone()
            .filter(|_| policy.tiers.contains(&TierName::Redis))
            .map(|f| (f, self.lock_timeout));
        let storage: &'static TieredStorage = Box::leak(Box::new(TieredStorage::new(
            tiers,
            fleet,
            self.tag_headers.clone(),
            self.index.clone(),
        )));
        let memory = match policy.tiers.first() {
            Some(TierName::Memory) => self.memory.clone(),
            _ => None,
        };
        Some(Arc::new(RouteCache {
            memory,
            policy,
            storage,
            lock: self.lock,
            lock_timeout: self.lock_timeout,
            metrics: self.metrics.route(host_label, route_name),
        }))
    }
}

/// One cached route's policy, storage and metrics.
pub struct RouteCache {
    /// What is stored and for how long.
    pub policy: RoutePolicy,
    /// The memory tier, when it is the route's top tier: fresh entries there are answered
    /// directly (see `proxy`'s lean hit path).
    pub memory: Option<Arc<memory::MemoryTier>>,
    /// The route's tiers.
    pub storage: &'static TieredStorage,
    lock: &'static CacheKeyLockImpl,
    lock_timeout: Duration,
    /// The route's cache metrics.
    pub metrics: RouteCacheMetrics,
}

impl RouteCache {
    /// Turns pingora-cache on for this request: the route's storage, the fill lock (waiters
    /// give up after `lock_timeout` and ask the backend themselves), the size limit.
    pub fn enable(&self, cache: &mut HttpCache) {
        let mut overrides = pingora::cache::CacheOptionOverrides::default();
        overrides.wait_timeout = Some(self.lock_timeout);
        cache.enable(self.storage, None, None, Some(self.lock), Some(overrides));
        cache.set_max_file_size_bytes(self.policy.max_size);
    }
}

/// The variance of a request against a stored response's `Vary` (RFC 9111 §4.1): the values
/// of the request headers it names; `None` when the response does not vary.
pub fn variance(meta: &CacheMeta, req: &RequestHeader) -> Option<HashBinary> {
    let mut builder = VarianceBuilder::new();
    let names = kit::fields::list_members(meta.headers(), http::header::VARY)
        .map(str::to_ascii_lowercase)
        .take(MAX_VARY_HEADERS);
    for name in names {
        let value: Vec<u8> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.as_bytes())
            .collect::<Vec<_>>()
            .join(&b","[..]);
        builder.add_owned_name_value(name, value);
    }
    builder.finalize()
}
