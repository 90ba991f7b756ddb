//! The config of the cache: `[cache]` (its tiers) and a route's `cache` table, as written
//! (serde structs that refuse unknown keys) and as checked into [`CacheSettings`] and
//! [`RoutePolicy`]. What spans other domains — that `[cache.object]` names an s3 backend — is
//! the application's check.

use crate::disk::DiskSettings;
use crate::memory::MAX_ENTRY;
use crate::object::ObjectSettings;
use crate::policy::{Freshness, RoutePolicy, DEFAULT_HEURISTIC_MAX, DEFAULT_MAX_SIZE};
use crate::redis::RedisSettings;
use crate::settings::{CacheSettings, MemoryTierSettings};
use crate::tier::TierName;
use kit::problems::Check;
use kit::secret::RawSecret;
use kit::units::parse_size;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[cache]`: the tiers every cached route draws on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// `[cache.memory]`: the in-process tier ([`RawMemoryTier`]).
    pub memory: Option<RawMemoryTier>,
    /// `[cache.disk]`: the local-files tier ([`RawDiskTier`]).
    pub disk: Option<RawDiskTier>,
    /// `[cache.redis]`: the tier shared by the fleet ([`RawRedisTier`]).
    pub redis: Option<RawRedisTier>,
    /// `[cache.object]`: the cache-bucket tier ([`RawObjectTier`]).
    pub object: Option<RawObjectTier>,
    /// How long a request waits for another request's fill of the same key before it asks
    /// the backend itself (default 10s).
    pub lock_timeout: Option<String>,
    /// Response headers whose values tag an entry for purges by tag (default
    /// `["Surrogate-Key", "Cache-Tag"]`; split on commas and whitespace).
    pub tag_headers: Option<Vec<String>>,
}

/// `[cache.memory]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMemoryTier {
    /// Bytes the tier may hold (bodies plus headers), e.g. `256MiB`.
    pub size: String,
    /// Largest single entry kept in memory (default: 1/8 of `size`, at most 64MiB).
    pub max_entry: Option<String>,
}

/// `[cache.disk]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiskTier {
    /// Folder holding the entries (created if missing; relative to the config file), e.g.
    /// `/var/cache/assetgate`. One gateway process per folder.
    pub path: PathBuf,
    /// Bytes the tier may hold, e.g. `10GiB`.
    pub size: String,
    /// Largest single entry (default: 1/8 of `size`).
    pub max_entry: Option<String>,
    /// Stop admitting new entries when the filesystem has less free space than this
    /// (default 1GiB, at most half of `size`).
    pub min_free: Option<String>,
}

/// `[cache.redis]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisTier {
    /// `redis://[user@]host:port/db`, or `rediss://...` for TLS.
    pub url: String,
    /// AUTH password (`{ file = ... }` or `{ env = ... }`), instead of one in the URL.
    pub password: Option<RawSecret>,
    /// Largest body stored in Redis (default 1MiB, at most 512MiB).
    pub max_entry: Option<String>,
    /// Prefix of every key (default `assetgate:`); gateways sharing entries use the same.
    pub key_prefix: Option<String>,
    /// Longest a Redis call may take before the tier is skipped for a second (default 250ms).
    pub timeout: Option<String>,
    /// One gateway of the fleet fetches a missed key while the others wait (default true).
    pub fill_lock: Option<bool>,
    /// How long a fill lock lasts unless renewed (default 5s; renewed every third of it while
    /// the fill runs, so it only lapses when its owner is gone).
    pub lock_lease: Option<String>,
}

/// `[cache.object]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjectTier {
    /// The `s3` backend whose bucket (under its `key_prefix`) holds the entries.
    pub backend: String,
    /// Largest body stored, e.g. `5GiB` (default 5GiB).
    pub max_entry: Option<String>,
}

/// `[hosts.routes.cache]`: how a route uses the shared cache tiers of `[cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteCache {
    /// Tiers to use, from the top: `memory` (default: every tier configured in `[cache]`).
    pub tiers: Option<Vec<String>>,
    /// Freshness when the backend sends none (no `Cache-Control` lifetime, no `Expires`),
    /// e.g. `10m`. Default: the route's `cache_control` lifetime; without one such responses
    /// are not stored.
    pub default_ttl: Option<String>,
    /// Freshness that replaces whatever the backend says (`no-store`/`private` still win).
    pub ttl: Option<String>,
    /// Longest freshness guessed for a response with no lifetime of its own and no
    /// `default_ttl`: a tenth of the time since its `Last-Modified`, at most this (default
    /// `1d`; `0s` stores such responses only with a `default_ttl`).
    pub heuristic_max: Option<String>,
    /// Largest response body stored, e.g. `64MiB` (default 64MiB); larger ones pass through.
    pub max_size: Option<String>,
    /// Query parameters that are part of the cache key and reach an origin (default: every
    /// parameter; the others are removed before the request is sent). Signing parameters of
    /// the route's access schemes are refused here.
    pub query_keys: Option<Vec<String>>,
    /// Request headers that are part of the cache key, e.g. `["X-Forwarded-Prefix"]`. Of the
    /// headers that override what an origin takes the request to be (X-Original-URL,
    /// X-HTTP-Method-Override, X-Forwarded-Port, Forwarded, ...) only the ones named here
    /// reach the origin of a cached route; the rest are removed (default none).
    pub key_headers: Option<Vec<String>>,
    /// Store only when the query carries these parameters (`name`/`equals` pairs), e.g.
    /// generated sounds, cached only with `output_format=file`.
    pub store_if_query: Option<Vec<RawQueryCondition>>,
    /// `stale-while-revalidate` used when the backend sends none, e.g. `30s`.
    pub stale_while_revalidate: Option<String>,
    /// `stale-if-error` used when the backend sends none, e.g. `1d`.
    pub stale_if_error: Option<String>,
}

/// One `store_if_query` condition: the query parameter `name` has the value `equals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueryCondition {
    /// Query parameter name, as sent.
    pub name: String,
    /// Required value, after `%XX`/`+` decoding.
    pub equals: String,
}

/// The default `[cache.object] max_entry`.
const DEFAULT_OBJECT_MAX_ENTRY: u64 = 5 << 30;

/// The default `[cache] lock_timeout`.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks the cache's sections; every problem goes to the [`Check`] with its key path.
pub trait CheckCache {
    /// `[cache]`; see [`RawCache`] for each key's meaning and default.
    fn cache(&mut self, value: Option<toml::Value>) -> CacheSettings;
    /// A route's `cache` table at `path.cache` (see [`RawRouteCache`]); `freshness` is the
    /// route's own `cache_control`, whose lifetime is the default TTL unless `default_ttl` is
    /// given; `configured` are the tiers `[cache]` has.
    fn route_cache(
        &mut self,
        path: &str,
        value: Option<toml::Value>,
        freshness: &Freshness,
        configured: &[TierName],
    ) -> Option<RoutePolicy>;
}

impl CheckCache for Check<'_> {
    fn cache(&mut self, value: Option<toml::Value>) -> CacheSettings {
        let raw = value
            .and_then(|v| self.item::<RawCache>("cache", v))
            .unwrap_or_default();
        let memory = raw.memory.and_then(|m| memory_tier(self, m));
        let disk = raw.disk.and_then(|d| disk_tier(self, d));
        let redis = raw.redis.and_then(|r| redis_tier(self, r));
        let object = raw.object.map(|o| object_tier(self, o));
        let lock_timeout = self.duration(
            "cache.lock_timeout",
            raw.lock_timeout.as_deref(),
            DEFAULT_LOCK_TIMEOUT,
        );
        let names = raw.tag_headers.unwrap_or_else(|| {
            crate::labels::DEFAULT_TAG_HEADERS
                .iter()
                .map(|n| n.to_string())
                .collect()
        });
        let tag_headers = crate::labels::tag_header_names(&names).unwrap_or_else(|e| {
            self.problems.add("cache.tag_headers", e);
            Vec::new()
        });
        CacheSettings {
            memory,
            disk,
            redis,
            object,
            lock_timeout,
            tag_headers,
        }
    }

    fn route_cache(
        &mut self,
        path: &str,
        value: Option<toml::Value>,
        freshness: &Freshness,
        configured: &[TierName],
    ) -> Option<RoutePolicy> {
        let path = format!("{path}.cache");
        let raw = self.item::<RawRouteCache>(&path, value?)?;
        let configured = configured.to_vec();
        if configured.is_empty() {
            self.problems.add(
                &path,
                "no cache tiers are configured: add [cache.memory] (e.g. size = \"256MiB\"), [cache.disk] or [cache.redis]",
            );
            return None;
        }
        let tiers = match raw.tiers {
            None => configured,
            Some(names) => route_tiers(self, &path, &names, &configured),
        };
        let mut optional = |key: &str, text: Option<String>| {
            let text = text?;
            let at = format!("{path}.{key}");
            match kit::units::parse_duration(&text) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.problems.add(at, e);
                    None
                }
            }
        };
        let default_ttl = optional("default_ttl", raw.default_ttl).or(freshness.shared_ttl);
        let ttl = optional("ttl", raw.ttl);
        let heuristic_max =
            optional("heuristic_max", raw.heuristic_max).unwrap_or(DEFAULT_HEURISTIC_MAX);
        let stale_while_revalidate = optional("stale_while_revalidate", raw.stale_while_revalidate)
            .or(freshness.stale_while_revalidate)
            .unwrap_or_default();
        let stale_if_error = optional("stale_if_error", raw.stale_if_error)
            .or(freshness.stale_if_error)
            .unwrap_or_default();
        let max_size = match raw.max_size {
            None => DEFAULT_MAX_SIZE,
            Some(text) => self
                .size(&format!("{path}.max_size"), &text)
                .unwrap_or(DEFAULT_MAX_SIZE),
        };
        let query_keys = raw.query_keys.inspect(|keys| {
            for (i, k) in keys.iter().enumerate() {
                if k.is_empty() {
                    self.problems
                        .add(format!("{path}.query_keys[{i}]"), "must not be empty");
                }
            }
        });
        let key_headers = key_headers(self, &path, raw.key_headers.unwrap_or_default());
        let store_if_query = raw
            .store_if_query
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.equals))
            .collect();
        Some(RoutePolicy {
            tiers,
            default_ttl,
            ttl,
            heuristic_max,
            max_size,
            query_keys,
            key_headers,
            store_if_query,
            stale_while_revalidate,
            stale_if_error,
            route_forbids: freshness.never_store,
        })
    }
}

/// `[cache.memory]`.
fn memory_tier(cx: &mut Check<'_>, m: RawMemoryTier) -> Option<MemoryTierSettings> {
    let size = cx.size("cache.memory.size", &m.size)?;
    if size < 64 * 1024 {
        cx.problems
            .add("cache.memory.size", "must be at least 64KiB");
        return None;
    }
    let default_entry = (size / 8).min(MAX_ENTRY);
    let max_entry = match m.max_entry {
        None => default_entry,
        Some(text) => {
            let e = cx.size("cache.memory.max_entry", &text)?;
            if e > size || e > MAX_ENTRY {
                cx.problems.add(
                    "cache.memory.max_entry",
                    format!(
                        "must be at most the tier's size and at most {}MiB",
                        MAX_ENTRY >> 20
                    ),
                );
            }
            e
        }
    };
    Some(MemoryTierSettings { size, max_entry })
}

/// `[cache.disk]`.
fn disk_tier(cx: &mut Check<'_>, d: RawDiskTier) -> Option<DiskSettings> {
    let size = cx.size("cache.disk.size", &d.size)? as u64;
    let max_entry = match d.max_entry {
        None => size / 8,
        Some(text) => {
            let e = cx.size("cache.disk.max_entry", &text)? as u64;
            if e > size {
                cx.problems
                    .add("cache.disk.max_entry", "must be at most the tier's size");
            }
            e
        }
    };
    let min_free = match d.min_free {
        None => (1u64 << 30).min(size / 2),
        Some(text) => match parse_size(&text) {
            Ok(n) => n,
            Err(e) => {
                cx.problems.add("cache.disk.min_free", e);
                0
            }
        },
    };
    let path = cx.resolve(&d.path);
    if path.exists() && !path.is_dir() {
        cx.problems.add(
            "cache.disk.path",
            format!("{} exists and is not a folder", path.display()),
        );
    }
    Some(DiskSettings {
        path,
        size,
        max_entry,
        min_free,
    })
}

/// `[cache.object]`. That its backend is an s3 one is the application's check (it knows the
/// backends).
fn object_tier(cx: &mut Check<'_>, o: RawObjectTier) -> ObjectSettings {
    // A bad size is reported and the default stands in, so the tier is still there for the
    // checks that span domains (its backend's kind) and for the routes that name it.
    let max_entry = match o.max_entry {
        None => DEFAULT_OBJECT_MAX_ENTRY,
        Some(text) => cx
            .size("cache.object.max_entry", &text)
            .map_or(DEFAULT_OBJECT_MAX_ENTRY, |n| n as u64),
    };
    ObjectSettings {
        backend: o.backend,
        max_entry,
    }
}

/// `[cache.redis]`.
fn redis_tier(cx: &mut Check<'_>, r: RawRedisTier) -> Option<RedisSettings> {
    if let Err(e) = r.url.parse::<redis::ConnectionInfo>() {
        cx.problems.add(
            "cache.redis.url",
            format!("{e}: use redis://host:port/db or rediss://host:port/db"),
        );
    }
    let password = r.password.as_ref().and_then(|p| {
        kit::secret::Secret::resolve(p, cx.base)
            .map_err(|e| cx.problems.add("cache.redis.password", e))
            .ok()
    });
    let max_entry = match r.max_entry {
        None => 1 << 20,
        Some(text) => {
            let n = cx.size("cache.redis.max_entry", &text)?;
            if n > 512 << 20 {
                cx.problems.add(
                    "cache.redis.max_entry",
                    "must be at most 512MiB (Redis's limit)",
                );
            }
            n
        }
    };
    let timeout = cx.duration(
        "cache.redis.timeout",
        r.timeout.as_deref(),
        Duration::from_millis(250),
    );
    let lease = cx.duration(
        "cache.redis.lock_lease",
        r.lock_lease.as_deref(),
        Duration::from_secs(5),
    );
    Some(RedisSettings {
        url: r.url,
        password,
        max_entry,
        key_prefix: r.key_prefix.unwrap_or_else(|| "assetgate:".to_string()),
        timeout,
        fill_lock: r.fill_lock.unwrap_or(true),
        lease,
    })
}

/// A route's `key_headers`: header names, none that the gateway sets itself, that frame
/// the connection or that carry credentials.
fn key_headers(cx: &mut Check<'_>, path: &str, list: Vec<String>) -> Vec<http::HeaderName> {
    let mut names = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let at = format!("{path}.key_headers[{i}]");
        match http::HeaderName::from_bytes(text.to_ascii_lowercase().as_bytes()) {
            Err(_) => cx
                .problems
                .add(at, format!("\"{text}\" is not a header name")),
            Ok(name) => match crate::forward::refused_key_header(name.as_str()) {
                Some(why) => cx.problems.add(at, format!("{name} {why}")),
                None => names.push(name),
            },
        }
    }
    names
}

/// A route's `tiers`: configured ones, each once, looked up top first whatever order they
/// were written in.
fn route_tiers(
    cx: &mut Check<'_>,
    path: &str,
    names: &[String],
    configured: &[TierName],
) -> Vec<TierName> {
    let mut tiers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let at = format!("{path}.tiers[{i}]");
        match TierName::parse(name) {
            Ok(t) if !configured.contains(&t) => cx
                .problems
                .add(at, format!("the {name} tier is not configured in [cache]")),
            Ok(t) if tiers.contains(&t) => cx.problems.add(at, "listed twice"),
            Ok(t) => tiers.push(t),
            Err(e) => cx.problems.add(at, e),
        }
    }
    if names.is_empty() {
        cx.problems.add(
            format!("{path}.tiers"),
            "needs at least one tier (remove the cache table to not cache)",
        );
    }
    tiers.sort();
    tiers
}
