//! Validation of `[[hosts]]` and their routes: names, paths, key mapping, methods, CORS.

use super::Validator;
use crate::config::raw::*;
use crate::config::*;
use ::cache::config::CheckCache;
use ::cache::policy::Freshness;
use ::limits::config::CheckLimits;
use kit::path::{has_prefix, normalise};
use media::config::CheckMedia;
use routing::config::CheckSteering;
use std::collections::BTreeSet;

impl Validator<'_> {
    pub(super) fn hosts(
        &mut self,
        values: Vec<toml::Value>,
        backends: &BTreeMap<String, String>,
        groups: &BTreeMap<String, Vec<String>>,
        auth: &AuthSettings,
    ) -> Vec<Host> {
        if values.is_empty() {
            self.problems
                .add("hosts", "at least one [[hosts]] entry is required");
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            let path = format!("hosts[{i}]");
            let Some(raw) = self.check().item::<RawHost>(&path, value) else {
                continue;
            };
            if raw.names.is_empty() {
                self.problems.add(
                    format!("{path}.names"),
                    "at least one host name is required",
                );
            }
            let mut patterns = Vec::new();
            for (j, name) in raw.names.iter().enumerate() {
                let npath = format!("{path}.names[{j}]");
                match parse_host_pattern(name) {
                    Ok(p) => {
                        if !seen.insert(p.clone()) {
                            self.problems.add(
                                &npath,
                                format!("\"{name}\" is already used by another host"),
                            );
                        }
                        patterns.push(p);
                    }
                    Err(e) => self.problems.add(&npath, e),
                }
            }
            if raw.routes.is_empty() {
                self.problems
                    .add(format!("{path}.routes"), "at least one route is required");
            }
            let public_url = raw.public_url.as_deref().and_then(|u| {
                let u = u.trim_end_matches('/');
                if valid_origin(u) {
                    Some(u.to_string())
                } else {
                    self.problems.add(
                        format!("{path}.public_url"),
                        format!("\"{u}\" is not a scheme and host like https://cdn.example.com"),
                    );
                    None
                }
            });
            let mut routes = Vec::new();
            for (j, value) in raw.routes.into_iter().enumerate() {
                let rpath = format!("{path}.routes[{j}]");
                if let Some(route) = self.check().item::<RawRoute>(&rpath, value).and_then(|r| {
                    self.route(&rpath, r, backends, groups, auth, public_url.as_deref())
                }) {
                    routes.push(route);
                }
            }
            let rules = self.check().rules(&path, raw.rules, groups);
            let steering_header = raw.steering_header.as_deref().and_then(|h| {
                HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                    .map_err(|_| {
                        self.problems.add(
                            format!("{path}.steering_header"),
                            format!("\"{h}\" is not a header name"),
                        )
                    })
                    .ok()
            });
            out.push(Host {
                names: raw.names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                patterns,
                routes,
                rules,
                steering_header,
            });
        }
        out
    }

    /// `backends` maps every declared backend name to its `kind`, valid or not, so a broken
    /// backend is reported once at its own key rather than again as "unknown" at each route.
    fn route(
        &mut self,
        path: &str,
        raw: RawRoute,
        backends: &BTreeMap<String, String>,
        groups: &BTreeMap<String, Vec<String>>,
        auth: &AuthSettings,
        public_url: Option<&str>,
    ) -> Option<Route> {
        let matcher = self.route_matcher(path, &raw);
        let (target, kinds) = self.route_target(path, &raw, backends, groups);
        self.route_backup(path, raw.backup.as_deref(), target.as_ref(), backends);
        let upload = raw.upload.as_ref().map(|u| self.route_upload(path, u));
        let methods = self.route_methods(
            path,
            raw.methods.as_deref(),
            (target.as_ref(), upload.is_some()),
            &kinds,
        );
        let (strip_prefix, add_prefix) = self.route_prefixes(path, &raw, matcher.as_ref());
        let (cache_control, freshness) =
            self.route_cache_control(path, raw.cache_control.as_deref());
        let configured = self.cache_tiers.clone();
        let cache = self
            .check()
            .route_cache(path, raw.cache.clone(), &freshness, &configured);
        let cors_path = format!("{path}.cors");
        let cors = raw
            .cors
            .clone()
            .and_then(|c| self.check().item::<RawCors>(&cors_path, c))
            .map(|c| self.cors(&cors_path, c, &methods));
        let route_path = matcher.as_ref().map(|m| match m {
            PathMatch::Prefix(p) | PathMatch::Exact(p) => p.as_str(),
        });
        let access = self.access(
            path,
            &raw,
            route_path,
            auth,
            public_url,
            kinds
                .iter()
                .find(|k| *k != "s3")
                .or(kinds.first())
                .map(String::as_str),
        );
        let variants = self.route_variant_limits(path, &raw, target.as_ref(), &kinds);
        let rate_limit = self.check().rate_limit(path, raw.rate_limit.clone());
        self.shared_limit_has_redis(&format!("{path}.rate_limit"), rate_limit.as_ref());
        let name = raw
            .name
            .clone()
            .unwrap_or_else(|| raw.path.clone().or(raw.exact.clone()).unwrap_or_default());
        Some(Route {
            name,
            matcher: matcher?,
            target: target?,
            backup: raw.backup,
            strip_prefix,
            add_prefix,
            methods,
            cache_control,
            freshness,
            cache,
            download: raw.download.unwrap_or(false),
            cors: cors.flatten(),
            access,
            variants,
            rate_limit,
            upload,
        })
    }

    /// `upload`: a module that is one key segment, and a visibility.
    fn route_upload(&mut self, path: &str, raw: &RawRouteUpload) -> RouteUpload {
        if let Err(e) = media::assets::placement::check_segment("module", &raw.module) {
            self.problems
                .add(format!("{path}.upload.module"), e.to_string());
        }
        let visibility = match raw.visibility.as_deref() {
            None => media::assets::Visibility::Private,
            Some(v) => media::assets::Visibility::parse(v).unwrap_or_else(|| {
                self.problems.add(
                    format!("{path}.upload.visibility"),
                    format!("\"{v}\" is not a visibility; use public, private or admin-private"),
                );
                media::assets::Visibility::Private
            }),
        };
        RouteUpload {
            module: raw.module.clone(),
            visibility,
        }
    }

    /// The route's path matcher: exactly one of `path` (a prefix) or `exact`.
    fn route_matcher(&mut self, path: &str, raw: &RawRoute) -> Option<PathMatch> {
        match (&raw.path, &raw.exact) {
            (Some(p), None) => self
                .check()
                .normal_path(&format!("{path}.path"), p)
                .map(|p| PathMatch::Prefix(p.trim_end_matches('/').to_string())),
            (None, Some(e)) => self
                .check()
                .normal_path(&format!("{path}.exact"), e)
                .map(PathMatch::Exact),
            _ => {
                self.problems
                    .add(path, "give exactly one of `path` (prefix) or `exact`");
                None
            }
        }
    }

    /// `backup`: a declared backend other than the route's own.
    fn route_backup(
        &mut self,
        path: &str,
        backup: Option<&str>,
        target: Option<&RouteTarget>,
        backends: &BTreeMap<String, String>,
    ) {
        let Some(backup) = backup else { return };
        if !backends.contains_key(backup) {
            self.problems.add(
                format!("{path}.backup"),
                format!("unknown backend \"{backup}\""),
            );
        } else if target == Some(&RouteTarget::Backend(backup.to_string())) {
            self.problems.add(
                format!("{path}.backup"),
                "is the route's own backend; name another one",
            );
        }
    }

    /// `methods` (GET and HEAD unless given; PUT and POST on an upload route); buckets and
    /// directories take only GET and HEAD, and an upload route PUT and POST besides (the
    /// gateway answers those itself).
    fn route_methods(
        &mut self,
        path: &str,
        methods: Option<&[String]>,
        (target, uploads): (Option<&RouteTarget>, bool),
        kinds: &[String],
    ) -> Vec<Method> {
        let methods = match methods {
            Some(list) => self.check().methods(&format!("{path}.methods"), list),
            None if uploads => vec![Method::PUT, Method::POST],
            None => vec![Method::GET, Method::HEAD],
        };
        let read_only = match target {
            Some(RouteTarget::Backend(b)) => format!("backend \"{b}\" is read-only"),
            Some(RouteTarget::Group(g)) => format!("group \"{g}\" has read-only backends"),
            None => String::new(),
        };
        if kinds.iter().any(|k| k == "s3" || k == "dir") {
            for m in &methods {
                let uploaded = uploads && (*m == Method::PUT || *m == Method::POST);
                if *m != Method::GET && *m != Method::HEAD && !uploaded {
                    self.problems.add(
                        format!("{path}.methods"),
                        format!("{m} is not allowed: {read_only} (GET, HEAD)"),
                    );
                }
            }
        }
        methods
    }

    /// `strip_prefix` (a leading part of the route's path) and `add_prefix` (plain path text).
    fn route_prefixes(
        &mut self,
        path: &str,
        raw: &RawRoute,
        matcher: Option<&PathMatch>,
    ) -> (Option<String>, String) {
        let strip_prefix = raw
            .strip_prefix
            .clone()
            .map(|s| s.trim_end_matches('/').to_string());
        if let (Some(strip), Some(m)) = (&strip_prefix, matcher) {
            let matched = match m {
                PathMatch::Prefix(p) => p,
                PathMatch::Exact(e) => e,
            };
            if !has_prefix(matched, strip) {
                self.problems.add(
                    format!("{path}.strip_prefix"),
                    format!("\"{strip}\" is not a leading part of the route's path \"{matched}\""),
                );
            }
        }
        let add_prefix = raw.add_prefix.clone().unwrap_or_default();
        if !add_prefix.is_empty() {
            let probe = if add_prefix.starts_with('/') {
                add_prefix.clone()
            } else {
                format!("/{add_prefix}")
            };
            if normalise(&probe).ok().as_deref() != Some(probe.as_str()) {
                self.problems.add(
                    format!("{path}.add_prefix"),
                    "must be plain path text: no '.', '..', empty segments or '%' escapes",
                );
            }
        }
        (strip_prefix, add_prefix)
    }

    /// `cache_control`: the header value sent to clients, and the same intent compiled for
    /// the shared cache.
    fn route_cache_control(
        &mut self,
        path: &str,
        cache_control: Option<&str>,
    ) -> (Option<HeaderValue>, Freshness) {
        let value = cache_control.and_then(|cc| {
            HeaderValue::from_str(cc)
                .map_err(|_| {
                    self.problems.add(
                        format!("{path}.cache_control"),
                        "is not a valid header value",
                    )
                })
                .ok()
        });
        let freshness = cache_control
            .map(Freshness::from_cache_control)
            .transpose()
            .unwrap_or_else(|e| {
                self.problems
                    .add(format!("{path}.cache_control"), e.to_string());
                None
            })
            .unwrap_or_default();
        (value, freshness)
    }

    /// `variants`: limits on a route whose backend is a variants backend (served directly,
    /// with its own `Cache-Control`), and on no other.
    fn route_variant_limits(
        &mut self,
        path: &str,
        raw: &RawRoute,
        target: Option<&RouteTarget>,
        kinds: &[String],
    ) -> Option<media::variants::VariantLimits> {
        if !kinds.iter().any(|k| k == "variants") {
            if raw.variants.is_some() {
                self.problems.add(
                    format!("{path}.variants"),
                    "only a route whose backend is a variants backend has variant limits",
                );
            }
            return None;
        }
        if matches!(target, Some(RouteTarget::Group(_))) {
            self.problems.add(
                format!("{path}.group"),
                "a variants backend serves a route directly (`backend = ...`), not in a group",
            );
        }
        if raw.cache_control.is_some() {
            self.problems.add(
                format!("{path}.cache_control"),
                "variants carry their own Cache-Control (immutable, or private for private originals)",
            );
        }
        Some(self.check().route_variants(path, raw.variants.clone()))
    }

    /// The route's backend or group, and the kinds of the backends it reaches (empty when the
    /// name is unknown, which is reported here).
    fn route_target(
        &mut self,
        path: &str,
        raw: &RawRoute,
        backends: &BTreeMap<String, String>,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> (Option<RouteTarget>, Vec<String>) {
        match (&raw.backend, &raw.group) {
            (Some(b), None) => match backends.get(b) {
                Some(kind) => (Some(RouteTarget::Backend(b.clone())), vec![kind.clone()]),
                None => {
                    self.problems.add(
                        format!("{path}.backend"),
                        format!("unknown backend \"{b}\""),
                    );
                    (None, Vec::new())
                }
            },
            (None, Some(g)) => match groups.get(g) {
                Some(kinds) => (Some(RouteTarget::Group(g.clone())), kinds.clone()),
                None => {
                    self.problems
                        .add(format!("{path}.group"), format!("unknown group \"{g}\""));
                    (None, Vec::new())
                }
            },
            _ => {
                self.problems
                    .add(path, "give exactly one of `backend` or `group`");
                (None, Vec::new())
            }
        }
    }

    fn header_names(&mut self, path: &str, list: Option<Vec<String>>) -> Vec<HeaderName> {
        let mut out = Vec::new();
        for (i, h) in list.unwrap_or_default().iter().enumerate() {
            match HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()) {
                Ok(n) => out.push(n),
                Err(_) => self.problems.add(
                    format!("{path}[{i}]"),
                    format!("\"{h}\" is not a header name"),
                ),
            }
        }
        out
    }

    fn cors(&mut self, path: &str, raw: RawCors, route_methods: &[Method]) -> Option<Cors> {
        let credentials = raw.allow_credentials.unwrap_or(false);
        let origins = if raw.allow_origins.iter().any(|o| o == "*") {
            if raw.allow_origins.len() > 1 {
                self.problems.add(
                    format!("{path}.allow_origins"),
                    "\"*\" cannot be combined with other origins",
                );
            }
            if credentials {
                self.problems.add(
                    format!("{path}.allow_credentials"),
                    "cannot be true with allow_origins = [\"*\"]; list the origins instead",
                );
            }
            AllowedOrigins::Any
        } else {
            if raw.allow_origins.is_empty() {
                self.problems
                    .add(format!("{path}.allow_origins"), "list at least one origin");
            }
            for (i, o) in raw.allow_origins.iter().enumerate() {
                if !valid_origin(o) {
                    self.problems.add(
                        format!("{path}.allow_origins[{i}]"),
                        format!("\"{o}\" is not an origin like https://app.example.com"),
                    );
                }
            }
            AllowedOrigins::List(
                raw.allow_origins
                    .iter()
                    .map(|o| o.to_ascii_lowercase())
                    .collect(),
            )
        };
        let methods = match &raw.allow_methods {
            Some(list) => self.check().methods(&format!("{path}.allow_methods"), list),
            None => route_methods.to_vec(),
        };
        let expose_headers =
            self.header_names(&format!("{path}.expose_headers"), raw.expose_headers);
        Some(Cors {
            origins,
            methods_value: joined(methods.iter().map(Method::as_str)),
            methods,
            allow_headers: self.header_names(&format!("{path}.allow_headers"), raw.allow_headers),
            expose_value: joined(expose_headers.iter().map(HeaderName::as_str)),
            expose_headers,
            allow_credentials: credentials,
            max_age: raw.max_age,
        })
    }
}

/// `a, b, c` as one header value; `None` for an empty list.
fn joined<'a>(items: impl Iterator<Item = &'a str>) -> Option<HeaderValue> {
    let text = items.collect::<Vec<_>>().join(", ");
    if text.is_empty() {
        return None;
    }
    HeaderValue::from_str(&text).ok()
}

fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' ', '*'])
}

fn parse_host_pattern(name: &str) -> Result<HostPattern, String> {
    let name = name.to_ascii_lowercase();
    if name == "*" {
        return Ok(HostPattern::Any);
    }
    let (wild, rest) = match name.strip_prefix("*.") {
        Some(r) => (true, r),
        None => (false, name.as_str()),
    };
    let ok = !rest.is_empty()
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        });
    if !ok {
        return Err(format!(
            "\"{name}\" is not a host name; use cdn.example.com, *.example.com or *"
        ));
    }
    Ok(if wild {
        HostPattern::Suffix(format!(".{rest}"))
    } else {
        HostPattern::Exact(rest.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert_eq!(
            parse_host_pattern("*.Example.com"),
            Ok(HostPattern::Suffix(".example.com".into()))
        );
        assert_eq!(parse_host_pattern("*"), Ok(HostPattern::Any));
        assert!(parse_host_pattern("a..b").is_err());
        assert!(parse_host_pattern("a b").is_err());
    }
}
