//! Lower-case hex, the one encoding of bytes as text the gateway writes: cache entry keys,
//! object-tier markers, content hashes, asset ids, variant ETags.

use std::fmt::Write;

/// `bytes` as lower-case hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    push(&mut out, bytes);
    out
}

/// Appends `bytes` as lower-case hex to `out`.
pub fn push(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_lower_case_digits_a_byte() {
        assert_eq!(super::encode(&[0, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::encode(&[]), "");
    }
}
