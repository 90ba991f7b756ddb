//! What a variants route allows: the size, quality and format allowlists (anything else is
//! refused with 400 naming the allowed values, so nobody can make the gateway compute and store
//! endless dimension combinations), and the source limits checked from an original's header
//! before it is decoded.

use super::spec::{Asked, Format};
use super::VariantError;
use std::time::Duration;

/// The default widths: the sizes a typical product's image grid uses.
pub const DEFAULT_WIDTHS: [u32; 4] = [320, 640, 1024, 1920];
/// The default heights.
pub const DEFAULT_HEIGHTS: [u32; 4] = [240, 480, 768, 1080];
/// Qualities allowed by default.
pub const DEFAULT_QUALITIES: [u32; 6] = [50, 60, 70, 75, 80, 85];
/// Largest original read by default (bytes).
pub const DEFAULT_MAX_SOURCE_BYTES: u64 = 50 << 20;
/// Most pixels an original may declare by default (about 50 megapixels, e.g. 8660×5773).
pub const DEFAULT_MAX_SOURCE_PIXELS: u64 = 50_000_000;
/// Time one variant may take by default, from the source read to the encoded bytes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A variants route's allowlists and source limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantLimits {
    /// Widths a variant may have.
    pub widths: Vec<u32>,
    /// Heights a variant may have.
    pub heights: Vec<u32>,
    /// Qualities a variant may be encoded at.
    pub qualities: Vec<u32>,
    /// Formats a URL may name.
    pub formats: Vec<Format>,
    /// Formats `auto` chooses from, in preference order (each also in `formats`).
    pub auto: Vec<Format>,
    /// Largest original read, in bytes.
    pub max_source_bytes: u64,
    /// Most pixels an original's header may declare (width × height).
    pub max_source_pixels: u64,
    /// Time one variant may take.
    pub timeout: Duration,
    /// Whether `/{hash}/original` serves the original itself (with the same access).
    pub originals: bool,
}

impl Default for VariantLimits {
    fn default() -> VariantLimits {
        VariantLimits {
            widths: DEFAULT_WIDTHS.to_vec(),
            heights: DEFAULT_HEIGHTS.to_vec(),
            qualities: DEFAULT_QUALITIES.to_vec(),
            formats: Format::ALL.to_vec(),
            // AVIF encodes take tens of times longer than WebP: `auto` offers it only when the
            // route asks for it.
            auto: vec![Format::Webp, Format::Jpeg],
            max_source_bytes: DEFAULT_MAX_SOURCE_BYTES,
            max_source_pixels: DEFAULT_MAX_SOURCE_PIXELS,
            timeout: DEFAULT_TIMEOUT,
            originals: false,
        }
    }
}

fn listed(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl VariantLimits {
    /// Checks a parsed URL against the allowlists.
    pub fn check(
        &self,
        width: u32,
        height: u32,
        quality: u32,
        asked: Asked,
    ) -> Result<(), VariantError> {
        if !self.widths.contains(&width) {
            return Err(VariantError::NotAllowed(format!(
                "width {width} is not allowed; allowed widths: {}",
                listed(&self.widths)
            )));
        }
        if !self.heights.contains(&height) {
            return Err(VariantError::NotAllowed(format!(
                "height {height} is not allowed; allowed heights: {}",
                listed(&self.heights)
            )));
        }
        if !self.qualities.contains(&quality) {
            return Err(VariantError::NotAllowed(format!(
                "quality {quality} is not allowed; allowed qualities: {}",
                listed(&self.qualities)
            )));
        }
        let named = match asked {
            Asked::Exactly(f) => self.formats.contains(&f).then_some(()).ok_or(f.name()),
            Asked::Auto => (!self.auto.is_empty()).then_some(()).ok_or("auto"),
        };
        named.map_err(|name| {
            let mut allowed: Vec<&str> = self.formats.iter().map(|f| f.name()).collect();
            if !self.auto.is_empty() {
                allowed.push("auto");
            }
            VariantError::NotAllowed(format!(
                "format {name} is not allowed; allowed formats: {}",
                allowed.join(", ")
            ))
        })
    }

    /// The formats `auto` chooses from.
    pub fn auto_formats(&self) -> Vec<Format> {
        self.auto.clone()
    }

    /// Checks an original's length.
    pub fn check_source_bytes(&self, bytes: u64) -> Result<(), VariantError> {
        if bytes > self.max_source_bytes {
            return Err(VariantError::SourceTooLarge(format!(
                "the original is {bytes} bytes; this route reads at most {}",
                self.max_source_bytes
            )));
        }
        Ok(())
    }

    /// Checks an original's declared dimensions (from its header, before decoding).
    pub fn check_source_pixels(&self, width: u64, height: u64) -> Result<(), VariantError> {
        let pixels = width.saturating_mul(height);
        if width == 0 || height == 0 || pixels > self.max_source_pixels {
            return Err(VariantError::SourceTooLarge(format!(
                "the original declares {width}x{height} pixels; this route decodes at most {} pixels",
                self.max_source_pixels
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_allowed_values() {
        let l = VariantLimits::default();
        let err = l.check(641, 480, 80, Asked::Auto).unwrap_err();
        assert_eq!(
            err.to_string(),
            "width 641 is not allowed; allowed widths: 320, 640, 1024, 1920"
        );
        let err = l.check(640, 480, 81, Asked::Auto).unwrap_err();
        assert!(err.to_string().contains("allowed qualities: 50, 60"));
        let png_only = VariantLimits {
            formats: vec![Format::Png],
            auto: vec![],
            ..VariantLimits::default()
        };
        let err = png_only
            .check(640, 480, 80, Asked::Exactly(Format::Webp))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "format webp is not allowed; allowed formats: png"
        );
        assert!(png_only.check(640, 480, 80, Asked::Auto).is_err());
        assert!(l
            .check(1920, 1080, 85, Asked::Exactly(Format::Avif))
            .is_ok());
    }

    #[test]
    fn bombs_are_refused_from_the_header() {
        let l = VariantLimits::default();
        assert!(l.check_source_pixels(50_000, 50_000).is_err());
        assert!(l.check_source_pixels(0, 10).is_err());
        assert!(l.check_source_bytes(u64::MAX).is_err());
        assert!(l.check_source_pixels(u64::MAX, u64::MAX).is_err());
        assert!(l.check_source_pixels(4000, 3000).is_ok());
        assert!(l.check_source_bytes(1000).is_ok());
    }
}
