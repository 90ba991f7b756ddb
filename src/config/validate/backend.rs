//! Validation of `[backends.NAME]`: kind-specific keys, endpoints, credentials.

use super::{item, Problems, Validator};
use crate::config::raw::*;
use crate::config::*;

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

impl Validator<'_> {
    /// Reads `[backends.NAME]` (at `path`) as the struct of its `kind`.
    pub(super) fn backend(&mut self, path: &str, value: toml::Value) -> Option<BackendSpec> {
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
                        self.problems.add(path, super::toml_message(&e));
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
            strip_response_headers: self
                .strip_list(raw.strip_response_headers, S3_INTERNAL_HEADERS),
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
                origins::http::DegradedMarker::parse(text)
                    .map_err(|e| self.problems.add(format!("{path}.degraded_header"), e))
                    .ok()
            }),
            connect_timeout: timeouts.connect,
            read_timeout: timeouts.read,
            strip_response_headers: self.strip_list(raw.strip_response_headers, &[]),
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
            strip_response_headers: self.strip_list(raw.strip_response_headers, &[]),
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
        let raw: RawCredentials = item(self.problems, path, raw)?;
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

    /// The problems `check` reports for a config with this `[backends.b]` table (beside a
    /// listener and an `[assets]` section a `variants` backend needs).
    fn backend_problems(table: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[[listeners]]\naddress = \"127.0.0.1:1\"\n\
             [assets]\ndatabase = \"sqlite://{}/a.db\"\noriginals = \"o\"\n\
             [backends.o]\nkind = \"dir\"\nroot = \"{}\"\n\
             [backends.b]\n{table}\n",
            dir.path().display(),
            dir.path().display()
        );
        match crate::config::from_toml_str(&text, dir.path()) {
            Ok(_) => Vec::new(),
            Err(p) => p.0.iter().map(|p| p.to_string()).collect(),
        }
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
