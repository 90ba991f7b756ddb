//! Access control's metrics: requests an access policy refused, and revocation list
//! reloads. Registered once on the registry the server hands in.

use kit::metrics::Registrar;
use prometheus::{IntCounter, IntCounterVec};

/// Every access metric.
#[derive(Clone)]
pub struct AccessMetrics {
    /// `assetgate_auth_denied_total{scheme,reason}`: requests an access policy refused;
    /// `scheme` is `none` when no credential was presented.
    denied: IntCounterVec,
    /// `assetgate_revocation_reloads_total{result}`: revocation list reloads (`ok`, `error`).
    revocation_reloads: IntCounterVec,
}

impl AccessMetrics {
    /// Registers every access metric on `r`.
    pub fn register(r: Registrar<'_>) -> AccessMetrics {
        AccessMetrics {
            denied: r.counter(
                "assetgate_auth_denied_total",
                "Requests refused by a route's access policy, by scheme and reason.",
                &["scheme", "reason"],
            ),
            revocation_reloads: r.counter(
                "assetgate_revocation_reloads_total",
                "Revocation list reloads after the file changed, by result (ok, error).",
                &["result"],
            ),
        }
    }

    /// Counts one refused request.
    pub fn denied(&self, denied: &super::Denied) {
        self.denied
            .with_label_values(&[denied.scheme, denied.reason.label()])
            .inc();
    }

    /// The reload counters: `(ok, error)`.
    pub fn reloads(&self) -> (IntCounter, IntCounter) {
        (
            self.revocation_reloads.with_label_values(&["ok"]),
            self.revocation_reloads.with_label_values(&["error"]),
        )
    }
}
