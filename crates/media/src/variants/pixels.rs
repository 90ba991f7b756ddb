//! Decoded pixels: 8-bit sRGB-or-tagged RGB or RGBA rows, and the orientation and compositing
//! steps that work on them whole (EXIF orientation, flattening, padding).

/// An 8-bit image: `channels` is 3 (RGB) or 4 (RGBA, straight alpha), rows are packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 3 or 4.
    pub channels: u8,
    /// `width × height × channels` bytes, row after row.
    pub data: Vec<u8>,
}

impl Pixels {
    /// Whether some pixel is not fully opaque.
    pub fn has_transparency(&self) -> bool {
        self.channels == 4 && self.data.chunks_exact(4).any(|p| p[3] != 255)
    }

    /// The same image without alpha, composited over `background` (JPEG has no alpha).
    pub fn flatten(self, background: [u8; 3]) -> Pixels {
        if self.channels == 3 {
            return self;
        }
        let mut data = Vec::with_capacity(self.data.len() / 4 * 3);
        for p in self.data.chunks_exact(4) {
            let a = u32::from(p[3]);
            for c in 0..3 {
                let v = (u32::from(p[c]) * a + u32::from(background[c]) * (255 - a) + 127) / 255;
                data.push(v as u8);
            }
        }
        Pixels {
            width: self.width,
            height: self.height,
            channels: 3,
            data,
        }
    }

    /// The image with an alpha channel (opaque where there was none).
    pub fn with_alpha(self) -> Pixels {
        if self.channels == 4 {
            return self;
        }
        let mut data = Vec::with_capacity(self.data.len() / 3 * 4);
        for p in self.data.chunks_exact(3) {
            data.extend_from_slice(p);
            data.push(255);
        }
        Pixels {
            width: self.width,
            height: self.height,
            channels: 4,
            data,
        }
    }

    /// This image centred on a `width`×`height` canvas of `fill` (RGBA; its alpha is used
    /// only when the image has an alpha channel).
    pub fn pad(self, width: u32, height: u32, fill: [u8; 4]) -> Pixels {
        if self.width == width && self.height == height {
            return self;
        }
        let ch = self.channels as usize;
        let mut data = Vec::with_capacity(width as usize * height as usize * ch);
        for _ in 0..(width as usize * height as usize) {
            data.extend_from_slice(&fill[..ch]);
        }
        let left = (width.saturating_sub(self.width) / 2) as usize;
        let top = (height.saturating_sub(self.height) / 2) as usize;
        let row = self.width as usize * ch;
        for (y, src) in self.data.chunks_exact(row).enumerate() {
            let start = ((top + y) * width as usize + left) * ch;
            if let Some(dst) = data.get_mut(start..start + row) {
                dst.copy_from_slice(src);
            }
        }
        Pixels {
            width,
            height,
            channels: self.channels,
            data,
        }
    }

    /// The image turned upright for EXIF orientation `orientation` (1–8; anything else is
    /// left as it is): the stored image is transformed as the tag says it must be displayed.
    pub fn oriented(self, orientation: u32) -> Pixels {
        if !(2..=8).contains(&orientation) {
            return self;
        }
        let (w, h, ch) = (
            self.width as usize,
            self.height as usize,
            self.channels as usize,
        );
        // Orientations 5–8 swap the axes.
        let (ow, oh) = if orientation >= 5 { (h, w) } else { (w, h) };
        let mut data = vec![0u8; self.data.len()];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = match orientation {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (h - 1 - y, x),
                    7 => (h - 1 - y, w - 1 - x),
                    _ => (y, w - 1 - x), // 8
                };
                let src = (y * w + x) * ch;
                let dst = (dy * ow + dx) * ch;
                data[dst..dst + ch].copy_from_slice(&self.data[src..src + ch]);
            }
        }
        Pixels {
            width: ow as u32,
            height: oh as u32,
            channels: self.channels,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 image whose pixels are numbered 0..6 in the red channel.
    fn numbered() -> Pixels {
        let data = (0..6u8).flat_map(|i| [i, 0, 0]).collect();
        Pixels {
            width: 3,
            height: 2,
            channels: 3,
            data,
        }
    }

    fn reds(p: &Pixels) -> Vec<u8> {
        p.data.chunks_exact(3).map(|c| c[0]).collect()
    }

    #[test]
    fn orientations_turn_the_stored_image_upright() {
        // Stored:  0 1 2 / 3 4 5
        assert_eq!(reds(&numbered().oriented(1)), [0, 1, 2, 3, 4, 5]);
        assert_eq!(reds(&numbered().oriented(2)), [2, 1, 0, 5, 4, 3]);
        assert_eq!(reds(&numbered().oriented(3)), [5, 4, 3, 2, 1, 0]);
        assert_eq!(reds(&numbered().oriented(4)), [3, 4, 5, 0, 1, 2]);
        // 6: rotate 90° clockwise → 3 0 / 4 1 / 5 2
        let six = numbered().oriented(6);
        assert_eq!((six.width, six.height), (2, 3));
        assert_eq!(reds(&six), [3, 0, 4, 1, 5, 2]);
        // 8: rotate 90° counter-clockwise → 2 5 / 1 4 / 0 3
        assert_eq!(reds(&numbered().oriented(8)), [2, 5, 1, 4, 0, 3]);
        // 5: transpose → 0 3 / 1 4 / 2 5; 7: transverse → 5 2 / 4 1 / 3 0
        assert_eq!(reds(&numbered().oriented(5)), [0, 3, 1, 4, 2, 5]);
        assert_eq!(reds(&numbered().oriented(7)), [5, 2, 4, 1, 3, 0]);
        assert_eq!(reds(&numbered().oriented(9)), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn flatten_and_pad() {
        let rgba = Pixels {
            width: 1,
            height: 1,
            channels: 4,
            data: vec![0, 0, 0, 0],
        };
        assert!(rgba.has_transparency());
        assert_eq!(rgba.clone().flatten([255, 255, 255]).data, [255, 255, 255]);
        let padded = numbered().pad(5, 4, [9, 9, 9, 255]);
        assert_eq!((padded.width, padded.height), (5, 4));
        assert_eq!(reds(&padded)[..5], [9, 9, 9, 9, 9]);
        assert_eq!(reds(&padded)[5..10], [9, 0, 1, 2, 9]);
    }
}
