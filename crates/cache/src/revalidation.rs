//! What a `304 Not Modified` changes in the stored response it validated (RFC 9111 §4.3.4):
//! every header field it carries replaces the stored one of that name, except the fields the
//! stored body depends on.

use http::header::{self, HeaderName};
use pingora::http::ResponseHeader;

/// Fields a 304 never replaces: they describe the stored body (its length, coding, range
/// and digest), pick the stored variant (`Vary`), or identify it (`ETag`: the one the 304
/// validated).
const KEPT: [&str; 6] = [
    "content-length",
    "content-encoding",
    "content-range",
    "content-md5",
    "etag",
    "vary",
];

/// The stored response `stored` as updated by the 304 `not_modified`. The stored `Age` and
/// `Date` go whatever the 304 says: they described the old response, and the 304's own (or
/// none) is what the refreshed entry's age is measured from.
pub fn apply_not_modified(
    stored: &ResponseHeader,
    not_modified: &ResponseHeader,
) -> ResponseHeader {
    let mut merged = stored.clone();
    merged.remove_header(&header::AGE);
    merged.remove_header(&header::DATE);
    let names: Vec<&HeaderName> = not_modified
        .headers
        .keys()
        .filter(|name| !KEPT.contains(&name.as_str()))
        .collect();
    for name in names {
        merged.remove_header(name);
        for value in not_modified.headers.get_all(name) {
            let _ = merged.append_header(name.clone(), value.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(status: u16, pairs: &[(&str, &str)]) -> ResponseHeader {
        let mut h = ResponseHeader::build(status, None).unwrap();
        for (n, v) in pairs {
            h.append_header(n.to_string(), *v).unwrap();
        }
        h
    }

    fn values(h: &ResponseHeader, name: &str) -> Vec<String> {
        h.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_304s_fields_replace_the_stored_ones() {
        let stored = header(
            200,
            &[
                ("content-type", "text/plain"),
                ("content-length", "5"),
                ("etag", "\"a\""),
                ("x-test", "old"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("age", "7200"),
                ("date", "Wed, 01 Jan 2020 00:00:00 GMT"),
                ("cache-control", "max-age=1"),
            ],
        );
        let fresh = header(
            304,
            &[
                ("content-type", "text/plain;charset=utf-8"),
                ("content-length", "10"),
                ("etag", "\"b\""),
                ("x-test", "new"),
                ("set-cookie", "c=3"),
                ("cache-control", "max-age=3600"),
                ("content-security-policy", "default-src 'self'"),
            ],
        );
        let m = apply_not_modified(&stored, &fresh);
        assert_eq!(m.status, 200);
        assert_eq!(values(&m, "content-type"), ["text/plain;charset=utf-8"]);
        assert_eq!(values(&m, "x-test"), ["new"]);
        assert_eq!(values(&m, "set-cookie"), ["c=3"]);
        assert_eq!(values(&m, "cache-control"), ["max-age=3600"]);
        assert_eq!(
            values(&m, "content-security-policy"),
            ["default-src 'self'"]
        );
        // Kept: they describe the stored body.
        assert_eq!(values(&m, "content-length"), ["5"]);
        assert_eq!(values(&m, "etag"), ["\"a\""]);
        // The old response's age no longer applies.
        assert!(values(&m, "age").is_empty());
        assert!(values(&m, "date").is_empty());
    }

    #[test]
    fn fields_the_304_omits_are_kept() {
        let stored = header(200, &[("x-test", "stored"), ("content-type", "a/b")]);
        let m = apply_not_modified(&stored, &header(304, &[("date", "x")]));
        assert_eq!(values(&m, "x-test"), ["stored"]);
        assert_eq!(values(&m, "content-type"), ["a/b"]);
        assert_eq!(values(&m, "date"), ["x"]);
    }
}
