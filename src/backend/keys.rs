//! How a matched request's path becomes what a backend is asked for: the object key of a
//! bucket or directory, the URL path of an origin. The route's `strip_prefix` comes off
//! first, then its `add_prefix` (and, for keys, the backend's `key_prefix`) goes in front.

use crate::config::Route;

/// Longest object key S3 accepts, in bytes of UTF-8.
pub const MAX_OBJECT_KEY_BYTES: usize = 1024;

/// The object key (s3, dir) a matched request reads: the backend's `key_prefix`, the route's
/// `add_prefix` and the normalised path after `strip_prefix`, joined segment by segment with
/// exactly one `/` between non-empty parts (`tenant` + `pub` + `/a.png` → `tenant/pub/a.png`;
/// slashes at either end of a prefix make no difference). No leading `/`; a trailing `/` of the
/// path is kept, so a directory-style path never names an object. Always under `key_prefix`,
/// because the normalised path has no dot segments.
pub fn object_key(route: &Route, key_prefix: &str, path: &str) -> String {
    kit::path::join_key(&[key_prefix, route.add_prefix.as_str(), strip(route, path)])
}

/// The URL path sent to an HTTP origin: `add_prefix` + the path after `strip_prefix`.
pub fn origin_path(route: &Route, path: &str) -> String {
    let rest = strip(route, path);
    let prefix = route.add_prefix.trim_end_matches('/');
    let mut out = String::with_capacity(prefix.len() + rest.len() + 1);
    if !prefix.is_empty() && !prefix.starts_with('/') {
        out.push('/');
    }
    out.push_str(prefix);
    if !rest.starts_with('/') {
        out.push('/');
    }
    out.push_str(rest);
    out
}

fn strip<'p>(route: &Route, path: &'p str) -> &'p str {
    match &route.strip_prefix {
        Some(s) => path.strip_prefix(s.as_str()).unwrap_or(path),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_toml_str, Config};

    /// One route on a `dir` backend: `/static` served from `pub/` (inline tables, as a
    /// config may also be written).
    fn config() -> Config {
        let dir = std::env::temp_dir();
        let text = format!(
            "listeners = [{{ address = \"127.0.0.1:1\" }}]\n\
             backends = {{ d = {{ kind = \"dir\", root = \"{}\" }} }}\n\
             hosts = [{{ names = [\"cdn.example.com\"], routes = [{{ path = \"/static\", \
             backend = \"d\", strip_prefix = \"/static\", add_prefix = \"pub\" }}] }}]\n",
            dir.display()
        );
        from_toml_str(&text, &dir).unwrap()
    }

    #[test]
    fn object_keys() {
        let c = config();
        let route = &c.hosts[0].routes[0];
        assert_eq!(object_key(route, "", "/static/a.png"), "pub/a.png");
        assert_eq!(
            object_key(route, "tenant/", "/static/a.png"),
            "tenant/pub/a.png"
        );
        // Regression: the prefix without a trailing slash was glued on (`tenantpub/a.png`).
        assert_eq!(
            object_key(route, "tenant", "/static/a.png"),
            "tenant/pub/a.png"
        );
        assert_eq!(
            object_key(route, "tenant", "/static/dir/"),
            "tenant/pub/dir/"
        );
        assert_eq!(object_key(route, "tenant", "/static"), "tenant/pub");
    }

    #[test]
    fn origin_paths() {
        let c = config();
        let route = &c.hosts[0].routes[0];
        assert_eq!(origin_path(route, "/static/a/b"), "/pub/a/b");
    }
}
