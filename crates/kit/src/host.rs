//! The request's authority: which virtual host a request is for (RFC 9110 §7.2, RFC 9112 §3.2).
//!
//! [`request_host`] picks the authority a request names: the absolute-form or HTTP/2
//! `:authority` when present (RFC 9112 §3.2.2 says it wins over `Host`), else the single `Host`
//! header. [`parse_host`] checks it against RFC 3986's `host [ ":" port ]` grammar and returns the
//! host without its port. Anything else (an unclosed `[`, a non-numeric port, a space, two Host
//! headers, no Host at all on HTTP/1.1) is a [`HostError`], answered 400 before routing.

use http::{header, Version};
use pingora::http::RequestHeader;
use pingora::protocols::http::authority::raw_target_authority;

/// Why a request's authority was refused (always answered with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// An HTTP/1.1 request without a Host header or an authority in its target.
    #[error("missing Host header")]
    Missing,
    /// More than one Host header.
    #[error("more than one Host header")]
    Repeated,
    /// The value does not follow `host [ ":" port ]`.
    #[error("malformed Host header")]
    Malformed,
}

/// Longest host name accepted (DNS names are at most 253 characters; a little slack for ports).
const MAX_HOST_BYTES: usize = 300;

/// The host (without port) a request is addressed to; empty when an HTTP/1.0 request names none.
pub fn request_host(req: &RequestHeader) -> Result<&str, HostError> {
    if let Some(authority) = req.uri.authority() {
        return parse_host(authority.as_str().as_bytes());
    }
    let mut values = req.headers.get_all(header::HOST).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => parse_host(v.as_bytes()),
        (Some(_), Some(_)) => Err(HostError::Repeated),
        // An absolute-form target names its host itself (RFC 9112 §3.2.2); Pingora keeps it
        // off the parsed URI, and refuses a Host that differs from it.
        (None, _) => match raw_target_authority(req.raw_path()).authority() {
            Some(authority) => parse_host(authority),
            None if req.version <= Version::HTTP_10 => Ok(""),
            None => Err(HostError::Missing),
        },
    }
}

/// A host name as the router matches it and tokens bind it: lower-case, no trailing dot.
/// Borrowed when already canonical (most clients send lower-case names).
pub fn canonical(host: &str) -> std::borrow::Cow<'_, str> {
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    }
}

/// Checks `host [ ":" port ]` and returns the host part (brackets kept for IPv6 literals).
pub fn parse_host(value: &[u8]) -> Result<&str, HostError> {
    if value.len() > MAX_HOST_BYTES {
        return Err(HostError::Malformed);
    }
    let text = std::str::from_utf8(value).map_err(|_| HostError::Malformed)?;
    let (host, port) = if text.starts_with('[') {
        let close = text.find(']').ok_or(HostError::Malformed)?;
        let literal = &text[1..close];
        if literal.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(HostError::Malformed);
        }
        let rest = &text[close + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => p,
            None if rest.is_empty() => "",
            None => return Err(HostError::Malformed),
        };
        (&text[..=close], port)
    } else {
        let (host, port) = match text.rsplit_once(':') {
            // A port needs a host: `Host: :` or `Host: :80` names nothing.
            Some(("", _)) => return Err(HostError::Malformed),
            Some(split) => split,
            None => (text, ""),
        };
        if !host.bytes().all(reg_name_byte) || !valid_escapes(host) {
            return Err(HostError::Malformed);
        }
        (host, port)
    };
    if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::Malformed);
    }
    Ok(host)
}

/// RFC 3986 `reg-name` / IPv4 characters: unreserved, sub-delims and `%` (checked separately).
fn reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
        )
}

/// Every `%` starts a two-hex-digit escape.
fn valid_escapes(host: &str) -> bool {
    let bytes = host.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(parse_host(b"cdn.example.com"), Ok("cdn.example.com"));
        assert_eq!(parse_host(b"cdn.example.com:8443"), Ok("cdn.example.com"));
        assert_eq!(parse_host(b"cdn.example.com:"), Ok("cdn.example.com"));
        assert_eq!(parse_host(b"127.0.0.1:80"), Ok("127.0.0.1"));
        assert_eq!(parse_host(b"[::1]:8080"), Ok("[::1]"));
        assert_eq!(parse_host(b"[2001:db8::1]"), Ok("[2001:db8::1]"));
        assert_eq!(parse_host(b""), Ok(""));
    }

    #[test]
    fn malformed_hosts_are_errors_not_panics() {
        for bad in [
            &b"["[..],
            b"[::1",
            b"[",
            b"[]",
            b"[::1]x",
            b"[::1]:x",
            b"[zz]:80",
            b"a b",
            b"host:port",
            b"host:123456",
            b"a/b",
            b"a@b",
            b"a%zz",
            b"a%",
            b"\xff\xfe",
            b"h\x00st",
            b":",
            b":80",
        ] {
            assert_eq!(
                parse_host(bad),
                Err(HostError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn authority_rules() {
        let mut req = RequestHeader::build("GET", b"/a", None).unwrap();
        assert_eq!(request_host(&req), Err(HostError::Missing));
        req.set_version(Version::HTTP_10);
        assert_eq!(request_host(&req), Ok(""));
        req.set_version(Version::HTTP_11);
        req.append_header("host", "a.example").unwrap();
        assert_eq!(request_host(&req), Ok("a.example"));
        req.append_header("host", "b.example").unwrap();
        assert_eq!(request_host(&req), Err(HostError::Repeated));
        let mut abs = RequestHeader::build("GET", b"/a", None).unwrap();
        abs.set_uri(http::Uri::from_static("http://c.example:81/a"));
        abs.append_header("host", "ignored.example").unwrap();
        assert_eq!(request_host(&abs), Ok("c.example"));
    }

    fn hostile_host() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            Just(b"[".to_vec()),
            Just(b"]".to_vec()),
            Just(b":".to_vec()),
            Just(b"::".to_vec()),
            Just(b"%".to_vec()),
            Just(b"%4".to_vec()),
            Just(b"1".to_vec()),
            Just(b"example".to_vec()),
            Just(b".".to_vec()),
            Just(vec![0xc3]),
            any::<u8>().prop_map(|b| vec![b]),
        ];
        proptest::collection::vec(token, 0..24).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn any_bytes_give_a_host_or_an_error(value in hostile_host()) {
            if let Ok(host) = parse_host(&value) {
                // What comes back is a prefix of the input with no port.
                prop_assert!(value.starts_with(host.as_bytes()));
                prop_assert!(!host.starts_with('[') || host.ends_with(']'));
            }
        }

        #[test]
        fn random_bytes_never_panic(value in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_host(&value);
        }
    }
}
