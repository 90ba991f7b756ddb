//! Backends: where a route's bytes come from.
//!
//! - [`s3::S3Backend`]: a bucket, proxied through Pingora with SigV4-signed requests.
//! - [`http::HttpBackend`]: a pool of HTTP origins with round-robin selection and health checks.
//! - [`dir::DirBackend`]: a local directory served by the gateway itself.

pub mod dir;
pub mod http;
mod resolve;
pub mod s3;

use crate::config::{BackendSpec, Config};
use pingora::lb::{selection::RoundRobin, LoadBalancer};
use pingora::services::background::GenBackgroundService;
use std::collections::HashMap;
use std::sync::Arc;

/// A live backend.
pub enum Backend {
    /// A bucket.
    S3(Box<s3::S3Backend>),
    /// An origin pool.
    Http(http::HttpBackend),
    /// A local directory.
    Dir(dir::DirBackend),
}

impl Backend {
    /// The backend's config name.
    pub fn name(&self) -> &str {
        match self {
            Backend::S3(b) => &b.name,
            Backend::Http(b) => &b.name,
            Backend::Dir(b) => &b.name,
        }
    }

    /// Each member (origin address, endpoint or directory) and whether it is usable now.
    pub fn member_health(&self) -> Vec<(String, bool)> {
        match self {
            Backend::S3(b) => vec![(b.endpoint_url(), b.credentials_accepted())],
            Backend::Http(b) => b.member_health(),
            Backend::Dir(b) => vec![(b.root().display().to_string(), b.root().is_dir())],
        }
    }

    /// Lower-case response header names (or `prefix*`) removed before responses reach clients.
    pub fn strip_headers(&self) -> &[String] {
        match self {
            Backend::S3(b) => b.strip_headers(),
            Backend::Http(b) => b.strip_headers(),
            Backend::Dir(_) => &[],
        }
    }
}

/// A background service running one origin pool's health checks.
pub type HealthCheckService = GenBackgroundService<LoadBalancer<RoundRobin>>;

/// Health-check services that must run beside the proxy.
pub type HealthChecks = Vec<HealthCheckService>;

/// Builds every configured backend; also returns the health-check services to register.
pub fn build(config: &Config) -> Result<(HashMap<String, Arc<Backend>>, HealthChecks), String> {
    let mut out = HashMap::new();
    let mut checks = Vec::new();
    for (name, spec) in &config.backends {
        let backend = match spec {
            BackendSpec::S3(s) => Backend::S3(Box::new(s3::S3Backend::new(name, s))),
            BackendSpec::Dir(d) => Backend::Dir(dir::DirBackend::new(name, d)),
            BackendSpec::Http(h) => {
                let (backend, check) = http::HttpBackend::new(name, h)?;
                checks.extend(check);
                Backend::Http(backend)
            }
        };
        out.insert(name.clone(), Arc::new(backend));
    }
    Ok((out, checks))
}
