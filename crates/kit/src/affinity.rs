//! What keeps one client on one side: a request's affinity key and the stable hash of it.
//!
//! The same key sources serve a group's sticky assignment (`sticky = "header:X-User-Id"`) and
//! an HTTP pool's consistent hashing (`hash_key = "path"`). Hashes are stable across processes
//! and restarts (FNV-1a with a 64-bit finaliser), so every gateway of a fleet sends one client
//! to the same side.

use crate::params;
use http::{HeaderMap, HeaderName, Method};
use std::net::IpAddr;

/// What steering rules and affinity keys can know about a request.
pub struct RequestFacts<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The normalised request path.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The client address as derived with `trusted_proxies`.
    pub client: Option<IpAddr>,
}

/// Where a request's affinity key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AffinityKey {
    /// The normalised path.
    Path,
    /// The client address (as derived with `trusted_proxies`).
    ClientIp,
    /// A request header's value (all fields, in order).
    Header(HeaderName),
    /// A cookie's value (name compared case-insensitively).
    Cookie(String),
    /// A query parameter's raw value.
    Query(String),
}

impl AffinityKey {
    /// Parses `path`, `client_ip`, `header:NAME`, `cookie:NAME` or `query:NAME`.
    pub fn parse(text: &str) -> Result<AffinityKey, String> {
        let bad = || {
            format!(
                "\"{text}\" is not a key source; use path, client_ip, header:NAME, cookie:NAME or query:NAME"
            )
        };
        match text.split_once(':') {
            None if text == "path" => Ok(AffinityKey::Path),
            None if text == "client_ip" => Ok(AffinityKey::ClientIp),
            Some((_, "")) | None => Err(bad()),
            Some(("header", name)) => HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map(AffinityKey::Header)
                .map_err(|_| format!("\"{name}\" is not a header name")),
            Some(("cookie", name)) => Ok(AffinityKey::Cookie(name.to_string())),
            Some(("query", name)) => Ok(AffinityKey::Query(name.to_string())),
            Some(_) => Err(bad()),
        }
    }

    /// The stable hash of this request's key; `None` when the request does not carry it (no
    /// such header, cookie or parameter, no client address).
    pub fn hash(&self, facts: &RequestFacts<'_>) -> Option<u64> {
        match self {
            AffinityKey::Path => Some(stable_hash(facts.path.as_bytes())),
            AffinityKey::ClientIp => facts.client.map(|ip| match ip {
                std::net::IpAddr::V4(v4) => stable_hash(&v4.octets()),
                std::net::IpAddr::V6(v6) => stable_hash(&v6.octets()),
            }),
            AffinityKey::Header(name) => {
                let mut values = facts.headers.get_all(name).iter().peekable();
                values.peek()?;
                let mut h = Fnv::default();
                for v in values {
                    h.write(v.as_bytes());
                    h.write(b"\n");
                }
                Some(h.finish())
            }
            AffinityKey::Cookie(name) => params::cookies(facts.headers)
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| stable_hash(v.as_bytes())),
            AffinityKey::Query(name) => params::pairs(facts.query.unwrap_or_default())
                .find(|(n, _)| n == name)
                .map(|(_, v)| stable_hash(v.as_bytes())),
        }
    }
}

/// FNV-1a, 64 bits.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(self) -> u64 {
        mix(self.0)
    }
}

/// The splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A hash of `bytes` that is the same in every process, on every machine, in every release.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_sources() {
        assert_eq!(AffinityKey::parse("path"), Ok(AffinityKey::Path));
        assert_eq!(
            AffinityKey::parse("header:X-User-Id"),
            Ok(AffinityKey::Header(HeaderName::from_static("x-user-id")))
        );
        assert!(AffinityKey::parse("header:").is_err());
        assert!(AffinityKey::parse("header:a b").is_err());
        assert!(AffinityKey::parse("body:x").is_err());
    }

    #[test]
    fn keys_come_from_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user-id", "u1".parse().unwrap());
        headers.insert("cookie", "Session=abc".parse().unwrap());
        let facts = RequestFacts {
            method: &Method::GET,
            headers: &headers,
            path: "/a",
            query: Some("k=v"),
            client: None,
        };
        let header = AffinityKey::Header(HeaderName::from_static("x-user-id"));
        assert!(header.hash(&facts).is_some());
        assert_eq!(
            AffinityKey::Cookie("session".into()).hash(&facts),
            Some(stable_hash(b"abc"))
        );
        assert_eq!(
            AffinityKey::Query("k".into()).hash(&facts),
            Some(stable_hash(b"v"))
        );
        assert_eq!(AffinityKey::ClientIp.hash(&facts), None);
        assert_eq!(
            AffinityKey::Header(HeaderName::from_static("x-none")).hash(&facts),
            None
        );
    }

    #[test]
    fn the_hash_is_stable() {
        // Fixed values (FNV-1a 64 + splitmix64, computed independently): a change here would
        // move every sticky client of a fleet.
        assert_eq!(stable_hash(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(stable_hash(b"assetgate"), 0xee7a_097a_c7e2_c3ce);
    }
}
