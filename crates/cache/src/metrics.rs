//! The shared cache's metrics: per route (`assetgate_cache_*{host,route}`), per tier
//! (`assetgate_cache_tier_*{tier}`), purges and the fleet feed. Registered once on the
//! registry the server hands in; the tiers, the purger and the feed each keep the handles
//! they need.

use kit::metrics::Registrar;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

/// Every cache metric.
#[derive(Clone)]
pub struct CacheMetrics {
    /// `assetgate_cache_requests_total{host,route}`: requests a cached route looked up.
    requests: IntCounterVec,
    /// `assetgate_cache_hits_total{host,route}`: of those, answered from a tier (fresh, or
    /// stale while revalidating or after an origin error).
    hits: IntCounterVec,
    /// `assetgate_cache_stored_total{host,route}`: responses written to the route's tiers.
    stored: IntCounterVec,
    /// `assetgate_cache_not_stored_total{host,route,reason}`: responses of cached routes not
    /// stored, and why.
    not_stored: IntCounterVec,
    /// `assetgate_cache_lock_waits_total{host,route}`: requests that waited for another
    /// request's fill of the same key (collapsed).
    lock_waits: IntCounterVec,
    /// `assetgate_cache_lock_wait_seconds{host,route}`: how long they waited.
    lock_wait: HistogramVec,
    /// `assetgate_cache_fill_seconds{host,route}`: request received to response stored.
    fill: HistogramVec,
    /// `assetgate_cache_tier_hits_total{tier}`.
    tier_hits: IntCounterVec,
    /// `assetgate_cache_tier_misses_total{tier}`.
    tier_misses: IntCounterVec,
    /// `assetgate_cache_tier_bytes{tier}`.
    tier_bytes: IntGaugeVec,
    /// `assetgate_cache_tier_entries{tier}`.
    tier_entries: IntGaugeVec,
    /// `assetgate_cache_tier_writes_total{tier}`.
    tier_writes: IntCounterVec,
    /// `assetgate_cache_tier_evictions_total{tier}`.
    tier_evictions: IntCounterVec,
    /// `assetgate_cache_tier_promotions_total{tier}`.
    tier_promotions: IntCounterVec,
    /// `assetgate_cache_tier_corrupt_total{tier}`.
    tier_corrupt: IntCounterVec,
    /// `assetgate_cache_tier_purged_total{tier}`.
    tier_purged: IntCounterVec,
    /// `assetgate_cache_tier_errors_total{tier}`.
    tier_errors: IntCounterVec,
    /// `assetgate_cache_purges_total{kind,origin}`: purges applied on this gateway, by kind
    /// (`url`, `prefix`, `tag`, `everything`) and origin (`admin`, `fleet`).
    pub purges: IntCounterVec,
    /// `assetgate_fleet_feed_resyncs_total{outcome}`: reconnections to the fleet feed that
    /// could not replay what was missed.
    pub feed_resyncs: IntCounterVec,
    /// `assetgate_fleet_feed_connected`: 1 while this gateway follows the fleet feed.
    pub feed_connected: IntGauge,
}

impl CacheMetrics {
    /// Registers every cache metric on `r`: one table of names, help texts and labels, kept
    /// whole so that the metrics read (and are documented) together.
    pub fn register(r: Registrar<'_>) -> CacheMetrics {
        let route = &["host", "route"];
        let tier = &["tier"];
        CacheMetrics {
            requests: r.counter(
                "assetgate_cache_requests_total",
                "Requests a cached route looked up in its cache tiers.",
                route,
            ),
            hits: r.counter(
                "assetgate_cache_hits_total",
                "Cache lookups answered from a tier (fresh, or stale while revalidating or after an origin error).",
                route,
            ),
            stored: r.counter(
                "assetgate_cache_stored_total",
                "Responses written to a route's cache tiers.",
                route,
            ),
            not_stored: r.counter(
                "assetgate_cache_not_stored_total",
                "Responses on cached routes that were not stored, by reason.",
                &["host", "route", "reason"],
            ),
            lock_waits: r.counter(
                "assetgate_cache_lock_waits_total",
                "Requests that waited for another request's fill of the same key.",
                route,
            ),
            lock_wait: r.histogram(
                "assetgate_cache_lock_wait_seconds",
                "Time requests waited for another request's fill of the same key.",
                route,
            ),
            fill: r.histogram(
                "assetgate_cache_fill_seconds",
                "Time from request received to response stored, for the request that filled.",
                route,
            ),
            tier_hits: r.counter("assetgate_cache_tier_hits_total", "Lookups a cache tier answered.", tier),
            tier_misses: r.counter(
                "assetgate_cache_tier_misses_total",
                "Lookups a cache tier could not answer.",
                tier,
            ),
            tier_bytes: r.gauge(
                "assetgate_cache_tier_bytes",
                "Bytes a cache tier holds (bodies and headers).",
                tier,
            ),
            tier_entries: r.gauge("assetgate_cache_tier_entries", "Entries a cache tier holds.", tier),
            tier_writes: r.counter(
                "assetgate_cache_tier_writes_total",
                "Entries written to a cache tier.",
                tier,
            ),
            tier_evictions: r.counter(
                "assetgate_cache_tier_evictions_total",
                "Entries a cache tier dropped to stay within its size, or declined in favour of more popular ones.",
                tier,
            ),
            tier_promotions: r.counter(
                "assetgate_cache_tier_promotions_total",
                "Entries copied into a cache tier after a hit in a tier below it.",
                tier,
            ),
            tier_corrupt: r.counter(
                "assetgate_cache_tier_corrupt_total",
                "Entries found damaged (length or checksum) and dropped.",
                tier,
            ),
            tier_purged: r.counter(
                "assetgate_cache_tier_purged_total",
                "Entries a purge removed from a cache tier.",
                tier,
            ),
            tier_errors: r.counter(
                "assetgate_cache_tier_errors_total",
                "Cache tier operations that failed and were skipped.",
                tier,
            ),
            purges: r.counter(
                "assetgate_cache_purges_total",
                "Purges applied on this gateway, by kind and by who asked (admin: this gateway's admin API; fleet: another gateway).",
                &["kind", "origin"],
            ),
            feed_resyncs: r.counter(
                "assetgate_fleet_feed_resyncs_total",
                "Reconnections to the fleet feed that could not replay what was missed.",
                &["outcome"],
            ),
            feed_connected: r.plain_gauge(
                "assetgate_fleet_feed_connected",
                "1 while this gateway follows the fleet feed of purges and revocations.",
            ),
        }
    }

    /// A set on a registry of its own, for tests that build one tier or one layer.
    pub fn unregistered() -> CacheMetrics {
        CacheMetrics::register(Registrar(&prometheus::Registry::new()))
    }

    /// Handles for one cache tier's metrics, resolved once when the tier is built.
    pub fn tier(&self, tier: &str) -> TierMetrics {
        let l = &[tier];
        TierMetrics {
            hits: self.tier_hits.with_label_values(l),
            misses: self.tier_misses.with_label_values(l),
            bytes: self.tier_bytes.with_label_values(l),
            entries: self.tier_entries.with_label_values(l),
            writes: self.tier_writes.with_label_values(l),
            evictions: self.tier_evictions.with_label_values(l),
            promotions: self.tier_promotions.with_label_values(l),
            corrupt: self.tier_corrupt.with_label_values(l),
            purged: self.tier_purged.with_label_values(l),
            errors: self.tier_errors.with_label_values(l),
        }
    }

    /// Handles for one cached route's metrics, resolved once when the router is built.
    pub fn route(&self, host: &str, route: &str) -> RouteCacheMetrics {
        let l = &[host, route];
        RouteCacheMetrics {
            host: host.to_string(),
            route: route.to_string(),
            requests: self.requests.with_label_values(l),
            hits: self.hits.with_label_values(l),
            stored: self.stored.with_label_values(l),
            lock_waits: self.lock_waits.with_label_values(l),
            lock_wait: self.lock_wait.with_label_values(l),
            fill: self.fill.with_label_values(l),
            not_stored: self.not_stored.clone(),
        }
    }
}

/// One cache tier's metrics.
#[derive(Clone)]
pub struct TierMetrics {
    /// Lookups answered.
    pub hits: IntCounter,
    /// Lookups not answered.
    pub misses: IntCounter,
    /// Bytes held.
    pub bytes: IntGauge,
    /// Entries held.
    pub entries: IntGauge,
    /// Entries written.
    pub writes: IntCounter,
    /// Entries dropped or declined to stay within bounds.
    pub evictions: IntCounter,
    /// Entries copied in from a tier below.
    pub promotions: IntCounter,
    /// Damaged entries dropped.
    pub corrupt: IntCounter,
    /// Entries a purge removed.
    pub purged: IntCounter,
    /// Failed operations skipped.
    pub errors: IntCounter,
}

impl TierMetrics {
    /// Counts one lookup, answered or not.
    pub fn looked_up(&self, found: bool) {
        if found {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
    }
}

/// One cached route's cache metrics.
pub struct RouteCacheMetrics {
    host: String,
    route: String,
    /// Lookups.
    pub requests: IntCounter,
    /// Lookups answered from a tier.
    pub hits: IntCounter,
    /// Responses stored.
    pub stored: IntCounter,
    /// Requests that waited for another's fill.
    pub lock_waits: IntCounter,
    /// How long they waited.
    pub lock_wait: Histogram,
    /// Request received to response stored.
    pub fill: Histogram,
    not_stored: IntCounterVec,
}

impl RouteCacheMetrics {
    /// Counts a response that was not stored, by reason.
    pub fn not_stored(&self, reason: &str) {
        self.not_stored
            .with_label_values(&[&self.host, &self.route, reason])
            .inc();
    }
}
