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

/// The value of one hex digit (either case); `None` for anything else.
pub fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte two hex digits (either case) write, as in a `%XX` escape; `None` unless `pair`
/// is exactly two hex digits (`u8::from_str_radix` would also take a sign: `+f`).
pub fn byte(pair: &[u8]) -> Option<u8> {
    match pair {
        [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_lower_case_digits_a_byte() {
        assert_eq!(super::encode(&[0, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::encode(&[]), "");
    }

    #[test]
    fn a_pair_is_two_digits_and_nothing_else() {
        assert_eq!(super::byte(b"0f"), Some(0x0f));
        assert_eq!(super::byte(b"Fa"), Some(0xfa));
        // Found by fuzzing: `from_str_radix` reads `+f` as 15.
        for bad in [&b"+f"[..], b"-1", b"f", b"fff", b"g0", b" 1"] {
            assert_eq!(super::byte(bad), None, "{bad:?}");
        }
    }
}
