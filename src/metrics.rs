//! Every metric the gateway exports, defined once. Names start with `assetgate_`; label values
//! come from the config (host names, route names, backend names), never from raw request data,
//! so cardinality stays bounded.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
                "Requests that matched no route, by reason (bad_path, no_route).",
                &["reason"],
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
