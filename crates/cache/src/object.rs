//! The object-store tier: a "cache bucket" (S3, R2, any S3-compatible store) for large or
//! long-lived entries, shared by every gateway pointing at it (what a KV + R2 tier does behind a CDN worker).
//!
//! The bucket is an `s3` backend of the config; entries live under its `key_prefix`:
//! - `m/{sha256 hex}`: the entry's metadata object: magic `AGO1`, `u64` Unix second until
//!   which it is kept (freshness + stale windows), `u64` body length, `u32` length and the
//!   metadata ([`encode_meta`]), `u32` length and the labels, then the body object's name;
//! - `b/{hex}/{nonce}`: the body, written first (one `PutObject`, or a multipart upload in
//!   [`PART`]-sized parts for larger bodies, so no more than a part is ever held in memory);
//!   the metadata object is written once the body is complete, so a lookup sees a whole entry
//!   or none. A 304 rewrites only the metadata object;
//! - `u/{url label}/@{hex}` and `t/{tag in hex}/@{hex}`: empty marker objects a purge by URL,
//!   prefix or tag lists (`ListObjectsV2` by prefix), for every gateway sharing the bucket
//!   (URL labels are normalised paths: no dot segments, no empty segments).
//!
//! A lookup reads the metadata object, then streams the body object chunk by chunk as the
//! store sends it; its length is checked against the metadata's. A Range request asks the
//! store for just that range. An entry past its keep time
//! is a miss and is deleted in the background; a bucket lifecycle rule should also expire old
//! objects (entries that were never looked up again, bodies left by interrupted writes). A
//! store that is down or refuses is skipped for a second, like the Redis tier.

use super::key::EntryKey;
use super::labels::Labels;
use super::metrics::TierMetrics;
use super::purge::Selector;
use super::tier::{
    decode_meta, encode_meta, kept_until, seek_range, Backoff, Found, Tier, TierBody, TierName,
    TierWriter,
};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use pingora::cache::CacheMeta;
use pingora::{Error, ErrorType, Result};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The bucket the tier keeps its entries in: the S3 client of an `s3` backend, shared with
/// the backend (the application hands it in).
#[async_trait::async_trait]
pub trait EntryBucket: Send + Sync {
    /// An SDK client for the bucket, with the backend's credentials.
    async fn client(&self) -> aws_sdk_s3::Client;
    /// The bucket's name.
    fn name(&self) -> &str;
    /// `name` under the backend's key prefix.
    fn key_in_prefix(&self, name: &str) -> String;
}

/// Size of each part of a body's multipart upload.
pub use kit::s3::PART;
const MAGIC: &[u8; 4] = b"AGO1";
/// Largest metadata object read (headers, labels and names are far smaller).
const MAX_META: usize = 1 << 20;
/// Longest URL label that gets a marker (S3 keys are at most 1024 bytes).
const MAX_MARKED_URL: usize = 700;

/// `[cache.object]` as the tier uses it.
#[derive(Debug, Clone)]
pub struct ObjectSettings {
    /// The `s3` backend holding the entries.
    pub backend: String,
    /// Largest body stored.
    pub max_entry: u64,
}

/// The object-store tier.
pub struct ObjectTier(Arc<Shared>);

struct Shared {
    bucket: Arc<dyn EntryBucket>,
    max_entry: u64,
    /// Skips the tier for a second after a failed call.
    backoff: Backoff,
    metrics: TierMetrics,
}

fn tier_error(what: &str, e: impl std::fmt::Display) -> Box<Error> {
    Error::explain(
        ErrorType::InternalError,
        format!("object tier: {what}: {e}"),
    )
}

/// The metadata object's contents.
struct MetaObject {
    keep_until: u64,
    body_len: u64,
    meta: Vec<u8>,
    labels: Vec<u8>,
    body: String,
}

impl MetaObject {
    fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(28 + self.meta.len() + self.labels.len() + self.body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.keep_until.to_le_bytes());
        out.extend_from_slice(&self.body_len.to_le_bytes());
        out.extend_from_slice(&(self.meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.meta);
        out.extend_from_slice(&(self.labels.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.labels);
        out.extend_from_slice(self.body.as_bytes());
        out
    }

    fn decode(raw: &[u8]) -> Option<MetaObject> {
        if raw.get(..4)? != MAGIC {
            return None;
        }
        let u64_at = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(raw.get(i..i + 8)?.try_into().ok()?))
        };
        let u32_at = |i: usize| -> Option<usize> {
            Some(u32::from_le_bytes(raw.get(i..i + 4)?.try_into().ok()?) as usize)
        };
        let meta_len = u32_at(20)?;
        let meta = raw.get(24..24 + meta_len)?.to_vec();
        let labels_at = 24 + meta_len;
        let labels_len = u32_at(labels_at)?;
        let labels = raw.get(labels_at + 4..labels_at + 4 + labels_len)?.to_vec();
        let body = std::str::from_utf8(raw.get(labels_at + 4 + labels_len..)?).ok()?;
        Some(MetaObject {
            keep_until: u64_at(4)?,
            body_len: u64_at(12)?,
            meta,
            labels,
            body: body.to_string(),
        })
    }
}

/// Unix seconds until which an entry with `meta` is kept ([`kept_until`]).
fn keep_until(meta: &CacheMeta) -> u64 {
    unix_seconds(kept_until(meta))
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The marker prefix of a tag: the tag in hex, so no tag (an origin's header value) can add
/// a `/`, a dot segment or a character a store treats specially to an object key.
fn tag_marker(tag: &str) -> String {
    let mut out = String::with_capacity(4 + 2 * tag.len());
    out.push_str("t/");
    kit::hex::push(&mut out, tag.as_bytes());
    out.push_str("/@");
    out
}

/// The marker prefixes of an entry's labels (URL first).
fn marker_prefixes(labels: &Labels) -> Vec<String> {
    let url = (!labels.url.is_empty() && labels.url.len() <= MAX_MARKED_URL)
        .then(|| format!("u/{}/@", labels.url));
    url.into_iter()
        .chain(labels.tags.iter().map(|t| tag_marker(t)))
        .collect()
}

impl ObjectTier {
    /// A tier in `bucket` (an `s3` backend's); nothing is contacted until the first use.
    pub fn new(
        settings: &ObjectSettings,
        bucket: Arc<dyn EntryBucket>,
        metrics: TierMetrics,
    ) -> ObjectTier {
        ObjectTier(Arc::new(Shared {
            bucket,
            max_entry: settings.max_entry,
            backoff: Backoff::default(),
            metrics,
        }))
    }

    /// Removes what `selector` names from the bucket, for every gateway sharing it; the
    /// number of entries removed.
    pub async fn purge(&self, selector: &Selector) -> Result<usize> {
        let s = &self.0;
        let mut removed = 0;
        match selector {
            Selector::All => {
                // Every object of the tier goes; an entry is counted by its metadata object.
                for prefix in ["m/", "b/", "u/", "t/"] {
                    for key in s.list(prefix).await? {
                        s.delete(&key).await?;
                        removed += usize::from(prefix == "m/");
                    }
                }
            }
            _ => {
                let (prefix, exact) = match selector {
                    Selector::Url(url) => (format!("u/{url}/@"), true),
                    Selector::Prefix(prefix) => (format!("u/{prefix}"), false),
                    Selector::Tag(tag) => (tag_marker(tag), true),
                    Selector::All => unreachable!("handled above"),
                };
                let full = s.listing_prefix(&prefix)?;
                for marker in s.list(&prefix).await? {
                    let hex = if exact {
                        marker.strip_prefix(&full)
                    } else {
                        marker.rsplit_once("/@").map(|(_, hex)| hex)
                    };
                    if let Some(hex) = hex.filter(|h| EntryKey::from_hex(h).is_some()) {
                        removed += usize::from(s.remove_hex(hex).await?);
                        s.delete(&marker).await?;
                    }
                }
            }
        }
        Ok(removed)
    }
}

impl Shared {
    fn skipping(&self) -> bool {
        self.backoff.skipping()
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> Box<Error> {
        self.backoff.failed();
        tier_error(what, e)
    }

    async fn client(&self) -> Result<(aws_sdk_s3::Client, String)> {
        Ok((self.bucket.client().await, self.bucket.name().to_string()))
    }

    fn object(&self, name: &str) -> Result<String> {
        Ok(self.bucket.key_in_prefix(name))
    }

    /// A metadata object's bytes; `None` when there is none. One larger than [`MAX_META`]
    /// is not read (it cannot be one of this tier's): it comes back empty, so it fails to
    /// decode and is dropped as damaged.
    async fn get_small(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let (client, bucket) = self.client().await?;
        let got = client
            .get_object()
            .bucket(bucket)
            .key(self.object(name)?)
            .send()
            .await;
        match got {
            Ok(out) if out.content_length().unwrap_or(0) > MAX_META as i64 => Ok(Some(Vec::new())),
            Ok(out) => {
                let data = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.failed("read", e))?;
                Ok(Some(data.into_bytes().to_vec()))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.failed("get", aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }

    async fn put(&self, name: &str, data: Bytes) -> Result<()> {
        let (client, bucket) = self.client().await?;
        client
            .put_object()
            .bucket(bucket)
            .key(self.object(name)?)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.failed("put", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn delete(&self, full_key: &str) -> Result<()> {
        let (client, bucket) = self.client().await?;
        client
            .delete_object()
            .bucket(bucket)
            .key(full_key)
            .send()
            .await
            .map_err(|e| self.failed("delete", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// The full key prefix a listing of `prefix` (relative to the backend's key prefix) uses.
    fn listing_prefix(&self, prefix: &str) -> Result<String> {
        let full = self.object(prefix)?;
        // Joining may drop a trailing slash; listings need it.
        Ok(if prefix.ends_with('/') && !full.ends_with('/') {
            format!("{full}/")
        } else {
            full
        })
    }

    /// Full keys of every object under `prefix` (relative to the backend's key prefix).
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let (client, bucket) = self.client().await?;
        let full = self.listing_prefix(prefix)?;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&full)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.failed("list", aws_sdk_s3::error::DisplayErrorContext(e)))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    /// Removes an entry's metadata and bodies; whether it had metadata.
    async fn remove_hex(&self, hex: &str) -> Result<bool> {
        let had = self.get_small(&format!("m/{hex}")).await?.is_some();
        self.delete(&self.object(&format!("m/{hex}"))?).await?;
        for body in self.list(&format!("b/{hex}/")).await? {
            self.delete(&body).await?;
        }
        Ok(had)
    }

    /// Deletes the bodies of `hex` other than `keep`, in the background (left by earlier
    /// writes of the same key).
    fn sweep_bodies(self: &Arc<Self>, hex: String, keep: Option<String>) {
        let shared = self.clone();
        tokio::spawn(async move {
            let Ok(bodies) = shared.list(&format!("b/{hex}/")).await else {
                return;
            };
            let keep = keep.and_then(|k| shared.object(&k).ok());
            for body in bodies.iter().filter(|b| Some(*b) != keep.as_ref()) {
                let _ = shared.delete(body).await;
            }
        });
    }
}

fn is_not_found<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => {
            matches!(s.err().code(), Some("NoSuchKey" | "NotFound"))
        }
        _ => false,
    }
}

#[async_trait]
impl Tier for ObjectTier {
    fn name(&self) -> TierName {
        TierName::Object
    }

    fn metrics(&self) -> &TierMetrics {
        &self.0.metrics
    }

    async fn lookup(&self, key: &EntryKey) -> Result<Option<Found>> {
        let s = &self.0;
        if s.skipping() {
            return Ok(None);
        }
        let hex = key.hex();
        let Some(raw) = s.get_small(&format!("m/{hex}")).await? else {
            s.metrics.looked_up(false);
            return Ok(None);
        };
        let decoded = MetaObject::decode(&raw).and_then(|m| Some((decode_meta(&m.meta)?, m)));
        let Some((meta, object)) = decoded else {
            s.metrics.corrupt.inc();
            let _ = s.remove_hex(&hex).await;
            return Ok(None);
        };
        if object.keep_until < unix_seconds(SystemTime::now()) {
            s.metrics.looked_up(false);
            let shared = s.clone();
            tokio::spawn(async move {
                let _ = shared.remove_hex(&hex).await;
            });
            return Ok(None);
        }
        let (client, bucket) = s.client().await?;
        let got = client
            .get_object()
            .bucket(bucket)
            .key(s.object(&object.body)?)
            .send()
            .await;
        let body = match got {
            Ok(out) if out.content_length() == Some(object.body_len as i64) => out.body,
            Ok(_) => {
                s.metrics.corrupt.inc();
                let _ = s.remove_hex(&hex).await;
                return Ok(None);
            }
            Err(e) if is_not_found(&e) => {
                // Overwritten meanwhile: a miss, filled again.
                s.metrics.looked_up(false);
                return Ok(None);
            }
            Err(e) => return Err(s.failed("get", aws_sdk_s3::error::DisplayErrorContext(e))),
        };
        s.metrics.looked_up(true);
        Ok(Some(Found {
            meta,
            body: Box::new(ObjectBody {
                shared: s.clone(),
                name: object.body,
                len: object.body_len,
                stream: Some(tokio::sync::Mutex::new(body)),
                start: 0,
                remaining: object.body_len,
            }),
        }))
    }

    async fn writer(
        &self,
        key: EntryKey,
        meta: &CacheMeta,
        size: Option<usize>,
        labels: &Arc<Labels>,
    ) -> Result<Option<Box<dyn TierWriter>>> {
        let s = &self.0;
        if size.is_some_and(|n| n as u64 > s.max_entry) || s.skipping() {
            return Ok(None);
        }
        let hex = key.hex();
        let body = format!("b/{hex}/{:016x}", kit::ids::random_u64());
        Ok(Some(Box::new(ObjectWriter {
            shared: s.clone(),
            hex,
            meta: MetaObject {
                keep_until: keep_until(meta),
                body_len: 0,
                meta: encode_meta(meta)?,
                labels: labels.encode(),
                body,
            },
            markers: marker_prefixes(labels),
            size_hint: size,
            body: None,
        })))
    }

    async fn update_meta(&self, key: &EntryKey, meta: &CacheMeta) -> Result<bool> {
        let s = &self.0;
        if s.skipping() {
            return Ok(false);
        }
        let name = format!("m/{}", key.hex());
        let Some(mut object) = s
            .get_small(&name)
            .await?
            .and_then(|r| MetaObject::decode(&r))
        else {
            return Ok(false);
        };
        object.meta = encode_meta(meta)?;
        object.keep_until = keep_until(meta);
        s.put(&name, Bytes::from(object.encode())).await?;
        Ok(true)
    }

    async fn remove(&self, key: &EntryKey) -> Result<bool> {
        self.0.remove_hex(&key.hex()).await
    }
}

/// A body streamed from the store as it arrives.
struct ObjectBody {
    shared: Arc<Shared>,
    /// The body object's name.
    name: String,
    len: u64,
    /// The response being read; behind a lock only so the body is `Sync` (one reader uses
    /// it). `None` after a seek, until the range is asked for.
    stream: Option<tokio::sync::Mutex<ByteStream>>,
    /// Where the next read starts.
    start: u64,
    remaining: u64,
}

impl ObjectBody {
    /// Asks the store for the bytes from `start` on (after a seek).
    async fn open_range(&mut self) -> Result<ByteStream> {
        let s = &self.shared;
        let (client, bucket) = s.client().await?;
        let last = self.start + self.remaining - 1;
        let got = client
            .get_object()
            .bucket(bucket)
            .key(s.object(&self.name)?)
            .range(format!("bytes={}-{last}", self.start))
            .send()
            .await
            .map_err(|e| s.failed("get a range", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(got.body)
    }
}

#[async_trait]
impl TierBody for ObjectBody {
    async fn read(&mut self) -> Result<Option<Bytes>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        if self.stream.is_none() {
            let stream = self.open_range().await?;
            self.stream = Some(tokio::sync::Mutex::new(stream));
        }
        let stream = self.stream.as_mut().expect("opened above").get_mut();
        match stream.next().await {
            Some(Ok(chunk)) => {
                if chunk.len() as u64 > self.remaining {
                    return Err(tier_error("read", "body longer than its metadata says"));
                }
                self.remaining -= chunk.len() as u64;
                self.start += chunk.len() as u64;
                Ok(Some(chunk))
            }
            Some(Err(e)) => Err(tier_error("read", e)),
            None => Err(tier_error("read", "body shorter than its metadata says")),
        }
    }

    fn can_seek(&self) -> bool {
        true
    }

    /// Asks the store for just that range (a ranged `GET`) at the next read.
    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let (start, end) = seek_range(start, end, self.len)
            .ok_or_else(|| tier_error("seek", "start past the end"))?;
        self.stream = None;
        self.start = start;
        self.remaining = end - start;
        Ok(())
    }
}

/// A new entry: the body goes to the store part by part as it comes (`kit::s3::Upload`); the
/// metadata object and the markers are written at commit.
struct ObjectWriter {
    shared: Arc<Shared>,
    hex: String,
    meta: MetaObject,
    markers: Vec<String>,
    size_hint: Option<usize>,
    body: Option<kit::s3::Upload>,
}

impl ObjectWriter {
    /// The body's upload, started at the first write.
    async fn body(&mut self) -> Result<&mut kit::s3::Upload> {
        if self.body.is_none() {
            let (client, bucket) = self.shared.client().await?;
            let target = kit::s3::Target {
                client,
                bucket,
                key: self.shared.object(&self.meta.body)?,
                content_type: None,
            };
            self.body = Some(kit::s3::Upload::new(target, self.size_hint));
        }
        Ok(self.body.as_mut().expect("started above"))
    }
}

#[async_trait]
impl TierWriter for ObjectWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.meta.body_len += data.len() as u64;
        if self.meta.body_len > self.shared.max_entry {
            return Err(tier_error("write", "larger than max_entry"));
        }
        let shared = self.shared.clone();
        self.body()
            .await?
            .write(&data)
            .await
            .map_err(|e| shared.failed(e.step, e.message))
    }

    async fn commit(mut self: Box<Self>) -> Result<usize> {
        let s = self.shared.clone();
        // An empty body is still an object (the metadata points at it).
        self.body().await?;
        let body = self.body.take().expect("started above");
        body.finish()
            .await
            .map_err(|e| s.failed(e.step, e.message))?;
        // The body is whole: the metadata makes it visible, then the markers let purges find it.
        s.put(&format!("m/{}", self.hex), Bytes::from(self.meta.encode()))
            .await?;
        for marker in &self.markers {
            s.put(&format!("{marker}{}", self.hex), Bytes::new())
                .await?;
        }
        s.sweep_bodies(self.hex.clone(), Some(self.meta.body.clone()));
        s.metrics.writes.inc();
        Ok(self.meta.body_len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_objects_round_trip_and_refuse_damage() {
        let m = MetaObject {
            keep_until: 1_800_000_000,
            body_len: 12_345,
            meta: vec![1, 2, 3],
            labels: vec![4, 5],
            body: "b/ab/0123".into(),
        };
        let raw = m.encode();
        let back = MetaObject::decode(&raw).unwrap();
        assert_eq!(
            (
                back.keep_until,
                back.body_len,
                back.meta,
                back.labels,
                back.body
            ),
            (m.keep_until, m.body_len, m.meta, m.labels, m.body)
        );
        assert!(MetaObject::decode(&raw[..10]).is_none());
        assert!(MetaObject::decode(b"AGD1....").is_none());
    }

    #[test]
    fn markers_name_the_url_and_each_tag() {
        let labels = Labels {
            url: "cdn.test/a/b.jpg".into(),
            tags: vec!["red".into()],
        };
        assert_eq!(
            marker_prefixes(&labels),
            ["u/cdn.test/a/b.jpg/@", "t/726564/@"]
        );
        // An origin's tag never adds a path segment or a dot segment to a key.
        let hostile = Labels {
            url: "".into(),
            tags: vec!["../../etc".into()],
        };
        let markers = marker_prefixes(&hostile);
        assert_eq!(markers, ["t/2e2e2f2e2e2f657463/@"]);
        assert_eq!(markers[0].matches('/').count(), 2);
        let long = Labels {
            url: "x".repeat(MAX_MARKED_URL + 1).into(),
            tags: vec![],
        };
        assert!(marker_prefixes(&long).is_empty());
    }
}
