//! Host and path routing, compiled once from the config.
//!
//! [`Router::find`] takes the request's Host and its normalised path (see [`path`]) and returns
//! the first matching route of the matching host. Hosts are matched exact name first, then the
//! longest wildcard suffix, then `*`.

pub mod path;

use crate::config::{Config, Host, HostPattern, PathMatch, Route};
use std::collections::HashMap;
use std::sync::Arc;

/// A route chosen for a request, with what is needed to name it in metrics and build its key.
pub struct RouteMatch<B> {
    /// The configured host name used as the metrics label.
    pub host_label: Arc<str>,
    /// The route.
    pub route: Arc<Route>,
    /// The route's backend.
    pub backend: Arc<B>,
}

impl<B> Clone for RouteMatch<B> {
    fn clone(&self) -> Self {
        RouteMatch {
            host_label: self.host_label.clone(),
            route: self.route.clone(),
            backend: self.backend.clone(),
        }
    }
}

struct CompiledHost<B> {
    label: Arc<str>,
    routes: Vec<(Arc<Route>, Arc<B>)>,
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

    /// Finds the route for a Host header value (port and case ignored) and a normalised path.
    pub fn find(&self, host: &str, path: &str) -> Option<RouteMatch<B>> {
        let host = host_without_port(host).trim_end_matches('.');
        // Most clients send lower-case names: only allocate when there is something to fold.
        let host: std::borrow::Cow<str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host.to_ascii_lowercase().into()
        } else {
            host.into()
        };
        let host = host.as_ref();
        let index = self.exact.get(host).copied().or_else(|| {
            self.suffixes
                .iter()
                .find(|(suffix, _)| host.ends_with(suffix.as_str()))
                .map(|(_, i)| *i)
                .or(self.any)
        })?;
        let compiled = &self.hosts[index];
        compiled
            .routes
            .iter()
            .find(|(route, _)| matches(&route.matcher, path))
            .map(|(route, backend)| RouteMatch {
                host_label: compiled.label.clone(),
                route: route.clone(),
                backend: backend.clone(),
            })
    }
}

fn compile_host<B>(host: &Host, backends: &HashMap<String, Arc<B>>) -> CompiledHost<B> {
    CompiledHost {
        label: Arc::from(host.names.first().map(String::as_str).unwrap_or("*")),
        routes: host
            .routes
            .iter()
            .filter_map(|r| {
                backends
                    .get(&r.backend)
                    .map(|b| (Arc::new(r.clone()), b.clone()))
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

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: keep the brackets' content intact.
        return host
            .split(']')
            .next()
            .map_or(host, |h| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Where a matched request reads from, derived from the route's key mapping.
///
/// `rest` is the normalised path after `strip_prefix`; the result for s3/dir is an object key
/// (no leading `/`), always under the backend's key prefix because the normalised path has no
/// dot segments.
pub fn object_key(route: &Route, key_prefix: &str, path: &str) -> String {
    let rest = strip(route, path);
    let mut key = String::with_capacity(key_prefix.len() + route.add_prefix.len() + rest.len());
    key.push_str(key_prefix);
    key.push_str(route.add_prefix.trim_start_matches('/'));
    if !key.is_empty() && !key.ends_with('/') && !rest.trim_start_matches('/').is_empty() {
        key.push('/');
    }
    key.push_str(rest.trim_start_matches('/'));
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
        let m = r.find("CDN.example.com:443", "/static/a.png").unwrap();
        assert_eq!(&*m.host_label, "cdn.example.com");
        assert_eq!(object_key(&m.route, "", "/static/a.png"), "pub/a.png");
        assert_eq!(
            object_key(&m.route, "tenant/", "/static/a.png"),
            "tenant/pub/a.png"
        );
        assert!(r.find("cdn.example.com", "/statics/a.png").is_none());
        assert_eq!(
            r.find("cdn.example.com", "/robots.txt").unwrap().route.name,
            "/robots.txt"
        );
        assert_eq!(r.find("img.example.com", "/x").unwrap().route.name, "wild");
        assert_eq!(r.find("other.org", "/x").unwrap().route.name, "any");
    }

    #[test]
    fn origin_paths() {
        let c = config();
        let route = &c.hosts[0].routes[0];
        assert_eq!(origin_path(route, "/static/a/b"), "/pub/a/b");
    }
}
