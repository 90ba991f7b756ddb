//! Header field syntax shared by every parser of it: the members of a list-valued field
//! (RFC 9110 §5.6.1), over all of its lines.

use http::header::AsHeaderName;
use http::HeaderMap;

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
