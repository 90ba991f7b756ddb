//! Asking the in-process origin (the application serves it): where it listens and
//! the requests the proxy sends it, so a cached route reaches the gateway's own content
//! (files of `dir` backends, image variants) through the proxy path like any other backend.
//!
//! The proxy asks `GET /<percent-encoded key>` with [`BACKEND_HEADER`] naming the `dir`
//! backend; kinds the application adds (variants) make requests of their own.

use super::error::OriginError;
use http::header;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use std::path::PathBuf;

/// The request header naming the `dir` backend asked.
pub const BACKEND_HEADER: &str = "x-assetgate-dir";

/// Where this process's in-process origin listens: a socket in the temporary folder named
/// after the process, so an old and a new process of a graceful upgrade never share one.
pub fn socket_path() -> PathBuf {
    std::env::temp_dir().join(format!("assetgate-{}-local.sock", std::process::id()))
}

/// The peer that is this process's in-process origin.
pub fn peer() -> Result<HttpPeer, OriginError> {
    HttpPeer::new_uds(&socket_path().to_string_lossy(), false, String::new())
        .map_err(|_| OriginError::Internal)
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
