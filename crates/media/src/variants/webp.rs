//! WebP through libwebp 1.6 (the version sharp ships), called through its simple API: lossy
//! encoding at a quality with libwebp's default preset (method 4, the same settings sharp uses
//! by default) and decoding to RGBA. The only FFI in the crate; every call is checked and
//! every buffer libwebp returns is copied and freed here.
#![allow(unsafe_code)]

use super::pixels::Pixels;
use super::VariantError;
use std::os::raw::c_int;

/// Encodes `pixels` as lossy WebP at `quality` (1–100).
pub fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, VariantError> {
    let (w, h) = (pixels.width as c_int, pixels.height as c_int);
    let stride = pixels.width as usize * pixels.channels as usize;
    if pixels.data.len() != stride * pixels.height as usize || w <= 0 || h <= 0 {
        return Err(VariantError::Encode(
            "WebP: pixel buffer does not match its size".into(),
        ));
    }
    let mut out: *mut u8 = std::ptr::null_mut();
    // SAFETY: `data` holds `h` rows of `stride` bytes (checked above), libwebp only reads
    // it; `out` receives a buffer of the returned length that libwebp allocated.
    let len = unsafe {
        match pixels.channels {
            4 => libwebp_sys::WebPEncodeRGBA(
                pixels.data.as_ptr(),
                w,
                h,
                stride as c_int,
                f32::from(quality),
                &mut out,
            ),
            _ => libwebp_sys::WebPEncodeRGB(
                pixels.data.as_ptr(),
                w,
                h,
                stride as c_int,
                f32::from(quality),
                &mut out,
            ),
        }
    };
    if out.is_null() || len == 0 {
        if !out.is_null() {
            // SAFETY: allocated by libwebp above.
            unsafe { libwebp_sys::WebPFree(out.cast()) };
        }
        return Err(VariantError::Encode("WebP: the encoder failed".into()));
    }
    // SAFETY: libwebp returned `len` initialised bytes at `out`; copied, then freed once.
    let bytes = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
    unsafe { libwebp_sys::WebPFree(out.cast()) };
    Ok(bytes)
}

/// Decodes a WebP file to RGBA (the first frame of an animation is not supported: libwebp's
/// simple decoder refuses animations, and so do we, with 422).
pub fn decode(data: &[u8]) -> Result<Pixels, VariantError> {
    let (mut w, mut h): (c_int, c_int) = (0, 0);
    // SAFETY: libwebp reads at most `data.len()` bytes of `data` and writes the two ints.
    let ptr = unsafe { libwebp_sys::WebPDecodeRGBA(data.as_ptr(), data.len(), &mut w, &mut h) };
    if ptr.is_null() || w <= 0 || h <= 0 {
        if !ptr.is_null() {
            // SAFETY: allocated by libwebp above.
            unsafe { libwebp_sys::WebPFree(ptr.cast()) };
        }
        return Err(VariantError::Undecodable(
            "WebP: truncated, corrupt or animated".into(),
        ));
    }
    let len = w as usize * h as usize * 4;
    // SAFETY: on success libwebp returns `w × h` RGBA pixels at `ptr`; copied, then freed once.
    let rgba = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
    unsafe { libwebp_sys::WebPFree(ptr.cast()) };
    Ok(Pixels {
        width: w as u32,
        height: h as u32,
        channels: 4,
        data: rgba,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let pixels = Pixels {
            width: 16,
            height: 8,
            channels: 3,
            data: (0..16 * 8)
                .flat_map(|i| [i as u8, 128, 255 - i as u8])
                .collect(),
        };
        let webp = encode(&pixels, 80).unwrap();
        assert_eq!(&webp[..4], b"RIFF");
        assert_eq!(&webp[8..12], b"WEBP");
        let back = decode(&webp).unwrap();
        assert_eq!((back.width, back.height, back.channels), (16, 8, 4));
        assert!(decode(&webp[..webp.len() / 2]).is_err());
        assert!(decode(b"RIFF\0\0\0\0WEBPjunk").is_err());
    }
}
