//! One variant, step by step: probe the header and check the limits, decode (shrinking a
//! JPEG on load), resize in the stored orientation, turn upright, convert to sRGB, pad for
//! `contain`, encode.

use super::color::to_srgb;
use super::decode::{decode, probe, Decoded, Probe};
use super::encode::{encode, EncodeSettings};
use super::limits::VariantLimits;
use super::resize::{max_shrink, resize, target_size};
use super::spec::{Fit, Format, VariantSpec};
use super::VariantError;

/// Reads `bytes`' header and checks it against the route's source limits.
pub fn admit(bytes: &[u8], limits: &VariantLimits) -> Result<Probe, VariantError> {
    limits.check_source_bytes(bytes.len() as u64)?;
    let p = probe(bytes)?;
    limits.check_source_pixels(p.width, p.height)?;
    Ok(p)
}

/// The box in the stored orientation: turned for EXIF orientations 5–8.
fn stored_box(spec: &VariantSpec, orientation: u32) -> (u32, u32) {
    if (5..=8).contains(&orientation) {
        (spec.height, spec.width)
    } else {
        (spec.width, spec.height)
    }
}

/// The JPEG shrink-on-load factor `spec` allows for a source of this size.
pub fn shrink_for(p: &Probe, spec: &VariantSpec) -> u32 {
    let (sw, sh) = (
        p.width.min(u32::MAX as u64) as u32,
        p.height.min(u32::MAX as u64) as u32,
    );
    let (bw, bh) = stored_box(spec, p.orientation);
    super::decode::jpeg_shrink(max_shrink(sw, sh, bw, bh, spec.fit))
}

/// Decodes an admitted original at `shrink`; a fully opaque alpha channel is dropped so
/// the rest of the pipeline moves three bytes a pixel.
pub fn decode_at(bytes: &[u8], p: &Probe, shrink: u32) -> Result<Decoded, VariantError> {
    let mut decoded = decode(bytes, p, shrink)?;
    if decoded.pixels.channels == 4 && !decoded.pixels.has_transparency() {
        decoded.pixels = decoded.pixels.flatten([0, 0, 0]);
    }
    Ok(decoded)
}

/// Makes `spec` from decoded pixels.
pub fn render(
    decoded: &Decoded,
    spec: &VariantSpec,
    settings: EncodeSettings,
) -> Result<Vec<u8>, VariantError> {
    // Resize in the stored orientation (the smaller image is then turned).
    let (bw, bh) = stored_box(spec, decoded.orientation);
    let src = &decoded.pixels;
    let (tw, th) = target_size(src.width, src.height, bw, bh, spec.fit);
    let resized = resize(src, tw, th, spec.fit == Fit::Cover)?;
    let upright = resized.oriented(decoded.orientation);
    let srgb = match &decoded.icc {
        Some(icc) => to_srgb(upright, icc),
        None => upright,
    };
    let fitted = if spec.fit == Fit::Contain {
        if spec.format == Format::Jpeg {
            srgb.pad(spec.width, spec.height, [255, 255, 255, 255])
        } else {
            srgb.with_alpha().pad(spec.width, spec.height, [0, 0, 0, 0])
        }
    } else {
        srgb
    };
    encode(fitted, spec.format, spec.quality, settings)
}

/// Every step for one variant of `bytes` (tests and benchmarks; the builder shares fetches
/// and decodes between variants instead).
pub fn make(
    bytes: &[u8],
    spec: &VariantSpec,
    limits: &VariantLimits,
    settings: EncodeSettings,
) -> Result<Vec<u8>, VariantError> {
    let p = admit(bytes, limits)?;
    let decoded = decode_at(bytes, &p, shrink_for(&p, spec))?;
    render(&decoded, spec, settings)
}
