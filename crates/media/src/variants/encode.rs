//! Pixels → bytes in the variant's format, with sharp's defaults at the same quality: JPEG
//! baseline 4:2:0 with optimised Huffman tables and libjpeg's standard quantisation tables
//! (mozjpeg in its libjpeg-turbo-compatible profile), WebP through libwebp's default preset
//! (method 4), PNG with zlib's default level, AVIF through rav1e at the configured speed.
//! Metadata is not carried over (sharp strips it too); pixels are sRGB by then.

use super::pixels::Pixels;
use super::spec::Format;
use super::VariantError;

/// Encoder settings that are not part of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeSettings {
    /// rav1e speed, 1 (slowest, smallest) to 10 (fastest).
    pub avif_speed: u8,
}

impl Default for EncodeSettings {
    fn default() -> EncodeSettings {
        EncodeSettings { avif_speed: 8 }
    }
}

/// Encodes `pixels` as `format` at `quality` (1–100; PNG ignores it).
pub fn encode(
    pixels: Pixels,
    format: Format,
    quality: u8,
    settings: EncodeSettings,
) -> Result<Vec<u8>, VariantError> {
    match format {
        Format::Jpeg => jpeg(&pixels.flatten([255, 255, 255]), quality),
        Format::Webp => super::webp::encode(&pixels, quality),
        Format::Png => png(&pixels),
        Format::Avif => avif(&pixels, quality, settings.avif_speed),
    }
}

fn jpeg(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, VariantError> {
    // mozjpeg reports errors by unwinding; the worker pool catches panics around the whole
    // job, and this catch turns the common case into a typed error.
    let run = || -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_fastest_defaults();
        c.set_size(pixels.width as usize, pixels.height as usize);
        c.set_quality(f32::from(quality));
        c.set_optimize_coding(true);
        c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        let mut started = c.start_compress(Vec::with_capacity(pixels.data.len() / 8))?;
        started.write_scanlines(&pixels.data)?;
        started.finish()
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(VariantError::Encode(format!("JPEG: {e}"))),
        Err(_) => Err(VariantError::Encode("JPEG: the encoder failed".into())),
    }
}

fn png(pixels: &Pixels) -> Result<Vec<u8>, VariantError> {
    let failed = |e: png::EncodingError| VariantError::Encode(format!("PNG: {e}"));
    let mut out = Vec::with_capacity(pixels.data.len() / 2);
    let mut encoder = png::Encoder::new(&mut out, pixels.width, pixels.height);
    encoder.set_color(if pixels.channels == 4 {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(&pixels.data).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

fn avif(pixels: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>, VariantError> {
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality.clamp(1, 100)))
        .with_speed(speed.clamp(1, 10));
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let encoded = if pixels.channels == 4 {
        let rgba: Vec<ravif::RGBA8> = pixels
            .data
            .chunks_exact(4)
            .map(|p| ravif::RGBA8::new(p[0], p[1], p[2], p[3]))
            .collect();
        encoder.encode_rgba(ravif::Img::new(&rgba[..], w, h))
    } else {
        let rgb: Vec<ravif::RGB8> = pixels
            .data
            .chunks_exact(3)
            .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
            .collect();
        encoder.encode_rgb(ravif::Img::new(&rgb[..], w, h))
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| VariantError::Encode(format!("AVIF: {e}")))
}
