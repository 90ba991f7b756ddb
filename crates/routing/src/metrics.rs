//! Routing's metrics: requests per route (`assetgate_requests_total` and friends, handles
//! resolved once per route), steering (rule matches, group members) and failovers.
//! Registered once on the registry the server hands in.

use kit::metrics::Registrar;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

/// Every routing metric.
#[derive(Clone)]
pub struct RoutingMetrics {
    /// `assetgate_requests_total{host,route,status}`; a client that closed the connection
    /// before the answer was complete is counted as status `499`.
    requests: IntCounterVec,
    /// `assetgate_request_duration_seconds{host,route}`: first byte in to last byte out.
    request_duration: HistogramVec,
    /// `assetgate_response_body_bytes_total{host,route}`: body bytes sent to clients.
    response_bytes: IntCounterVec,
    /// `assetgate_group_requests_total{group,backend}`: requests a group sent to a backend.
    group_requests: IntCounterVec,
    /// `assetgate_group_errors_total{group,backend}`: of those, answered with a 5xx.
    group_errors: IntCounterVec,
    /// `assetgate_group_request_duration_seconds{group,backend}`: their latency.
    group_duration: HistogramVec,
    /// `assetgate_rule_matches_total{host,rule}`: requests a steering rule sent to its group.
    rule_matches: IntCounterVec,
    /// `assetgate_failovers_total{host,route,backup,reason}`: requests answered by a route's
    /// backup because the target was `unhealthy`, `refused`, timed out (`timeout`), broke
    /// (`io`) or answered 5xx (`status_5xx`).
    pub failovers: IntCounterVec,
}

impl RoutingMetrics {
    /// Registers every routing metric on `r`.
    pub fn register(r: Registrar<'_>) -> RoutingMetrics {
        let route = &["host", "route"];
        let member = &["group", "backend"];
        RoutingMetrics {
            requests: r.counter(
                "assetgate_requests_total",
                "Requests answered, by configured host, route and status.",
                &["host", "route", "status"],
            ),
            request_duration: r.histogram(
                "assetgate_request_duration_seconds",
                "Time from request received to response finished.",
                route,
            ),
            response_bytes: r.counter(
                "assetgate_response_body_bytes_total",
                "Response body bytes sent to clients.",
                route,
            ),
            group_requests: r.counter(
                "assetgate_group_requests_total",
                "Requests a group sent to one of its backends.",
                member,
            ),
            group_errors: r.counter(
                "assetgate_group_errors_total",
                "Requests a group sent to a backend that were answered with a 5xx status.",
                member,
            ),
            group_duration: r.histogram(
                "assetgate_group_request_duration_seconds",
                "Latency of requests a group sent to a backend.",
                member,
            ),
            rule_matches: r.counter(
                "assetgate_rule_matches_total",
                "Requests a steering rule sent to its group.",
                &["host", "rule"],
            ),
            failovers: r.counter(
                "assetgate_failovers_total",
                "Requests answered by a route's backup, by why the target was left.",
                &["host", "route", "backup", "reason"],
            ),
        }
    }

    /// A set on a registry of its own that nothing reads: for routers that only look
    /// routes up (minting, the admin API) and for tests.
    pub fn unregistered() -> RoutingMetrics {
        RoutingMetrics::register(Registrar(&prometheus::Registry::new()))
    }

    /// Handles for one route's request metrics, resolved once when the router is built.
    pub fn route(&self, host: &str, route: &str) -> RouteMetrics {
        RouteMetrics {
            host: host.to_string(),
            route: route.to_string(),
            by_status: Default::default(),
            duration: self.request_duration.with_label_values(&[host, route]),
            bytes: self.response_bytes.with_label_values(&[host, route]),
            requests: self.requests.clone(),
        }
    }

    /// Handles for one group member's metrics, resolved once when the group is built.
    pub fn group(&self, group: &str, backend: &str) -> GroupMetrics {
        let l = &[group, backend];
        GroupMetrics {
            requests: self.group_requests.with_label_values(l),
            errors: self.group_errors.with_label_values(l),
            duration: self.group_duration.with_label_values(l),
        }
    }

    /// The `assetgate_rule_matches_total` handle of one rule of one host.
    pub fn rule(&self, host: &str, rule: &str) -> IntCounter {
        self.rule_matches.with_label_values(&[host, rule])
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
    requests: IntCounterVec,
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
        self.requests
            .with_label_values(&[&self.host, &self.route, &status.to_string()])
    }
}

/// One group member's metrics.
pub struct GroupMetrics {
    requests: IntCounter,
    errors: IntCounter,
    duration: Histogram,
}

impl GroupMetrics {
    /// Records one finished request the group sent to this member; a 5xx answer counts as
    /// an error (a client that went away, 499, does not).
    pub fn observe(&self, status: u16, elapsed: std::time::Duration) {
        self.requests.inc();
        if status >= 500 {
            self.errors.inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
    }
}
