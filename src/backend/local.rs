//! Asking the in-process origin (the application serves it): where it listens and
//! the requests the proxy sends it, so a cached route reaches the gateway's own content
//! (files of `dir` backends, image variants) through the proxy path like any other backend.
//!
//! The proxy asks `GET /<percent-encoded key>` with [`BACKEND_HEADER`] naming the `dir`
//! backend, or the variant's canonical path with the route's source limits.

use super::error::OriginError;
use crate::variants::builder::LIMITS_HEADER;
use http::header;
use pingora::http::RequestHeader;
use std::path::PathBuf;

/// The request header naming the `dir` backend asked.
pub const BACKEND_HEADER: &str = "x-assetgate-dir";

/// Where this process's in-process origin listens: a socket in the temporary folder named
/// after the process, so an old and a new process of a graceful upgrade never share one.
pub fn socket_path() -> PathBuf {
    std::env::temp_dir().join(format!("assetgate-{}-local.sock", std::process::id()))
}

/// The request the proxy sends the in-process origin for `key` of backend `name`.
pub fn request(req: &RequestHeader, name: &str, key: &str) -> Result<RequestHeader, OriginError> {
    let path = format!("/{}", kit::path::encode(key));
    let mut out = RequestHeader::build(req.method.clone(), path.as_bytes(), None)
        .map_err(|_| OriginError::Internal)?;
    let _ = out.insert_header(header::HOST, "localhost");
    let _ = out.insert_header(BACKEND_HEADER, name);
    for name in kit::conditional::REQUEST_CONDITIONS {
        if let Some(v) = req.headers.get(&name) {
            let _ = out.insert_header(name, v.clone());
        }
    }
    Ok(out)
}

/// The request the proxy sends the in-process origin for the variant at canonical `path`,
/// with the route's source `limits`.
pub fn variant_request(
    req: &RequestHeader,
    path: &str,
    limits: &str,
) -> Result<RequestHeader, OriginError> {
    let encoded = kit::path::encode(path).to_string();
    let mut out = RequestHeader::build(req.method.clone(), encoded.as_bytes(), None)
        .map_err(|_| OriginError::Internal)?;
    let _ = out.insert_header(header::HOST, "localhost");
    let _ = out.insert_header(LIMITS_HEADER, limits);
    if let Some(v) = req.headers.get(header::IF_NONE_MATCH) {
        let _ = out.insert_header(header::IF_NONE_MATCH, v.clone());
    }
    Ok(out)
}
