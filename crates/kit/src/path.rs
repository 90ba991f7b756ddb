//! The one place a request path is decoded.
//!
//! [`normalise`] percent-decodes the raw path exactly once and returns the value that the router,
//! access checks, cache key and object key all use. It rejects, before any backend is asked:
//! `.`/`..` segments (however encoded: `%2e`, double-encoded `%252e`), encoded separators
//! (`%2F`, `%5C`), backslashes, NUL and other control characters, malformed escapes and invalid
//! UTF-8. Empty segments (`a//b`) are merged into one separator, as nginx does by default, so
//! `//img///a.png` and `/img/a.png` are the same resource; a trailing slash is kept.

use std::fmt;

/// Why a path was refused (always answered with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-escape")]
    BadEscape,
    /// `%2F` or `%5C`: a separator hidden in an escape.
    #[error("encoded path separator")]
    EncodedSeparator,
    /// A literal backslash.
    #[error("backslash in path")]
    Backslash,
    /// NUL or another control character.
    #[error("control character in path")]
    ControlCharacter,
    /// The decoded bytes are not UTF-8.
    #[error("path is not valid UTF-8")]
    InvalidUtf8,
    /// A `.` or `..` segment.
    #[error("dot segment in path")]
    DotSegment,
    /// An escape that is still an escape after decoding once (e.g. `%252e`).
    #[error("double-encoded path")]
    DoubleEncoded,
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("path too long")]
    TooLong,
}

/// Longest raw path accepted (S3 keys are at most 1024 bytes).
pub const MAX_PATH_BYTES: usize = 4096;

/// Decodes and checks a raw request path (without query). See the module docs for the rules.
pub fn normalise(raw: &str) -> Result<String, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let b = if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(crate::hex::digit),
                bytes.get(i + 2).copied().and_then(crate::hex::digit),
            ) else {
                return Err(PathError::BadEscape);
            };
            i += 3;
            let v = (h << 4) | l;
            match v {
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                _ => v,
            }
        } else {
            i += 1;
            b
        };
        if b == b'\\' {
            return Err(PathError::Backslash);
        }
        if b < 0x20 || b == 0x7f {
            return Err(PathError::ControlCharacter);
        }
        decoded.push(b);
    }
    // `%25` is a literal percent, refused when the result reads as another escape, however
    // its digits were written (`%2541` and `%25%34%31` both decode to `%41`).
    if decoded
        .windows(3)
        .any(|w| w[0] == b'%' && crate::hex::byte(&w[1..]).is_some())
    {
        return Err(PathError::DoubleEncoded);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)?;
    let mut out = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(PathError::DotSegment);
        }
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || decoded.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// Whether `decoded` is a path [`normalise`] could have returned: absolute, no empty, `.` or
/// `..` segment (a trailing `/` aside), no backslash or control character, no `%` followed by
/// two hex digits. For decoded paths
/// that arrive by another way than a request line, like a signed prefix.
pub fn is_normalised(decoded: &str) -> bool {
    let Some(rest) = decoded.strip_prefix('/') else {
        return false;
    };
    let body = rest.strip_suffix('/').unwrap_or(rest);
    (rest.is_empty()
        || body
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".."))
        && !decoded.bytes().any(|b| b == b'\\' || b < 0x20 || b == 0x7f)
        // Never `%XX`: normalise refuses the `%25XX` that would decode to it.
        && !decoded
            .split('%')
            .skip(1)
            .any(|after| after.len() >= 2 && crate::hex::byte(&after.as_bytes()[..2]).is_some())
}

/// Whether a normalised `path` equals `prefix` or continues it at a segment boundary
/// (`/img` matches `/img` and `/img/a`, not `/imgs`); the empty prefix matches everything.
pub fn has_prefix(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')))
}

/// Characters left as they are when a decoded path or key is put back into a URL:
/// RFC 3986 unreserved characters and `/`. Everything else is percent-encoded, which is also
/// exactly what S3's SigV4 canonical URI expects.
const KEY_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// RFC 3986 unreserved characters only: what a query value or a single segment keeps as is.
const COMPONENT_ENCODE: &percent_encoding::AsciiSet = &KEY_ENCODE.add(b'/');

/// Percent-encodes one URL component (a query value: `/` is encoded too).
pub fn encode_component(text: &str) -> impl fmt::Display + '_ {
    percent_encoding::utf8_percent_encode(text, COMPONENT_ENCODE)
}

/// Percent-encodes a decoded path or object key for a request line.
pub fn encode(decoded: &str) -> impl fmt::Display + '_ {
    percent_encoding::utf8_percent_encode(decoded, KEY_ENCODE)
}

/// Joins key parts segment by segment (the object-key rule): empty segments
/// dropped, one `/` between parts, no leading `/`, the last part's trailing `/` kept.
pub fn join_key(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        for segment in part.split('/').filter(|s| !s.is_empty()) {
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(segment);
        }
    }
    if parts.last().is_some_and(|p| p.ends_with('/')) && !key.is_empty() {
        key.push('/');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_join_with_one_slash() {
        assert_eq!(join_key(&["tenant/", "/pub", "/a.png"]), "tenant/pub/a.png");
        assert_eq!(join_key(&["", "a//b", ""]), "a/b");
        assert_eq!(join_key(&["p", "dir/"]), "p/dir/");
        assert_eq!(join_key(&["", "/"]), "");
        assert_eq!(join_key(&[]), "");
    }

    #[test]
    fn is_normalised_is_what_normalise_returns() {
        for ok in ["/", "/a", "/a/", "/a/b.jpg", "/100%", "/é/ü"] {
            assert!(is_normalised(ok), "{ok}");
        }
        for bad in [
            "", "a", "//", "/a//b", "/./a", "/a/..", "/a%41", "/a\\b", "/a\u{7f}",
        ] {
            assert!(!is_normalised(bad), "{bad:?}");
        }
    }
    use proptest::prelude::*;

    #[test]
    fn accepts_and_decodes_once() {
        assert_eq!(normalise("/a/b.png").unwrap(), "/a/b.png");
        assert_eq!(normalise("/a%20b/c+d.txt").unwrap(), "/a b/c+d.txt");
        assert_eq!(normalise("/caf%C3%A9.png").unwrap(), "/café.png");
        assert_eq!(normalise("/100%25.txt").unwrap(), "/100%.txt");
        assert_eq!(normalise("/").unwrap(), "/");
        assert_eq!(normalise("//a///b/").unwrap(), "/a/b/");
        assert_eq!(normalise("/a/...").unwrap(), "/a/...");
    }

    #[test]
    fn rejects_traversal_and_smuggling() {
        use PathError::*;
        for (raw, err) in [
            ("/a/../b", DotSegment),
            ("/a/./b", DotSegment),
            ("/..", DotSegment),
            ("/a/%2e%2e/b", DotSegment),
            ("/a/%2E./b", DotSegment),
            ("/a/%252e%252e/b", DoubleEncoded),
            // Found by fuzzing: the escape's digits escaped too still make an escape.
            ("/a/%25%32%65%25%32%65/b", DoubleEncoded),
            ("/a/%25%32e", DoubleEncoded),
            ("/a%2fb", EncodedSeparator),
            ("/a%2Fb", EncodedSeparator),
            ("/a%5cb", EncodedSeparator),
            ("/a\\..\\b", Backslash),
            ("/a%00b", ControlCharacter),
            ("/a%0ab", ControlCharacter),
            ("/a%ff", InvalidUtf8),
            ("/a%zz", BadEscape),
            ("/a%2", BadEscape),
            ("a/b", NotAbsolute),
        ] {
            assert_eq!(normalise(raw), Err(err), "{raw}");
        }
    }

    #[test]
    fn prefixes_are_segment_aware() {
        assert!(has_prefix("/img/a.png", "/img"));
        assert!(has_prefix("/img", "/img"));
        assert!(!has_prefix("/imgs/a.png", "/img"));
        assert!(has_prefix("/anything", ""));
    }

    #[test]
    fn encodes_keys_for_s3() {
        assert_eq!(
            encode("a b/c+d~é.png").to_string(),
            "a%20b/c%2Bd~%C3%A9.png"
        );
    }

    fn hostile_path() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("/".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%".to_string()),
            Just("%2".to_string()),
            Just("%2e".to_string()),
            Just("%25".to_string()),
            Just("%2f".to_string()),
            Just("%c3".to_string()),
            Just("%a9".to_string()),
            Just("\\".to_string()),
            Just("a".to_string()),
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(token, 0..24).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn any_path_is_refused_or_clean(raw in hostile_path()) {
            if let Ok(p) = normalise(&raw) {
                prop_assert!(p.starts_with('/'));
                prop_assert!(!p.contains("//"));
                prop_assert!(!p.split('/').any(|s| s == "." || s == ".."));
                prop_assert!(!p.contains('\\') && !p.bytes().any(|b| b < 0x20 || b == 0x7f));
                // Normalising twice changes nothing once no escapes are left.
                if !p.contains('%') {
                    let again = normalise(&p);
                    prop_assert_eq!(again.as_deref(), Ok(p.as_str()));
                }
            }
        }
    }
}
