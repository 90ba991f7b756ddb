//! Every metric the gateway exports, defined once. Names start with `assetgate_`; label values
//! come from the config (host names, route names, backend names), never from raw request data,
//! so cardinality stays bounded.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;

/// Label used for requests that matched no configured host/route.
pub const UNMATCHED: &str = "_unmatched";

/// The gateway's metrics and the registry that holds them.
pub struct Metrics {
    registry: Registry,
    /// `assetgate_requests_total{host,route,status}`; a client that closed the connection
    /// before the answer was complete is counted as status `499`.
    pub requests: IntCounterVec,
    /// `assetgate_request_duration_seconds{host,route}`: first byte in to last byte out.
    pub request_duration: HistogramVec,
    /// `assetgate_upstream_duration_seconds{backend}`: request sent to response header received.
    pub upstream_duration: HistogramVec,
    /// `assetgate_response_body_bytes_total{host,route}`: body bytes sent to clients.
    pub response_bytes: IntCounterVec,
    /// `assetgate_backend_up{backend,member}`: 1 when a member passes health checks.
    pub backend_up: IntGaugeVec,
    /// `assetgate_backend_errors_total{backend,reason}`: failures talking to a backend.
    pub backend_errors: IntCounterVec,
    /// `assetgate_rejected_requests_total{reason}`: requests that matched no route.
    pub rejected: IntCounterVec,
    /// `assetgate_client_connections`: client connections open now.
    pub connections_open: IntGauge,
    /// `assetgate_client_connections_refused_total`: connections closed on arrival because
    /// `limits.connections_per_client` or `limits.connections` was reached.
    pub connections_refused: IntCounterVec,
    /// `assetgate_request_head_timeouts_total{stage}`: connections closed because a request
    /// head did not arrive within `limits.header_timeout` (`partial`: part of one came and it
    /// was answered 408; `idle`: nothing came and it was closed without an answer).
    pub head_timeouts: IntCounterVec,
    /// `assetgate_rate_limited_total{limit}`: requests answered 429, by the limit that ran out
    /// (`client`: `limits.client`; `route`: a route's `rate_limit`).
    pub rate_limited: IntCounterVec,
    /// `assetgate_rate_limit_fallbacks_total`: requests a fleet-shared rate limit counted in
    /// this gateway's own buckets because Redis failed or was skipped.
    pub rate_limit_fallbacks: IntCounterVec,
    /// `assetgate_auth_denied_total{scheme,reason}`: requests an access policy refused;
    /// `scheme` is `none` when no credential was presented.
    pub auth_denied: IntCounterVec,
    /// `assetgate_revocation_reloads_total{result}`: revocation list reloads (`ok`, `error`).
    pub revocation_reloads: IntCounterVec,
    /// `assetgate_build_info{version}`: always 1.
    pub build_info: IntGaugeVec,
    /// `assetgate_group_requests_total{group,backend}`: requests a group sent to a backend.
    pub group_requests: IntCounterVec,
    /// `assetgate_group_errors_total{group,backend}`: of those, answered with a 5xx.
    pub group_errors: IntCounterVec,
    /// `assetgate_group_request_duration_seconds{group,backend}`: their latency.
    pub group_duration: HistogramVec,
    /// `assetgate_member_requests_total{backend,member}`: answers received from a pool member.
    pub member_requests: IntCounterVec,
    /// `assetgate_member_errors_total{backend,member,reason}`: failures of a pool member
    /// (`connect`, `io`, `timeout`, `status_5xx`).
    pub member_errors: IntCounterVec,
    /// `assetgate_member_upstream_duration_seconds{backend,member}`: request sent to response
    /// header received, per member.
    pub member_duration: HistogramVec,
    /// `assetgate_member_ejections_total{backend,member}`: passive ejections after consecutive
    /// failures.
    pub member_ejections: IntCounterVec,
    /// `assetgate_failovers_total{host,route,backup,reason}`: requests answered by a route's
    /// backup because the target was `unhealthy`, `refused`, timed out (`timeout`), broke
    /// (`io`) or answered 5xx (`status_5xx`).
    pub failovers: IntCounterVec,
    /// `assetgate_rule_matches_total{host,rule}`: requests a steering rule sent to its group.
    pub rule_matches: IntCounterVec,
    /// `assetgate_cache_requests_total{host,route}`: requests a cached route looked up.
    pub cache_requests: IntCounterVec,
    /// `assetgate_cache_hits_total{host,route}`: of those, answered from a tier (fresh, or
    /// stale while revalidating or after an origin error). With `cache_requests` this is the
    /// hit ratio a dashboard alerts on.
    pub cache_hits: IntCounterVec,
    /// `assetgate_cache_stored_total{host,route}`: responses written to the route's tiers.
    pub cache_stored: IntCounterVec,
    /// `assetgate_cache_not_stored_total{host,route,reason}`: cacheable-route responses that
    /// were not stored, and why.
    pub cache_not_stored: IntCounterVec,
    /// `assetgate_cache_lock_waits_total{host,route}`: requests that waited for another
    /// request's fill of the same key (collapsed).
    pub cache_lock_waits: IntCounterVec,
    /// `assetgate_cache_lock_wait_seconds{host,route}`: how long they waited.
    pub cache_lock_wait: HistogramVec,
    /// `assetgate_cache_fill_seconds{host,route}`: request received to response stored, for
    /// the request that filled.
    pub cache_fill: HistogramVec,
    /// `assetgate_cache_tier_hits_total{tier}`: lookups a tier answered.
    pub tier_hits: IntCounterVec,
    /// `assetgate_cache_tier_misses_total{tier}`: lookups a tier could not answer.
    pub tier_misses: IntCounterVec,
    /// `assetgate_cache_tier_bytes{tier}`: bytes a tier holds.
    pub tier_bytes: IntGaugeVec,
    /// `assetgate_cache_tier_entries{tier}`: entries a tier holds.
    pub tier_entries: IntGaugeVec,
    /// `assetgate_cache_tier_writes_total{tier}`: entries written to a tier.
    pub tier_writes: IntCounterVec,
    /// `assetgate_cache_tier_evictions_total{tier}`: entries a tier dropped to stay in bounds
    /// (or declined to admit over a more popular one).
    pub tier_evictions: IntCounterVec,
    /// `assetgate_cache_tier_promotions_total{tier}`: entries copied into a tier after a hit
    /// in a tier below it.
    pub tier_promotions: IntCounterVec,
    /// `assetgate_cache_tier_corrupt_total{tier}`: entries found damaged (length or checksum)
    /// and dropped.
    pub tier_corrupt: IntCounterVec,
    /// `assetgate_cache_tier_purged_total{tier}`: entries a purge removed from a tier.
    pub tier_purged: IntCounterVec,
    /// `assetgate_cache_purges_total{kind,origin}`: purges applied on this gateway, by kind
    /// (`url`, `prefix`, `tag`, `everything`) and origin (`admin`: asked of this gateway;
    /// `fleet`: sent by another gateway).
    pub purges: IntCounterVec,
    /// `assetgate_fleet_feed_resyncs_total{outcome}`: reconnections to the fleet feed that
    /// could not replay what was missed (`dropped`: node-local tiers dropped).
    pub feed_resyncs: IntCounterVec,
    /// `assetgate_fleet_feed_connected`: 1 while this gateway follows the fleet feed.
    pub feed_connected: IntGauge,
    /// `assetgate_cache_tier_errors_total{tier}`: tier operations that failed and were skipped.
    pub tier_errors: IntCounterVec,
    /// `assetgate_variant_compute_seconds{format}`: time to make one variant, from the
    /// original's bytes to the encoded output (decode, resize, colour, encode), by output
    /// format; a typical alert fires on its p95 over 80 ms.
    pub variant_compute: HistogramVec,
    /// `assetgate_variant_source_bytes{format}`: sizes of the originals read, by their format.
    pub variant_source_bytes: HistogramVec,
    /// `assetgate_variant_output_bytes{format}`: sizes of the variants made, by output format.
    pub variant_output_bytes: HistogramVec,
    /// `assetgate_variant_rejections_total{reason}`: variant requests refused (`not_allowed`,
    /// `grammar`, `source_too_large`, `undecodable`, `busy`, `timeout`, `panic`, ...).
    pub variant_rejections: IntCounterVec,
    /// `assetgate_variant_workers_busy`: decode/encode workers running a job now.
    pub variant_workers_busy: IntGauge,
    /// `assetgate_variant_queue_length`: variant jobs waiting for a worker.
    pub variant_queue: IntGauge,
    /// `assetgate_variant_shared_total{step,outcome}`: source fetches and decodes (`step`)
    /// done (`outcome="done"`) or taken from another variant of the same original made at
    /// the same time (`"shared"`).
    pub variant_shared: IntCounterVec,
    /// `assetgate_asset_lookups_total{outcome}`: asset store lookups on the request path,
    /// answered from memory (`memory`), by a query (`query`), or by waiting for another
    /// request's query of the same hash (`shared`).
    pub asset_lookups: IntCounterVec,
}

/// Buckets of byte-size histograms: 1 KiB to 256 MiB in powers of four.
const BYTE_BUCKETS: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
];

fn bytes_histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BYTE_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric definition");
    registry
        .register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

fn plain_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric definition");
    registry
        .register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let m = Metrics {
            requests: counter(
                &registry,
                "assetgate_requests_total",
                "Requests answered, by configured host, route and status.",
                &["host", "route", "status"],
            ),
            request_duration: histogram(
                &registry,
                "assetgate_request_duration_seconds",
                "Time from request received to response finished.",
                &["host", "route"],
            ),
            upstream_duration: histogram(
                &registry,
                "assetgate_upstream_duration_seconds",
                "Time from upstream request sent to upstream response header received.",
                &["backend"],
            ),
            response_bytes: counter(
                &registry,
                "assetgate_response_body_bytes_total",
                "Response body bytes sent to clients.",
                &["host", "route"],
            ),
            backend_up: gauge(
                &registry,
                "assetgate_backend_up",
                "1 when a backend member is healthy, 0 when not.",
                &["backend", "member"],
            ),
            backend_errors: counter(
                &registry,
                "assetgate_backend_errors_total",
                "Failed backend answers, by reason (access_denied, credentials_rejected, throttled, unreachable, timeout, ...).",
                &["backend", "reason"],
            ),
            rejected: counter(
                &registry,
                "assetgate_rejected_requests_total",
                "Requests that matched no route, by reason (bad_path, no_route, headers_too_large).",
                &["reason"],
            ),
            connections_open: plain_gauge(
                &registry,
                "assetgate_client_connections",
                "Client connections open now.",
            ),
            connections_refused: counter(
                &registry,
                "assetgate_client_connections_refused_total",
                "Client connections closed on arrival: limits.connections_per_client or limits.connections was reached.",
                &[],
            ),
            head_timeouts: counter(
                &registry,
                "assetgate_request_head_timeouts_total",
                "Connections closed because a request head did not arrive within limits.header_timeout (partial: answered 408; idle: nothing came).",
                &["stage"],
            ),
            rate_limit_fallbacks: counter(
                &registry,
                "assetgate_rate_limit_fallbacks_total",
                "Requests a fleet-shared rate limit counted in this gateway's own buckets because Redis failed.",
                &[],
            ),
            rate_limited: counter(
                &registry,
                "assetgate_rate_limited_total",
                "Requests answered 429, by the limit that ran out (client, route).",
                &["limit"],
            ),
            auth_denied: counter(
                &registry,
                "assetgate_auth_denied_total",
                "Requests refused by a route's access policy, by scheme and reason.",
                &["scheme", "reason"],
            ),
            revocation_reloads: counter(
                &registry,
                "assetgate_revocation_reloads_total",
                "Revocation list reloads after the file changed, by result (ok, error).",
                &["result"],
            ),
            build_info: gauge(
                &registry,
                "assetgate_build_info",
                "Build information; the value is always 1.",
                &["version"],
            ),
            group_requests: counter(
                &registry,
                "assetgate_group_requests_total",
                "Requests a group sent to one of its backends.",
                &["group", "backend"],
            ),
            group_errors: counter(
                &registry,
                "assetgate_group_errors_total",
                "Requests a group sent to a backend that were answered with a 5xx status.",
                &["group", "backend"],
            ),
            group_duration: histogram(
                &registry,
                "assetgate_group_request_duration_seconds",
                "Latency of requests a group sent to a backend.",
                &["group", "backend"],
            ),
            member_requests: counter(
                &registry,
                "assetgate_member_requests_total",
                "Response headers received from an HTTP pool member.",
                &["backend", "member"],
            ),
            member_errors: counter(
                &registry,
                "assetgate_member_errors_total",
                "Failures of an HTTP pool member, by reason (connect, io, timeout, status_5xx).",
                &["backend", "member", "reason"],
            ),
            member_duration: histogram(
                &registry,
                "assetgate_member_upstream_duration_seconds",
                "Time from request sent to response header received, per pool member.",
                &["backend", "member"],
            ),
            member_ejections: counter(
                &registry,
                "assetgate_member_ejections_total",
                "Pool members ejected after consecutive failures.",
                &["backend", "member"],
            ),
            failovers: counter(
                &registry,
                "assetgate_failovers_total",
                "Requests answered by a route's backup, by why the target was left.",
                &["host", "route", "backup", "reason"],
            ),
            rule_matches: counter(
                &registry,
                "assetgate_rule_matches_total",
                "Requests a steering rule sent to its group.",
                &["host", "rule"],
            ),
            cache_requests: counter(
                &registry,
                "assetgate_cache_requests_total",
                "Requests a cached route looked up in its cache tiers.",
                &["host", "route"],
            ),
            cache_hits: counter(
                &registry,
                "assetgate_cache_hits_total",
                "Cache lookups answered from a tier (fresh, or stale while revalidating or after an origin error).",
                &["host", "route"],
            ),
            cache_stored: counter(
                &registry,
                "assetgate_cache_stored_total",
                "Responses written to a route's cache tiers.",
                &["host", "route"],
            ),
            cache_not_stored: counter(
                &registry,
                "assetgate_cache_not_stored_total",
                "Responses on cached routes that were not stored, by reason.",
                &["host", "route", "reason"],
            ),
            cache_lock_waits: counter(
                &registry,
                "assetgate_cache_lock_waits_total",
                "Requests that waited for another request's fill of the same key.",
                &["host", "route"],
            ),
            cache_lock_wait: histogram(
                &registry,
                "assetgate_cache_lock_wait_seconds",
                "Time requests waited for another request's fill of the same key.",
                &["host", "route"],
            ),
            cache_fill: histogram(
                &registry,
                "assetgate_cache_fill_seconds",
                "Time from request received to response stored, for the request that filled.",
                &["host", "route"],
            ),
            tier_hits: counter(
                &registry,
                "assetgate_cache_tier_hits_total",
                "Lookups a cache tier answered.",
                &["tier"],
            ),
            tier_misses: counter(
                &registry,
                "assetgate_cache_tier_misses_total",
                "Lookups a cache tier could not answer.",
                &["tier"],
            ),
            tier_bytes: gauge(
                &registry,
                "assetgate_cache_tier_bytes",
                "Bytes a cache tier holds (bodies and headers).",
                &["tier"],
            ),
            tier_entries: gauge(
                &registry,
                "assetgate_cache_tier_entries",
                "Entries a cache tier holds.",
                &["tier"],
            ),
            tier_writes: counter(
                &registry,
                "assetgate_cache_tier_writes_total",
                "Entries written to a cache tier.",
                &["tier"],
            ),
            tier_evictions: counter(
                &registry,
                "assetgate_cache_tier_evictions_total",
                "Entries a cache tier dropped to stay within its size, or declined in favour of more popular ones.",
                &["tier"],
            ),
            tier_promotions: counter(
                &registry,
                "assetgate_cache_tier_promotions_total",
                "Entries copied into a cache tier after a hit in a tier below it.",
                &["tier"],
            ),
            tier_corrupt: counter(
                &registry,
                "assetgate_cache_tier_corrupt_total",
                "Entries found damaged (length or checksum) and dropped.",
                &["tier"],
            ),
            tier_purged: counter(
                &registry,
                "assetgate_cache_tier_purged_total",
                "Entries a purge removed from a cache tier.",
                &["tier"],
            ),
            purges: counter(
                &registry,
                "assetgate_cache_purges_total",
                "Purges applied on this gateway, by kind and by who asked (admin: this gateway's admin API; fleet: another gateway).",
                &["kind", "origin"],
            ),
            feed_resyncs: counter(
                &registry,
                "assetgate_fleet_feed_resyncs_total",
                "Reconnections to the fleet feed that could not replay what was missed.",
                &["outcome"],
            ),
            feed_connected: plain_gauge(
                &registry,
                "assetgate_fleet_feed_connected",
                "1 while this gateway follows the fleet feed of purges and revocations.",
            ),
            tier_errors: counter(
                &registry,
                "assetgate_cache_tier_errors_total",
                "Cache tier operations that failed and were skipped.",
                &["tier"],
            ),
            variant_compute: histogram(
                &registry,
                "assetgate_variant_compute_seconds",
                "Time to make one image variant from its original's bytes, by output format.",
                &["format"],
            ),
            variant_source_bytes: bytes_histogram(
                &registry,
                "assetgate_variant_source_bytes",
                "Sizes of the originals read to make variants, by their format.",
                &["format"],
            ),
            variant_output_bytes: bytes_histogram(
                &registry,
                "assetgate_variant_output_bytes",
                "Sizes of the variants made, by output format.",
                &["format"],
            ),
            variant_rejections: counter(
                &registry,
                "assetgate_variant_rejections_total",
                "Variant requests refused, by reason.",
                &["reason"],
            ),
            variant_workers_busy: plain_gauge(
                &registry,
                "assetgate_variant_workers_busy",
                "Decode/encode workers running a variant job now.",
            ),
            variant_queue: plain_gauge(
                &registry,
                "assetgate_variant_queue_length",
                "Variant jobs waiting for a worker.",
            ),
            variant_shared: counter(
                &registry,
                "assetgate_variant_shared_total",
                "Source fetches and decodes done, or shared with another variant of the same original.",
                &["step", "outcome"],
            ),
            asset_lookups: counter(
                &registry,
                "assetgate_asset_lookups_total",
                "Asset store lookups on the request path, by how they were answered.",
                &["outcome"],
            ),
            registry,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// Handles for one route's request metrics, resolved once when the router is built.
    pub fn route(&'static self, host: &str, route: &str) -> RouteMetrics {
        RouteMetrics {
            host: host.to_string(),
            route: route.to_string(),
            by_status: Default::default(),
            duration: self.request_duration.with_label_values(&[host, route]),
            bytes: self.response_bytes.with_label_values(&[host, route]),
            metrics: self,
        }
    }

    /// Handles for one backend's metrics, resolved once when the backend is built.
    pub fn backend(&'static self, name: &str) -> BackendMetrics {
        BackendMetrics {
            name: name.to_string(),
            upstream_duration: self.upstream_duration.with_label_values(&[name]),
            metrics: self,
        }
    }

    /// Handles for one group member's metrics, resolved once when the group is built.
    pub fn group(&'static self, group: &str, backend: &str) -> GroupMetrics {
        GroupMetrics {
            requests: self.group_requests.with_label_values(&[group, backend]),
            errors: self.group_errors.with_label_values(&[group, backend]),
            duration: self.group_duration.with_label_values(&[group, backend]),
        }
    }

    /// Handles for one pool member's metrics, resolved once when the pool is built.
    pub fn member(&'static self, backend: &str, member: &str) -> MemberMetrics {
        MemberMetrics {
            backend: backend.to_string(),
            member: member.to_string(),
            requests: self.member_requests.with_label_values(&[backend, member]),
            duration: self.member_duration.with_label_values(&[backend, member]),
            ejections: self.member_ejections.with_label_values(&[backend, member]),
            metrics: self,
        }
    }

    /// Handles for one cache tier's metrics, resolved once when the tier is built.
    pub fn tier(&'static self, tier: &str) -> TierMetrics {
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
            errors: self.tier_errors.with_label_values(l),
        }
    }

    /// Handles for one cached route's metrics, resolved once when the router is built.
    pub fn route_cache(&'static self, host: &str, route: &str) -> RouteCacheMetrics {
        let l = &[host, route];
        RouteCacheMetrics {
            host: host.to_string(),
            route: route.to_string(),
            requests: self.cache_requests.with_label_values(l),
            hits: self.cache_hits.with_label_values(l),
            stored: self.cache_stored.with_label_values(l),
            lock_waits: self.cache_lock_waits.with_label_values(l),
            lock_wait: self.cache_lock_wait.with_label_values(l),
            fill: self.cache_fill.with_label_values(l),
            metrics: self,
        }
    }

    /// The process-wide metrics.
    pub fn global() -> &'static Metrics {
        static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
        &METRICS
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Statuses with a pre-resolved counter per route; others are looked up when they happen.
const COMMON_STATUSES: [u16; 15] = [
    200, 204, 206, 304, 400, 403, 404, 405, 412, 416, 499, 500, 502, 503, 504,
];

/// One route's request metrics. Label lookups happen once: at router build for latency and
/// bytes, at a status's first use for its counter (so unused statuses export no zero series).
pub struct RouteMetrics {
    host: String,
    route: String,
    by_status: [std::sync::OnceLock<IntCounter>; COMMON_STATUSES.len()],
    duration: Histogram,
    bytes: IntCounter,
    metrics: &'static Metrics,
}

impl RouteMetrics {
    /// Records one finished request.
    pub fn observe(&self, status: u16, elapsed: std::time::Duration, body_bytes: u64) {
        match COMMON_STATUSES.iter().position(|s| *s == status) {
            Some(i) => self.by_status[i].get_or_init(|| self.counter(status)).inc(),
            None => self.counter(status).inc(),
        }
        self.duration.observe(elapsed.as_secs_f64());
        self.bytes.inc_by(body_bytes);
    }

    fn counter(&self, status: u16) -> IntCounter {
        self.metrics
            .requests
            .with_label_values(&[&self.host, &self.route, &status.to_string()])
    }
}

/// One backend's metrics, with label lookups done once at backend build.
pub struct BackendMetrics {
    name: String,
    upstream_duration: Histogram,
    metrics: &'static Metrics,
}

impl BackendMetrics {
    /// Records the time from upstream request sent to response header received.
    pub fn upstream_took(&self, elapsed: std::time::Duration) {
        self.upstream_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one failure of this backend (`assetgate_backend_errors_total{backend,reason}`).
    pub fn error(&self, reason: &str) {
        self.metrics
            .backend_errors
            .with_label_values(&[&self.name, reason])
            .inc();
    }
}

/// One group member's metrics.
pub struct GroupMetrics {
    requests: IntCounter,
    errors: IntCounter,
    duration: Histogram,
}

impl GroupMetrics {
    /// Records one finished request the group sent to this member.
    pub fn observe(&self, status: u16, elapsed: std::time::Duration) {
        self.requests.inc();
        if status >= 500 && status != crate::error::CLIENT_CLOSED_STATUS {
            self.errors.inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// One HTTP pool member's metrics.
pub struct MemberMetrics {
    backend: String,
    member: String,
    requests: IntCounter,
    duration: Histogram,
    ejections: IntCounter,
    metrics: &'static Metrics,
}

impl MemberMetrics {
    /// Records a response header received after `elapsed`.
    pub fn answered(&self, elapsed: std::time::Duration) {
        self.requests.inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one failure (`connect`, `io`, `timeout`, `status_5xx`).
    pub fn failed(&self, reason: &str) {
        self.metrics
            .member_errors
            .with_label_values(&[&self.backend, &self.member, reason])
            .inc();
    }

    /// Counts one passive ejection.
    pub fn ejected(&self) {
        self.ejections.inc();
    }
}

/// One cache tier's metrics.
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
    metrics: &'static Metrics,
}

impl RouteCacheMetrics {
    /// Counts a response that was not stored, by reason.
    pub fn not_stored(&self, reason: &str) {
        self.metrics
            .cache_not_stored
            .with_label_values(&[&self.host, &self.route, reason])
            .inc();
    }
}
