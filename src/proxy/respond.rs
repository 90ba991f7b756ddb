//! Answers the gateway writes itself: errors and CORS preflights.

use crate::error::GatewayError;
use bytes::Bytes;
use http::header;
use pingora::http::ResponseHeader;

/// The header of an error answer: short plain-text body, never cached, never sniffed.
pub fn error_header(err: &GatewayError) -> ResponseHeader {
    let body_len = err.body().len();
    let mut resp = ResponseHeader::build(err.status(), Some(6)).expect("valid status");
    let _ = resp.insert_header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    let _ = resp.insert_header(header::CONTENT_LENGTH, body_len);
    let _ = resp.insert_header(header::CACHE_CONTROL, "no-store");
    let _ = resp.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    match err {
        GatewayError::MethodNotAllowed { allow } => {
            let _ = resp.insert_header(header::ALLOW, allow.as_str());
        }
        GatewayError::RangeNotSatisfiable { size: Some(size) } => {
            let _ = resp.insert_header(header::CONTENT_RANGE, format!("bytes */{size}"));
        }
        GatewayError::Throttled => {
            let _ = resp.insert_header(header::RETRY_AFTER, "1");
        }
        _ => {}
    }
    resp
}

/// The body of an error answer.
pub fn error_body(err: &GatewayError) -> Bytes {
    Bytes::from(err.body())
}
