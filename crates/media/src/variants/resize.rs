//! Geometry (pure: what box, what crop, how much a JPEG may shrink on load) and the resize
//! itself: `fast_image_resize`'s SIMD convolution with a Lanczos3 filter, sharp's default.

use super::pixels::Pixels;
use super::spec::Fit;
use super::VariantError;
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// The size a source of `sw`×`sh` is resized to for a `bw`×`bh` box: the box itself for
/// `cover` (the source is centre-cropped to its aspect ratio), else the largest size with the
/// source's aspect ratio that fits inside it (`contain` pads it to the box afterwards).
pub fn target_size(sw: u32, sh: u32, bw: u32, bh: u32, fit: Fit) -> (u32, u32) {
    match fit {
        Fit::Cover => (bw, bh),
        Fit::Contain | Fit::Inside => {
            let scale = (f64::from(bw) / f64::from(sw)).min(f64::from(bh) / f64::from(sh));
            let w = (f64::from(sw) * scale).round().clamp(1.0, f64::from(bw)) as u32;
            let h = (f64::from(sh) * scale).round().clamp(1.0, f64::from(bh)) as u32;
            (w, h)
        }
    }
}

/// How many source pixels per output pixel the resize leaves on the less-reduced axis: the
/// most a JPEG may be shrunk on load without the resize having to enlarge it again. The box
/// is in the stored orientation (turned already for EXIF orientations 5–8).
pub fn max_shrink(sw: u32, sh: u32, bw: u32, bh: u32, fit: Fit) -> u32 {
    let (tw, th) = target_size(sw, sh, bw, bh, fit);
    let fx = f64::from(sw) / f64::from(tw.max(1));
    let fy = f64::from(sh) / f64::from(th.max(1));
    // The less-reduced axis bounds the shrink (a cover crop keeps it whole).
    fx.min(fy).floor().max(1.0) as u32
}

/// Resizes `src` to `w`×`h`, centre-cropping to that aspect ratio first when `crop` is set.
pub fn resize(src: &Pixels, w: u32, h: u32, crop: bool) -> Result<Pixels, VariantError> {
    if src.width == w && src.height == h {
        return Ok(src.clone());
    }
    let pixel_type = if src.channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let failed = |e: &dyn std::fmt::Display| VariantError::Encode(format!("resize: {e}"));
    let source =
        fast_image_resize::images::ImageRef::new(src.width, src.height, &src.data, pixel_type)
            .map_err(|e| failed(&e))?;
    let mut dest = Image::new(w, h, pixel_type);
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if crop {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    Resizer::new()
        .resize(&source, &mut dest, &options)
        .map_err(|e| failed(&e))?;
    Ok(Pixels {
        width: w,
        height: h,
        channels: src.channels,
        data: dest.into_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes() {
        assert_eq!(target_size(4000, 3000, 640, 480, Fit::Cover), (640, 480));
        assert_eq!(target_size(4000, 2000, 640, 480, Fit::Inside), (640, 320));
        assert_eq!(target_size(1000, 4000, 640, 480, Fit::Contain), (120, 480));
        assert_eq!(target_size(10, 10, 1920, 1080, Fit::Inside), (1080, 1080));
    }

    #[test]
    fn shrink_leaves_enough_pixels() {
        // 4000×3000 to 640×480: 6.25× on both axes.
        assert_eq!(max_shrink(4000, 3000, 640, 480, Fit::Cover), 6);
        // A 480×640 box (turned): the 3000 px side must still give 640.
        assert_eq!(max_shrink(4000, 3000, 480, 640, Fit::Cover), 4);
        // 1920×1080 by cover keeps the width: 4000/1920.
        assert_eq!(max_shrink(4000, 3000, 1920, 1080, Fit::Cover), 2);
        // Inside: 1440×1080 from 4000×3000.
        assert_eq!(max_shrink(4000, 3000, 1920, 1080, Fit::Inside), 2);
        assert_eq!(max_shrink(300, 200, 640, 480, Fit::Cover), 1);
    }

    #[test]
    fn resizes_and_crops() {
        let src = Pixels {
            width: 40,
            height: 20,
            channels: 3,
            data: vec![100; 40 * 20 * 3],
        };
        let out = resize(&src, 10, 10, true).unwrap();
        assert_eq!((out.width, out.height, out.data.len()), (10, 10, 300));
        assert!(out.data.iter().all(|&v| v == 100));
    }
}
