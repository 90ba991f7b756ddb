//! Hop-by-hop header fields (RFC 9110 §7.6.1): they describe one connection, not the message,
//! so a proxy removes them from what it passes on and a cache never stores them. The request
//! side is Pingora's (its upstream request policy strips them); this is the response side,
//! applied to every backend answer before it is stored or sent on.

use http::header::{self, HeaderName};
use pingora::http::ResponseHeader;

/// Hop-by-hop fields every proxy removes, whether or not `Connection` names them.
const STANDARD: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// Fields of the same kind that `http` has no constant for.
const NAMED: [&str; 2] = ["keep-alive", "proxy-connection"];

/// Removes the hop-by-hop fields of a response: every field `Connection` names, then the
/// standard ones. The message's framing is the writer's to set again (Pingora frames what it
/// sends by `Content-Length`, else chunked).
pub fn strip_response(resp: &mut ResponseHeader) {
    let nominated: Vec<HeaderName> = crate::fields::list_members(&resp.headers, header::CONNECTION)
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect();
    for name in &nominated {
        resp.remove_header(name);
    }
    for name in &STANDARD {
        resp.remove_header(name);
    }
    for name in NAMED {
        resp.remove_header(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominated_and_standard_fields_go_end_to_end_fields_stay() {
        let mut h = ResponseHeader::build(200, None).unwrap();
        h.insert_header("connection", "close, X-Secret , keep-alive")
            .unwrap();
        h.append_header("connection", "x-other").unwrap();
        for (name, value) in [
            ("x-secret", "1"),
            ("x-other", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "h2c"),
            ("cache-control", "max-age=60"),
            ("etag", "\"a\""),
        ] {
            h.insert_header(name, value).unwrap();
        }
        strip_response(&mut h);
        let left: Vec<&str> = h.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["cache-control", "etag"]);
        let mut wire = Vec::new();
        h.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).unwrap().to_ascii_lowercase();
        assert!(
            !wire.contains("x-secret") && !wire.contains("transfer-encoding"),
            "{wire}"
        );
    }

    #[test]
    fn a_malformed_connection_value_removes_nothing_else() {
        let mut h = ResponseHeader::build(200, None).unwrap();
        h.insert_header("connection", "bad token, ").unwrap();
        h.insert_header("etag", "\"a\"").unwrap();
        strip_response(&mut h);
        assert!(h.headers.contains_key("etag"));
        assert!(!h.headers.contains_key("connection"));
    }
}
