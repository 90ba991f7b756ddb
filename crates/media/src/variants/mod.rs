//! Image variants made on a miss: `/{content_hash}/{w}x{h}/{q}.{ext}` of an original in the
//! asset store, computed once, cached immutably in the route's tiers.
//!
//! - [`spec`]: the URL grammar, `auto` format negotiation, the variant key and ETag.
//! - [`limits`]: allowlisted sizes, qualities and formats; source byte and pixel limits.
//! - [`decode`], [`pixels`], [`resize`], [`color`], [`encode`], [`webp`]: the pipeline —
//!   header probe, shrink-on-load decode, EXIF orientation, Lanczos3 resize, ICC → sRGB,
//!   encoders with sharp's defaults.
//! - [`pipeline`]: one variant from decoded pixels; [`sources`]: originals fetched and
//!   decoded once for every variant of them made at the same time.
//! - [`pool`]: the bounded worker pool with time limits and panic isolation.
//! - [`access`]: who may see a variant (public assets, owners, admins) and what a client
//!   may keep of it.
//! - [`builder`]: the in-process origin's side — asked for a canonical variant path, it
//!   answers the encoded bytes with immutable caching headers and a strong ETag.

pub mod access;
pub mod builder;
pub mod color;
pub mod decode;
pub mod encode;
pub mod limits;
pub mod metrics;
pub mod pipeline;
pub mod pixels;
pub mod pool;
pub mod resize;
pub mod sources;
pub mod spec;
pub mod webp;

pub use limits::VariantLimits;
pub use spec::{Fit, Format, VariantSpec};

/// Why a variant could not be made. The application's error table maps each to its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    /// The path is not `/{hash}/{w}x{h}[-fit]/{q}.{ext}`.
    #[error("a variant path is /{{content_hash}}/{{width}}x{{height}}[-cover|-contain|-inside]/{{quality}}.{{webp|jpeg|jpg|png|avif|auto}}")]
    Grammar,
    /// The first segment is not 64 lower-case hex digits.
    #[error("the content hash must be 64 lower-case hex digits (SHA-256)")]
    BadHash,
    /// The extension names no output format.
    #[error("unknown format; use webp, jpeg, jpg, png, avif or auto")]
    BadFormat,
    /// The fit mode is unknown.
    #[error("unknown fit; use cover, contain or inside")]
    BadFit,
    /// A size, quality or format outside the route's allowlists (the message names them).
    #[error("{0}")]
    NotAllowed(String),
    /// The original is over the route's byte or pixel limits.
    #[error("{0}")]
    SourceTooLarge(String),
    /// The original is truncated, corrupt or in a format not decoded.
    #[error("the original cannot be decoded: {0}")]
    Undecodable(String),
    /// An encoder or the resizer failed.
    #[error("the variant could not be encoded: {0}")]
    Encode(String),
    /// Every worker is busy and the queue is full.
    #[error("every image worker is busy; retry shortly")]
    Busy,
    /// The variant took longer than the route allows.
    #[error("the variant took longer than this route allows")]
    TimedOut,
    /// The job panicked (a codec failure); only this request fails.
    #[error("the image pipeline failed")]
    Panicked,
    /// The original is registered but its bytes could not be read.
    #[error("the original could not be read")]
    SourceUnavailable,
}

impl VariantError {
    /// Stable label for `assetgate_variant_rejections_total{reason}`.
    pub fn label(&self) -> &'static str {
        match self {
            VariantError::Grammar => "grammar",
            VariantError::BadHash => "bad_hash",
            VariantError::BadFormat => "bad_format",
            VariantError::BadFit => "bad_fit",
            VariantError::NotAllowed(_) => "not_allowed",
            VariantError::SourceTooLarge(_) => "source_too_large",
            VariantError::Undecodable(_) => "undecodable",
            VariantError::Encode(_) => "encode",
            VariantError::Busy => "busy",
            VariantError::TimedOut => "timeout",
            VariantError::Panicked => "panic",
            VariantError::SourceUnavailable => "source_unavailable",
        }
    }
}
