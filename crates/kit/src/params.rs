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
