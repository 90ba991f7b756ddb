//! What a stored entry can be purged by: the URL it answers (the host's label and the
//! normalised request path, `img.example.com/photos/a.jpg`) and its tags, read from the
//! origin's response headers (`Surrogate-Key`, space-separated, and `Cache-Tag`,
//! comma-separated, by default).
//!
//! The proxy attaches the URL to the request's cache key ([`UrlLabel`], a pingora-cache key
//! extension); the composite storage reads the tags from the response it stores and hands
//! both to every tier's writer. Node-local tiers record them in the [`super::index`], the
//! disk tier also in each entry file (so the index is rebuilt after a restart), the Redis
//! tier in Redis sets shared by the fleet.

use http::HeaderName;
use pingora::cache::{CacheKey, CacheMeta};
use std::sync::Arc;

/// Response headers read for tags when `[cache] tag_headers` is not set.
pub const DEFAULT_TAG_HEADERS: &[&str] = &["surrogate-key", "cache-tag"];
/// Most tags kept for one entry; the rest are ignored (and the entry can only be purged by
/// URL, prefix or the tags kept).
pub const MAX_TAGS: usize = 64;
/// Longest tag kept, in bytes; longer ones are ignored.
pub const MAX_TAG_BYTES: usize = 256;

/// The URL label of a request and when the request arrived, attached to its cache key by
/// the proxy (a fill that began before a purge of its URL is not stored: it may hold what the
/// purge was meant to remove).
#[derive(Debug, Clone)]
pub struct UrlLabel {
    /// The URL label ([`url_label`]).
    pub url: Arc<str>,
    /// When the request arrived.
    pub asked_at: std::time::Instant,
}

/// The URL label of a host label and a normalised path.
pub fn url_label(host_label: &str, path: &str) -> String {
    let mut url = String::with_capacity(host_label.len() + path.len());
    url.push_str(host_label);
    url.push_str(path);
    url
}

/// An entry's URL and tags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels {
    /// The URL label (empty when the request carried none).
    pub url: Arc<str>,
    /// Tags, deduplicated, in the order the origin sent them.
    pub tags: Vec<Arc<str>>,
}

impl Labels {
    /// The labels of a response `meta` stored under `key`: the key's URL label and the tags
    /// the headers `tag_headers` name.
    pub fn of(key: &CacheKey, meta: &CacheMeta, tag_headers: &[HeaderName]) -> Labels {
        let url = key
            .extensions
            .get::<UrlLabel>()
            .map(|u| u.url.clone())
            .unwrap_or_else(|| Arc::from(""));
        Labels {
            url,
            tags: tags_of(meta.headers(), tag_headers),
        }
    }

    /// The bytes the disk tier stores: `u32` URL length, the URL, `u16` tag count, then each
    /// tag as `u16` length and bytes (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            6 + self.url.len() + self.tags.iter().map(|t| t.len() + 2).sum::<usize>(),
        );
        out.extend_from_slice(&(self.url.len() as u32).to_le_bytes());
        out.extend_from_slice(self.url.as_bytes());
        out.extend_from_slice(&(self.tags.len() as u16).to_le_bytes());
        for tag in &self.tags {
            out.extend_from_slice(&(tag.len() as u16).to_le_bytes());
            out.extend_from_slice(tag.as_bytes());
        }
        out
    }

    /// The labels [`Labels::encode`] wrote; `None` for anything else.
    pub fn decode(raw: &[u8]) -> Option<Labels> {
        let mut rest = raw;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
            rest = tail;
            Some(head)
        };
        let url_len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let url = std::str::from_utf8(take(url_len)?).ok()?.into();
        let count = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        let mut tags = Vec::with_capacity(count.min(MAX_TAGS));
        for _ in 0..count {
            let len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
            tags.push(std::str::from_utf8(take(len)?).ok()?.into());
        }
        rest.is_empty().then_some(Labels { url, tags })
    }
}

/// The tags in the headers `names`: split on commas and whitespace, empty and oversized
/// ones dropped, each kept once, at most [`MAX_TAGS`].
pub fn tags_of(headers: &http::HeaderMap, names: &[HeaderName]) -> Vec<Arc<str>> {
    let mut tags: Vec<Arc<str>> = Vec::new();
    let values = names
        .iter()
        .flat_map(|n| headers.get_all(n))
        .filter_map(|v| v.to_str().ok());
    for value in values {
        let found = value
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|t| !t.is_empty() && t.len() <= MAX_TAG_BYTES);
        for tag in found {
            if tags.len() == MAX_TAGS {
                return tags;
            }
            if !tags.iter().any(|t| &**t == tag) {
                tags.push(tag.into());
            }
        }
    }
    tags
}

/// The configured tag header names, lower-cased and checked.
pub fn tag_header_names(names: &[String]) -> Result<Vec<HeaderName>, String> {
    names
        .iter()
        .map(|n| {
            HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("\"{n}\" is not a header name"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<HeaderName> {
        let names: Vec<String> = DEFAULT_TAG_HEADERS.iter().map(|n| n.to_string()).collect();
        tag_header_names(&names).unwrap()
    }

    #[test]
    fn tags_come_from_both_header_styles_once_each() {
        let mut h = http::HeaderMap::new();
        h.append("surrogate-key", "product-1  shelf-2".parse().unwrap());
        h.append("cache-tag", "shelf-2,promo , sale".parse().unwrap());
        h.append("x-other", "ignored".parse().unwrap());
        let tags: Vec<String> = tags_of(&h, &names())
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(tags, ["product-1", "shelf-2", "promo", "sale"]);
    }

    #[test]
    fn tags_are_bounded_in_number_and_length() {
        let mut h = http::HeaderMap::new();
        let many: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        h.append("surrogate-key", many.join(" ").parse().unwrap());
        h.append("cache-tag", "x".repeat(MAX_TAG_BYTES + 1).parse().unwrap());
        let tags = tags_of(&h, &names());
        assert_eq!(tags.len(), MAX_TAGS);
        assert!(tags.iter().all(|t| t.len() < 10));
    }

    #[test]
    fn labels_round_trip_and_refuse_damage() {
        let labels = Labels {
            url: "img.example.com/a/b.jpg".into(),
            tags: vec!["one".into(), "twö".into()],
        };
        let raw = labels.encode();
        assert_eq!(Labels::decode(&raw), Some(labels));
        assert_eq!(Labels::decode(&raw[..raw.len() - 1]), None);
        let mut longer = raw.clone();
        longer.push(0);
        assert_eq!(Labels::decode(&longer), None);
        assert_eq!(Labels::decode(&[255, 255, 255, 255]), None);
    }
}
