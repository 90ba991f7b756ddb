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
//! variance, never truncated (a pipeline that truncated its prompts had different content share a
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
            *byte = kit::hex::byte(text.as_bytes().get(2 * i..2 * i + 2)?)?;
        }
        Some(EntryKey(key))
    }

    /// Lower-case hex (file names, Redis keys, logs).
    pub fn hex(&self) -> String {
        kit::hex::encode(&self.0)
    }
}

/// The parts of a request that decide which stored response answers it. Everything of the
/// client's request that reaches the backend is here, so what the backend answered is only
/// ever replayed to requests it would have answered the same way.
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
    /// The host an origin is told the client asked for (`Host`, `X-Forwarded-Host`); empty for
    /// backends that never see the client's host (buckets, directories, variants).
    pub authority: &'a str,
    /// The query exactly as the backend is sent it ([`kit::params::forwarded_query`]); empty when none.
    pub query: &'a str,
    /// The route's `key_headers` that reach the origin, framed by [`keyed_headers`].
    pub headers: &'a str,
}

impl KeyParts<'_> {
    /// The framed primary key bytes.
    pub fn primary(&self) -> Vec<u8> {
        let parts: [&[u8]; 7] = [
            self.host.as_bytes(),
            self.route.as_bytes(),
            self.served_by.as_bytes(),
            self.object.as_bytes(),
            self.authority.as_bytes(),
            self.query.as_bytes(),
            self.headers.as_bytes(),
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

/// The values of `names` in `headers`, framed for the key: each name, then every value of it
/// length-prefixed, so no two different header sets frame alike. Empty when `names` is.
pub fn keyed_headers(headers: &http::HeaderMap, names: &[http::HeaderName]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for name in names {
        let _ = write!(out, "{}", name.as_str());
        for value in headers.get_all(name) {
            let value = String::from_utf8_lossy(value.as_bytes());
            let _ = write!(out, "|{}:{value}", value.len());
        }
        out.push('\n');
    }
    out
}

/// A query's `name=value` pairs, each side decoded (`%XX`, and `+` as a space), for rules
/// that compare values (`store_if_query`); never used to build what is sent or keyed.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(object: &'a str, query: &'a str) -> KeyParts<'a> {
        KeyParts {
            host: "cdn",
            route: "img",
            served_by: "media",
            object,
            authority: "",
            query,
            headers: "",
        }
    }

    fn forwarded(query: &str) -> Option<String> {
        kit::params::forwarded_query(Some(query), None)
    }

    #[test]
    fn framing_keeps_parts_apart() {
        let a = KeyParts {
            route: "ab",
            object: "c",
            ..parts("", "")
        };
        let b = KeyParts {
            route: "a",
            object: "bc",
            ..parts("", "")
        };
        assert_ne!(a.primary(), b.primary());
        assert_ne!(EntryKey::of(&a.cache_key()), EntryKey::of(&b.cache_key()));
        let c = KeyParts {
            authority: "x",
            ..parts("", "")
        };
        let d = KeyParts {
            query: "x",
            ..parts("", "")
        };
        assert_ne!(c.primary(), d.primary());
    }

    #[test]
    fn query_order_and_encoding_of_one_meaning_share_a_key() {
        assert_eq!(forwarded("b=2&a=1"), forwarded("a=%31&b=2"));
        assert_eq!(forwarded("b=2&a=1").as_deref(), Some("a=1&b=2"));
        assert_ne!(forwarded("a=1&b=2"), forwarded("a=1&b=3"));
        assert_eq!(forwarded(""), None);
        assert_eq!(forwarded("&&"), None);
        // Escapes of reserved characters are kept, in upper case.
        assert_eq!(forwarded("q=a%2fb").as_deref(), Some("q=a%2Fb"));
        assert_eq!(forwarded("q=100%").as_deref(), Some("q=100%25"));
    }

    #[test]
    fn duplicate_parameters_keep_their_order() {
        // An origin that reads the first (or the last) value answers these differently.
        assert_eq!(forwarded("a=evil&a=good").as_deref(), Some("a=evil&a=good"));
        assert_eq!(forwarded("a=good&a=evil").as_deref(), Some("a=good&a=evil"));
        assert_eq!(
            forwarded("z=1&a=evil&b=2&a=good").as_deref(),
            Some("a=evil&a=good&b=2&z=1")
        );
    }

    #[test]
    fn bytes_that_are_not_text_stay_apart() {
        assert_ne!(forwarded("q=%FF"), forwarded("q=%FE"));
        assert_eq!(forwarded("q=%ff"), forwarded("q=%FF"));
        assert_eq!(forwarded("q=caf\u{e9}").as_deref(), Some("q=caf\u{e9}"));
    }

    #[test]
    fn only_allowed_parameters_are_forwarded_and_keyed() {
        let keys = vec!["w".to_string()];
        let with = |q| kit::params::forwarded_query(Some(q), Some(&keys));
        assert_eq!(with("w=100&cb=1"), with("cb=2&w=100"));
        assert_eq!(with("w=100&cb=1").as_deref(), Some("w=100"));
        assert_ne!(with("w=100"), with("w=200"));
        assert_eq!(with("%77=100").as_deref(), Some("w=100"));
        assert_eq!(with("cb=1"), None);
    }

    #[test]
    fn group_backend_and_authority_are_part_of_the_key() {
        let canary = KeyParts {
            served_by: "web/canary",
            ..parts("p", "")
        };
        assert_ne!(canary.primary(), parts("p", "").primary());
        let evil = KeyParts {
            authority: "evil.example",
            ..parts("p", "")
        };
        let good = KeyParts {
            authority: "a.test",
            ..parts("p", "")
        };
        assert_ne!(evil.primary(), good.primary());
    }

    #[test]
    fn keyed_headers_frame_names_and_values() {
        let names = [http::HeaderName::from_static("x-forwarded-prefix")];
        let mut one = http::HeaderMap::new();
        one.insert("x-forwarded-prefix", "/a".parse().unwrap());
        let none = http::HeaderMap::new();
        assert_ne!(keyed_headers(&one, &names), keyed_headers(&none, &names));
        assert_eq!(keyed_headers(&one, &[]), "");
    }

    #[test]
    fn variance_changes_the_entry_key() {
        let mut key = parts("p", "").cache_key();
        let plain = EntryKey::of(&key);
        key.set_variance_key([7; 16]);
        assert_ne!(plain, EntryKey::of(&key));
        assert_eq!(plain.hex().len(), 64);
        assert_eq!(EntryKey::from_hex(&plain.hex()), Some(plain));
        assert_eq!(EntryKey::from_hex("zz"), None);
        // A sign is not a hex digit (`+f` once read as 15).
        let signed = format!("+f{}", &plain.hex()[2..]);
        assert_eq!(EntryKey::from_hex(&signed), None);
    }
}
