//! What can go wrong with a backend, in the backend's words. The application's one status
//! table (the application's `error` module) turns each into the answer the client gets.

/// Why a backend gave no usable answer, or why a request for it could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// No object has the key (or the bucket denied access and the route hides existence).
    #[error("not found")]
    NotFound,
    /// The bucket denied access and the route is configured to say so.
    #[error("forbidden")]
    Forbidden,
    /// The object key the path maps to is longer than the backend allows (S3: 1024 bytes).
    #[error("request path too long for an object key")]
    KeyTooLong,
    /// An If-Match / If-Unmodified-Since precondition failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The Range header cannot be satisfied; `size` is the full length when known.
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// Complete length of the representation.
        size: Option<u64>,
    },
    /// The backend rejected the gateway's own credentials (bad signature, unknown key).
    #[error("backend rejected the gateway's credentials")]
    CredentialsRejected,
    /// The backend asked us to slow down.
    #[error("backend is throttling requests")]
    Throttled,
    /// The backend could not be reached (no usable pool member, a name that does not resolve).
    #[error("backend unreachable")]
    Unreachable,
    /// The backend answered with an error the client cannot act on.
    #[error("backend error")]
    Failed,
    /// The request for the backend could not be built (a bug, or the wrong kind asked).
    #[error("internal error")]
    Internal,
}

impl OriginError {
    /// Whether this failure is the backend's fault, and so counted in
    /// `assetgate_backend_errors_total`: a missing or denied object, a client's unsatisfiable
    /// range or failed precondition are not.
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            OriginError::Unreachable
                | OriginError::Failed
                | OriginError::CredentialsRejected
                | OriginError::Throttled
        )
    }

    /// Stable label for metrics (`reason` in `assetgate_backend_errors_total`), the same as
    /// the gateway error it is answered as.
    pub fn label(&self) -> &'static str {
        match self {
            OriginError::NotFound => "not_found",
            OriginError::Forbidden => "forbidden",
            OriginError::KeyTooLong => "key_too_long",
            OriginError::PreconditionFailed => "precondition_failed",
            OriginError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            OriginError::CredentialsRejected => "credentials_rejected",
            OriginError::Throttled => "throttled",
            OriginError::Unreachable => "unreachable",
            OriginError::Failed => "backend_failed",
            OriginError::Internal => "internal",
        }
    }
}
