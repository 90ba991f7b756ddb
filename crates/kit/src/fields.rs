//! Header field syntax shared by every parser of it: the members of a list-valued field
//! (RFC 9110 §5.6.1), over all of its lines; and adding a member to `Vary`.

use http::header::{self, AsHeaderName};
use http::{HeaderMap, HeaderValue};
use pingora::http::ResponseHeader;

/// The members of the list field `name` in `headers`, over every line, trimmed, empty ones
/// skipped (`Vary: a, ,b` and two `Vary` lines `a` and `b` both give `a`, `b`). Lines that are
/// not text are skipped.
pub fn list_members<'a, K: AsHeaderName>(
    headers: &'a HeaderMap,
    name: K,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
}

/// Adds `token` to the Vary header unless it is already listed.
pub fn append_vary(resp: &mut ResponseHeader, token: &str) {
    let current = resp
        .headers
        .get(header::VARY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if current
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token) || t.trim() == "*")
    {
        return;
    }
    let value = if current.trim().is_empty() {
        token.to_string()
    } else {
        format!("{current}, {token}")
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        let _ = resp.insert_header(header::VARY, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_over_lines() {
        let mut h = HeaderMap::new();
        h.append("vary", "a, ,b".parse().unwrap());
        h.append("vary", " c ".parse().unwrap());
        h.append("vary", http::HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(
            list_members(&h, "vary").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(list_members(&h, "cache-control").count(), 0);
    }
}
