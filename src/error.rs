//! The one table from gateway errors to HTTP statuses and short response bodies.
//!
//! Every module reports failures as its own error type; the proxy turns them into a
//! [`GatewayError`] and answers with [`GatewayError::status`] and [`GatewayError::body`].
//! Bodies are short, plain text and never reveal backend internals.

use kit::host::HostError;
use kit::path::PathError;
use pingora::{Error as PingoraError, ErrorSource, ErrorType};

/// Everything the gateway may answer instead of a backend's response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The request path was refused by [`kit::path::normalise`].
    #[error("bad request path: {0}")]
    BadPath(#[from] PathError),
    /// The request's Host (or authority) was refused by [`kit::host`].
    #[error("bad request: {0}")]
    BadHost(#[from] HostError),
    /// The request is malformed in a way other than its path or host.
    #[error("bad request")]
    BadRequest,
    /// A GET or HEAD with a body on a cached route: a shared cache would store what an
    /// unkeyed body made the backend answer, so such a request is refused.
    #[error("a GET or HEAD request with a body is not accepted on a cached route")]
    BodyOnRead,
    /// The request's head is larger, or has more fields, than `[limits]` allows.
    #[error("request header fields too large")]
    HeadersTooLarge,
    /// A rate limit ran out; ask again after this many seconds.
    #[error("too many requests")]
    RateLimited {
        /// Seconds until the limit allows a request again (`Retry-After`).
        retry_after: u32,
    },
    /// The object key the path maps to is longer than the backend allows (S3: 1024 bytes).
    #[error("request path too long for an object key")]
    KeyTooLong,
    /// No host or route matches.
    #[error("no route for this host and path")]
    NoRoute,
    /// The route does not allow this method; `allow` lists what it does.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: String,
    },
    /// The object does not exist (or access to it was denied and existence is hidden).
    #[error("not found")]
    NotFound,
    /// The backend denied access and the route is configured to say so.
    #[error("forbidden")]
    Forbidden,
    /// The Range header cannot be satisfied; `size` is the full length when known.
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// Complete length of the representation.
        size: Option<u64>,
    },
    /// An If-Match / If-Unmodified-Since precondition failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The route's access policy refused the request (401 without credentials, 403 with bad ones).
    #[error("{0}")]
    Denied(access::Denied),
    /// A CORS preflight from an origin or for a method the route does not allow.
    #[error("CORS preflight rejected")]
    CorsRejected,
    /// The backend rejected the gateway's own credentials (bad signature, unknown key).
    #[error("backend rejected the gateway's credentials")]
    CredentialsRejected,
    /// The backend asked us to slow down.
    #[error("backend is throttling requests")]
    Throttled,
    /// The backend could not be reached.
    #[error("backend unreachable")]
    Unreachable,
    /// The backend did not answer in time.
    #[error("backend timed out")]
    Timeout,
    /// The backend answered with an error the client cannot act on.
    #[error("backend error")]
    BackendFailed,
    /// A bug or resource problem inside the gateway.
    #[error("internal error")]
    Internal,
    /// The client closed the connection (or it broke) before the answer was complete. Nothing
    /// is sent; metrics and logs record it as status 499, nginx's "client closed request".
    #[error("client closed the connection")]
    ClientGone,
    /// The client was too slow sending its request.
    #[error("request timeout")]
    ClientTimeout,
    /// An image variant could not be made or was refused ([`media::variants::VariantError`]).
    #[error("{0}")]
    Variant(#[from] media::variants::VariantError),
    /// The asset metadata store is not connected yet, or failed.
    #[error("the asset store is unavailable; retry shortly")]
    StoreUnavailable,
    /// An upload through an upload route was refused or failed: the status
    /// [`upload_status`] gives its [`media::assets::ingest::UploadError`], and its message.
    #[error("{message}")]
    Upload {
        /// The status.
        status: u16,
        /// What was wrong.
        message: String,
    },
    /// An upload route was sent a credential that names no user to own the asset.
    #[error("uploads need a credential that names the user (an HMAC URL signed with --user, or a JWT with a subject)")]
    UploadNeedsUser,
}

/// Status recorded for [`GatewayError::ClientGone`] (never sent: the client is gone).
pub const CLIENT_CLOSED_STATUS: u16 = 499;

impl GatewayError {
    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadPath(PathError::TooLong) | GatewayError::KeyTooLong => 414,
            GatewayError::BadPath(_)
            | GatewayError::BadHost(_)
            | GatewayError::BadRequest
            | GatewayError::BodyOnRead => 400,
            GatewayError::NoRoute | GatewayError::NotFound => 404,
            GatewayError::MethodNotAllowed { .. } => 405,
            GatewayError::HeadersTooLarge => 431,
            GatewayError::RateLimited { .. } => 429,
            GatewayError::Forbidden | GatewayError::CorsRejected => 403,
            GatewayError::Denied(d) => d.status(),
            GatewayError::RangeNotSatisfiable { .. } => 416,
            GatewayError::PreconditionFailed => 412,
            GatewayError::CredentialsRejected
            | GatewayError::Unreachable
            | GatewayError::BackendFailed => 502,
            GatewayError::Throttled => 503,
            GatewayError::Timeout => 504,
            GatewayError::Internal => 500,
            GatewayError::ClientGone => CLIENT_CLOSED_STATUS,
            GatewayError::ClientTimeout => 408,
            GatewayError::Variant(v) => variant_status(v),
            GatewayError::StoreUnavailable => 503,
            GatewayError::Upload { status, .. } => *status,
            GatewayError::UploadNeedsUser => 403,
        }
    }

    /// Whether the answer carries `Retry-After` (the gateway is busy, not the request wrong).
    pub fn retry_after(&self) -> Option<u32> {
        use media::variants::VariantError as V;
        match self {
            GatewayError::RateLimited { retry_after } => Some(*retry_after),
            GatewayError::Throttled
            | GatewayError::StoreUnavailable
            | GatewayError::Variant(V::Busy | V::TimedOut) => Some(1),
            _ => None,
        }
    }

    /// Short plain-text body (one line).
    pub fn body(&self) -> String {
        format!("{}\n", self)
    }

    /// Maps a Pingora proxy failure to a gateway error. The error's source decides first, as
    /// Pingora's own `fail_to_proxy` does: a client that disconnects or stalls is the client's
    /// failure, never counted against the backend.
    pub fn from_proxy_failure(e: &PingoraError) -> GatewayError {
        use ErrorType::*;
        if let HTTPStatus(code) = e.etype() {
            return match code {
                400 => GatewayError::BadRequest,
                404 => GatewayError::NotFound,
                416 => GatewayError::RangeNotSatisfiable { size: None },
                503 => GatewayError::Throttled,
                504 => GatewayError::Timeout,
                _ => GatewayError::BackendFailed,
            };
        }
        match e.esource() {
            ErrorSource::Downstream => match e.etype() {
                ReadTimedout | WriteTimedout => GatewayError::ClientTimeout,
                ReadError | WriteError | ConnectionClosed => GatewayError::ClientGone,
                _ => GatewayError::BadRequest,
            },
            ErrorSource::Upstream => match e.etype() {
                ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
                    GatewayError::Timeout
                }
                ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
                | TLSHandshakeFailure | InvalidCert | HandshakeError | ConnectionClosed
                | ReadError | WriteError => GatewayError::Unreachable,
                _ => GatewayError::BackendFailed,
            },
            ErrorSource::Internal | ErrorSource::Unset => GatewayError::Internal,
        }
    }

    /// Whether this failure is the backend's fault, and so counted in
    /// `assetgate_backend_errors_total`. The one rule for every backend kind and phase: a
    /// missing or denied object, a client's unsatisfiable range or failed precondition, and
    /// anything the client did (going away included) are not.
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            GatewayError::Unreachable
                | GatewayError::Timeout
                | GatewayError::BackendFailed
                | GatewayError::CredentialsRejected
                | GatewayError::Throttled
        )
    }

    /// Stable label for metrics (`reason` in `assetgate_gateway_errors_total`).
    pub fn label(&self) -> &'static str {
        match self {
            GatewayError::BadPath(_) => "bad_path",
            GatewayError::BadHost(_) => "bad_host",
            GatewayError::BadRequest => "bad_request",
            GatewayError::BodyOnRead => "body_on_read",
            GatewayError::HeadersTooLarge => "headers_too_large",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::KeyTooLong => "key_too_long",
            GatewayError::NoRoute => "no_route",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::NotFound => "not_found",
            GatewayError::Forbidden => "forbidden",
            GatewayError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            GatewayError::PreconditionFailed => "precondition_failed",
            GatewayError::CorsRejected => "cors_rejected",
            GatewayError::Denied(_) => "auth_denied",
            GatewayError::CredentialsRejected => "credentials_rejected",
            GatewayError::Throttled => "throttled",
            GatewayError::Unreachable => "unreachable",
            GatewayError::Timeout => "timeout",
            GatewayError::BackendFailed => "backend_failed",
            GatewayError::Internal => "internal",
            GatewayError::ClientGone => "client_aborted",
            GatewayError::ClientTimeout => "client_timeout",
            GatewayError::Variant(_) => "variant",
            GatewayError::StoreUnavailable => "store_unavailable",
            GatewayError::Upload { .. } => "upload",
            GatewayError::UploadNeedsUser => "upload_needs_user",
        }
    }
}

/// An upload's failure is answered with the status of the one table below.
impl From<media::assets::ingest::UploadError> for GatewayError {
    fn from(e: media::assets::ingest::UploadError) -> GatewayError {
        GatewayError::Upload {
            status: upload_status(&e),
            message: e.to_string(),
        }
    }
}

/// A backend's failure is answered as the gateway's own error of the same meaning.
impl From<crate::backend::OriginError> for GatewayError {
    fn from(e: crate::backend::OriginError) -> GatewayError {
        use crate::backend::OriginError as O;
        match e {
            O::NotFound => GatewayError::NotFound,
            O::Forbidden => GatewayError::Forbidden,
            O::KeyTooLong => GatewayError::KeyTooLong,
            O::PreconditionFailed => GatewayError::PreconditionFailed,
            O::RangeNotSatisfiable { size } => GatewayError::RangeNotSatisfiable { size },
            O::CredentialsRejected => GatewayError::CredentialsRejected,
            O::Throttled => GatewayError::Throttled,
            O::Unreachable => GatewayError::Unreachable,
            O::Failed => GatewayError::BackendFailed,
            O::Internal => GatewayError::Internal,
        }
    }
}

/// The variant builder's failures: a refused or failed variant as itself, a missing
/// original as 404, the store as below.
impl From<media::variants::builder::BuildError> for GatewayError {
    fn from(e: media::variants::builder::BuildError) -> GatewayError {
        use media::variants::builder::BuildError as B;
        match e {
            B::Variant(v) => GatewayError::Variant(v),
            B::Store(s) => GatewayError::from(s),
            B::NoOriginal => GatewayError::NotFound,
            B::Header => GatewayError::Internal,
        }
    }
}

/// A store failure on the request path is the store being unavailable (503 with
/// `Retry-After`); one that is not just "still connecting" is logged once, here.
impl From<media::assets::StoreError> for GatewayError {
    fn from(e: media::assets::StoreError) -> GatewayError {
        if !matches!(e, media::assets::StoreError::NotReady) {
            tracing::error!(error = %e, "asset store lookup failed");
        }
        GatewayError::StoreUnavailable
    }
}

/// The status of each variant failure: the URL's fault 400, the original's 422, the
/// gateway being busy 503, a broken original store 502, a codec failure 500.
fn variant_status(e: &media::variants::VariantError) -> u16 {
    use media::variants::VariantError as V;
    match e {
        V::Grammar | V::BadHash | V::BadFormat | V::BadFit | V::NotAllowed(_) => 400,
        V::SourceTooLarge(_) | V::Undecodable(_) => 422,
        V::Busy | V::TimedOut => 503,
        V::SourceUnavailable => 502,
        V::Encode(_) | V::Panicked => 500,
    }
}

/// The status of each failed upload (`PUT /v1/assets`): the body's fault 413/415/400, a
/// client gone 400, the store not connected 503, a backend or database failure 502.
pub fn upload_status(e: &media::assets::ingest::UploadError) -> u16 {
    use media::assets::ingest::UploadError as U;
    use media::assets::StoreError as S;
    match e {
        U::TooLarge(_) => 413,
        U::UnsupportedType(_) => 415,
        U::Refused(_) | U::Body(_) => 400,
        U::Store(S::NotReady) => 503,
        U::Store(_) => 502,
    }
}

/// The status of a presigned upload that could not be begun or completed.
pub fn presign_status(e: &media::assets::presigned::PresignError) -> u16 {
    use media::assets::presigned::PresignError as P;
    match e {
        P::Unknown(_) => 404,
        P::NotUploaded(_) | P::Unsupported(_) => 409,
        P::Upload(e) => upload_status(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(GatewayError::BadPath(PathError::DotSegment).status(), 400);
        assert_eq!(GatewayError::CredentialsRejected.status(), 502);
        assert_eq!(GatewayError::Throttled.status(), 503);
        assert_eq!(GatewayError::Timeout.status(), 504);
        assert_eq!(GatewayError::BadPath(PathError::TooLong).status(), 414);
        assert_eq!(GatewayError::KeyTooLong.status(), 414);
        assert_eq!(GatewayError::BadHost(HostError::Malformed).status(), 400);
        use media::variants::VariantError as V;
        assert_eq!(
            GatewayError::from(V::NotAllowed(String::new())).status(),
            400
        );
        assert_eq!(
            GatewayError::from(V::Undecodable(String::new())).status(),
            422
        );
        assert_eq!(
            GatewayError::from(V::SourceTooLarge(String::new())).status(),
            422
        );
        assert_eq!(GatewayError::from(V::Busy).status(), 503);
        assert_eq!(GatewayError::from(V::Busy).retry_after(), Some(1));
        assert_eq!(GatewayError::from(V::Panicked).status(), 500);
    }

    #[test]
    fn a_backend_failure_keeps_its_meaning_as_a_gateway_error() {
        use crate::backend::OriginError as O;
        for e in [
            O::NotFound,
            O::Forbidden,
            O::KeyTooLong,
            O::PreconditionFailed,
            O::RangeNotSatisfiable { size: Some(3) },
            O::CredentialsRejected,
            O::Throttled,
            O::Unreachable,
            O::Failed,
            O::Internal,
        ] {
            let g = GatewayError::from(e.clone());
            assert_eq!(e.label(), g.label(), "{e:?}");
            assert_eq!(e.is_backend_failure(), g.is_backend_failure(), "{e:?}");
        }
        assert_eq!(GatewayError::from(O::Failed).status(), 502);
        assert_eq!(GatewayError::from(O::KeyTooLong).status(), 414);
    }

    fn failure(etype: ErrorType, source: ErrorSource) -> PingoraError {
        let mut e = PingoraError::new(etype);
        e.esource = source;
        *e
    }

    #[test]
    fn upstream_failures_are_the_backends() {
        let refused = failure(ErrorType::ConnectRefused, ErrorSource::Upstream);
        assert_eq!(
            GatewayError::from_proxy_failure(&refused),
            GatewayError::Unreachable
        );
        let slow = failure(ErrorType::ReadTimedout, ErrorSource::Upstream);
        assert_eq!(
            GatewayError::from_proxy_failure(&slow),
            GatewayError::Timeout
        );
        assert!(GatewayError::Timeout.is_backend_failure());
        assert!(GatewayError::Throttled.is_backend_failure());
        assert!(!GatewayError::RangeNotSatisfiable { size: None }.is_backend_failure());
        assert!(!GatewayError::PreconditionFailed.is_backend_failure());
        assert!(!GatewayError::NotFound.is_backend_failure());
    }

    #[test]
    fn client_failures_are_not_the_backends() {
        for etype in [
            ErrorType::WriteError,
            ErrorType::ReadError,
            ErrorType::ConnectionClosed,
        ] {
            let e = GatewayError::from_proxy_failure(&failure(etype, ErrorSource::Downstream));
            assert_eq!(e, GatewayError::ClientGone);
            assert!(!e.is_backend_failure());
            assert_eq!(e.status(), 499);
        }
        let slow = failure(ErrorType::ReadTimedout, ErrorSource::Downstream);
        let e = GatewayError::from_proxy_failure(&slow);
        assert_eq!(e, GatewayError::ClientTimeout);
        assert!(!e.is_backend_failure());
    }
}
