//! The one table from gateway errors to HTTP statuses and short response bodies.
//!
//! Every module reports failures as its own error type; the proxy turns them into a
//! [`GatewayError`] and answers with [`GatewayError::status`] and [`GatewayError::body`].
//! Bodies are short, plain text and never reveal backend internals.

use crate::routing::path::PathError;
use pingora::{Error as PingoraError, ErrorType};

/// Everything the gateway may answer instead of a backend's response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The request path was refused by [`crate::routing::path::normalise`].
    #[error("bad request path: {0}")]
    BadPath(#[from] PathError),
    /// The request is malformed in a way other than its path.
    #[error("bad request")]
    BadRequest,
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
}

impl GatewayError {
    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadPath(_) | GatewayError::BadRequest => 400,
            GatewayError::NoRoute | GatewayError::NotFound => 404,
            GatewayError::MethodNotAllowed { .. } => 405,
            GatewayError::Forbidden | GatewayError::CorsRejected => 403,
            GatewayError::RangeNotSatisfiable { .. } => 416,
            GatewayError::PreconditionFailed => 412,
            GatewayError::CredentialsRejected
            | GatewayError::Unreachable
            | GatewayError::BackendFailed => 502,
            GatewayError::Throttled => 503,
            GatewayError::Timeout => 504,
            GatewayError::Internal => 500,
        }
    }

    /// Short plain-text body (one line).
    pub fn body(&self) -> String {
        format!("{}\n", self)
    }

    /// Maps a Pingora proxy failure (connect, TLS, read, timeout) to a gateway error.
    pub fn from_proxy_failure(e: &PingoraError) -> GatewayError {
        use ErrorType::*;
        match e.etype() {
            ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
                GatewayError::Timeout
            }
            ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
            | TLSHandshakeFailure | InvalidCert | HandshakeError | ConnectionClosed | ReadError
            | WriteError => GatewayError::Unreachable,
            HTTPStatus(code) => match code {
                400 => GatewayError::BadRequest,
                404 => GatewayError::NotFound,
                416 => GatewayError::RangeNotSatisfiable { size: None },
                503 => GatewayError::Throttled,
                504 => GatewayError::Timeout,
                _ => GatewayError::BackendFailed,
            },
            _ => match e.esource() {
                pingora::ErrorSource::Upstream => GatewayError::BackendFailed,
                _ => GatewayError::Internal,
            },
        }
    }

    /// Stable label for metrics (`reason` in `assetgate_gateway_errors_total`).
    pub fn label(&self) -> &'static str {
        match self {
            GatewayError::BadPath(_) => "bad_path",
            GatewayError::BadRequest => "bad_request",
            GatewayError::NoRoute => "no_route",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::NotFound => "not_found",
            GatewayError::Forbidden => "forbidden",
            GatewayError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            GatewayError::PreconditionFailed => "precondition_failed",
            GatewayError::CorsRejected => "cors_rejected",
            GatewayError::CredentialsRejected => "credentials_rejected",
            GatewayError::Throttled => "throttled",
            GatewayError::Unreachable => "unreachable",
            GatewayError::Timeout => "timeout",
            GatewayError::BackendFailed => "backend_failed",
            GatewayError::Internal => "internal",
        }
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
        let refused = PingoraError::new(ErrorType::ConnectRefused);
        assert_eq!(GatewayError::from_proxy_failure(&refused).status(), 502);
        let slow = PingoraError::new(ErrorType::ReadTimedout);
        assert_eq!(GatewayError::from_proxy_failure(&slow).status(), 504);
    }
}
