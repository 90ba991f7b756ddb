//! Which other URIs a successful unsafe request invalidates (RFC 9111 §4.4): the targets of
//! the response's `Location` and `Content-Location`, but only on the request's own host —
//! "a cache MUST NOT invalidate a URI ... if the host part of that URI differs from the
//! host part in the target URI", or one origin could evict another's entries.

use http::{header, HeaderMap, Uri};

/// One URI a response names, on the request's host: its raw path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The path, still percent-encoded (as a request line carries it).
    pub path: String,
    /// The query, without `?`.
    pub query: Option<String>,
}

/// The targets of `Location` and `Content-Location` in `headers` on `host` (canonical: lower
/// case, no port), relative references resolved against `request_path`.
pub fn named_targets(headers: &HeaderMap, host: &str, request_path: &str) -> Vec<Target> {
    let mut targets = Vec::new();
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(reference) = headers.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some(t) = resolve(reference.trim(), host, request_path) {
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    targets
}

/// `reference` resolved against `request_path` (RFC 3986 §5.2, for the forms a response
/// uses: absolute, network-path, absolute-path, relative-path); `None` when it names another
/// host, another scheme than HTTP(S), or is not a URI reference at all.
fn resolve(reference: &str, host: &str, request_path: &str) -> Option<Target> {
    let reference = reference.split('#').next().unwrap_or_default();
    if reference.is_empty() {
        return None;
    }
    let absolute = if reference.starts_with("//") {
        Some(format!("http:{reference}"))
    } else if has_scheme(reference) {
        Some(reference.to_string())
    } else {
        None
    };
    let (path, query) = match absolute {
        Some(text) => {
            let uri: Uri = text.parse().ok()?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) {
                return None;
            }
            let named = uri.host()?.trim_end_matches('.');
            if !named.eq_ignore_ascii_case(host) {
                return None;
            }
            let path = match uri.path() {
                "" => "/".to_string(),
                p => p.to_string(),
            };
            (path, uri.query().map(str::to_string))
        }
        None => {
            let (path, query) = match reference.split_once('?') {
                Some((p, q)) => (p, Some(q.to_string())),
                None => (reference, None),
            };
            let path = if path.starts_with('/') {
                path.to_string()
            } else {
                let dir = &request_path[..request_path.rfind('/').map_or(0, |i| i + 1)];
                format!("{}{path}", if dir.is_empty() { "/" } else { dir })
            };
            (path, query)
        }
    };
    Some(Target {
        path: remove_dot_segments(&path),
        query,
    })
}

/// `scheme ":"` at the start (RFC 3986 §3.1).
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !scheme.contains('/')
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn targets(location: Option<&str>, content_location: Option<&str>) -> Vec<Target> {
        let mut h = HeaderMap::new();
        if let Some(l) = location {
            h.insert(header::LOCATION, HeaderValue::from_str(l).unwrap());
        }
        if let Some(c) = content_location {
            h.insert(header::CONTENT_LOCATION, HeaderValue::from_str(c).unwrap());
        }
        named_targets(&h, "a.test", "/items/new")
    }

    fn t(path: &str, query: Option<&str>) -> Target {
        Target {
            path: path.into(),
            query: query.map(str::to_string),
        }
    }

    #[test]
    fn forms_of_reference() {
        assert_eq!(targets(Some("/items/42"), None), [t("/items/42", None)]);
        assert_eq!(
            targets(Some("42?x=1#frag"), None),
            [t("/items/42", Some("x=1"))]
        );
        assert_eq!(targets(Some("../top"), None), [t("/top", None)]);
        assert_eq!(targets(Some("./"), None), [t("/items/", None)]);
        assert_eq!(
            targets(Some("http://A.test:8080/p?q"), None),
            [t("/p", Some("q"))]
        );
        assert_eq!(targets(Some("https://a.test"), None), [t("/", None)]);
        assert_eq!(targets(Some("//a.test/n"), None), [t("/n", None)]);
        assert_eq!(
            targets(Some("/x"), Some("/y")),
            [t("/x", None), t("/y", None)]
        );
        assert_eq!(targets(Some("/x"), Some("/x")), [t("/x", None)]);
    }

    #[test]
    fn other_hosts_and_schemes_are_never_invalidated() {
        assert!(targets(Some("http://b.test/items/42"), None).is_empty());
        assert!(targets(Some("//b.test/x"), None).is_empty());
        assert!(targets(Some("http://a.test.evil/x"), None).is_empty());
        assert!(targets(Some("mailto:x@a.test"), None).is_empty());
        assert!(targets(Some("ftp://a.test/x"), None).is_empty());
        assert!(targets(Some(""), None).is_empty());
        assert!(targets(None, None).is_empty());
    }

    proptest::proptest! {
        /// Any Location value: never a panic, and never a target on another host.
        #[test]
        fn any_reference_resolves_to_this_host_or_nothing(
            reference in proptest::prop_oneof![
                "[ -~]{0,60}",
                "(https?:|HTTP:|ftp:)?//[a-zA-Z0-9.:@\\[\\]-]{0,20}([/?#][ -~]{0,20})?",
            ],
            request_path in "/[ -~]{0,30}",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&reference) {
                h.insert(header::LOCATION, v);
            }
            for target in named_targets(&h, "a.test", &request_path) {
                proptest::prop_assert!(target.path.starts_with('/'));
                if let Some(rest) = reference.split("//").nth(1) {
                    if has_scheme(&reference) || reference.starts_with("//") {
                        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                        let host = authority.rsplit('@').next().unwrap_or_default();
                        let host = host.split(':').next().unwrap_or_default();
                        proptest::prop_assert!(host.eq_ignore_ascii_case("a.test"), "{}", reference);
                    }
                }
            }
        }
    }
}
