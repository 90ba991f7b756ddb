//! Embedded colour profiles → sRGB, as sharp and imgproxy do by default: a Display P3 or
//! Adobe RGB original looks the same in a browser after the profile is dropped from the
//! variant (sRGB is what an untagged image means). Pure Rust (moxcms).

use super::pixels::Pixels;
use moxcms::{ColorProfile, Layout, TransformOptions};

/// Converts `pixels` from the colours of `icc` to sRGB. A profile that cannot be read or
/// does not describe RGB (a grey or CMYK profile) leaves the pixels as they are: the
/// original's numbers are then taken as sRGB, as a browser would take them.
pub fn to_srgb(pixels: Pixels, icc: &[u8]) -> Pixels {
    let Ok(source) = ColorProfile::new_from_slice(icc) else {
        tracing::debug!("unreadable ICC profile; pixels kept as they are");
        return pixels;
    };
    let layout = if pixels.channels == 4 {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let srgb = ColorProfile::new_srgb();
    let Ok(transform) =
        source.create_transform_8bit(layout, &srgb, layout, TransformOptions::default())
    else {
        tracing::debug!("ICC profile not convertible to sRGB; pixels kept as they are");
        return pixels;
    };
    let mut out = vec![0u8; pixels.data.len()];
    if transform.transform(&pixels.data, &mut out).is_err() {
        return pixels;
    }
    Pixels {
        data: out,
        ..pixels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_p3_red_is_more_than_srgb_red() {
        let p3 = ColorProfile::new_display_p3().encode().unwrap();
        let px = Pixels {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![200, 40, 40],
        };
        let out = to_srgb(px.clone(), &p3);
        // P3's red primary lies outside sRGB: the same numbers mean a more saturated red.
        assert!(out.data[0] > 200, "{:?}", out.data);
        assert!(out.data[1] < 40, "{:?}", out.data);
        // A profile that is not one leaves the pixels alone.
        assert_eq!(to_srgb(px.clone(), b"not a profile"), px);
    }
}
