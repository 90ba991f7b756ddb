//! `[cache]` and `[hosts.routes.cache]`.

use super::*;
use ::cache::memory::MAX_ENTRY;
use ::cache::policy::{Freshness, RoutePolicy, DEFAULT_HEURISTIC_MAX, DEFAULT_MAX_SIZE};
use ::cache::tier::TierName;
use kit::units::parse_size;

/// The default `[cache.object] max_entry`.
const DEFAULT_OBJECT_MAX_ENTRY: u64 = 5 << 30;

/// The default `[cache] lock_timeout`.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

impl Validator<'_> {
    /// `[cache]`; `declared` maps backend names to their kinds.
    pub(super) fn cache(
        &mut self,
        value: Option<toml::Value>,
        declared: &BTreeMap<String, String>,
    ) -> CacheSettings {
        let raw = value
            .and_then(|v| item::<RawCache>(self.problems, "cache", v))
            .unwrap_or_default();
        let memory = raw.memory.and_then(|m| self.memory_tier(m));
        let disk = raw.disk.and_then(|d| self.disk_tier(d));
        let redis = raw.redis.and_then(|r| self.redis_tier(r));
        let object = raw.object.and_then(|o| self.object_tier(o, declared));
        let lock_timeout = self.duration(
            "cache.lock_timeout",
            raw.lock_timeout.as_deref(),
            DEFAULT_LOCK_TIMEOUT,
        );
        let names = raw.tag_headers.unwrap_or_else(|| {
            ::cache::labels::DEFAULT_TAG_HEADERS
                .iter()
                .map(|n| n.to_string())
                .collect()
        });
        let tag_headers = ::cache::labels::tag_header_names(&names).unwrap_or_else(|e| {
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

    fn memory_tier(&mut self, m: RawMemoryTier) -> Option<MemoryTierSettings> {
        let size = self.size("cache.memory.size", &m.size)?;
        if size < 64 * 1024 {
            self.problems
                .add("cache.memory.size", "must be at least 64KiB");
            return None;
        }
        let default_entry = (size / 8).min(MAX_ENTRY);
        let max_entry = match m.max_entry {
            None => default_entry,
            Some(text) => {
                let e = self.size("cache.memory.max_entry", &text)?;
                if e > size || e > MAX_ENTRY {
                    self.problems.add(
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

    fn disk_tier(&mut self, d: RawDiskTier) -> Option<::cache::disk::DiskSettings> {
        let size = self.size("cache.disk.size", &d.size)? as u64;
        let max_entry = match d.max_entry {
            None => size / 8,
            Some(text) => {
                let e = self.size("cache.disk.max_entry", &text)? as u64;
                if e > size {
                    self.problems
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
                    self.problems.add("cache.disk.min_free", e);
                    0
                }
            },
        };
        let path = self.resolve(&d.path);
        if path.exists() && !path.is_dir() {
            self.problems.add(
                "cache.disk.path",
                format!("{} exists and is not a folder", path.display()),
            );
        }
        Some(::cache::disk::DiskSettings {
            path,
            size,
            max_entry,
            min_free,
        })
    }

    /// `[cache.object]`; `declared` maps backend names to their kinds (it needs an s3 one).
    fn object_tier(
        &mut self,
        o: RawObjectTier,
        declared: &BTreeMap<String, String>,
    ) -> Option<::cache::object::ObjectSettings> {
        match declared.get(&o.backend).map(String::as_str) {
            Some("s3") => {}
            Some(other) => self.problems.add(
                "cache.object.backend",
                format!(
                    "\"{}\" is a {other} backend; the object tier needs an s3 backend",
                    o.backend
                ),
            ),
            None => self.problems.add(
                "cache.object.backend",
                format!("no backend \"{}\"", o.backend),
            ),
        }
        let max_entry = match o.max_entry {
            None => DEFAULT_OBJECT_MAX_ENTRY,
            Some(text) => self.size("cache.object.max_entry", &text)? as u64,
        };
        Some(::cache::object::ObjectSettings {
            backend: o.backend,
            max_entry,
        })
    }

    fn redis_tier(&mut self, r: RawRedisTier) -> Option<::cache::redis::RedisSettings> {
        if let Err(e) = r.url.parse::<redis::ConnectionInfo>() {
            self.problems.add(
                "cache.redis.url",
                format!("{e}: use redis://host:port/db or rediss://host:port/db"),
            );
        }
        let password = r.password.as_ref().and_then(|p| {
            kit::secret::Secret::resolve(p, self.base)
                .map_err(|e| self.problems.add("cache.redis.password", e))
                .ok()
        });
        let max_entry = match r.max_entry {
            None => 1 << 20,
            Some(text) => {
                let n = self.size("cache.redis.max_entry", &text)?;
                if n > 512 << 20 {
                    self.problems.add(
                        "cache.redis.max_entry",
                        "must be at most 512MiB (Redis's limit)",
                    );
                }
                n
            }
        };
        let timeout = self.duration(
            "cache.redis.timeout",
            r.timeout.as_deref(),
            Duration::from_millis(250),
        );
        let lease = self.duration(
            "cache.redis.lock_lease",
            r.lock_lease.as_deref(),
            Duration::from_secs(5),
        );
        Some(::cache::redis::RedisSettings {
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
    fn key_headers(&mut self, path: &str, list: Vec<String>) -> Vec<http::HeaderName> {
        let mut names = Vec::new();
        for (i, text) in list.iter().enumerate() {
            let at = format!("{path}.key_headers[{i}]");
            match http::HeaderName::from_bytes(text.to_ascii_lowercase().as_bytes()) {
                Err(_) => self
                    .problems
                    .add(at, format!("\"{text}\" is not a header name")),
                Ok(name) => match ::cache::forward::refused_key_header(name.as_str()) {
                    Some(why) => self.problems.add(at, format!("{name} {why}")),
                    None => names.push(name),
                },
            }
        }
        names
    }

    pub(super) fn size(&mut self, path: &str, text: &str) -> Option<usize> {
        match parse_size(text).map(usize::try_from) {
            Ok(Ok(n)) if n > 0 => Some(n),
            Ok(_) => {
                self.problems.add(path, "must be greater than zero");
                None
            }
            Err(e) => {
                self.problems.add(path, e);
                None
            }
        }
    }

    /// A route's `cache` table; `freshness` is its own `cache_control`, whose lifetime is the
    /// default TTL unless `default_ttl` is given.
    pub(super) fn route_cache(
        &mut self,
        path: &str,
        value: Option<toml::Value>,
        freshness: &Freshness,
    ) -> Option<RoutePolicy> {
        let path = format!("{path}.cache");
        let raw = item::<RawRouteCache>(self.problems, &path, value?)?;
        let configured = self.cache_tiers.clone();
        if configured.is_empty() {
            self.problems.add(
                &path,
                "no cache tiers are configured: add [cache.memory] (e.g. size = \"256MiB\"), [cache.disk] or [cache.redis]",
            );
            return None;
        }
        let tiers = match raw.tiers {
            None => configured,
            Some(names) => self.route_tiers(&path, &names, &configured),
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
        let key_headers = self.key_headers(&path, raw.key_headers.unwrap_or_default());
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
    /// A route's `tiers`: configured ones, each once, looked up top first whatever order they
    /// were written in.
    fn route_tiers(
        &mut self,
        path: &str,
        names: &[String],
        configured: &[TierName],
    ) -> Vec<TierName> {
        let mut tiers = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let at = format!("{path}.tiers[{i}]");
            match TierName::parse(name) {
                Ok(t) if !configured.contains(&t) => self
                    .problems
                    .add(at, format!("the {name} tier is not configured in [cache]")),
                Ok(t) if tiers.contains(&t) => self.problems.add(at, "listed twice"),
                Ok(t) => tiers.push(t),
                Err(e) => self.problems.add(at, e),
            }
        }
        if names.is_empty() {
            self.problems.add(
                format!("{path}.tiers"),
                "needs at least one tier (remove the cache table to not cache)",
            );
        }
        tiers.sort();
        tiers
    }
}
