//! Raw → typed config. Every problem is collected with its key path; nothing stops at the first.

use super::raw::*;
use super::units::parse_duration;
use super::*;
use crate::routing::path::normalise;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// One configuration problem at a key path, e.g. `hosts[1].routes[0].backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, Default, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

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
            problems.add("", toml_message(&e));
            return Err(problems);
        }
    };
    let config = Validator {
        problems: &mut problems,
        base,
    }
    .config(raw);
    if problems.0.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().to_string()
}

struct Validator<'a> {
    problems: &'a mut Problems,
    base: &'a Path,
}

/// Deserialises one raw item; a failure is recorded at `path`.
fn item<T: for<'de> Deserialize<'de>>(
    problems: &mut Problems,
    path: &str,
    value: toml::Value,
) -> Option<T> {
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.add(path, toml_message(&e));
            None
        }
    }
}

const DEFAULT_COMPRESSIBLE: &[&str] = &[
    "text/*",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/manifest+json",
    "application/wasm",
    "image/svg+xml",
];

/// Backend keys that belong to only some kinds (the rest are shared by all).
const BACKEND_KEY_KINDS: &[(&str, &[&str])] = &[
    ("bucket", &["s3"]),
    ("region", &["s3"]),
    ("endpoint", &["s3"]),
    ("path_style", &["s3"]),
    ("key_prefix", &["s3", "dir"]),
    ("credentials", &["s3"]),
    ("access_denied_status", &["s3"]),
    ("addresses", &["http"]),
    ("host_header", &["http"]),
    ("tls", &["http"]),
    ("sni", &["http"]),
    ("verify_cert", &["http"]),
    ("health_check_interval", &["http"]),
    ("root", &["dir"]),
    ("connect_timeout", &["s3", "http"]),
    ("read_timeout", &["s3", "http"]),
];

/// Response headers that never leave the gateway from an S3 backend.
const S3_INTERNAL_HEADERS: &[&str] = &[
    "x-amz-*",
    "x-garage-*",
    "x-minio-*",
    "x-goog-*",
    "x-guploader-*",
    "x-rgw-*",
    "server",
];

impl Validator<'_> {
    fn config(&mut self, raw: RawConfig) -> Config {
        let server = self.server(raw.server);
        let listeners = self.listeners(raw.listeners);
        let admin = raw
            .admin
            .and_then(|v| item::<RawAdmin>(self.problems, "admin", v))
            .and_then(|a| self.socket_addr("admin.address", &a.address));
        if let Some(admin) = admin {
            if listeners.iter().any(|l| l.address == admin) {
                self.problems
                    .add("admin.address", "is also a listener address");
            }
        }
        let log = self.log(raw.log);
        let compression = self.compression(raw.compression);
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
            if let Some(spec) =
                item::<RawBackend>(self.problems, &path, value).and_then(|b| self.backend(&path, b))
            {
                backends.insert(name, spec);
            }
        }
        let hosts = self.hosts(raw.hosts, &declared);
        Config {
            server,
            listeners,
            admin,
            log,
            compression,
            backends,
            hosts,
        }
    }

    fn server(&mut self, value: Option<toml::Value>) -> ServerSettings {
        let raw = value
            .and_then(|v| item::<RawServer>(self.problems, "server", v))
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
        ServerSettings {
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
            let Some(raw) = item::<RawListener>(self.problems, &path, value) else {
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
                .and_then(|t| item::<RawTls>(self.problems, &tls_path, t))
                .map(|t| TlsFiles {
                    cert_file: self.readable_file(&format!("{path}.tls.cert_file"), &t.cert_file),
                    key_file: self.readable_file(&format!("{path}.tls.key_file"), &t.key_file),
                    http2: t.http2.unwrap_or(true),
                });
            out.push(Listener { address, tls });
        }
        out
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn readable_file(&mut self, path: &str, file: &Path) -> PathBuf {
        let full = self.resolve(file);
        if let Err(e) = std::fs::File::open(&full) {
            self.problems
                .add(path, format!("cannot read {}: {e}", full.display()));
        }
        full
    }

    fn log(&mut self, value: Option<toml::Value>) -> LogSettings {
        let raw = value
            .and_then(|v| item::<RawLog>(self.problems, "log", v))
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
            .and_then(|v| item::<RawCompression>(self.problems, "compression", v))
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
        CompressionSettings { level, types }
    }

    fn duration(&mut self, path: &str, text: Option<&str>, default: Duration) -> Duration {
        match text.map(parse_duration) {
            None => default,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                self.problems.add(path, "must be greater than zero");
                default
            }
            Some(Err(e)) => {
                self.problems.add(path, e);
                default
            }
        }
    }

    fn key_prefix(&mut self, path: &str, prefix: Option<String>) -> String {
        let prefix = prefix.unwrap_or_default();
        if prefix.is_empty() {
            return prefix;
        }
        if prefix.starts_with('/') {
            self.problems
                .add(path, "must not start with '/' (keys are relative)");
        }
        match normalise(&format!("/{prefix}")) {
            Ok(n) if n == format!("/{prefix}") => {}
            _ => self.problems.add(
                path,
                "must be a plain key prefix: no '.', '..', empty segments, '%' escapes or control characters",
            ),
        }
        prefix
    }

    fn strip_list(&mut self, extra: Option<Vec<String>>, base: &[&str]) -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(extra.unwrap_or_default())
            .map(|s| s.to_ascii_lowercase())
            .collect()
    }

    /// Records every key set on a backend that its kind does not use.
    fn foreign_keys(&mut self, path: &str, raw: &RawBackend) {
        let set = [
            ("bucket", raw.bucket.is_some()),
            ("region", raw.region.is_some()),
            ("endpoint", raw.endpoint.is_some()),
            ("path_style", raw.path_style.is_some()),
            ("key_prefix", raw.key_prefix.is_some()),
            ("credentials", raw.credentials.is_some()),
            ("access_denied_status", raw.access_denied_status.is_some()),
            ("addresses", raw.addresses.is_some()),
            ("host_header", raw.host_header.is_some()),
            ("tls", raw.tls.is_some()),
            ("sni", raw.sni.is_some()),
            ("verify_cert", raw.verify_cert.is_some()),
            ("health_check_interval", raw.health_check_interval.is_some()),
            ("root", raw.root.is_some()),
            ("connect_timeout", raw.connect_timeout.is_some()),
            ("read_timeout", raw.read_timeout.is_some()),
        ];
        for (key, present) in set {
            let used_by = BACKEND_KEY_KINDS
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(&[][..], |(_, kinds)| *kinds);
            if present && !used_by.contains(&raw.kind.as_str()) {
                self.problems.add(
                    format!("{path}.{key}"),
                    format!("is not a key of {} backends", raw.kind),
                );
            }
        }
    }

    fn backend(&mut self, path: &str, raw: RawBackend) -> Option<BackendSpec> {
        if matches!(raw.kind.as_str(), "s3" | "http" | "dir") {
            self.foreign_keys(path, &raw);
        }
        let connect_timeout = self.duration(
            &format!("{path}.connect_timeout"),
            raw.connect_timeout.as_deref(),
            Duration::from_secs(5),
        );
        let read_timeout = self.duration(
            &format!("{path}.read_timeout"),
            raw.read_timeout.as_deref(),
            Duration::from_secs(30),
        );
        match raw.kind.as_str() {
            "s3" => {
                let bucket = raw.bucket.unwrap_or_default();
                if !valid_bucket(&bucket) {
                    self.problems.add(
                        format!("{path}.bucket"),
                        format!("\"{bucket}\" is not a bucket name (3-63 of a-z, 0-9, '.', '-')"),
                    );
                }
                let region = raw.region.unwrap_or_else(|| "us-east-1".to_string());
                if region.is_empty() || region.contains(char::is_whitespace) {
                    self.problems
                        .add(format!("{path}.region"), "is not a region name");
                }
                let endpoint = match raw.endpoint.as_deref() {
                    None => Endpoint {
                        tls: true,
                        host: format!("s3.{region}.amazonaws.com"),
                        port: 443,
                    },
                    Some(url) => match parse_endpoint(url) {
                        Ok(e) => e,
                        Err(msg) => {
                            self.problems.add(format!("{path}.endpoint"), msg);
                            return None;
                        }
                    },
                };
                let credentials = self.credentials(&format!("{path}.credentials"), raw.credentials);
                let access_denied_status = raw.access_denied_status.unwrap_or(404);
                if access_denied_status != 404 && access_denied_status != 403 {
                    self.problems
                        .add(format!("{path}.access_denied_status"), "must be 404 or 403");
                }
                let key_prefix = self.key_prefix(&format!("{path}.key_prefix"), raw.key_prefix);
                Some(BackendSpec::S3(S3Spec {
                    path_style: raw.path_style.unwrap_or(false),
                    bucket,
                    region,
                    endpoint,
                    key_prefix,
                    credentials: credentials?,
                    access_denied_status,
                    connect_timeout,
                    read_timeout,
                    strip_response_headers: self
                        .strip_list(raw.strip_response_headers, S3_INTERNAL_HEADERS),
                }))
            }
            "http" => {
                let addresses = raw.addresses.unwrap_or_default();
                if addresses.is_empty() {
                    self.problems.add(
                        format!("{path}.addresses"),
                        "at least one origin address (host:port) is required",
                    );
                }
                for (i, a) in addresses.iter().enumerate() {
                    if !valid_host_port(a) {
                        self.problems.add(
                            format!("{path}.addresses[{i}]"),
                            format!("\"{a}\" is not host:port"),
                        );
                    }
                }
                let tls = raw.tls.unwrap_or(false);
                let sni = raw
                    .sni
                    .or_else(|| raw.host_header.clone())
                    .or_else(|| {
                        addresses
                            .first()
                            .and_then(|a| a.rsplit_once(':').map(|(h, _)| h.to_string()))
                    })
                    .unwrap_or_default();
                let interval = match raw.health_check_interval.as_deref() {
                    Some("0") | Some("0s") => None,
                    other => Some(self.duration(
                        &format!("{path}.health_check_interval"),
                        other,
                        Duration::from_secs(5),
                    )),
                };
                Some(BackendSpec::Http(HttpSpec {
                    addresses,
                    host_header: raw.host_header,
                    tls,
                    sni,
                    verify_cert: raw.verify_cert.unwrap_or(true),
                    health_check_interval: interval,
                    connect_timeout,
                    read_timeout,
                    strip_response_headers: self.strip_list(raw.strip_response_headers, &[]),
                }))
            }
            "dir" => {
                let Some(root) = raw.root else {
                    self.problems.add(
                        format!("{path}.root"),
                        "a dir backend needs a root directory",
                    );
                    return None;
                };
                let full = self.resolve(&root);
                let root = match std::fs::canonicalize(&full) {
                    Ok(r) if r.is_dir() => r,
                    Ok(_) => {
                        self.problems.add(
                            format!("{path}.root"),
                            format!("{} is not a directory", full.display()),
                        );
                        return None;
                    }
                    Err(e) => {
                        self.problems.add(
                            format!("{path}.root"),
                            format!("cannot open {}: {e}", full.display()),
                        );
                        return None;
                    }
                };
                let key_prefix = self.key_prefix(&format!("{path}.key_prefix"), raw.key_prefix);
                Some(BackendSpec::Dir(DirSpec {
                    root,
                    key_prefix,
                    strip_response_headers: self.strip_list(raw.strip_response_headers, &[]),
                }))
            }
            other => {
                self.problems.add(
                    format!("{path}.kind"),
                    format!("unknown backend kind \"{other}\"; use s3, http or dir"),
                );
                None
            }
        }
    }

    fn credentials(&mut self, path: &str, raw: Option<toml::Value>) -> Option<CredentialSpec> {
        let Some(raw) = raw else {
            return Some(CredentialSpec::Default);
        };
        let raw: RawCredentials = item(self.problems, path, raw)?;
        let secret = |name: &str, s: &Option<RawSecret>, problems: &mut Problems| {
            let s = s.as_ref()?;
            match Secret::resolve(s) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.add(format!("{path}.{name}"), e);
                    None
                }
            }
        };
        match raw.from.as_str() {
            "static" => {
                let id = secret("access_key_id", &raw.access_key_id, self.problems);
                let key = secret("secret_access_key", &raw.secret_access_key, self.problems);
                let token = secret("session_token", &raw.session_token, self.problems);
                if raw.access_key_id.is_none() {
                    self.problems.add(
                        format!("{path}.access_key_id"),
                        "required with from = \"static\"",
                    );
                }
                if raw.secret_access_key.is_none() {
                    self.problems.add(
                        format!("{path}.secret_access_key"),
                        "required with from = \"static\"",
                    );
                }
                Some(CredentialSpec::Static {
                    access_key_id: id?,
                    secret_access_key: key?,
                    session_token: token,
                })
            }
            "default" | "anonymous" => {
                for (name, set) in [
                    ("access_key_id", raw.access_key_id.is_some()),
                    ("secret_access_key", raw.secret_access_key.is_some()),
                    ("session_token", raw.session_token.is_some()),
                ] {
                    if set {
                        self.problems.add(
                            format!("{path}.{name}"),
                            format!("only used with from = \"static\", not \"{}\"", raw.from),
                        );
                    }
                }
                Some(if raw.from == "default" {
                    CredentialSpec::Default
                } else {
                    CredentialSpec::Anonymous
                })
            }
            other => {
                self.problems.add(
                    format!("{path}.from"),
                    format!(
                        "\"{other}\" is not a credential source; use default, static or anonymous"
                    ),
                );
                None
            }
        }
    }

    fn hosts(
        &mut self,
        values: Vec<toml::Value>,
        backends: &BTreeMap<String, String>,
    ) -> Vec<Host> {
        if values.is_empty() {
            self.problems
                .add("hosts", "at least one [[hosts]] entry is required");
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            let path = format!("hosts[{i}]");
            let Some(raw) = item::<RawHost>(self.problems, &path, value) else {
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
            let mut routes = Vec::new();
            for (j, value) in raw.routes.into_iter().enumerate() {
                let rpath = format!("{path}.routes[{j}]");
                if let Some(route) = item::<RawRoute>(self.problems, &rpath, value)
                    .and_then(|r| self.route(&rpath, r, backends))
                {
                    routes.push(route);
                }
            }
            out.push(Host {
                names: raw.names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                patterns,
                routes,
            });
        }
        out
    }

    fn route_path(&mut self, path: &str, text: &str) -> Option<String> {
        match normalise(text) {
            Ok(n) if n == text => Some(n),
            Ok(n) => {
                self.problems
                    .add(path, format!("\"{text}\" is not normalised; write \"{n}\""));
                None
            }
            Err(e) => {
                self.problems.add(path, format!("\"{text}\": {e}"));
                None
            }
        }
    }

    fn methods(&mut self, path: &str, list: &[String]) -> Vec<Method> {
        let mut out = Vec::new();
        for (i, m) in list.iter().enumerate() {
            match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(method) => out.push(method),
                Err(_) => self.problems.add(
                    format!("{path}[{i}]"),
                    format!("\"{m}\" is not an HTTP method"),
                ),
            }
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
    ) -> Option<Route> {
        let matcher = match (&raw.path, &raw.exact) {
            (Some(p), None) => self
                .route_path(&format!("{path}.path"), p)
                .map(|p| PathMatch::Prefix(p.trim_end_matches('/').to_string())),
            (None, Some(e)) => self
                .route_path(&format!("{path}.exact"), e)
                .map(PathMatch::Exact),
            _ => {
                self.problems
                    .add(path, "give exactly one of `path` (prefix) or `exact`");
                None
            }
        };
        let backend = backends.get(&raw.backend);
        if backend.is_none() {
            self.problems.add(
                format!("{path}.backend"),
                format!("unknown backend \"{}\"", raw.backend),
            );
        }
        let methods = match &raw.methods {
            Some(list) => self.methods(&format!("{path}.methods"), list),
            None => vec![Method::GET, Method::HEAD],
        };
        if let Some(kind) = backend {
            if kind == "s3" || kind == "dir" {
                for m in &methods {
                    if *m != Method::GET && *m != Method::HEAD {
                        self.problems.add(
                            format!("{path}.methods"),
                            format!(
                                "{m} is not allowed: backend \"{}\" is read-only (GET, HEAD)",
                                raw.backend
                            ),
                        );
                    }
                }
            }
        }
        let strip_prefix = raw
            .strip_prefix
            .clone()
            .map(|s| s.trim_end_matches('/').to_string());
        if let (Some(strip), Some(m)) = (&strip_prefix, &matcher) {
            let matched = match m {
                PathMatch::Prefix(p) => p,
                PathMatch::Exact(e) => e,
            };
            if !path_has_prefix(matched, strip) {
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
        let cache_control = raw.cache_control.as_deref().and_then(|cc| {
            HeaderValue::from_str(cc)
                .map_err(|_| {
                    self.problems.add(
                        format!("{path}.cache_control"),
                        "is not a valid header value",
                    )
                })
                .ok()
        });
        let cors_path = format!("{path}.cors");
        let cors = raw
            .cors
            .and_then(|c| item::<RawCors>(self.problems, &cors_path, c))
            .map(|c| self.cors(&cors_path, c, &methods));
        let name = raw
            .name
            .clone()
            .unwrap_or_else(|| raw.path.clone().or(raw.exact.clone()).unwrap_or_default());
        Some(Route {
            name,
            matcher: matcher?,
            backend: raw.backend,
            strip_prefix,
            add_prefix,
            methods,
            cache_control,
            download: raw.download.unwrap_or(false),
            cors: cors.flatten(),
        })
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
            Some(list) => self.methods(&format!("{path}.allow_methods"), list),
            None => route_methods.to_vec(),
        };
        Some(Cors {
            origins,
            methods,
            allow_headers: self.header_names(&format!("{path}.allow_headers"), raw.allow_headers),
            expose_headers: self
                .header_names(&format!("{path}.expose_headers"), raw.expose_headers),
            allow_credentials: credentials,
            max_age: raw.max_age,
        })
    }
}

/// Whether `path` equals `prefix` or continues it at a segment boundary.
pub(crate) fn path_has_prefix(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')))
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && !b.starts_with(['.', '-'])
        && !b.ends_with(['.', '-'])
}

fn valid_host_port(a: &str) -> bool {
    match a.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' ', '*'])
}

fn parse_endpoint(url: &str) -> Result<Endpoint, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("\"{url}\" must start with http:// or https://"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "\"{url}\" must be scheme://host[:port] with no path, e.g. https://ACCOUNT.r2.cloudflarestorage.com"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => match p.parse::<u16>() {
            Ok(port) => (h.to_string(), port),
            Err(_) => return Err(format!("\"{url}\" has an invalid port")),
        },
        _ => (rest.to_string(), if tls { 443 } else { 80 }),
    };
    Ok(Endpoint {
        tls,
        host: host.to_ascii_lowercase(),
        port,
    })
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
    fn endpoints() {
        let e = parse_endpoint("http://127.0.0.1:3900").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "127.0.0.1", 3900));
        let e = parse_endpoint("https://acct.r2.cloudflarestorage.com/").unwrap();
        assert_eq!((e.tls, e.port), (true, 443));
        assert!(parse_endpoint("ftp://x").is_err());
        assert!(parse_endpoint("https://x/bucket").is_err());
    }

    #[test]
    fn prefixes_are_segment_aware() {
        assert!(path_has_prefix("/img/a.png", "/img"));
        assert!(path_has_prefix("/img", "/img"));
        assert!(!path_has_prefix("/imgs/a.png", "/img"));
        assert!(path_has_prefix("/anything", ""));
    }

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
