//! The entry file format of the disk tier (integers little-endian):
//! ```text
//! 0   magic "AGD2"
//! 4   u32 internal meta length     8   u32 header meta length
//! 12  u32 meta region capacity     16  u64 body length
//! 24  u32 CRC-32 of the meta bytes 28  u32 labels length
//! 32  u32 CRC-32 of the labels     36  u32 CRC-32 of bytes 0..36
//! 40  meta region: labels (what the entry is purged by, `Labels::encode`), internal meta,
//!     header meta (pingora's serialised CacheMeta), padding
//! ..  body blocks: up to BLOCK bytes each, each followed by its u32 CRC-32
//! ```
//! Files of the first format (`AGD1`, without labels) fail the magic check and are dropped
//! and fetched again like any damaged entry.

/// Body bytes per checksummed block.
pub const BLOCK: usize = 256 * 1024;
const MAGIC: &[u8; 4] = b"AGD2";
/// Bytes of the fixed header.
pub const HEADER: usize = 40;

/// CRC-32 of `parts`, in order.
pub fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// The stored size of an entry file with `meta_capacity` and `body` bytes.
pub fn file_len(meta_capacity: u64, body: u64) -> u64 {
    let blocks = body.div_ceil(BLOCK as u64);
    HEADER as u64 + meta_capacity + body + 4 * blocks
}

/// Room reserved for metadata: twice what it takes now (a 304 may add headers), whole pages.
pub fn meta_capacity(meta_len: usize) -> u32 {
    ((meta_len * 2).max(4096).div_ceil(4096) * 4096) as u32
}

/// A parsed entry header.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// See the layout.
    pub internal_len: u32,
    /// See the layout.
    pub header_len: u32,
    /// See the layout.
    pub meta_capacity: u32,
    /// See the layout.
    pub body_len: u64,
    /// See the layout.
    pub meta_crc: u32,
    /// See the layout.
    pub labels_len: u32,
    /// See the layout.
    pub labels_crc: u32,
}

impl Head {
    /// The header bytes, with their checksum.
    pub fn encode(&self) -> [u8; HEADER] {
        let mut out = [0u8; HEADER];
        out[0..4].copy_from_slice(MAGIC);
        out[4..8].copy_from_slice(&self.internal_len.to_le_bytes());
        out[8..12].copy_from_slice(&self.header_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.meta_capacity.to_le_bytes());
        out[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        out[24..28].copy_from_slice(&self.meta_crc.to_le_bytes());
        out[28..32].copy_from_slice(&self.labels_len.to_le_bytes());
        out[32..36].copy_from_slice(&self.labels_crc.to_le_bytes());
        let check = crc(&[&out[..36]]);
        out[36..40].copy_from_slice(&check.to_le_bytes());
        out
    }

    /// The header these bytes hold, if they are one (magic, checksum, lengths).
    pub fn decode(raw: &[u8; HEADER]) -> Option<Head> {
        let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        if &raw[0..4] != MAGIC || crc(&[&raw[..36]]) != u32_at(36) {
            return None;
        }
        let mut body = [0u8; 8];
        body.copy_from_slice(&raw[16..24]);
        let head = Head {
            internal_len: u32_at(4),
            header_len: u32_at(8),
            meta_capacity: u32_at(12),
            body_len: u64::from_le_bytes(body),
            meta_crc: u32_at(24),
            labels_len: u32_at(28),
            labels_crc: u32_at(32),
        };
        let used = head.labels_len as u64 + head.internal_len as u64 + head.header_len as u64;
        (used <= head.meta_capacity as u64).then_some(head)
    }

    /// Offset of the internal meta (after the labels).
    pub fn meta_start(&self) -> u64 {
        HEADER as u64 + self.labels_len as u64
    }

    /// Offset of the first body block.
    pub fn body_start(&self) -> u64 {
        HEADER as u64 + self.meta_capacity as u64
    }
}
