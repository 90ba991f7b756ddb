//! The config of backends: `[backends.NAME]`, as written (one serde struct per kind, chosen by
//! `kind`, each refusing keys it does not take) and as checked into a [`BackendSpec`]:
//! kind-specific keys, endpoints, credentials, health checks, balancing, timeouts. What spans
//! other domains — a `variants` backend needs `[assets]`, routes and groups name backends — is
//! the application's check.

use crate::spec::*;
use kit::problems::{Check, Problems};
use kit::secret::{RawSecret, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `credentials` of an `s3` backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    /// `default` (env, profile, web identity, container and instance metadata),
    /// `static` (the two secrets below) or `anonymous` (unsigned requests to a public bucket).
    pub from: String,
    /// Access key id (with `from = "static"`).
    pub access_key_id: Option<RawSecret>,
    /// Secret access key (with `from = "static"`).
    pub secret_access_key: Option<RawSecret>,
    /// Session token for temporary credentials (optional, with `from = "static"`).
    pub session_token: Option<RawSecret>,
}

/// `[backends.NAME]`: one upstream. Its `kind` (`s3`, `http`, `dir` or `variants`) chooses
/// which of [`RawS3Backend`], [`RawHttpBackend`], [`RawDirBackend`] and
/// [`RawVariantsBackend`] the other keys are read as; a key the kind does not take is reported
/// at its own path (`backends.NAME.KEY`).
pub const BACKEND_KINDS: &[&str] = &["s3", "http", "dir", "variants"];

/// `[backends.NAME]` with `kind = "s3"`: an S3 or S3-compatible bucket (AWS, R2, Garage, MinIO).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3Backend {
    /// Bucket name.
    pub bucket: Option<String>,
    /// Signing region, e.g. `us-east-1`; `auto` for R2 (default `us-east-1`).
    pub region: Option<String>,
    /// Endpoint URL for R2 and other S3-compatible stores; AWS when absent.
    pub endpoint: Option<String>,
    /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`.
    pub path_style: Option<bool>,
    /// Prefix prepended to every object key; requests can never leave it.
    pub key_prefix: Option<String>,
    /// How requests are signed ([`RawCredentials`]). Kept raw for precise error paths.
    pub credentials: Option<toml::Value>,
    /// Status answered when the bucket denies access to an object: 404 (default, hides
    /// existence) or 403.
    pub access_denied_status: Option<u16>,
    /// Time between health checks (a cheap signed listing of the bucket), e.g. `10s`
    /// (default); `0s` disables them.
    pub health_check_interval: Option<String>,
    /// Time one health check may take, e.g. `2s` (default 2s).
    pub health_check_timeout: Option<String>,
    /// Consecutive passed checks that bring an unhealthy bucket back (default 2).
    pub health_check_rise: Option<usize>,
    /// Consecutive failed checks that take a healthy bucket out (default 2).
    pub health_check_fall: Option<usize>,
    /// Time allowed to establish a connection, e.g. `2s` (default 5s).
    pub connect_timeout: Option<String>,
    /// Time allowed between reads from the bucket, e.g. `30s` (default 30s).
    pub read_timeout: Option<String>,
    /// Time allowed for the whole exchange, from the request sent to the last body byte, e.g.
    /// `60s` (default none: only `read_timeout` bounds it).
    pub total_timeout: Option<String>,
    /// Extra response header names removed before the client sees them (the bucket's own
    /// `x-amz-*` and similar are always removed).
    pub strip_response_headers: Option<Vec<String>>,
}

/// `[backends.NAME]` with `kind = "http"`: a pool of HTTP origin servers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpBackend {
    /// Origin members as `host:port`.
    pub addresses: Option<Vec<String>>,
    /// Host header sent to the origin (default: the client's Host).
    pub host_header: Option<String>,
    /// Connect to the origin over TLS.
    pub tls: Option<bool>,
    /// SNI and certificate name for TLS to the origin (default: `host_header`).
    pub sni: Option<String>,
    /// Verify the origin's certificate (with `tls`; default true).
    pub verify_cert: Option<bool>,
    /// Time between active health checks of each member, e.g. `5s` (default); `0s`
    /// disables them.
    pub health_check_interval: Option<String>,
    /// Path of an HTTP health check, e.g. `/healthz`; without it the check is a TCP (or TLS)
    /// connect.
    pub health_check_path: Option<String>,
    /// Status the HTTP health check expects (default 200).
    pub health_check_status: Option<u16>,
    /// Time one health check may take, e.g. `2s` (default 2s).
    pub health_check_timeout: Option<String>,
    /// Consecutive passed checks that bring an unhealthy member back (default 2).
    pub health_check_rise: Option<usize>,
    /// Consecutive failed checks that take a healthy member out (default 2).
    pub health_check_fall: Option<usize>,
    /// `round_robin` (default) or `consistent` hashing of `hash_key` over the members.
    pub balance: Option<String>,
    /// What `consistent` balancing hashes: `path` (default), `client_ip`, `header:NAME`,
    /// `cookie:NAME` or `query:NAME`.
    pub hash_key: Option<String>,
    /// Consecutive failures (refused or broken connections, timeouts, 5xx answers) after which a
    /// member is ejected without waiting for health checks; 0 disables (default 3).
    pub eject_after: Option<u32>,
    /// How long an ejected member stays out before it is tried again (default 10s).
    pub eject_for: Option<String>,
    /// `name: value` of a response header by which the origin marks a degraded answer (e.g.
    /// `x-token-valid: false`); such answers are never stored in a shared cache tier.
    pub degraded_header: Option<String>,
    /// Time allowed to establish a connection, e.g. `2s` (default 5s).
    pub connect_timeout: Option<String>,
    /// Time allowed between reads from the origin, e.g. `30s` (default 30s).
    pub read_timeout: Option<String>,
    /// Time allowed for the whole exchange, from the request sent to the last body byte, e.g.
    /// `60s` (default none: only `read_timeout` bounds it).
    pub total_timeout: Option<String>,
    /// Response header names removed before the client sees them.
    pub strip_response_headers: Option<Vec<String>>,
}

/// `[backends.NAME]` with `kind = "dir"`: a local directory the gateway serves itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirBackend {
    /// Directory served.
    pub root: Option<PathBuf>,
    /// Sub-directory of `root` every key is under; requests can never leave it.
    pub key_prefix: Option<String>,
    /// Response header names removed before the client sees them.
    pub strip_response_headers: Option<Vec<String>>,
}

/// `[backends.NAME]` with `kind = "variants"`: the image variant builder, reading the
/// originals of `[assets]`. It takes no other keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariantsBackend {}

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

/// The health-check keys a kind takes (s3 and http share most of them).
struct HealthKeys<'a> {
    interval: Option<&'a str>,
    path: Option<&'a str>,
    status: Option<u16>,
    timeout: Option<&'a str>,
    rise: Option<usize>,
    fall: Option<usize>,
}

/// The timeout keys of a kind that connects somewhere (s3, http).
struct Timeouts {
    connect: Duration,
    read: Duration,
    total: Option<Duration>,
}

/// The key serde refused as unknown, from its message (``unknown field `KEY`, ...``).
fn unknown_field(e: &toml::de::Error) -> Option<String> {
    let rest = e.message().strip_prefix("unknown field `")?;
    Some(rest.split_once('`')?.0.to_string())
}

/// Checks `[backends.NAME]`; every problem goes to the [`Check`] with its key path.
pub trait CheckBackends {
    /// Reads `[backends.NAME]` (at `path`) as the struct of its `kind` and checks it.
    fn backend(&mut self, path: &str, value: toml::Value) -> Option<BackendSpec>;
}

/// The response headers a backend strips: the kind's own `base` list, then the configured
/// extra names, lower-cased.
fn strip_list(extra: Option<Vec<String>>, base: &[&str]) -> Vec<String> {
    base.iter()
        .map(|s| s.to_string())
        .chain(extra.unwrap_or_default())
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

impl CheckBackends for Check<'_> {
    fn backend(&mut self, path: &str, value: toml::Value) -> Option<BackendSpec> {
        Backends(self).backend(path, value)
    }
}

/// The checks of one backend table, kind by kind, on the shared [`Check`].
struct Backends<'c, 'a>(&'c mut Check<'a>);

impl<'a> std::ops::Deref for Backends<'_, 'a> {
    type Target = Check<'a>;
    fn deref(&self) -> &Check<'a> {
        self.0
    }
}

impl std::ops::DerefMut for Backends<'_, '_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
    }
}

impl Backends<'_, '_> {
    /// Reads `[backends.NAME]` (at `path`) as the struct of its `kind`.
    fn backend(&mut self, path: &str, value: toml::Value) -> Option<BackendSpec> {
        let toml::Value::Table(mut table) = value else {
            self.problems.add(path, "must be a table with a kind");
            return None;
        };
        let kind = match table.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            Some(_) | None => {
                self.problems.add(
                    format!("{path}.kind"),
                    format!("is required: one of {}", BACKEND_KINDS.join(", ")),
                );
                return None;
            }
        };
        match kind.as_str() {
            "s3" => {
                let raw = self.kind_item::<RawS3Backend>(path, &kind, table)?;
                self.s3_backend(path, raw)
            }
            "http" => {
                let raw = self.kind_item::<RawHttpBackend>(path, &kind, table)?;
                Some(self.http_backend(path, raw))
            }
            "dir" => {
                let raw = self.kind_item::<RawDirBackend>(path, &kind, table)?;
                self.dir_backend(path, raw)
            }
            "variants" => {
                self.kind_item::<RawVariantsBackend>(path, &kind, table)?;
                Some(BackendSpec::Variants)
            }
            other => {
                self.problems.add(
                    format!("{path}.kind"),
                    format!("unknown backend kind \"{other}\"; use s3, http, dir or variants"),
                );
                None
            }
        }
    }

    /// Deserialises a backend's keys as the struct of `kind`. Each key the kind does not take
    /// is reported at its own path and left out, so the rest is still checked.
    fn kind_item<T: for<'de> serde::Deserialize<'de>>(
        &mut self,
        path: &str,
        kind: &str,
        mut table: toml::Table,
    ) -> Option<T> {
        loop {
            match T::deserialize(toml::Value::Table(table.clone())) {
                Ok(raw) => return Some(raw),
                Err(e) => match unknown_field(&e) {
                    Some(key) if table.remove(&key).is_some() => {
                        self.problems.add(
                            format!("{path}.{key}"),
                            format!("is not a key of {kind} backends"),
                        );
                    }
                    _ => {
                        self.problems.add(path, kit::problems::toml_message(&e));
                        return None;
                    }
                },
            }
        }
    }

    /// `connect_timeout`, `read_timeout` and `total_timeout` (which defaults to none).
    fn timeouts(
        &mut self,
        path: &str,
        connect: Option<&str>,
        read: Option<&str>,
        total: Option<&str>,
    ) -> Timeouts {
        let connect = self.duration(
            &format!("{path}.connect_timeout"),
            connect,
            Duration::from_secs(5),
        );
        let read = self.duration(
            &format!("{path}.read_timeout"),
            read,
            Duration::from_secs(30),
        );
        let total = total.map(|t| self.duration(&format!("{path}.total_timeout"), Some(t), read));
        Timeouts {
            connect,
            read,
            total,
        }
    }

    fn s3_backend(&mut self, path: &str, raw: RawS3Backend) -> Option<BackendSpec> {
        let timeouts = self.timeouts(
            path,
            raw.connect_timeout.as_deref(),
            raw.read_timeout.as_deref(),
            raw.total_timeout.as_deref(),
        );
        let health = self.health(
            path,
            HealthKeys {
                interval: raw.health_check_interval.as_deref(),
                path: None,
                status: None,
                timeout: raw.health_check_timeout.as_deref(),
                rise: raw.health_check_rise,
                fall: raw.health_check_fall,
            },
            Duration::from_secs(10),
        );
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
            connect_timeout: timeouts.connect,
            read_timeout: timeouts.read,
            health,
            total_timeout: timeouts.total,
            strip_response_headers: strip_list(raw.strip_response_headers, S3_INTERNAL_HEADERS),
        }))
    }

    fn http_backend(&mut self, path: &str, raw: RawHttpBackend) -> BackendSpec {
        let timeouts = self.timeouts(
            path,
            raw.connect_timeout.as_deref(),
            raw.read_timeout.as_deref(),
            raw.total_timeout.as_deref(),
        );
        let health = self.health(
            path,
            HealthKeys {
                interval: raw.health_check_interval.as_deref(),
                path: raw.health_check_path.as_deref(),
                status: raw.health_check_status,
                timeout: raw.health_check_timeout.as_deref(),
                rise: raw.health_check_rise,
                fall: raw.health_check_fall,
            },
            Duration::from_secs(5),
        );
        let balance = self.balance(path, raw.balance.as_deref(), raw.hash_key.as_deref());
        let ejection = Ejection {
            after: raw.eject_after.unwrap_or(3),
            cool_down: self.duration(
                &format!("{path}.eject_for"),
                raw.eject_for.as_deref(),
                Duration::from_secs(10),
            ),
        };
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
        let sni = raw
            .sni
            .or_else(|| raw.host_header.clone())
            .or_else(|| {
                addresses
                    .first()
                    .and_then(|a| a.rsplit_once(':').map(|(h, _)| h.to_string()))
            })
            .unwrap_or_default();
        BackendSpec::Http(HttpSpec {
            addresses,
            host_header: raw.host_header,
            tls: raw.tls.unwrap_or(false),
            sni,
            verify_cert: raw.verify_cert.unwrap_or(true),
            health,
            balance,
            ejection,
            total_timeout: timeouts.total,
            degraded: raw.degraded_header.as_deref().and_then(|text| {
                crate::http::DegradedMarker::parse(text)
                    .map_err(|e| self.problems.add(format!("{path}.degraded_header"), e))
                    .ok()
            }),
            connect_timeout: timeouts.connect,
            read_timeout: timeouts.read,
            strip_response_headers: strip_list(raw.strip_response_headers, &[]),
        })
    }

    fn dir_backend(&mut self, path: &str, raw: RawDirBackend) -> Option<BackendSpec> {
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
            strip_response_headers: strip_list(raw.strip_response_headers, &[]),
        }))
    }

    /// Active health check settings; `default_interval` applies when none is written.
    fn health(
        &mut self,
        path: &str,
        keys: HealthKeys<'_>,
        default_interval: Duration,
    ) -> HealthSpec {
        let interval = match keys.interval {
            Some("0") | Some("0s") | Some("0ms") => None,
            other => Some(self.duration(
                &format!("{path}.health_check_interval"),
                other,
                default_interval,
            )),
        };
        let health_path = keys.path.and_then(|p| {
            let key = format!("{path}.health_check_path");
            if p.starts_with('/') && http::uri::PathAndQuery::try_from(p).is_ok() {
                Some(p.to_string())
            } else {
                self.problems
                    .add(key, format!("\"{p}\" is not a request path like /healthz"));
                None
            }
        });
        let status = keys.status.unwrap_or(200);
        if !(100..=599).contains(&status) {
            self.problems.add(
                format!("{path}.health_check_status"),
                "must be an HTTP status (100 to 599)",
            );
        }
        let mut threshold = |name: &str, value: Option<usize>| {
            let value = value.unwrap_or(2);
            if !(1..=100).contains(&value) {
                self.problems
                    .add(format!("{path}.{name}"), "must be between 1 and 100 checks");
            }
            value
        };
        let rise = threshold("health_check_rise", keys.rise);
        let fall = threshold("health_check_fall", keys.fall);
        HealthSpec {
            interval,
            path: health_path,
            status,
            timeout: self.duration(
                &format!("{path}.health_check_timeout"),
                keys.timeout,
                Duration::from_secs(2),
            ),
            rise,
            fall,
        }
    }

    /// How an HTTP pool picks members.
    fn balance(&mut self, path: &str, balance: Option<&str>, hash_key: Option<&str>) -> Balance {
        let key = hash_key.and_then(|k| {
            kit::affinity::AffinityKey::parse(k)
                .map_err(|e| self.problems.add(format!("{path}.hash_key"), e))
                .ok()
        });
        match balance {
            None | Some("round_robin") => {
                if hash_key.is_some() {
                    self.problems.add(
                        format!("{path}.hash_key"),
                        "only used with balance = \"consistent\"",
                    );
                }
                Balance::RoundRobin
            }
            Some("consistent") => {
                Balance::Consistent(key.unwrap_or(kit::affinity::AffinityKey::Path))
            }
            Some(other) => {
                self.problems.add(
                    format!("{path}.balance"),
                    format!("\"{other}\" is not a balancing method; use round_robin or consistent"),
                );
                Balance::RoundRobin
            }
        }
    }

    fn credentials(&mut self, path: &str, raw: Option<toml::Value>) -> Option<CredentialSpec> {
        let Some(raw) = raw else {
            return Some(CredentialSpec::Default);
        };
        let raw: RawCredentials = self.item(path, raw)?;
        let base = self.base;
        let secret = |name: &str, s: &Option<RawSecret>, problems: &mut Problems| {
            let s = s.as_ref()?;
            match Secret::resolve(s, base) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use kit::problems::Problems;
    use std::path::Path;

    /// The problems checking this table as `[backends.b]` reports.
    fn backend_problems(table: &str) -> Vec<String> {
        let value: toml::Value = toml::from_str(table).unwrap();
        let mut problems = Problems::default();
        let mut warnings = Vec::new();
        let mut cx = Check {
            problems: &mut problems,
            warnings: &mut warnings,
            base: Path::new("/"),
        };
        cx.backend("backends.b", value);
        problems.0.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_key_of_another_kind_is_reported_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display();
        let cases = [
            (
                "kind = \"s3\"\nbucket = \"media\"\nroot = \"/srv\"".to_string(),
                "backends.b.root: is not a key of s3 backends",
            ),
            (
                "kind = \"http\"\naddresses = [\"127.0.0.1:1\"]\nbucket = \"media\"".to_string(),
                "backends.b.bucket: is not a key of http backends",
            ),
            (
                format!("kind = \"dir\"\nroot = \"{root}\"\naddresses = [\"127.0.0.1:1\"]"),
                "backends.b.addresses: is not a key of dir backends",
            ),
            (
                "kind = \"variants\"\nkey_prefix = \"x\"".to_string(),
                "backends.b.key_prefix: is not a key of variants backends",
            ),
            (
                "kind = \"s3\"\nbucket = \"media\"\nhealth_check_path = \"/h\"".to_string(),
                "backends.b.health_check_path: is not a key of s3 backends",
            ),
        ];
        for (table, want) in cases {
            let got = backend_problems(&table);
            assert!(got.iter().any(|p| p == want), "{table}: {got:?}");
        }
    }

    #[test]
    fn every_unknown_key_is_reported_and_the_rest_still_checked() {
        let got = backend_problems(
            "kind = \"http\"\naddresses = [\"nohost\"]\nadresses = [\"a:1\"]\ntimeout = \"1s\"",
        );
        for want in [
            "backends.b.adresses: is not a key of http backends",
            "backends.b.timeout: is not a key of http backends",
            "backends.b.addresses[0]: \"nohost\" is not host:port",
        ] {
            assert!(got.iter().any(|p| p == want), "{want}: {got:?}");
        }
        let got = backend_problems("bucket = \"media\"");
        assert!(
            got.iter()
                .any(|p| p == "backends.b.kind: is required: one of s3, http, dir, variants"),
            "{got:?}"
        );
    }

    #[test]
    fn endpoints() {
        let e = parse_endpoint("http://127.0.0.1:3900").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "127.0.0.1", 3900));
        let e = parse_endpoint("https://acct.r2.cloudflarestorage.com/").unwrap();
        assert_eq!((e.tls, e.port), (true, 443));
        assert!(parse_endpoint("ftp://x").is_err());
        assert!(parse_endpoint("https://x/bucket").is_err());
    }
}
