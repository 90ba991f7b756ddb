//! Conditional requests (RFC 9110 §13) for representations the gateway serves itself.

use http::{header, HeaderMap, HeaderName};
use std::time::SystemTime;

/// Request headers that make an answer depend on the representation the server holds
/// (`Range` and the RFC 9110 preconditions): forwarded to the backends that answer them, and
/// the reason a request takes the cache's full hit path.
pub const REQUEST_CONDITIONS: [HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

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

/// How two entity tags are compared (RFC 9110 §8.8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and their opaque parts equal (If-Match, If-Range).
    Strong,
    /// Opaque parts equal, weakness ignored (If-None-Match).
    Weak,
}

/// Whether `candidate` matches the representation's `etag` under `how`.
fn tags_match(candidate: &str, etag: &str, how: Comparison) -> bool {
    let (candidate, etag) = (candidate.trim(), etag.trim());
    let candidate_weak = candidate.starts_with("W/");
    let etag_weak = etag.starts_with("W/");
    if how == Comparison::Strong && (candidate_weak || etag_weak) {
        return false;
    }
    candidate.trim_start_matches("W/") == etag.trim_start_matches("W/")
}

/// Whether a list header (`*`, `"a", W/"b"`) names the representation's `etag`.
fn list_matches(list: &str, etag: &str, how: Comparison) -> bool {
    list.split(',')
        .any(|candidate| candidate.trim() == "*" || tags_match(candidate, etag, how))
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

/// Whether `If-None-Match` names the representation's `etag` (or is `*`), compared weakly:
/// for answers with no modification date (image variants), where only this condition
/// applies.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    list_header_matches(headers, http::header::IF_NONE_MATCH, etag, Comparison::Weak)
        .unwrap_or(false)
}

/// Whether a list header names `etag`, over all its field lines (RFC 9110 §5.3: several
/// lines are one comma-separated list); `None` when it is absent.
fn list_header_matches(
    headers: &HeaderMap,
    name: HeaderName,
    etag: &str,
    how: Comparison,
) -> Option<bool> {
    let mut lines = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .peekable();
    lines.peek()?;
    Some(lines.any(|list| list_matches(list, etag, how)))
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in RFC order.
pub fn evaluate(headers: &HeaderMap, etag: &str, modified: SystemTime) -> Precondition {
    use http::header::*;
    if let Some(matched) = list_header_matches(headers, IF_MATCH, etag, Comparison::Strong) {
        if !matched {
            return Precondition::Failed;
        }
    } else if let Some(since) = date(headers, IF_UNMODIFIED_SINCE) {
        if secs(modified) > secs(since) {
            return Precondition::Failed;
        }
    }
    if let Some(matched) = list_header_matches(headers, IF_NONE_MATCH, etag, Comparison::Weak) {
        if matched {
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
        Some(v) if v.trim_start().starts_with('"') || v.trim_start().starts_with("W/") => {
            tags_match(v, etag, Comparison::Strong)
        }
        Some(v) => httpdate::parse_http_date(v).is_ok_and(|d| secs(d) == secs(modified)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn preconditions_read_every_line_of_a_list_header() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let lines = |name: HeaderName, values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(name.clone(), v.parse().unwrap());
            }
            h
        };
        // Two lines are one list (RFC 9110 §5.3): the second line's tag counts too.
        let inm = lines(http::header::IF_NONE_MATCH, &["\"a\"", "\"b\""]);
        assert_eq!(evaluate(&inm, "\"b\"", now), Precondition::NotModified);
        let im = lines(http::header::IF_MATCH, &["\"zzz\"", "\"b\""]);
        assert_eq!(evaluate(&im, "\"b\"", now), Precondition::Proceed);
        let im = lines(http::header::IF_MATCH, &["\"zzz\"", "\"y\""]);
        assert_eq!(evaluate(&im, "\"b\"", now), Precondition::Failed);
    }

    #[test]
    fn none_match_compares_weakly_across_lines() {
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, "\"a\""));
        h.append(http::header::IF_NONE_MATCH, "\"x\"".parse().unwrap());
        h.append(
            http::header::IF_NONE_MATCH,
            "W/\"a\", \"y\"".parse().unwrap(),
        );
        assert!(none_match(&h, "\"a\""));
        assert!(!none_match(&h, "\"b\""));
        let mut any = HeaderMap::new();
        any.insert(http::header::IF_NONE_MATCH, "*".parse().unwrap());
        assert!(none_match(&any, "\"b\""));
    }

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
        // If-Match compares strongly: a weak tag never matches (RFC 9110 §13.1.1).
        assert_eq!(
            evaluate(&headers(&[("if-match", "W/\"abc\"")]), etag, t),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&headers(&[("if-match", "\"x\", \"abc\"")]), etag, t),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&headers(&[("if-match", "*")]), etag, t),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&headers(&[("if-match", "\"abc\"")]), "W/\"abc\"", t),
            Precondition::Failed
        );
        assert!(!if_range_allows(
            &headers(&[("if-range", "W/\"abc\"")]),
            etag,
            t
        ));
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

    fn hostile_header() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            Just(b"\"".to_vec()),
            Just(b"W/".to_vec()),
            Just(b",".to_vec()),
            Just(b"*".to_vec()),
            Just(b" ".to_vec()),
            Just(b"abc".to_vec()),
            Just(b"Tue, 14 Nov 2023 22:13:20 GMT".to_vec()),
            any::<u8>().prop_map(|b| vec![b]),
        ];
        proptest::collection::vec(token, 0..16).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn any_precondition_headers_give_an_answer(
            values in proptest::collection::vec(hostile_header(), 5),
        ) {
            let mut h = HeaderMap::new();
            for (name, value) in ["if-match", "if-none-match", "if-modified-since",
                "if-unmodified-since", "if-range"].iter().zip(values) {
                if let Ok(v) = http::HeaderValue::from_bytes(&value) {
                    h.insert(*name, v);
                }
            }
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let _ = evaluate(&h, "\"abc\"", t);
            let _ = if_range_allows(&h, "\"abc\"", t);
        }
    }
}
