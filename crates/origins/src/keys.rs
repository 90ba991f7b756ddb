//! How a matched request's path becomes what a backend is asked for: the object key of a
//! bucket or directory, the URL path of an origin. The route's `strip_prefix` comes off
//! first, then its `add_prefix` (and, for keys, the backend's `key_prefix`) goes in front.

use crate::RouteView;

/// Longest object key S3 accepts, in bytes of UTF-8.
pub const MAX_OBJECT_KEY_BYTES: usize = 1024;

/// The object key (s3, dir) a matched request reads: the backend's `key_prefix`, the route's
/// `add_prefix` and the normalised path after `strip_prefix`, joined segment by segment with
/// exactly one `/` between non-empty parts (`tenant` + `pub` + `/a.png` → `tenant/pub/a.png`;
/// slashes at either end of a prefix make no difference). No leading `/`; a trailing `/` of the
/// path is kept, so a directory-style path never names an object. Always under `key_prefix`,
/// because the normalised path has no dot segments.
pub fn object_key(route: &(impl RouteView + ?Sized), key_prefix: &str, path: &str) -> String {
    kit::path::join_key(&[key_prefix, route.add_prefix(), strip(route, path)])
}

/// The URL path sent to an HTTP origin: `add_prefix` + the path after `strip_prefix`.
pub fn origin_path(route: &(impl RouteView + ?Sized), path: &str) -> String {
    let rest = strip(route, path);
    let prefix = route.add_prefix().trim_end_matches('/');
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

fn strip<'p>(route: &(impl RouteView + ?Sized), path: &'p str) -> &'p str {
    match route.strip_prefix() {
        Some(s) => path.strip_prefix(s).unwrap_or(path),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/static` served from `pub/`.
    struct Static;

    impl RouteView for Static {
        fn strip_prefix(&self) -> Option<&str> {
            Some("/static")
        }
        fn add_prefix(&self) -> &str {
            "pub"
        }
        fn origin_query(&self, query: Option<&str>) -> Option<String> {
            query.map(str::to_string)
        }
    }

    #[test]
    fn object_keys() {
        let route = &Static;
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
        assert_eq!(origin_path(&Static, "/static/a/b"), "/pub/a/b");
    }
}
