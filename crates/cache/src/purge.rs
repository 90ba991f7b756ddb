//! Purge: what an operator asks to remove ([`Selector`]: one URL, a URL prefix, a tag, or
//! everything) and removing it from this gateway's tiers ([`Purger`]).
//!
//! A purge names URLs as clients fetch them (`https://img.example.com/photos/a.jpg`); the
//! host is mapped to its host's label, the path normalised as for a request, and the query is
//! ignored: every variant of the URL goes (each steering group's, each query the route keys
//! on, each `Vary` variant). The memory and disk tiers find their entries in the node-local
//! [`super::index`], the Redis tier in the sets it keeps beside its entries. Other gateways
//! hear of the purge through the fleet feed ([`super::feed`]) and apply it to their own
//! memory and disk tiers.

use super::disk::DiskTier;
use super::index::PurgeIndex;
use super::labels::url_label;
use super::memory::MemoryTier;
use super::object::ObjectTier;
use super::redis::RedisTier;
use super::tier::{Tier, TierName};
use std::sync::Arc;

/// Which entries a purge removes. URLs are URL labels (`host label` + normalised path).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Every entry answering this URL (any query, steering group or variant).
    Url(String),
    /// Every entry whose URL starts with this (never empty: see [`Selector::parse`]).
    Prefix(String),
    /// Every entry the origin tagged with this.
    Tag(String),
    /// Every entry.
    All,
}

/// A purge as an operator asks for it (the admin API's `POST /v1/purge` body).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// An absolute URL.
    pub url: Option<String>,
    /// An absolute URL whose path is a prefix; the path must be more than `/`.
    pub prefix: Option<String>,
    /// A tag from `Surrogate-Key` / `Cache-Tag`.
    pub tag: Option<String>,
    /// Everything, in every tier: must be said explicitly.
    #[serde(default)]
    pub everything: bool,
}

impl Selector {
    /// The selector `request` asks for; exactly one of its fields must be given.
    /// `host_label` maps a request host to its host's label (`None`: no such host).
    pub fn parse(
        request: &PurgeRequest,
        host_label: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Selector, String> {
        let given = [
            request.url.is_some(),
            request.prefix.is_some(),
            request.tag.is_some(),
            request.everything,
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err("give exactly one of `url`, `prefix`, `tag`, `everything: true`".into());
        }
        if let Some(url) = &request.url {
            let (label, path) = split_url(url, host_label)?;
            return Ok(Selector::Url(url_label(&label, &path)));
        }
        if let Some(prefix) = &request.prefix {
            let (label, path) = split_url(prefix, host_label)?;
            if path == "/" {
                return Err("an empty prefix would purge the whole host; \
                     to purge everything, send `everything: true`"
                    .into());
            }
            return Ok(Selector::Prefix(url_label(&label, &path)));
        }
        if let Some(tag) = &request.tag {
            if tag.is_empty()
                || tag.len() > super::labels::MAX_TAG_BYTES
                || tag.contains(|c: char| c == ',' || c.is_whitespace())
            {
                return Err("a tag is one non-empty word of at most 256 bytes".into());
            }
            return Ok(Selector::Tag(tag.clone()));
        }
        Ok(Selector::All)
    }

    /// Whether this selector names an entry with `labels`.
    pub fn names(&self, labels: &super::labels::Labels) -> bool {
        match self {
            Selector::Url(url) => *labels.url == **url,
            Selector::Prefix(prefix) => labels.url.starts_with(prefix.as_str()),
            Selector::Tag(tag) => labels.tags.iter().any(|t| **t == **tag),
            Selector::All => true,
        }
    }

    /// The metrics label of the selector's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Selector::Url(_) => "url",
            Selector::Prefix(_) => "prefix",
            Selector::Tag(_) => "tag",
            Selector::All => "everything",
        }
    }
}

/// An absolute URL's host label and normalised path (the query is ignored).
fn split_url(
    url: &str,
    host_label: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, String), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("\"{url}\" is not a URL"))?;
    let (Some(_), Some(host)) = (uri.scheme(), uri.host()) else {
        return Err(format!(
            "\"{url}\" is not an absolute URL (https://host/path)"
        ));
    };
    let label = host_label(host).ok_or_else(|| format!("no configured host serves \"{host}\""))?;
    let path = kit::path::normalise(uri.path()).map_err(|e| format!("\"{url}\": {e}"))?;
    Ok((label, path))
}

/// What one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Entries removed from this gateway's memory tier.
    pub memory: usize,
    /// Entries removed from this gateway's disk tier.
    pub disk: usize,
    /// Entries removed from the shared Redis tier.
    pub redis: usize,
    /// Entries removed from the shared object-store tier.
    pub object: usize,
}

/// What a purge removed from the shared tiers, or why it could not.
#[derive(Debug)]
pub struct SharedRemoved {
    /// The Redis tier.
    pub redis: Result<usize, String>,
    /// The object-store tier.
    pub object: Result<usize, String>,
}

/// Removes purged entries from this gateway's tiers.
pub struct Purger {
    index: Arc<PurgeIndex>,
    memory: Option<Arc<MemoryTier>>,
    disk: Option<Arc<DiskTier>>,
    redis: Option<Arc<RedisTier>>,
    object: Option<Arc<ObjectTier>>,
}

impl Purger {
    /// A purger over these tiers and their index.
    pub fn new(
        index: Arc<PurgeIndex>,
        memory: Option<Arc<MemoryTier>>,
        disk: Option<Arc<DiskTier>>,
        redis: Option<Arc<RedisTier>>,
        object: Option<Arc<ObjectTier>>,
    ) -> Purger {
        Purger {
            index,
            memory,
            disk,
            redis,
            object,
        }
    }

    /// Removes what `selector` names from the memory and disk tiers of this gateway.
    pub async fn local(&self, selector: &Selector) -> Removed {
        self.index.note_purge(selector);
        let mut removed = Removed::default();
        if let Some(memory) = &self.memory {
            removed.memory = remove_all(
                memory.as_ref(),
                &self.index.select(selector, TierName::Memory),
            )
            .await;
            memory.metrics().purged.inc_by(removed.memory as u64);
        }
        if let Some(disk) = &self.disk {
            removed.disk = if *selector == Selector::All {
                disk.clear()
            } else {
                remove_all(disk.as_ref(), &self.index.select(selector, TierName::Disk)).await
            };
            disk.metrics().purged.inc_by(removed.disk as u64);
        }
        removed
    }

    /// Drops everything this gateway's memory and disk tiers hold (it may have missed
    /// purges); the number of entries dropped.
    pub async fn drop_local(&self) -> usize {
        let removed = self.local(&Selector::All).await;
        removed.memory + removed.disk
    }

    /// Removes what `selector` names from the shared tiers, Redis and the object store
    /// (once, by the gateway the purge was asked of): what each removed, or why it could not.
    pub async fn shared(&self, selector: &Selector) -> SharedRemoved {
        let redis = match &self.redis {
            Some(r) => r
                .purge(selector)
                .await
                .inspect(|n| r.metrics().purged.inc_by(*n as u64)),
            None => Ok(0),
        };
        let object = match &self.object {
            Some(o) => o
                .purge(selector)
                .await
                .inspect(|n| o.metrics().purged.inc_by(*n as u64)),
            None => Ok(0),
        };
        SharedRemoved {
            redis: redis.map_err(|e| e.to_string()),
            object: object.map_err(|e| e.to_string()),
        }
    }
}

/// Removes `keys` from `tier`; the number it held.
async fn remove_all(tier: &dyn Tier, keys: &[super::key::EntryKey]) -> usize {
    let mut n = 0;
    for key in keys {
        match tier.remove(key).await {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(tier = tier.name().label(), error = %e, "purge could not remove an entry")
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(host: &str) -> Option<String> {
        (host == "img.example.com" || host == "alias.example.com").then(|| "img.example.com".into())
    }

    fn parse(json: &str) -> Result<Selector, String> {
        let req: PurgeRequest = serde_json::from_str(json).unwrap();
        Selector::parse(&req, &hosts)
    }

    #[test]
    fn urls_map_to_the_hosts_label_and_the_normalised_path() {
        assert_eq!(
            parse(r#"{"url": "https://alias.example.com//photos/a%20b.jpg?w=1"}"#),
            Ok(Selector::Url("img.example.com/photos/a b.jpg".into()))
        );
        assert_eq!(
            parse(r#"{"prefix": "http://img.example.com/photos/"}"#),
            Ok(Selector::Prefix("img.example.com/photos/".into()))
        );
        assert_eq!(parse(r#"{"tag": "p-1"}"#), Ok(Selector::Tag("p-1".into())));
        assert_eq!(parse(r#"{"everything": true}"#), Ok(Selector::All));
    }

    #[test]
    fn refuses_empty_prefixes_unknown_hosts_and_ambiguous_requests() {
        for bad in [
            r#"{"prefix": "https://img.example.com/"}"#,
            r#"{"prefix": "https://img.example.com"}"#,
            r#"{"url": "https://other.example.com/a"}"#,
            r#"{"url": "/a.jpg"}"#,
            r#"{"url": "https://img.example.com/a/../b"}"#,
            r#"{"tag": ""}"#,
            r#"{"tag": "a b"}"#,
            r#"{}"#,
            r#"{"everything": false}"#,
            r#"{"url": "https://img.example.com/a", "everything": true}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
