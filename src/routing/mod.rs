//! Host and path routing, compiled once from the config.
//!
//! [`Router::find`] takes the request's host (already checked by [`host`]) and its normalised
//! path (see [`path`]) and returns the first matching route of the matching host. Hosts are
//! matched exact name first, then the longest wildcard suffix, then `*`. A route points at a
//! [`Target`]: today one backend; weighted groups and backups are planned (steering issue).

pub mod host;
pub mod path;

use crate::config::{Config, Host, HostPattern, PathMatch, Route};
use crate::metrics::{Metrics, RouteMetrics};
use std::collections::HashMap;
use std::sync::Arc;

/// Longest object key S3 accepts, in bytes of UTF-8.
pub const MAX_OBJECT_KEY_BYTES: usize = 1024;

/// What a route sends its requests to.
pub enum Target<B> {
    /// One backend.
    Backend(Arc<B>),
}

impl<B> Target<B> {
    /// The backend to ask next, given the backends this request already gave up on (`tried`);
    /// `None` when none is left.
    pub fn choose(&self, tried: &[Arc<B>]) -> Option<Arc<B>> {
        match self {
            Target::Backend(b) => (!tried.iter().any(|t| Arc::ptr_eq(t, b))).then(|| b.clone()),
        }
    }
}

/// A route ready to serve: the configured route, its target and its metric handles.
pub struct CompiledRoute<B> {
    /// The configured host name used as the metrics label.
    pub host_label: Arc<str>,
    /// The route as configured.
    pub route: Route,
    /// Where its requests go.
    pub target: Target<B>,
    /// Request metrics labelled with this host and route.
    pub metrics: RouteMetrics,
}

/// The route chosen for a request (one reference-count increment per request).
pub type RouteMatch<B> = Arc<CompiledRoute<B>>;

struct CompiledHost<B> {
    routes: Vec<RouteMatch<B>>,
}

/// Host → ordered routes, built from a validated [`Config`] and the live backends (`B`).
pub struct Router<B> {
    exact: HashMap<String, usize>,
    suffixes: Vec<(String, usize)>,
    any: Option<usize>,
    hosts: Vec<CompiledHost<B>>,
}

impl<B> Router<B> {
    /// Compiles the routing table; routes whose backend is missing from `backends` are dropped
    /// (validation guarantees there are none).
    pub fn new(config: &Config, backends: &HashMap<String, Arc<B>>) -> Router<B> {
        let mut router = Router {
            exact: HashMap::new(),
            suffixes: Vec::new(),
            any: None,
            hosts: Vec::new(),
        };
        for (i, host) in config.hosts.iter().enumerate() {
            router.hosts.push(compile_host(host, backends));
            for p in &host.patterns {
                match p {
                    HostPattern::Exact(n) => {
                        router.exact.entry(n.clone()).or_insert(i);
                    }
                    HostPattern::Suffix(s) => router.suffixes.push((s.clone(), i)),
                    HostPattern::Any => router.any = router.any.or(Some(i)),
                }
            }
        }
        router
            .suffixes
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        router
    }

    /// Finds the route for a host (without port, as [`host::request_host`] returns it; case
    /// and a trailing dot ignored) and a normalised path.
    pub fn find(&self, host: &str, path: &str) -> Option<RouteMatch<B>> {
        let host = host::canonical(host);
        let host = host.as_ref();
        let index = self.exact.get(host).copied().or_else(|| {
            self.suffixes
                .iter()
                .find(|(suffix, _)| host.ends_with(suffix.as_str()))
                .map(|(_, i)| *i)
                .or(self.any)
        })?;
        self.hosts[index]
            .routes
            .iter()
            .find(|r| matches(&r.route.matcher, path))
            .cloned()
    }
}

fn compile_host<B>(host: &Host, backends: &HashMap<String, Arc<B>>) -> CompiledHost<B> {
    let label: Arc<str> = Arc::from(host.names.first().map(String::as_str).unwrap_or("*"));
    let metrics = Metrics::global();
    CompiledHost {
        routes: host
            .routes
            .iter()
            .filter_map(|r| {
                backends.get(&r.backend).map(|b| {
                    Arc::new(CompiledRoute {
                        host_label: label.clone(),
                        route: r.clone(),
                        target: Target::Backend(b.clone()),
                        metrics: metrics.route(&label, &r.name),
                    })
                })
            })
            .collect(),
    }
}

fn matches(matcher: &PathMatch, path: &str) -> bool {
    match matcher {
        PathMatch::Exact(e) => path == e,
        PathMatch::Prefix(p) => path::has_prefix(path, p),
    }
}

/// The object key (s3, dir) a matched request reads: the backend's `key_prefix`, the route's
/// `add_prefix` and the normalised path after `strip_prefix`, joined segment by segment with
/// exactly one `/` between non-empty parts (`tenant` + `pub` + `/a.png` → `tenant/pub/a.png`;
/// slashes at either end of a prefix make no difference). No leading `/`; a trailing `/` of the
/// path is kept, so a directory-style path never names an object. Always under `key_prefix`,
/// because the normalised path has no dot segments.
pub fn object_key(route: &Route, key_prefix: &str, path: &str) -> String {
    join_key(&[key_prefix, route.add_prefix.as_str(), strip(route, path)])
}

/// Joins key parts segment by segment (the rule [`object_key`] documents): empty segments
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
    use crate::config::from_toml_str;

    fn config() -> Config {
        let dir = std::env::temp_dir();
        from_toml_str(
            &format!(
                r#"
[[listeners]]
address = "127.0.0.1:1"
[backends.d]
kind = "dir"
root = "{}"
[[hosts]]
names = ["cdn.example.com"]
[[hosts.routes]]
path = "/static"
backend = "d"
strip_prefix = "/static"
add_prefix = "pub"
[[hosts.routes]]
exact = "/robots.txt"
backend = "d"
[[hosts]]
names = ["*.example.com"]
[[hosts.routes]]
path = "/"
name = "wild"
backend = "d"
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
name = "any"
backend = "d"
"#,
                dir.display()
            ),
            &dir,
        )
        .unwrap()
    }

    #[test]
    fn hosts_and_routes() {
        let c = config();
        let backends: HashMap<String, Arc<()>> = c
            .backends
            .keys()
            .map(|k| (k.clone(), Arc::new(())))
            .collect();
        let r = Router::new(&c, &backends);
        let m = r.find("CDN.example.com", "/static/a.png").unwrap();
        assert_eq!(&*m.host_label, "cdn.example.com");
        assert_eq!(object_key(&m.route, "", "/static/a.png"), "pub/a.png");
        assert_eq!(
            object_key(&m.route, "tenant/", "/static/a.png"),
            "tenant/pub/a.png"
        );
        // Regression: the prefix without a trailing slash was glued on (`tenantpub/a.png`).
        assert_eq!(
            object_key(&m.route, "tenant", "/static/a.png"),
            "tenant/pub/a.png"
        );
        assert_eq!(
            object_key(&m.route, "tenant", "/static/dir/"),
            "tenant/pub/dir/"
        );
        assert_eq!(object_key(&m.route, "tenant", "/static"), "tenant/pub");
        assert!(r.find("cdn.example.com", "/statics/a.png").is_none());
        assert_eq!(
            r.find("cdn.example.com", "/robots.txt").unwrap().route.name,
            "/robots.txt"
        );
        assert_eq!(r.find("img.example.com", "/x").unwrap().route.name, "wild");
        assert_eq!(r.find("other.org", "/x").unwrap().route.name, "any");
        assert_eq!(
            r.find("cdn.example.com.", "/robots.txt")
                .unwrap()
                .route
                .name,
            "/robots.txt"
        );
    }

    #[test]
    fn targets_skip_backends_given_up_on() {
        let b = Arc::new(());
        let target = Target::Backend(b.clone());
        assert!(target.choose(&[]).is_some_and(|c| Arc::ptr_eq(&c, &b)));
        assert!(target.choose(&[b]).is_none());
        assert!(target.choose(&[Arc::new(())]).is_some());
    }

    #[test]
    fn origin_paths() {
        let c = config();
        let route = &c.hosts[0].routes[0];
        assert_eq!(origin_path(route, "/static/a/b"), "/pub/a/b");
    }
}
