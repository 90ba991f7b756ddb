//! Conditional requests (RFC 9110 §13) for representations the gateway serves itself.

use http::HeaderMap;
use std::time::SystemTime;

/// The outcome of evaluating preconditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the representation.
    Proceed,
    /// Answer 304 Not Modified.
    NotModified,
    /// Answer 412 Precondition Failed.
    Failed,
}

/// Weak comparison of an entity tag against a list header (`*`, `"a", W/"b"`).
fn list_matches(list: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let target = strip(etag);
    list.split(',')
        .any(|candidate| candidate.trim() == "*" || strip(candidate) == target)
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn date(headers: &HeaderMap, name: http::header::HeaderName) -> Option<SystemTime> {
    header(headers, name).and_then(|v| httpdate::parse_http_date(v).ok())
}

/// Whole seconds, as HTTP dates carry.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in RFC order.
pub fn evaluate(headers: &HeaderMap, etag: &str, modified: SystemTime) -> Precondition {
    use http::header::*;
    if let Some(list) = header(headers, IF_MATCH) {
        if !list_matches(list, etag) {
            return Precondition::Failed;
        }
    } else if let Some(since) = date(headers, IF_UNMODIFIED_SINCE) {
        if secs(modified) > secs(since) {
            return Precondition::Failed;
        }
    }
    if let Some(list) = header(headers, IF_NONE_MATCH) {
        if list_matches(list, etag) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = date(headers, IF_MODIFIED_SINCE) {
        if secs(modified) <= secs(since) {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// Whether an `If-Range` header (if any) still allows a partial answer.
pub fn if_range_allows(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    match header(headers, http::header::IF_RANGE) {
        None => true,
        Some(v) if v.trim_start().starts_with('"') => v.trim() == etag,
        Some(v) => httpdate::parse_http_date(v).is_ok_and(|d| secs(d) == secs(modified)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn preconditions() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(t);
        let etag = "\"abc\"";
        assert_eq!(evaluate(&headers(&[]), etag, t), Precondition::Proceed);
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "\"abc\"")]), etag, t),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "W/\"abc\", \"x\"")]), etag, t),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "\"x\"")]), etag, t),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&headers(&[("if-modified-since", &date)]), etag, t),
            Precondition::NotModified
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            evaluate(
                &headers(&[("if-none-match", "\"x\""), ("if-modified-since", &date)]),
                etag,
                t
            ),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&headers(&[("if-match", "\"x\"")]), etag, t),
            Precondition::Failed
        );
        assert!(if_range_allows(
            &headers(&[("if-range", "\"abc\"")]),
            etag,
            t
        ));
        assert!(!if_range_allows(
            &headers(&[("if-range", "\"zzz\"")]),
            etag,
            t
        ));
    }
}
