//! Validation of `[backends.NAME]`: kind-specific keys, endpoints, credentials.

use super::{item, Problems, Validator};
use crate::config::raw::*;
use crate::config::*;

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
    ("health_check_interval", &["http", "s3"]),
    ("health_check_path", &["http"]),
    ("health_check_status", &["http"]),
    ("health_check_timeout", &["http", "s3"]),
    ("health_check_rise", &["http", "s3"]),
    ("health_check_fall", &["http", "s3"]),
    ("balance", &["http"]),
    ("hash_key", &["http"]),
    ("eject_after", &["http"]),
    ("eject_for", &["http"]),
    ("total_timeout", &["s3", "http"]),
    ("degraded_header", &["http"]),
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
            ("health_check_path", raw.health_check_path.is_some()),
            ("health_check_status", raw.health_check_status.is_some()),
            ("health_check_timeout", raw.health_check_timeout.is_some()),
            ("health_check_rise", raw.health_check_rise.is_some()),
            ("health_check_fall", raw.health_check_fall.is_some()),
            ("balance", raw.balance.is_some()),
            ("hash_key", raw.hash_key.is_some()),
            ("eject_after", raw.eject_after.is_some()),
            ("eject_for", raw.eject_for.is_some()),
            ("total_timeout", raw.total_timeout.is_some()),
            ("degraded_header", raw.degraded_header.is_some()),
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

    pub(super) fn backend(&mut self, path: &str, raw: RawBackend) -> Option<BackendSpec> {
        if matches!(raw.kind.as_str(), "s3" | "http" | "dir" | "variants") {
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
        let default_interval = Duration::from_secs(if raw.kind == "s3" { 10 } else { 5 });
        let health = self.health(path, &raw, default_interval);
        let balance = if raw.kind == "http" {
            self.balance(path, &raw)
        } else {
            Balance::RoundRobin
        };
        let ejection = Ejection {
            after: raw.eject_after.unwrap_or(3),
            cool_down: self.duration(
                &format!("{path}.eject_for"),
                raw.eject_for.as_deref(),
                Duration::from_secs(10),
            ),
        };
        let total_timeout = raw
            .total_timeout
            .as_deref()
            .map(|t| self.duration(&format!("{path}.total_timeout"), Some(t), read_timeout));
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
                    health,
                    total_timeout,
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
                Some(BackendSpec::Http(HttpSpec {
                    addresses,
                    host_header: raw.host_header,
                    tls,
                    sni,
                    verify_cert: raw.verify_cert.unwrap_or(true),
                    health,
                    balance,
                    ejection,
                    total_timeout,
                    degraded: raw.degraded_header.as_deref().and_then(|text| {
                        crate::backend::http::DegradedMarker::parse(text)
                            .map_err(|e| self.problems.add(format!("{path}.degraded_header"), e))
                            .ok()
                    }),
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
            "variants" => Some(BackendSpec::Variants),
            other => {
                self.problems.add(
                    format!("{path}.kind"),
                    format!("unknown backend kind \"{other}\"; use s3, http, dir or variants"),
                );
                None
            }
        }
    }

    /// Active health check settings; `default_interval` applies when none is written.
    fn health(&mut self, path: &str, raw: &RawBackend, default_interval: Duration) -> HealthSpec {
        let interval = match raw.health_check_interval.as_deref() {
            Some("0") | Some("0s") | Some("0ms") => None,
            other => Some(self.duration(
                &format!("{path}.health_check_interval"),
                other,
                default_interval,
            )),
        };
        let health_path = raw.health_check_path.as_deref().and_then(|p| {
            let key = format!("{path}.health_check_path");
            if p.starts_with('/') && http::uri::PathAndQuery::try_from(p).is_ok() {
                Some(p.to_string())
            } else {
                self.problems
                    .add(key, format!("\"{p}\" is not a request path like /healthz"));
                None
            }
        });
        let status = raw.health_check_status.unwrap_or(200);
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
        let rise = threshold("health_check_rise", raw.health_check_rise);
        let fall = threshold("health_check_fall", raw.health_check_fall);
        HealthSpec {
            interval,
            path: health_path,
            status,
            timeout: self.duration(
                &format!("{path}.health_check_timeout"),
                raw.health_check_timeout.as_deref(),
                Duration::from_secs(2),
            ),
            rise,
            fall,
        }
    }

    /// How an HTTP pool picks members.
    fn balance(&mut self, path: &str, raw: &RawBackend) -> Balance {
        let key = raw.hash_key.as_deref().and_then(|k| {
            kit::affinity::AffinityKey::parse(k)
                .map_err(|e| self.problems.add(format!("{path}.hash_key"), e))
                .ok()
        });
        match raw.balance.as_deref() {
            None | Some("round_robin") => {
                if raw.hash_key.is_some() {
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
