//! Cache keys: which requests share a stored response.
//!
//! A key is the configured host label, the route, who serves it (the steering group and
//! backend, so a canary's answer never reaches a default-group client), what the backend is
//! asked (the object key, or the origin path), and the query parameters the route lets into
//! the key. Signing parameters never get in: buckets and directories never see the query, and
//! an origin's query has the route's credential parameters removed before this sees it.
//!
//! Each part is length-prefixed, so no two different part lists frame to the same bytes. The
//! tiers store entries under [`EntryKey`], the full SHA-256 of those bytes and the `Vary`
//! variance, never truncated (seed 000 truncated its prompts and different content shared a
//! key). pingora-cache's own 128-bit hash is set from the same digest once per request; it only
//! names the request's fill lock, never a stored entry.

use pingora::cache::key::{CacheHashKey, HashBinary};
use pingora::cache::CacheKey;
use sha2::{Digest, Sha256};

/// What a stored response is filed under in every tier: SHA-256 over the framed key and the
/// variance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey(pub [u8; 32]);

impl EntryKey {
    /// The entry key of a pingora cache key (primary bytes and variance, if any).
    pub fn of(key: &CacheKey) -> EntryKey {
        EntryKey::of_primary(key.primary_key(), key.variance_bin().as_ref())
    }

    /// The entry key of framed primary key bytes and a variance.
    pub fn of_primary(primary: &[u8], variance: Option<&HashBinary>) -> EntryKey {
        let mut hasher = Sha256::new();
        hasher.update(primary);
        if let Some(variance) = variance {
            hasher.update([1u8]);
            hasher.update(variance);
        } else {
            hasher.update([0u8]);
        }
        EntryKey(hasher.finalize().into())
    }

    /// The key written as [`EntryKey::hex`] writes it.
    pub fn from_hex(text: &str) -> Option<EntryKey> {
        if text.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(EntryKey(key))
    }

    /// Lower-case hex (file names, Redis keys, logs).
    pub fn hex(&self) -> String {
        crate::hex::encode(&self.0)
    }
}

/// The parts of a request that decide which stored response answers it.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// The host's metrics label (its first configured name).
    pub host: &'a str,
    /// The route's name.
    pub route: &'a str,
    /// Who serves: `group/backend` or the backend's name.
    pub served_by: &'a str,
    /// The object key (buckets, directories) or decoded origin path.
    pub object: &'a str,
    /// The query the backend sees (origins only; credential parameters already removed).
    pub query: Option<&'a str>,
    /// Query parameter names allowed into the key; `None`: every parameter the backend sees.
    pub query_keys: Option<&'a [String]>,
}

impl KeyParts<'_> {
    /// The framed primary key bytes.
    pub fn primary(&self) -> Vec<u8> {
        let query = normalised_query(self.query, self.query_keys);
        let parts: [&[u8]; 5] = [
            self.host.as_bytes(),
            self.route.as_bytes(),
            self.served_by.as_bytes(),
            self.object.as_bytes(),
            query.as_bytes(),
        ];
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 6).sum());
        for part in parts {
            use std::io::Write;
            let _ = write!(out, "{}:", part.len());
            out.extend_from_slice(part);
        }
        out
    }

    /// The entry key of this request's response when it has no `Vary` variance.
    pub fn entry_key(&self) -> EntryKey {
        EntryKey::of_primary(&self.primary(), None)
    }

    /// The pingora cache key, with its lock hash taken from the full digest.
    pub fn cache_key(&self) -> CacheKey {
        let mut key = CacheKey::new(self.primary(), "");
        let digest = EntryKey::of(&key);
        let mut bin: HashBinary = Default::default();
        let n = bin.len();
        bin.copy_from_slice(&digest.0[..n]);
        key.set_primary_bin_override(bin);
        key
    }
}

/// The query's parameters (only `allowed` ones, when given), each decoded then re-encoded
/// the same way, sorted: `?b=2&a=1` and `?a=%31&b=2` share a key.
fn normalised_query(query: Option<&str>, allowed: Option<&[String]>) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(n, _)| allowed.is_none_or(|a| a.iter().any(|k| k == n)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encode(n));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// A query's `name=value` pairs, each side decoded (`%XX`, and `+` as a space).
pub fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(n), decode(v))
        })
}

fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(object: &'a str, query: Option<&'a str>) -> KeyParts<'a> {
        KeyParts {
            host: "cdn",
            route: "img",
            served_by: "media",
            object,
            query,
            query_keys: None,
        }
    }

    #[test]
    fn framing_keeps_parts_apart() {
        let a = KeyParts {
            route: "ab",
            object: "c",
            ..parts("", None)
        };
        let b = KeyParts {
            route: "a",
            object: "bc",
            ..parts("", None)
        };
        assert_ne!(a.primary(), b.primary());
        assert_ne!(EntryKey::of(&a.cache_key()), EntryKey::of(&b.cache_key()));
    }

    #[test]
    fn query_order_and_encoding_do_not_split_the_key() {
        let one = parts("p", Some("b=2&a=1")).primary();
        let two = parts("p", Some("a=%31&b=2")).primary();
        assert_eq!(one, two);
        assert_ne!(one, parts("p", Some("a=1&b=3")).primary());
        assert_ne!(one, parts("p", None).primary());
    }

    #[test]
    fn only_allowed_parameters_enter_the_key() {
        let keys = vec!["w".to_string()];
        let with = |q| KeyParts {
            query_keys: Some(&keys),
            ..parts("p", Some(q))
        };
        assert_eq!(with("w=100&cb=1").primary(), with("cb=2&w=100").primary());
        assert_ne!(with("w=100").primary(), with("w=200").primary());
    }

    #[test]
    fn group_and_backend_are_part_of_the_key() {
        let canary = KeyParts {
            served_by: "web/canary",
            ..parts("p", None)
        };
        assert_ne!(canary.primary(), parts("p", None).primary());
    }

    #[test]
    fn variance_changes_the_entry_key() {
        let mut key = parts("p", None).cache_key();
        let plain = EntryKey::of(&key);
        key.set_variance_key([7; 16]);
        assert_ne!(plain, EntryKey::of(&key));
        assert_eq!(plain.hex().len(), 64);
        assert_eq!(EntryKey::from_hex(&plain.hex()), Some(plain));
        assert_eq!(EntryKey::from_hex("zz"), None);
    }
}
