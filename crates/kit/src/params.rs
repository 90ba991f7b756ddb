//! Query parameters and cookies: finding them (credentials among them) and removing them.
//!
//! Names are compared as sent (case-sensitive, not decoded); values are decoded as HTML forms
//! and URL libraries encode them (`%XX` escapes, `+` for a space). A credential parameter that
//! appears twice is refused rather than guessed at.

use http::HeaderMap;
use std::borrow::Cow;

/// A query string's `name=value` pairs, raw. A pair without `=` has an empty value.
pub fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// A credential parameter or cookie given more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicated;

/// The values of `names` among `pairs`, in the order of `names`.
fn find_in<'v, const N: usize>(
    pairs: impl Iterator<Item = (&'v str, &'v str)>,
    names: &[&str; N],
) -> Result<[Option<&'v str>; N], Duplicated> {
    let mut found = [None; N];
    for (name, value) in pairs {
        if let Some(i) = names.iter().position(|n| *n == name) {
            if found[i].is_some() {
                return Err(Duplicated);
            }
            found[i] = Some(value);
        }
    }
    Ok(found)
}

/// The raw values of `names` in `query`, in the order of `names`.
pub fn find<'q, const N: usize>(
    query: Option<&'q str>,
    names: &[&str; N],
) -> Result<[Option<&'q str>; N], Duplicated> {
    find_in(pairs(query.unwrap_or_default()), names)
}

/// Every cookie of every `Cookie` header as `(name, value)`, values as sent.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.split_once('=').unwrap_or((c, "")))
}

/// The values of the cookies `names`, in the order of `names`.
pub fn find_cookies<'h, const N: usize>(
    headers: &'h HeaderMap,
    names: &[&str; N],
) -> Result<[Option<&'h str>; N], Duplicated> {
    find_in(cookies(headers), names)
}

/// Decodes a raw query value (`%XX` and `+`); `None` when it is not UTF-8 after decoding or an
/// escape is malformed.
pub fn decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(crate::hex::byte(bytes.get(i + 1..i + 3)?)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// `query` without the pairs named in `names`; `None` when nothing is left. Borrowed when
/// nothing had to be removed.
pub fn strip<'q>(query: Option<&'q str>, names: &[&str]) -> Option<Cow<'q, str>> {
    let query = query.filter(|q| !q.is_empty())?;
    if names.is_empty() || !pairs(query).any(|(n, _)| names.contains(&n)) {
        return Some(Cow::Borrowed(query));
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| !names.contains(&p.split_once('=').map_or(*p, |(n, _)| n)))
        .collect();
    (!kept.is_empty()).then(|| Cow::Owned(kept.join("&")))
}

/// The query an origin is sent, which is also the query in the key: the parameters (only
/// `allowed` ones, when given) with their percent-encoding normalised (RFC 3986 §6.2.2:
/// escapes of unreserved characters decoded, other escapes in upper case, every other byte
/// kept as sent), ordered by name. Parameters of one name keep the order they came in, since
/// an origin may read the first or the last of them: `?a=evil&a=good` is never the key of
/// `?a=good&a=evil`. Bytes are never decoded into text, so `%FF` and `%FE` stay two keys.
/// `None` when no parameter is left.
pub fn forwarded_query(query: Option<&str>, allowed: Option<&[String]>) -> Option<String> {
    let mut pairs: Vec<(String, &str)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| (normalise_escapes(p), p))
        .filter(|(pair, _)| {
            allowed.is_none_or(|a| a.iter().any(|k| k.as_bytes() == name_bytes(pair)))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    // A stable sort by name alone: parameters of one name keep their order.
    pairs.sort_by(|(a, _), (b, _)| name_bytes(a).cmp(name_bytes(b)));
    let mut out = String::with_capacity(query.map_or(0, str::len));
    for (i, (pair, _)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(pair);
    }
    Some(out)
}

/// The name of a normalised `name=value` pair (escapes of unreserved characters decoded, as
/// `query_keys` names are compared).
fn name_bytes(pair: &str) -> &[u8] {
    pair.split_once('=').map_or(pair, |(n, _)| n).as_bytes()
}

/// RFC 3986 §6.2.2.1-2 on one query component: `%XX` of an unreserved character becomes the
/// character, any other `%XX` is written in upper case, a `%` that starts no escape becomes
/// `%25`; every other byte is kept.
fn normalise_escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(crate::hex::byte);
            match hex {
                Some(decoded) if is_unreserved(decoded) => out.push(decoded as char),
                Some(decoded) => out.push_str(&format!("%{decoded:02X}")),
                None => {
                    out.push_str("%25");
                    i += 1;
                    continue;
                }
            }
            i += 3;
        } else {
            // Multi-byte UTF-8 is copied whole: `text` is a `str`, so its bytes are valid.
            let len = utf8_len(b);
            out.push_str(&text[i..i + len]);
            i += len;
        }
    }
    out
}

/// RFC 3986 `unreserved`: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Length of the UTF-8 sequence that starts with `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_refuses_duplicates() {
        let q = Some("a=1&sig=x&b&sig2=y");
        assert_eq!(find(q, &["sig", "b", "c"]), Ok([Some("x"), Some(""), None]));
        assert!(find(Some("sig=1&sig=2"), &["sig"]).is_err());
        assert_eq!(find(None, &["sig"]), Ok([None]));
        // Names are case-sensitive: `SIG` is somebody else's parameter.
        assert_eq!(find(Some("SIG=1"), &["sig"]), Ok([None]));
    }

    #[test]
    fn decodes_form_values() {
        assert_eq!(decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(decode("plain").as_deref(), Some("plain"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%ff"), None);
        assert_eq!(decode("%C3%A9").as_deref(), Some("é"));
        // Found by fuzzing: a sign inside an escape was read as a hex number (`%+F` = 0x0F).
        assert_eq!(decode("F%+FWS"), None);
        assert_eq!(decode("%-1"), None);
    }

    #[test]
    fn strips_named_pairs_only() {
        let names = ["sig", "exp"];
        assert_eq!(
            strip(Some("w=1&sig=x&exp=2&h=3"), &names).as_deref(),
            Some("w=1&h=3")
        );
        assert_eq!(strip(Some("sig=x&exp=2"), &names), None);
        assert!(matches!(
            strip(Some("w=1"), &names),
            Some(Cow::Borrowed("w=1"))
        ));
        assert_eq!(strip(Some(""), &names), None);
        assert_eq!(
            strip(Some("signature=1"), &names).as_deref(),
            Some("signature=1")
        );
    }
}
