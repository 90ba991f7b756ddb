//! Validation of `[groups.NAME]` and each host's `[[hosts.rules]]`.

use super::{item, Validator};
use crate::config::raw::*;
use crate::config::*;
use kit::affinity::AffinityKey;
use routing::group::Sticky;
use routing::rules::{unreachable, Condition, Rule, ValueTest};

/// Compiled regular expressions may use at most this much memory each.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Default lifetime of a group's sticky cookie.
const STICKY_COOKIE_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Backend kinds of each declared group's members (for route checks), valid or not.
pub(super) fn declared_groups(
    raw: &BTreeMap<String, toml::Value>,
    backends: &BTreeMap<String, String>,
) -> BTreeMap<String, Vec<String>> {
    raw.iter()
        .map(|(name, value)| {
            let kinds = value
                .get("weights")
                .and_then(|w| w.as_table())
                .map(|t| {
                    t.keys()
                        .filter_map(|b| backends.get(b).cloned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            (name.clone(), kinds)
        })
        .collect()
}

/// A cookie name as RFC 6265 allows it (an RFC 9110 token).
fn valid_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Validator<'_> {
    pub(super) fn groups(
        &mut self,
        values: BTreeMap<String, toml::Value>,
        backends: &BTreeMap<String, String>,
    ) -> BTreeMap<String, GroupSpec> {
        let mut out = BTreeMap::new();
        for (name, value) in values {
            let path = format!("groups.{name}");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                self.problems.add(
                    &path,
                    "group names are letters, digits, '-', '_' and '.' (they name metrics and cookies)",
                );
            }
            let Some(raw) = item::<RawGroup>(self.problems, &path, value) else {
                continue;
            };
            let mut weights = Vec::new();
            for (backend, weight) in &raw.weights {
                let wpath = format!("{path}.weights.{backend}");
                if !backends.contains_key(backend) {
                    self.problems
                        .add(&wpath, format!("unknown backend \"{backend}\""));
                }
                match u32::try_from(*weight) {
                    Ok(w) if w <= 1_000_000 => weights.push((backend.clone(), w)),
                    _ => self.problems.add(
                        &wpath,
                        "must be 0 (drained) or a positive integer up to 1000000",
                    ),
                }
            }
            if !weights.iter().any(|(_, w)| *w > 0) {
                self.problems.add(
                    format!("{path}.weights"),
                    "needs at least one backend with a positive weight",
                );
            }
            let sticky = self.sticky(&path, &name, &raw);
            out.insert(name, GroupSpec { weights, sticky });
        }
        out
    }

    fn sticky(&mut self, path: &str, group: &str, raw: &RawGroup) -> Sticky {
        match raw.sticky.as_deref() {
            None | Some("cookie") => {
                let name = raw
                    .cookie_name
                    .clone()
                    .unwrap_or_else(|| format!("ag_{group}"));
                if !valid_cookie_name(&name) {
                    self.problems.add(
                        format!("{path}.cookie_name"),
                        format!("\"{name}\" is not a cookie name"),
                    );
                }
                let max_age = self.duration(
                    &format!("{path}.cookie_max_age"),
                    raw.cookie_max_age.as_deref(),
                    STICKY_COOKIE_MAX_AGE,
                );
                Sticky::Cookie { name, max_age }
            }
            Some(other) => {
                for (key, set) in [
                    ("cookie_name", raw.cookie_name.is_some()),
                    ("cookie_max_age", raw.cookie_max_age.is_some()),
                ] {
                    if set {
                        self.problems.add(
                            format!("{path}.{key}"),
                            "only used with sticky = \"cookie\"",
                        );
                    }
                }
                match AffinityKey::parse(other) {
                    Ok(key) => Sticky::Key(key),
                    Err(e) => {
                        self.problems.add(
                            format!("{path}.sticky"),
                            format!("{e}, or cookie (a client id the gateway sets)"),
                        );
                        Sticky::Key(AffinityKey::ClientIp)
                    }
                }
            }
        }
    }

    /// A host's rules; `groups` holds every declared group name.
    pub(super) fn rules(
        &mut self,
        host_path: &str,
        values: Vec<toml::Value>,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Vec<Rule<String>> {
        let mut out = Vec::new();
        let mut paths = Vec::new();
        for (j, value) in values.into_iter().enumerate() {
            let path = format!("{host_path}.rules[{j}]");
            let Some(raw) = item::<RawRule>(self.problems, &path, value) else {
                continue;
            };
            if !groups.contains_key(&raw.group) {
                self.problems.add(
                    format!("{path}.group"),
                    format!("unknown group \"{}\"", raw.group),
                );
            }
            let conditions = self.conditions(&path, &raw);
            out.push(Rule {
                name: raw.name.unwrap_or_else(|| format!("rules[{j}]")),
                conditions,
                group: raw.group,
            });
            paths.push(path);
        }
        for (later, earlier) in unreachable(&out) {
            self.warnings.push(Problem {
                path: paths[later].clone(),
                message: format!(
                    "can never match: the earlier rule \"{}\" ({}) matches every request this one does",
                    out[earlier].name, paths[earlier]
                ),
            });
        }
        out
    }

    fn conditions(&mut self, path: &str, raw: &RawRule) -> Vec<Condition> {
        let mut out = Vec::new();
        for (k, value) in one_or_many(raw.header.clone()) {
            let cpath = k.map_or(format!("{path}.header"), |k| format!("{path}.header[{k}]"));
            if let Some(c) = item::<RawHeaderCondition>(self.problems, &cpath, value)
                .and_then(|c| self.header_condition(&cpath, c))
            {
                out.push(c);
            }
        }
        for (field, is_cookie) in [(&raw.cookie, true), (&raw.query, false)] {
            let key = if is_cookie { "cookie" } else { "query" };
            for (k, value) in one_or_many(field.clone()) {
                let cpath = k.map_or(format!("{path}.{key}"), |k| format!("{path}.{key}[{k}]"));
                let Some(c) = item::<RawValueCondition>(self.problems, &cpath, value) else {
                    continue;
                };
                if is_cookie && !valid_cookie_name(&c.name) {
                    self.problems.add(
                        format!("{cpath}.name"),
                        format!("\"{}\" is not a cookie name", c.name),
                    );
                }
                if c.name.is_empty() {
                    self.problems
                        .add(format!("{cpath}.name"), "must not be empty");
                }
                out.push(if is_cookie {
                    Condition::Cookie {
                        name: c.name,
                        equals: c.equals,
                    }
                } else {
                    Condition::Query {
                        name: c.name,
                        equals: c.equals,
                    }
                });
            }
        }
        if let Some(prefix) = &raw.path_prefix {
            if let Some(p) = self.route_path(&format!("{path}.path_prefix"), prefix) {
                out.push(Condition::PathPrefix(p.trim_end_matches('/').to_string()));
            }
        }
        if let Some(methods) = &raw.methods {
            let methods = self.methods(&format!("{path}.methods"), methods);
            out.push(Condition::Method(methods));
        }
        if let Some(cidrs) = &raw.client_cidrs {
            let mut nets = Vec::new();
            for (i, text) in cidrs.iter().enumerate() {
                match text
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                {
                    Ok(net) => nets.push(net),
                    Err(_) => self.problems.add(
                        format!("{path}.client_cidrs[{i}]"),
                        format!("\"{text}\" is not a CIDR like 10.0.0.0/8 or an address"),
                    ),
                }
            }
            out.push(Condition::ClientIn(nets));
        }
        out
    }

    fn header_condition(&mut self, path: &str, raw: RawHeaderCondition) -> Option<Condition> {
        let name = match http::HeaderName::from_bytes(raw.name.to_ascii_lowercase().as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.problems.add(
                    format!("{path}.name"),
                    format!("\"{}\" is not a header name", raw.name),
                );
                None
            }
        };
        let test = match (raw.equals, raw.matches, raw.present) {
            (Some(text), None, None) => Some(ValueTest::Equals(text)),
            (None, Some(pattern), None) => match regex::RegexBuilder::new(&pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(re) => Some(ValueTest::Matches(re)),
                Err(e) => {
                    let detail = e.to_string();
                    let last = detail.lines().last().unwrap_or_default().trim().to_string();
                    self.problems.add(
                        format!("{path}.matches"),
                        format!("invalid regular expression \"{pattern}\": {last}"),
                    );
                    None
                }
            },
            (None, None, Some(present)) => Some(ValueTest::Present(present)),
            _ => {
                self.problems
                    .add(path, "give exactly one of `equals`, `matches` or `present`");
                None
            }
        };
        Some(Condition::Header {
            name: name?,
            test: test?,
        })
    }
}

/// A value that may be one table or a list of them: each item, with its index in a list.
fn one_or_many(value: Option<toml::Value>) -> Vec<(Option<usize>, toml::Value)> {
    match value {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Some(i), v))
            .collect(),
        Some(other) => vec![(None, other)],
    }
}
