//! Image variants' metrics: how long a variant takes to make, the sizes read and made,
//! refusals, the worker pool's occupancy and the fetches and decodes shared between
//! variants. Registered once on the registry the server hands in.

use kit::metrics::Registrar;
use prometheus::{HistogramVec, IntCounterVec, IntGauge};

/// Every variant metric.
#[derive(Clone)]
pub struct VariantMetrics {
    /// `assetgate_variant_compute_seconds{format}`: time to make one variant, from the
    /// original's bytes to the encoded output, by output format.
    pub compute: HistogramVec,
    /// `assetgate_variant_source_bytes{format}`: sizes of the originals read, by format.
    pub source_bytes: HistogramVec,
    /// `assetgate_variant_output_bytes{format}`: sizes of the variants made, by format.
    pub output_bytes: HistogramVec,
    /// `assetgate_variant_rejections_total{reason}`: variant requests refused.
    pub rejections: IntCounterVec,
    /// `assetgate_variant_workers_busy`: decode/encode workers running a job now.
    pub workers_busy: IntGauge,
    /// `assetgate_variant_queue_length`: variant jobs waiting for a worker.
    pub queue: IntGauge,
    /// `assetgate_variant_shared_total{step,outcome}`: source fetches and decodes done or
    /// taken from another variant of the same original made at the same time.
    pub shared: IntCounterVec,
}

impl VariantMetrics {
    /// Registers every variant metric on `r`.
    pub fn register(r: Registrar<'_>) -> VariantMetrics {
        VariantMetrics {
            compute: r.histogram(
                "assetgate_variant_compute_seconds",
                "Time to make one image variant from its original's bytes, by output format.",
                &["format"],
            ),
            source_bytes: r.bytes_histogram(
                "assetgate_variant_source_bytes",
                "Sizes of the originals read to make variants, by their format.",
                &["format"],
            ),
            output_bytes: r.bytes_histogram(
                "assetgate_variant_output_bytes",
                "Sizes of the variants made, by output format.",
                &["format"],
            ),
            rejections: r.counter(
                "assetgate_variant_rejections_total",
                "Variant requests refused, by reason.",
                &["reason"],
            ),
            workers_busy: r.plain_gauge(
                "assetgate_variant_workers_busy",
                "Decode/encode workers running a variant job now.",
            ),
            queue: r.plain_gauge(
                "assetgate_variant_queue_length",
                "Variant jobs waiting for a worker.",
            ),
            shared: r.counter(
                "assetgate_variant_shared_total",
                "Source fetches and decodes done, or shared with another variant of the same original.",
                &["step", "outcome"],
            ),
        }
    }

    /// A set on a registry of its own that nothing reads, for tests.
    pub fn unregistered() -> VariantMetrics {
        VariantMetrics::register(Registrar(&prometheus::Registry::new()))
    }
}
