//! Raw → typed config. Every problem is collected with its key path; nothing stops at the first.

use super::raw::*;
use super::*;
use ::cache::config::CheckCache;
use ::limits::config::CheckLimits;
use access::config::CheckAccess;
use kit::problems::Check;
use media::config::CheckMedia;
use origins::config::CheckBackends;
use routing::config::CheckSteering;
use std::path::Path;

mod assets;
mod auth;
mod cache;
mod hosts;
mod limits;

/// Reads and validates a config file. Relative paths inside it resolve against the file's folder.
pub fn load(path: &Path) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }])
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    from_toml_str(&text, base)
}

/// Validates config text; `base` is the folder relative paths are resolved against.
pub fn from_toml_str(text: &str, base: &Path) -> Result<Config, Problems> {
    let mut problems = Problems::default();
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            problems.add("", kit::problems::toml_message(&e));
            return Err(problems);
        }
    };
    let config = Validator {
        problems: &mut problems,
        base,
        declared_keys: Default::default(),
        admin_tokens_declared: 0,
        cache_tiers: Vec::new(),
        warnings: Vec::new(),
    }
    .config(raw);
    if problems.0.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

struct Validator<'a> {
    problems: &'a mut Problems,
    base: &'a Path,
    /// The keys `[auth]` declares, readable or not (so an unreadable secret is reported
    /// once, not again at every route that needs a key).
    declared_keys: access::config::DeclaredKeys,
    /// `[[admin.tokens]]` entries written, the same way.
    admin_tokens_declared: usize,
    /// The tiers `[cache]` configures (routes may only name these).
    cache_tiers: Vec<::cache::tier::TierName>,
    /// Valid but suspicious settings (reported by `check`, never fatal).
    warnings: Vec<Problem>,
}

/// `server.upstream_attempts` when not given: a refused member, a pooled connection the
/// origin had closed and a failover to the backup still fit.
const DEFAULT_UPSTREAM_ATTEMPTS: usize = 5;
/// The most `server.upstream_attempts` accepts.
const MAX_UPSTREAM_ATTEMPTS: usize = 16;

/// `compression.min_size` unless given.
const DEFAULT_COMPRESSION_MIN_SIZE: usize = 1024;

const DEFAULT_COMPRESSIBLE: &[&str] = &[
    "text/*",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/manifest+json",
    "application/wasm",
    "image/svg+xml",
];

impl Validator<'_> {
    /// The context a domain's validation works with: the same problems, warnings and folder.
    fn check(&mut self) -> Check<'_> {
        Check {
            problems: self.problems,
            warnings: &mut self.warnings,
            base: self.base,
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let server = self.server(raw.server);
        let listeners = self.listeners(raw.listeners);
        let raw_admin = raw
            .admin
            .and_then(|v| self.check().item::<RawAdmin>("admin", v));
        let admin = raw_admin
            .as_ref()
            .and_then(|a| self.socket_addr("admin.address", &a.address));
        let admin_access = self.admin_access(raw_admin);
        if let Some(admin) = admin {
            if listeners.iter().any(|l| l.address == admin) {
                self.problems
                    .add("admin.address", "is also a listener address");
            }
        }
        let log = self.log(raw.log);
        let compression = self.compression(raw.compression);
        let limits = self.check().limits(raw.limits);
        let declared: BTreeMap<String, String> = raw
            .backends
            .iter()
            .map(|(name, v)| {
                let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
                (name.clone(), kind.to_string())
            })
            .collect();
        let mut backends = BTreeMap::new();
        for (name, value) in raw.backends {
            let path = format!("backends.{name}");
            if let Some(spec) = self.check().backend(&path, value) {
                backends.insert(name, spec);
            }
        }
        let declared_groups = routing::config::declared_groups(&raw.groups, &declared);
        let groups = self.check().groups(raw.groups, &declared);
        let (auth, declared_keys) = self.check().auth(raw.auth);
        self.declared_keys = declared_keys;
        let resolve = self.resolve_settings(raw.resolve, &declared);
        let cache = self.check().cache(raw.cache);
        self.object_tier_backend(cache.object.as_ref(), &declared);
        self.cache_tiers = cache.tiers();
        self.shared_limit_has_redis("limits.client", limits.client.as_ref());
        let hosts = self.hosts(raw.hosts, &declared, &declared_groups, &auth);
        let assets = self.check().assets(raw.assets);
        self.originals_backend(assets.as_ref(), &declared);
        let object_tier = cache.object.as_ref().map(|o| o.backend.as_str());
        self.orphan_removal(assets.as_ref(), object_tier);
        if assets.is_none() {
            for (h, host) in hosts.iter().enumerate() {
                for (r, route) in host.routes.iter().enumerate() {
                    if route.upload.is_some() {
                        self.problems.add(
                            format!("hosts[{h}].routes[{r}].upload"),
                            "an upload route needs [assets] (the store its uploads go to)",
                        );
                    }
                }
            }
        }
        if assets.is_none() {
            for (name, kind) in &declared {
                if kind == "variants" {
                    self.problems.add(
                        format!("backends.{name}.kind"),
                        "a variants backend needs [assets] (the store its originals come from)",
                    );
                }
            }
        }
        Config {
            server,
            listeners,
            admin,
            admin_access,
            log,
            compression,
            limits,
            auth,
            resolve,
            backends,
            groups,
            hosts,
            cache,
            assets,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    /// `[server]`; see [`RawServer`] for each key's meaning and default.
    fn server(&mut self, value: Option<toml::Value>) -> ServerSettings {
        let raw = value
            .and_then(|v| self.check().item::<RawServer>("server", v))
            .unwrap_or_default();
        let threads = raw.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        if threads == 0 || threads > 1024 {
            self.problems
                .add("server.threads", "must be between 1 and 1024");
        }
        let upstream_attempts = raw.upstream_attempts.unwrap_or(DEFAULT_UPSTREAM_ATTEMPTS);
        if !(1..=MAX_UPSTREAM_ATTEMPTS).contains(&upstream_attempts) {
            self.problems.add(
                "server.upstream_attempts",
                format!("must be between 1 and {MAX_UPSTREAM_ATTEMPTS}"),
            );
        }
        let trusted_proxies = kit::client::TrustedProxies::parse(
            raw.trusted_proxies.iter().flatten().map(String::as_str),
        )
        .unwrap_or_else(|bad| {
            for (i, message) in bad {
                self.problems
                    .add(format!("server.trusted_proxies[{i}]"), message);
            }
            Default::default()
        });
        ServerSettings {
            trusted_proxies,
            threads,
            work_stealing: raw.work_stealing.unwrap_or(false),
            pid_file: raw
                .pid_file
                .unwrap_or_else(|| "/tmp/assetgate.pid".to_string()),
            upgrade_sock: raw
                .upgrade_sock
                .unwrap_or_else(|| "/tmp/assetgate_upgrade.sock".to_string()),
            grace_period_seconds: raw.grace_period_seconds.unwrap_or(0),
            graceful_shutdown_timeout_seconds: raw.graceful_shutdown_timeout_seconds.unwrap_or(5),
            upstream_keepalive_pool_size: raw.upstream_keepalive_pool_size.unwrap_or(1024),
            upstream_attempts,
        }
    }

    fn socket_addr(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problems.add(
                    path,
                    format!("\"{text}\" is not an IP:port address like 127.0.0.1:8080"),
                );
                None
            }
        }
    }

    fn listeners(&mut self, values: Vec<toml::Value>) -> Vec<Listener> {
        if values.is_empty() {
            self.problems
                .add("listeners", "at least one [[listeners]] entry is required");
        }
        let mut out: Vec<Listener> = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            let path = format!("listeners[{i}]");
            let Some(raw) = self.check().item::<RawListener>(&path, value) else {
                continue;
            };
            let Some(address) = self.socket_addr(&format!("{path}.address"), &raw.address) else {
                continue;
            };
            if out.iter().any(|l| l.address == address) {
                self.problems
                    .add(format!("{path}.address"), "duplicate listener address");
            }
            let tls_path = format!("{path}.tls");
            let tls = raw
                .tls
                .and_then(|t| self.check().item::<RawTls>(&tls_path, t))
                .map(|t| TlsFiles {
                    cert_file: self
                        .check()
                        .readable_file(&format!("{path}.tls.cert_file"), &t.cert_file),
                    key_file: self
                        .check()
                        .readable_file(&format!("{path}.tls.key_file"), &t.key_file),
                    http2: t.http2.unwrap_or(true),
                });
            out.push(Listener { address, tls });
        }
        out
    }

    fn log(&mut self, value: Option<toml::Value>) -> LogSettings {
        let raw = value
            .and_then(|v| self.check().item::<RawLog>("log", v))
            .unwrap_or_default();
        let format = match raw.format.as_deref() {
            None | Some("plain") => LogFormat::Plain,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.problems.add(
                    "log.format",
                    format!("\"{other}\" is not a format; use plain or json"),
                );
                LogFormat::Plain
            }
        };
        let level = raw.level.unwrap_or_else(|| "info".to_string());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
            self.problems
                .add("log.level", format!("invalid filter \"{level}\": {e}"));
        }
        LogSettings {
            format,
            level,
            access_log: raw.access_log.unwrap_or(true),
        }
    }

    fn compression(&mut self, value: Option<toml::Value>) -> CompressionSettings {
        let raw = value
            .and_then(|v| self.check().item::<RawCompression>("compression", v))
            .unwrap_or_default();
        let level = raw.level.unwrap_or(5);
        if level > 9 {
            self.problems.add(
                "compression.level",
                "must be 0 (off) to 9; the level applies to gzip, brotli and zstd alike",
            );
        }
        let types = raw
            .types
            .unwrap_or_else(|| DEFAULT_COMPRESSIBLE.iter().map(|s| s.to_string()).collect())
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        let min_size = match raw.min_size {
            None => DEFAULT_COMPRESSION_MIN_SIZE,
            Some(text) => match kit::units::parse_size(&text) {
                Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
                Err(e) => {
                    self.problems.add("compression.min_size", e);
                    DEFAULT_COMPRESSION_MIN_SIZE
                }
            },
        };
        CompressionSettings {
            level,
            types,
            min_size,
        }
    }
}
