//! The backends' metrics: per backend (`assetgate_upstream_duration_seconds`,
//! `assetgate_backend_errors_total`, `assetgate_backend_up`) and per HTTP pool member
//! (`assetgate_member_*`). Registered once on the registry the server hands in; each backend
//! and member keeps its own handles.

use kit::metrics::Registrar;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec};

/// Every backend metric.
#[derive(Clone)]
pub struct OriginMetrics {
    /// `assetgate_upstream_duration_seconds{backend}`: request sent to response header
    /// received.
    upstream_duration: HistogramVec,
    /// `assetgate_backend_errors_total{backend,reason}`: failures talking to a backend.
    errors: IntCounterVec,
    /// `assetgate_backend_up{backend,member}`: 1 when a member passes health checks (set
    /// when `/metrics` is read).
    pub up: IntGaugeVec,
    /// `assetgate_member_requests_total{backend,member}`.
    member_requests: IntCounterVec,
    /// `assetgate_member_errors_total{backend,member,reason}`.
    member_errors: IntCounterVec,
    /// `assetgate_member_upstream_duration_seconds{backend,member}`.
    member_duration: HistogramVec,
    /// `assetgate_member_ejections_total{backend,member}`.
    member_ejections: IntCounterVec,
}

impl OriginMetrics {
    /// Registers every backend metric on `r`.
    pub fn register(r: Registrar<'_>) -> OriginMetrics {
        let member = &["backend", "member"];
        OriginMetrics {
            upstream_duration: r.histogram(
                "assetgate_upstream_duration_seconds",
                "Time from upstream request sent to upstream response header received.",
                &["backend"],
            ),
            errors: r.counter(
                "assetgate_backend_errors_total",
                "Failed backend answers, by reason (access_denied, credentials_rejected, throttled, unreachable, timeout, ...).",
                &["backend", "reason"],
            ),
            up: r.gauge(
                "assetgate_backend_up",
                "1 when a backend member is healthy, 0 when not.",
                member,
            ),
            member_requests: r.counter(
                "assetgate_member_requests_total",
                "Response headers received from an HTTP pool member.",
                member,
            ),
            member_errors: r.counter(
                "assetgate_member_errors_total",
                "Failures of an HTTP pool member, by reason (connect, io, timeout, status_5xx).",
                &["backend", "member", "reason"],
            ),
            member_duration: r.histogram(
                "assetgate_member_upstream_duration_seconds",
                "Time from request sent to response header received, per pool member.",
                member,
            ),
            member_ejections: r.counter(
                "assetgate_member_ejections_total",
                "Pool members ejected after consecutive failures.",
                member,
            ),
        }
    }

    /// A set on a registry of its own that nothing reads: for tests and for the command
    /// line's one-off commands that build backends.
    pub fn unregistered() -> OriginMetrics {
        OriginMetrics::register(Registrar(&prometheus::Registry::new()))
    }

    /// Handles for one backend's metrics, resolved once when the backend is built.
    pub fn backend(&self, name: &str) -> BackendMetrics {
        BackendMetrics {
            name: name.to_string(),
            upstream_duration: self.upstream_duration.with_label_values(&[name]),
            errors: self.errors.clone(),
        }
    }

    /// Handles for one pool member's metrics, resolved once when the pool is built.
    pub fn member(&self, backend: &str, member: &str) -> MemberMetrics {
        let l = &[backend, member];
        MemberMetrics {
            backend: backend.to_string(),
            member: member.to_string(),
            requests: self.member_requests.with_label_values(l),
            duration: self.member_duration.with_label_values(l),
            ejections: self.member_ejections.with_label_values(l),
            errors: self.member_errors.clone(),
        }
    }
}

/// One backend's metrics, with label lookups done once at backend build.
pub struct BackendMetrics {
    name: String,
    upstream_duration: Histogram,
    errors: IntCounterVec,
}

impl BackendMetrics {
    /// Records the time from upstream request sent to response header received.
    pub fn upstream_took(&self, elapsed: std::time::Duration) {
        self.upstream_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one failure of this backend (`assetgate_backend_errors_total{backend,reason}`).
    pub fn error(&self, reason: &str) {
        self.errors.with_label_values(&[&self.name, reason]).inc();
    }
}

/// One HTTP pool member's metrics.
pub struct MemberMetrics {
    backend: String,
    member: String,
    requests: IntCounter,
    duration: Histogram,
    ejections: IntCounter,
    errors: IntCounterVec,
}

impl MemberMetrics {
    /// Records a response header received after `elapsed`.
    pub fn answered(&self, elapsed: std::time::Duration) {
        self.requests.inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one failure (`connect`, `io`, `timeout`, `status_5xx`).
    pub fn failed(&self, reason: &str) {
        self.errors
            .with_label_values(&[&self.backend, &self.member, reason])
            .inc();
    }

    /// Counts one passive ejection.
    pub fn ejected(&self) {
        self.ejections.inc();
    }
}
