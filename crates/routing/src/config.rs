//! The config of steering: `[groups.NAME]` and each host's `[[hosts.rules]]`, as written
//! (serde structs that refuse unknown keys) and as checked into [`GroupSpec`]s and [`Rule`]s.

use crate::group::Sticky;
use crate::rules::{unreachable, Condition, Rule, ValueTest};
use crate::spec::GroupSpec;
use kit::affinity::AffinityKey;
use kit::problems::Check;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[[hosts.rules]]`: conditions (all must hold) and the group a matching request goes to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Label in metrics and logs (default `rules[N]`).
    pub name: Option<String>,
    /// Header conditions ([`RawHeaderCondition`]): one table or a list of them.
    pub header: Option<toml::Value>,
    /// Cookie conditions ([`RawValueCondition`]): one table or a list of them.
    pub cookie: Option<toml::Value>,
    /// Query parameter conditions ([`RawValueCondition`]): one table or a list of them.
    pub query: Option<toml::Value>,
    /// The normalised path starts with this prefix (segment-wise).
    pub path_prefix: Option<String>,
    /// The method is one of these.
    pub methods: Option<Vec<String>>,
    /// The client address (as derived with `server.trusted_proxies`) is in one of these CIDRs.
    pub client_cidrs: Option<Vec<String>>,
    /// The group in `[groups]` that serves a matching request.
    pub group: String,
}

/// A header condition: `name` and exactly one of `equals`, `matches` or `present`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderCondition {
    /// Header name (case-insensitive).
    pub name: String,
    /// Some field of the header equals this text exactly.
    pub equals: Option<String>,
    /// Some field of the header matches this regular expression (`(?i)` ignores case).
    pub matches: Option<String>,
    /// The header is present (`true`) or absent (`false`).
    pub present: Option<bool>,
}

/// A cookie or query parameter condition: `name` equals `equals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValueCondition {
    /// Cookie name (case-insensitive) or query parameter name (as sent).
    pub name: String,
    /// Required value (cookies as sent; query values after `%XX`/`+` decoding).
    pub equals: String,
}

/// `[groups.NAME]`: a weighted, sticky set of backends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Backend name → share, e.g. `{ ec2 = 95, ecs = 5 }`; 0 drains a backend, at least one
    /// must be positive.
    pub weights: BTreeMap<String, i64>,
    /// `cookie` (default: a client id in a cookie the gateway sets), or the request value whose
    /// hash keeps a client on one side: `header:NAME`, `cookie:NAME`, `query:NAME`, `client_ip`.
    pub sticky: Option<String>,
    /// Name of the sticky cookie (default `ag_GROUP`).
    pub cookie_name: Option<String>,
    /// Lifetime of the sticky cookie (default 30d).
    pub cookie_max_age: Option<String>,
}

/// Compiled regular expressions may use at most this much memory each.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Default lifetime of a group's sticky cookie.
const STICKY_COOKIE_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Backend kinds of each declared group's members (for route checks), valid or not.
pub fn declared_groups(
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

/// Checks steering's sections; every problem goes to the [`Check`] with its key path.
pub trait CheckSteering {
    /// `[groups]`; `backends` maps every declared backend name to its kind.
    fn groups(
        &mut self,
        values: BTreeMap<String, toml::Value>,
        backends: &BTreeMap<String, String>,
    ) -> BTreeMap<String, GroupSpec>;
    /// A host's rules at `host_path.rules`; `groups` holds every declared group name. A rule
    /// an earlier one shadows is a warning.
    fn rules(
        &mut self,
        host_path: &str,
        values: Vec<toml::Value>,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Vec<Rule<String>>;
}

impl CheckSteering for Check<'_> {
    fn groups(
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
            let Some(raw) = self.item::<RawGroup>(&path, value) else {
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
            let sticky = sticky(self, &path, &name, &raw);
            out.insert(name, GroupSpec { weights, sticky });
        }
        out
    }

    fn rules(
        &mut self,
        host_path: &str,
        values: Vec<toml::Value>,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Vec<Rule<String>> {
        let mut out = Vec::new();
        let mut paths = Vec::new();
        for (j, value) in values.into_iter().enumerate() {
            let path = format!("{host_path}.rules[{j}]");
            let Some(raw) = self.item::<RawRule>(&path, value) else {
                continue;
            };
            if !groups.contains_key(&raw.group) {
                self.problems.add(
                    format!("{path}.group"),
                    format!("unknown group \"{}\"", raw.group),
                );
            }
            let conditions = conditions(self, &path, &raw);
            out.push(Rule {
                name: raw.name.unwrap_or_else(|| format!("rules[{j}]")),
                conditions,
                group: raw.group,
            });
            paths.push(path);
        }
        for (later, earlier) in unreachable(&out) {
            self.warn(
                paths[later].clone(),
                format!(
                    "can never match: the earlier rule \"{}\" ({}) matches every request this one does",
                    out[earlier].name, paths[earlier]
                ),
            );
        }
        out
    }
}

/// A group's `sticky`, `cookie_name` and `cookie_max_age`.
fn sticky(cx: &mut Check<'_>, path: &str, group: &str, raw: &RawGroup) -> Sticky {
    match raw.sticky.as_deref() {
        None | Some("cookie") => {
            let name = raw
                .cookie_name
                .clone()
                .unwrap_or_else(|| format!("ag_{group}"));
            if !valid_cookie_name(&name) {
                cx.problems.add(
                    format!("{path}.cookie_name"),
                    format!("\"{name}\" is not a cookie name"),
                );
            }
            let max_age = cx.duration(
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
                    cx.problems.add(
                        format!("{path}.{key}"),
                        "only used with sticky = \"cookie\"",
                    );
                }
            }
            match AffinityKey::parse(other) {
                Ok(key) => Sticky::Key(key),
                Err(e) => {
                    cx.problems.add(
                        format!("{path}.sticky"),
                        format!("{e}, or cookie (a client id the gateway sets)"),
                    );
                    Sticky::Key(AffinityKey::ClientIp)
                }
            }
        }
    }
}

/// A rule's conditions, every one of them.
fn conditions(cx: &mut Check<'_>, path: &str, raw: &RawRule) -> Vec<Condition> {
    let mut out = Vec::new();
    for (k, value) in one_or_many(raw.header.clone()) {
        let cpath = k.map_or(format!("{path}.header"), |k| format!("{path}.header[{k}]"));
        if let Some(c) = cx
            .item::<RawHeaderCondition>(&cpath, value)
            .and_then(|c| header_condition(cx, &cpath, c))
        {
            out.push(c);
        }
    }
    for (field, is_cookie) in [(&raw.cookie, true), (&raw.query, false)] {
        let key = if is_cookie { "cookie" } else { "query" };
        for (k, value) in one_or_many(field.clone()) {
            let cpath = k.map_or(format!("{path}.{key}"), |k| format!("{path}.{key}[{k}]"));
            let Some(c) = cx.item::<RawValueCondition>(&cpath, value) else {
                continue;
            };
            if is_cookie && !valid_cookie_name(&c.name) {
                cx.problems.add(
                    format!("{cpath}.name"),
                    format!("\"{}\" is not a cookie name", c.name),
                );
            }
            if c.name.is_empty() {
                cx.problems
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
        if let Some(p) = cx.normal_path(&format!("{path}.path_prefix"), prefix) {
            out.push(Condition::PathPrefix(p.trim_end_matches('/').to_string()));
        }
    }
    if let Some(methods) = &raw.methods {
        let methods = cx.methods(&format!("{path}.methods"), methods);
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
                Err(_) => cx.problems.add(
                    format!("{path}.client_cidrs[{i}]"),
                    format!("\"{text}\" is not a CIDR like 10.0.0.0/8 or an address"),
                ),
            }
        }
        out.push(Condition::ClientIn(nets));
    }
    out
}

/// One header condition.
fn header_condition(cx: &mut Check<'_>, path: &str, raw: RawHeaderCondition) -> Option<Condition> {
    let name = match http::HeaderName::from_bytes(raw.name.to_ascii_lowercase().as_bytes()) {
        Ok(n) => Some(n),
        Err(_) => {
            cx.problems.add(
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
                cx.problems.add(
                    format!("{path}.matches"),
                    format!("invalid regular expression \"{pattern}\": {last}"),
                );
                None
            }
        },
        (None, None, Some(present)) => Some(ValueTest::Present(present)),
        _ => {
            cx.problems
                .add(path, "give exactly one of `equals`, `matches` or `present`");
            None
        }
    };
    Some(Condition::Header {
        name: name?,
        test: test?,
    })
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
