//! The variant builder: the in-process origin's answer to `GET /{canonical variant path}`.
//! The proxy has matched the route, checked access and the allowlists and chosen the format;
//! it sends the route's source limits in [`LIMITS_HEADER`]. The builder looks the hash up in
//! the asset store, reads the original (once for all variants of it made together), makes
//! the variant on the worker pool and answers it with immutable caching headers and a strong
//! ETag derived from the variant key. The proxy stores the answer in the route's tiers, so a
//! variant is made once per fleet (fill locks) and never again while cached.

use super::encode::EncodeSettings;
use super::limits::VariantLimits;
use super::metrics::VariantMetrics;
use super::pipeline;
use super::pool::WorkerPool;
use super::sources::Sources;
use super::spec::{parse_canonical_target, Target, VariantSpec};
use super::VariantError;
use crate::assets::lookup::AccessCache;
use crate::assets::originals::OriginalStores;
use crate::assets::StoreError;
use bytes::Bytes;
use http::header;
use origins::OriginalError;
use pingora::http::{RequestHeader, ResponseHeader};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the builder answered no variant.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The variant is refused or could not be made.
    #[error(transparent)]
    Variant(#[from] VariantError),
    /// The asset store failed or is still connecting.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No original in the asset store has the hash.
    #[error("no original has this content hash")]
    NoOriginal,
    /// The answer's header could not be built (a bug).
    #[error("cannot build the variant's header")]
    Header,
}

/// The request header carrying a route's source limits to the builder:
/// `bytes=N; pixels=N; timeout_ms=N`.
pub const LIMITS_HEADER: &str = "x-assetgate-variant-limits";

/// `Cache-Control` of every variant the builder makes. Variants of private originals are
/// answered `private` to clients by the proxy; the gateway's own tiers keep them behind the
/// access check.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The value of [`LIMITS_HEADER`] for `limits`.
pub fn limits_header(limits: &VariantLimits) -> String {
    format!(
        "bytes={}; pixels={}; timeout_ms={}",
        limits.max_source_bytes,
        limits.max_source_pixels,
        limits.timeout.as_millis()
    )
}

/// The source limits in a [`LIMITS_HEADER`] value (the defaults for anything missing).
pub fn parse_limits_header(value: Option<&str>) -> VariantLimits {
    let mut limits = VariantLimits::default();
    for part in value.unwrap_or_default().split(';') {
        let Some((name, number)) = part.trim().split_once('=') else {
            continue;
        };
        let Ok(n) = number.trim().parse::<u64>() else {
            continue;
        };
        match name {
            "bytes" => limits.max_source_bytes = n,
            "pixels" => limits.max_source_pixels = n,
            "timeout_ms" => limits.timeout = Duration::from_millis(n.max(1)),
            _ => {}
        }
    }
    limits
}

/// Makes variants of the originals in one asset store.
pub struct VariantBuilder {
    assets: Arc<AccessCache>,
    originals: OriginalStores,
    pool: WorkerPool,
    sources: Arc<Sources>,
    settings: EncodeSettings,
    metrics: VariantMetrics,
}

/// A made variant, ready to send.
pub struct Made {
    /// Status and headers.
    pub header: ResponseHeader,
    /// The encoded variant (empty for 304 and HEAD).
    pub body: Bytes,
}

impl VariantBuilder {
    /// A builder reading originals from `originals` (each blob from its own backend), with `workers` workers and room for
    /// `queue` waiting jobs, counting into `metrics`.
    pub fn new(
        assets: Arc<AccessCache>,
        originals: OriginalStores,
        workers: usize,
        queue: usize,
        settings: EncodeSettings,
        metrics: VariantMetrics,
    ) -> VariantBuilder {
        VariantBuilder {
            assets,
            originals,
            pool: WorkerPool::new(workers, queue, metrics.clone()),
            sources: Arc::new(Sources::new(
                super::sources::KEEP,
                super::sources::KEEP_BYTES,
                metrics.clone(),
            )),
            settings,
            metrics,
        }
    }

    /// Answers the in-process origin's request for a variant; refusals are counted by reason.
    pub async fn answer(&self, req: &RequestHeader) -> Result<Made, BuildError> {
        let made = self.make(req).await;
        if let Err(BuildError::Variant(e)) = &made {
            self.metrics
                .rejections
                .with_label_values(&[e.label()])
                .inc();
        }
        made
    }

    async fn make(&self, req: &RequestHeader) -> Result<Made, BuildError> {
        let path = percent_encoding::percent_decode_str(req.uri.path())
            .decode_utf8()
            .map_err(|_| VariantError::Grammar)?;
        let target = parse_canonical_target(&path)?;
        let hash = target.hash().to_string();
        let limits =
            parse_limits_header(req.headers.get(LIMITS_HEADER).and_then(|v| v.to_str().ok()));
        let etag = target.etag();
        let access = self.assets.access(&hash).await?;
        let blob = access.ok_or(BuildError::NoOriginal)?.blob.clone();
        let mut header = ResponseHeader::build(200, Some(6)).map_err(|_| BuildError::Header)?;
        let _ = header.insert_header(header::ETAG, etag.as_str());
        let _ = header.insert_header(header::CACHE_CONTROL, IMMUTABLE);
        // Every cached answer of this original carries its tag: deleting it purges them all.
        let _ = header.insert_header("surrogate-key", crate::assets::remove::original_tag(&hash));
        let content_type = match &target {
            Target::Variant(spec) => spec.format.mime(),
            Target::Original { .. } => blob.mime_type.as_str(),
        };
        let _ = header.insert_header(header::CONTENT_TYPE, content_type);
        if kit::conditional::none_match(&req.headers, &etag) {
            header.set_status(304).map_err(|_| BuildError::Header)?;
            return Ok(Made {
                header,
                body: Bytes::new(),
            });
        }
        limits.check_source_bytes(blob.size_bytes)?;
        let Some(originals) = self.originals.get(&blob.backend).cloned() else {
            tracing::error!(backend = %blob.backend, %hash, "the original's backend is not a store");
            return Err(VariantError::SourceUnavailable.into());
        };
        let max = limits.max_source_bytes;
        let key = blob.storage_key.clone();
        let bytes = self
            .sources
            .bytes(&hash, || async move {
                originals
                    .read_original(&key, max)
                    .await
                    .map_err(|e| match e {
                        OriginalError::TooLarge(n) => VariantError::SourceTooLarge(format!(
                            "the original is {n} bytes; this route reads at most {max}"
                        )),
                        other => {
                            tracing::error!(error = %other, key = %key, "cannot read original");
                            VariantError::SourceUnavailable
                        }
                    })
            })
            .await?;
        let body = match target {
            Target::Variant(spec) => self.compute(spec, limits.clone(), bytes).await?,
            Target::Original { .. } => Bytes::copy_from_slice(&bytes),
        };
        let _ = header.insert_header(header::CONTENT_LENGTH, body.len());
        let body = if req.method == http::Method::HEAD {
            Bytes::new()
        } else {
            body
        };
        Ok(Made { header, body })
    }

    /// Runs the pipeline for `spec` on the pool, sharing the decode with other variants of
    /// the same original made at the same time.
    async fn compute(
        &self,
        spec: VariantSpec,
        limits: VariantLimits,
        bytes: Arc<Vec<u8>>,
    ) -> Result<Bytes, VariantError> {
        let sources = self.sources.clone();
        let settings = self.settings;
        let metrics = self.metrics.clone();
        let format = spec.format;
        self.pool
            .run(limits.timeout, move || {
                let started = Instant::now();
                let probe = pipeline::admit(&bytes, &limits)?;
                metrics
                    .source_bytes
                    .with_label_values(&[probe.format.name()])
                    .observe(bytes.len() as f64);
                let shrink = pipeline::shrink_for(&probe, &spec);
                let decoded = sources.decoded(&spec.hash, shrink, |s| {
                    pipeline::decode_at(&bytes, &probe, s)
                })?;
                let out = pipeline::render(&decoded, &spec, settings)?;
                metrics
                    .compute
                    .with_label_values(&[format.name()])
                    .observe(started.elapsed().as_secs_f64());
                metrics
                    .output_bytes
                    .with_label_values(&[format.name()])
                    .observe(out.len() as f64);
                Ok(Bytes::from(out))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_travel_in_a_header() {
        let limits = VariantLimits {
            max_source_bytes: 1234,
            max_source_pixels: 5678,
            timeout: Duration::from_millis(900),
            ..VariantLimits::default()
        };
        let back = parse_limits_header(Some(&limits_header(&limits)));
        assert_eq!(back.max_source_bytes, 1234);
        assert_eq!(back.max_source_pixels, 5678);
        assert_eq!(back.timeout, Duration::from_millis(900));
        assert_eq!(parse_limits_header(None), VariantLimits::default());
    }
}
