//! Originals → pixels. The header is read first ([`probe`]) so the route's byte and pixel
//! limits are checked before anything is decoded: a decompression bomb (a few bytes declaring
//! 50000×50000) is refused without allocating its pixels. JPEGs are decoded with DCT scaling
//! (1/2, 1/4, 1/8) when the target allows, as libvips' shrink-on-load does; the EXIF
//! orientation and the embedded ICC profile are returned with the pixels.

use super::pixels::Pixels;
use super::VariantError;
use std::cell::Cell;
use std::io::{BufRead, Read};
use std::rc::Rc;

/// A source format the pipeline decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// JPEG (mozjpeg).
    Jpeg,
    /// PNG.
    Png,
    /// GIF (first frame).
    Gif,
    /// WebP (libwebp).
    Webp,
}

impl SourceFormat {
    /// The metric label (`assetgate_variant_source_bytes{format}`).
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Gif => "gif",
            SourceFormat::Webp => "webp",
        }
    }
}

/// What an original's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Its format.
    pub format: SourceFormat,
    /// Declared width.
    pub width: u64,
    /// Declared height.
    pub height: u64,
    /// EXIF orientation from the header (JPEG; 1 for other formats until decoded).
    pub orientation: u32,
}

/// Reads format and dimensions from the first bytes of `data`, decoding nothing.
pub fn probe(data: &[u8]) -> Result<Probe, VariantError> {
    let kind = imagesize::image_type(data)
        .map_err(|_| VariantError::Undecodable("not an image this gateway decodes".into()))?;
    let format =
        match kind {
            imagesize::ImageType::Jpeg => SourceFormat::Jpeg,
            imagesize::ImageType::Png => SourceFormat::Png,
            imagesize::ImageType::Gif => SourceFormat::Gif,
            imagesize::ImageType::Webp => SourceFormat::Webp,
            imagesize::ImageType::Heif(_) => return Err(VariantError::Undecodable(
                "AVIF and HEIF originals are not decoded (planned); store JPEG, PNG, WebP or GIF"
                    .into(),
            )),
            _ => return Err(VariantError::Undecodable("unsupported image format".into())),
        };
    let size = imagesize::blob_size(data)
        .map_err(|_| VariantError::Undecodable("the image header is unreadable".into()))?;
    let orientation = match format {
        SourceFormat::Jpeg => jpeg_header_orientation(data).unwrap_or(1),
        _ => 1,
    };
    Ok(Probe {
        format,
        width: size.width as u64,
        height: size.height as u64,
        orientation,
    })
}

/// The EXIF orientation of a JPEG, from its APP1 segment (the markers before the image data,
/// read without decoding anything).
fn jpeg_header_orientation(data: &[u8]) -> Option<u32> {
    let mut at = 2; // after SOI
    while at + 4 <= data.len() {
        if data[at] != 0xFF {
            return None;
        }
        let marker = data[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            return None; // image data (SOS) or the end: no EXIF before it
        }
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        let segment = data.get(at + 4..at + 2 + len)?;
        if marker == 0xE1 {
            if let Some(tiff) = segment.strip_prefix(b"Exif\0\0") {
                return exif_orientation(tiff);
            }
        }
        at += 2 + len;
    }
    None
}

/// Decoded pixels with what the file said about displaying them.
#[derive(Debug)]
pub struct Decoded {
    /// The stored pixels (not yet oriented).
    pub pixels: Pixels,
    /// EXIF orientation, 1 (upright) when absent.
    pub orientation: u32,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

/// Decodes `data` (already probed as `probe`), shrinking a JPEG on load by the largest of
/// 1, 2, 4, 8 not over `max_shrink`.
pub fn decode(data: &[u8], probe: &Probe, max_shrink: u32) -> Result<Decoded, VariantError> {
    match probe.format {
        SourceFormat::Jpeg => jpeg(data, max_shrink),
        SourceFormat::Png => png(data, probe),
        SourceFormat::Gif => gif(data),
        SourceFormat::Webp => super::webp::decode(data).map(|pixels| Decoded {
            pixels,
            orientation: 1,
            icc: None,
        }),
    }
}

/// The DCT scale for a JPEG: the largest power of two up to 8 that is at most `max_shrink`.
pub fn jpeg_shrink(max_shrink: u32) -> u32 {
    match max_shrink {
        0..=1 => 1,
        2..=3 => 2,
        4..=7 => 4,
        _ => 8,
    }
}

/// A reader over the bytes that notes whether the decoder asked for more than there was: a
/// complete JPEG ends at its EOI marker, so asking past the end means the file is truncated
/// (libjpeg itself only warns and fills the rest with grey).
struct Watched<'a> {
    data: &'a [u8],
    ran_out: Rc<Cell<bool>>,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ran_out.set(true);
        }
        Ok(n)
    }
}

impl BufRead for Watched<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.data.is_empty() {
            self.ran_out.set(true);
        }
        Ok(self.data)
    }

    fn consume(&mut self, amt: usize) {
        self.data = &self.data[amt.min(self.data.len())..];
    }
}

fn jpeg(data: &[u8], max_shrink: u32) -> Result<Decoded, VariantError> {
    let ran_out = Rc::new(Cell::new(false));
    let reader = Watched {
        data,
        ran_out: ran_out.clone(),
    };
    let markers = [mozjpeg::Marker::APP(1), mozjpeg::Marker::APP(2)];
    let failed = |e: std::io::Error| VariantError::Undecodable(format!("JPEG: {e}"));
    let mut dec = mozjpeg::Decompress::with_markers(&markers)
        .from_reader(reader)
        .map_err(failed)?;
    let mut orientation = 1;
    let mut icc_chunks: Vec<(u8, Vec<u8>)> = Vec::new();
    for marker in dec.markers() {
        match marker.marker {
            mozjpeg::Marker::APP(1) => {
                if let Some(tiff) = marker.data.strip_prefix(b"Exif\0\0") {
                    orientation = exif_orientation(tiff).unwrap_or(1);
                }
            }
            mozjpeg::Marker::APP(2) => {
                if let Some(rest) = marker.data.strip_prefix(b"ICC_PROFILE\0") {
                    if rest.len() > 2 {
                        icc_chunks.push((rest[0], rest[2..].to_vec()));
                    }
                }
            }
            _ => {}
        }
    }
    icc_chunks.sort_by_key(|(seq, _)| *seq);
    let icc =
        (!icc_chunks.is_empty()).then(|| icc_chunks.into_iter().flat_map(|(_, d)| d).collect());
    dec.scale((8 / jpeg_shrink(max_shrink)) as u8);
    let gray = dec.color_space() == mozjpeg::ColorSpace::JCS_GRAYSCALE;
    let mut started = if gray {
        dec.grayscale().map_err(failed)?
    } else {
        dec.rgb().map_err(failed)?
    };
    let (width, height) = (started.width() as u32, started.height() as u32);
    let raw: Vec<u8> = started.read_scanlines().map_err(failed)?;
    started.finish().map_err(failed)?;
    if ran_out.get() {
        return Err(VariantError::Undecodable(
            "JPEG: the file is truncated".into(),
        ));
    }
    let data = if gray {
        raw.iter().flat_map(|&v| [v, v, v]).collect()
    } else {
        raw
    };
    if data.len() != width as usize * height as usize * 3 {
        return Err(VariantError::Undecodable("JPEG: short image data".into()));
    }
    Ok(Decoded {
        pixels: Pixels {
            width,
            height,
            channels: 3,
            data,
        },
        orientation,
        icc,
    })
}

/// The orientation tag of a TIFF-structured EXIF block.
fn exif_orientation(tiff: &[u8]) -> Option<u32> {
    let exif = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
    let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    field.value.get_uint(0)
}

fn png(data: &[u8], probe: &Probe) -> Result<Decoded, VariantError> {
    let failed = |e: png::DecodingError| match e {
        png::DecodingError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            VariantError::Undecodable("PNG: the file is truncated".into())
        }
        other => VariantError::Undecodable(format!("PNG: {other}")),
    };
    // The decoder may allocate the output (already bounded by the pixel limit) and a little more.
    let limit = (probe.width * probe.height * 8 + (16 << 20)) as usize;
    let mut decoder =
        png::Decoder::new_with_limits(std::io::Cursor::new(data), png::Limits { bytes: limit });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(failed)?;
    let info = reader.info();
    let icc = info.icc_profile.as_ref().map(|p| p.to_vec());
    let orientation = info
        .exif_metadata
        .as_ref()
        .and_then(|e| exif_orientation(e))
        .unwrap_or(1);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| VariantError::Undecodable("PNG: image too large".into()))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(failed)?;
    buf.truncate(frame.buffer_size());
    let (width, height) = (frame.width, frame.height);
    let pixels = match frame.color_type {
        png::ColorType::Rgb => Pixels {
            width,
            height,
            channels: 3,
            data: buf,
        },
        png::ColorType::Rgba => Pixels {
            width,
            height,
            channels: 4,
            data: buf,
        },
        png::ColorType::Grayscale => Pixels {
            width,
            height,
            channels: 3,
            data: buf.iter().flat_map(|&v| [v, v, v]).collect(),
        },
        png::ColorType::GrayscaleAlpha => Pixels {
            width,
            height,
            channels: 4,
            data: buf
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
        },
        png::ColorType::Indexed => {
            return Err(VariantError::Undecodable(
                "PNG: palette not expanded".into(),
            ))
        }
    };
    Ok(Decoded {
        pixels,
        orientation,
        icc,
    })
}

fn gif(data: &[u8]) -> Result<Decoded, VariantError> {
    let failed = |e: gif::DecodingError| VariantError::Undecodable(format!("GIF: {e}"));
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(data).map_err(failed)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    let frame = decoder
        .read_next_frame()
        .map_err(failed)?
        .ok_or_else(|| VariantError::Undecodable("GIF: no frames".into()))?;
    // The first frame may cover part of the logical screen: place it on a transparent canvas.
    let mut canvas = vec![0u8; width as usize * height as usize * 4];
    let (fw, fh) = (usize::from(frame.width), usize::from(frame.height));
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    for y in 0..fh {
        let (cy, src_start) = (top + y, y * fw * 4);
        if cy >= height as usize {
            break;
        }
        let visible = fw.min((width as usize).saturating_sub(left));
        let dst_start = (cy * width as usize + left) * 4;
        if let (Some(src), Some(dst)) = (
            frame.buffer.get(src_start..src_start + visible * 4),
            canvas.get_mut(dst_start..dst_start + visible * 4),
        ) {
            dst.copy_from_slice(src);
        }
    }
    Ok(Decoded {
        pixels: Pixels {
            width,
            height,
            channels: 4,
            data: canvas,
        },
        orientation: 1,
        icc: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_factors_are_powers_of_two() {
        assert_eq!(jpeg_shrink(0), 1);
        assert_eq!(jpeg_shrink(1), 1);
        assert_eq!(jpeg_shrink(3), 2);
        assert_eq!(jpeg_shrink(6), 4);
        assert_eq!(jpeg_shrink(100), 8);
    }

    #[test]
    fn orientation_is_read_from_the_header() {
        // SOI, APP1 "Exif" with a big-endian TIFF holding Orientation = 6, then SOS.
        let tiff: &[u8] = &[
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0,
            0,
        ];
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
        let len = (2 + 6 + tiff.len()) as u16;
        jpeg.extend_from_slice(&len.to_be_bytes());
        jpeg.extend_from_slice(b"Exif\0\0");
        jpeg.extend_from_slice(tiff);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        assert_eq!(jpeg_header_orientation(&jpeg), Some(6));
        assert_eq!(
            jpeg_header_orientation(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]),
            None
        );
        assert_eq!(
            jpeg_header_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]),
            None
        );
    }

    #[test]
    fn garbage_is_not_an_image() {
        assert!(matches!(
            probe(b"definitely not an image"),
            Err(VariantError::Undecodable(_))
        ));
        assert!(probe(&[]).is_err());
    }

    #[test]
    fn a_bomb_is_measured_not_decoded() {
        // A PNG header declaring 50000×50000 (IHDR only): probing reads 24 bytes.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&50_000u32.to_be_bytes());
        png.extend_from_slice(&50_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        let p = probe(&png).unwrap();
        assert_eq!(
            (p.format, p.width, p.height),
            (SourceFormat::Png, 50_000, 50_000)
        );
    }
}
