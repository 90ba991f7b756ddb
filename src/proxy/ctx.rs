//! Per-request state shared by the proxy phases.

use crate::backend::Backend;
use crate::error::GatewayError;
use crate::routing::RouteMatch;
use bytes::Bytes;
use pingora::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// State carried through one request.
pub struct RequestCtx {
    /// When the request arrived.
    pub started: Instant,
    /// The route, once matched.
    pub matched: Option<RouteMatch<Backend>>,
    /// The normalised request path (decoded once; see `routing::path`).
    pub path: String,
    /// Object key (s3, dir) or encoded origin path and query (http).
    pub key: String,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// Connection attempts to other origin members after a failed connect.
    pub connect_retries: usize,
    /// When the upstream request was sent.
    pub upstream_started: Option<Instant>,
    /// A body that replaces the backend's (its error page), sent at end of stream.
    pub replacement: Option<Bytes>,
    /// The error the gateway answered with, if any.
    pub error: Option<GatewayError>,
}

impl RequestCtx {
    /// Fresh state for a new request.
    pub fn new() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            matched: None,
            path: String::new(),
            key: String::new(),
            tls: false,
            connect_retries: 0,
            upstream_started: None,
            replacement: None,
            error: None,
        }
    }

    /// The matched route's backend (an internal error before routing).
    pub fn backend(&self) -> Result<Arc<Backend>> {
        self.matched
            .as_ref()
            .map(|m| m.backend.clone())
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route matched"))
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
