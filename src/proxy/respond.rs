//! Answers the gateway makes itself: errors, CORS preflights, redirects, small JSON bodies.
//! An [`Answer`] is a header and a body built together, so the body is written once and its
//! length always matches `Content-Length`.

use crate::error::GatewayError;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::ResponseHeader;

/// A complete answer made by the gateway.
pub struct Answer {
    /// Status and headers.
    pub header: ResponseHeader,
    /// The body (empty for 204, 304 and redirects).
    pub body: Bytes,
}

impl Answer {
    fn new(status: u16, content_type: Option<&'static str>, body: Bytes) -> Answer {
        let mut header = ResponseHeader::build(status, Some(6)).expect("valid status");
        if let Some(ct) = content_type {
            let _ = header.insert_header(header::CONTENT_TYPE, ct);
        }
        let _ = header.insert_header(header::CONTENT_LENGTH, body.len());
        Answer { header, body }
    }

    /// An error: short plain-text body, never cached, never sniffed, with the headers the status
    /// calls for (`Allow`, `Content-Range`, `Retry-After`).
    pub fn error(err: &GatewayError) -> Answer {
        let mut a = Answer::new(
            err.status(),
            Some("text/plain; charset=utf-8"),
            Bytes::from(err.body()),
        );
        let h = &mut a.header;
        let _ = h.insert_header(header::CACHE_CONTROL, "no-store");
        if let Some(seconds) = err.retry_after() {
            let _ = h.insert_header(header::RETRY_AFTER, seconds);
        }
        let _ = h.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        match err {
            GatewayError::MethodNotAllowed { allow } => {
                let _ = h.insert_header(header::ALLOW, allow.as_str());
            }
            GatewayError::RangeNotSatisfiable { size: Some(size) } => {
                let _ = h.insert_header(header::CONTENT_RANGE, format!("bytes */{size}"));
            }
            GatewayError::Denied(access::Denied {
                challenge: Some(challenge),
                ..
            }) => {
                let _ = h.insert_header(header::WWW_AUTHENTICATE, *challenge);
            }
            _ => {}
        }
        a
    }

    /// `204 No Content` with these headers (a CORS preflight answer).
    pub fn no_content(headers: Vec<(HeaderName, HeaderValue)>) -> Answer {
        let mut a = Answer::new(204, None, Bytes::new());
        for (name, value) in headers {
            let _ = a.header.insert_header(name, value);
        }
        a
    }

    /// A redirect (`301`, `302`, `303`, `307`, `308`) to `location`, never cached by shared
    /// caches. `None` when `location` is not a valid header value.
    pub fn redirect(status: u16, location: &str) -> Option<Answer> {
        let location = HeaderValue::from_str(location).ok()?;
        let mut a = Answer::new(status, None, Bytes::new());
        let _ = a.header.insert_header(header::LOCATION, location);
        let _ = a
            .header
            .insert_header(header::CACHE_CONTROL, "private, no-store");
        Some(a)
    }

    /// A small JSON body (already serialised), never cached.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Answer {
        let mut a = Answer::new(status, Some("application/json"), body.into());
        let _ = a.header.insert_header(header::CACHE_CONTROL, "no-store");
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_bodies() {
        for a in [
            Answer::error(&GatewayError::NotFound),
            Answer::json(200, "{\"ok\":true}"),
            Answer::no_content(Vec::new()),
            Answer::redirect(302, "https://bucket.example/key?X-Amz-Signature=1").unwrap(),
        ] {
            let len = a.header.headers[header::CONTENT_LENGTH].to_str().unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), a.body.len());
        }
    }

    #[test]
    fn errors_carry_their_status_headers() {
        let a = Answer::error(&GatewayError::MethodNotAllowed {
            allow: "GET, HEAD".into(),
        });
        assert_eq!(a.header.status.as_u16(), 405);
        assert_eq!(a.header.headers[header::ALLOW], "GET, HEAD");
        assert_eq!(a.header.headers[header::CACHE_CONTROL], "no-store");
        let a = Answer::redirect(302, "/x").unwrap();
        assert_eq!(a.header.headers[header::LOCATION], "/x");
        assert!(Answer::redirect(302, "bad\nvalue").is_none());
    }
}
