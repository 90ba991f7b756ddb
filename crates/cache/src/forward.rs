//! What of a client's request reaches the backend of a cached route.
//!
//! A shared cache may replay an answer only to requests the backend would have answered the
//! same way, so whatever of the request reaches the backend is either in the key or removed
//! before it is sent. The key holds the host, the path, the query as forwarded and the
//! route's `key_headers` ([`super::key`]); this module removes the request headers that ask
//! an origin, or the framework behind it, to act on another URL, method, scheme, port, prefix
//! or host than the one keyed. Cache-poisoning research finds these unkeyed inputs first.
//! A route that needs one of them names it in `key_headers`: it then reaches the origin and
//! is part of the key.

use http::HeaderName;
use pingora::http::RequestHeader;

/// Request headers that override what an origin takes the request to be. Removed on cached
/// routes unless the route keys them (`key_headers`). `X-Forwarded-For`, `-Host` and
/// `-Proto` are not here: the gateway always sets those itself.
pub const OVERRIDE_HEADERS: &[&str] = &[
    // Another URL than the request line's (IIS, Symfony, Zend, Laravel, ...).
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
    // Another method than the request line's.
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    // Another scheme, port or host than the ones keyed.
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-url-scheme",
    "front-end-https",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-host",
    "x-original-host",
    "forwarded",
];

/// Removes [`OVERRIDE_HEADERS`] from a request about to be sent for a cached route, except the
/// ones the route keys (`keyed`).
pub fn strip_unkeyed(req: &mut RequestHeader, keyed: &[HeaderName]) {
    for name in OVERRIDE_HEADERS {
        if !keyed.iter().any(|k| k.as_str() == *name) {
            req.remove_header(*name);
        }
    }
}

/// Header names a route may not list in `key_headers`, and why: the gateway decides them
/// itself, or they describe the connection rather than the request.
pub fn refused_key_header(name: &str) -> Option<&'static str> {
    match name {
        "host" | "x-forwarded-for" | "x-forwarded-host" | "x-forwarded-proto" => {
            Some("is set by the gateway itself and already keyed")
        }
        "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer"
        | "transfer-encoding" | "upgrade" | "content-length" => {
            Some("describes the connection, not the request")
        }
        "authorization" | "cookie" => {
            Some("holds credentials; a shared cache never keys them (use an access scheme)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_headers_are_removed_unless_keyed() {
        let mut req = RequestHeader::build("GET", b"/a", None).unwrap();
        for name in OVERRIDE_HEADERS {
            req.insert_header(*name, "/admin").unwrap();
        }
        req.insert_header("x-custom", "kept").unwrap();
        let keyed = [HeaderName::from_static("x-forwarded-prefix")];
        strip_unkeyed(&mut req, &keyed);
        for name in OVERRIDE_HEADERS {
            assert_eq!(
                req.headers.contains_key(*name),
                *name == "x-forwarded-prefix",
                "{name}"
            );
        }
        assert!(req.headers.contains_key("x-custom"));
    }

    #[test]
    fn credentials_and_framing_are_never_keyed() {
        assert!(refused_key_header("cookie").is_some());
        assert!(refused_key_header("x-forwarded-prefix").is_none());
    }
}
