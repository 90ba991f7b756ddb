//! Backends: where a route's bytes come from.
//!
//! - [`s3::S3Backend`]: a bucket, proxied through Pingora with SigV4-signed requests.
//! - [`http::HttpBackend`]: a pool of HTTP origins: round robin or consistent hashing, active
//!   health checks, passive ejection.
//! - [`dir::DirBackend`]: a local directory served by the gateway itself.
//! - `variants`: the image variant builder ([`crate::variants::builder`]), reached through the
//!   in-process origin like a cached `dir` backend.
//!
//! [`Backend`] is the one interface the proxy sees: what to ask ([`Backend::ask`]), whether the
//! gateway answers itself ([`Backend::local`]), where to connect ([`Backend::peer`]), how to
//! rewrite the request ([`Backend::prepare`]) and what to make of the response
//! ([`Backend::judge`]), whether it can take requests now ([`Backend::usable`], from
//! [`health`] checks and ejection). Each method dispatches once to the module that owns the kind.

pub mod dir;
mod error;
pub mod health;
pub mod http;
pub mod keys;
pub mod local;
pub mod metrics;
mod resolve;
pub mod s3;
pub mod spec;

pub use http::MemberOutcome;

use crate::config::{Config, Route};
pub use error::OriginError;
use keys::origin_path;
use kit::client::ClientInfo;
use metrics::{BackendMetrics, OriginMetrics};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::services::background::background_service;
use pingora::services::ServiceWithDependents;
use pingora::upstreams::peer::HttpPeer;
use spec::BackendSpec;
use std::collections::HashMap;
use std::sync::Arc;

/// What a request asks of its backend, derived once from the route and the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// An object key in a bucket or directory (no leading `/`, under the backend's prefix).
    Object(String),
    /// A path (decoded; encoded when sent), the query and the host for an HTTP origin. Kept
    /// apart so an access policy can remove its own query parameters before anything goes
    /// upstream, and so the cache key holds exactly what the origin is sent.
    Origin {
        /// Decoded URL path.
        path: String,
        /// Query string without `?`, as sent: without the route's credential parameters, and
        /// on a cached route as [`kit::params::forwarded_query`] keys it.
        query: Option<String>,
        /// The host the client asked for (canonical, without port): the origin's `Host`
        /// (unless the backend sets `host_header`) and `X-Forwarded-Host`.
        host: String,
    },
    /// An image variant: its canonical path (concrete format, fit spelled out), which is also
    /// what the cache key holds, and the route's source limits for the builder.
    Variant {
        /// [`crate::variants::VariantSpec::canonical_path`].
        path: String,
        /// [`crate::variants::builder::limits_header`] of the route.
        limits: String,
    },
}

/// Why an original could not be read or written by key (the asset store's bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginalError {
    /// No object or file has the key.
    #[error("the original is missing from its backend")]
    Missing,
    /// It is longer than the limit (its length).
    #[error("the original is {0} bytes, over the route's limit")]
    TooLarge(u64),
    /// The backend kind stores no originals (http).
    #[error("backend kind {0} cannot hold originals; use an s3 or dir backend")]
    Unsupported(&'static str),
    /// The backend failed.
    #[error("{0}")]
    Failed(String),
}

/// What the proxy does with an upstream response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on.
    Pass,
    /// Replace header and body with the gateway's answer for this error.
    Replace(OriginError),
}

/// A live backend: its name, its metric handles and its kind.
pub struct Backend {
    /// Config name.
    pub name: String,
    /// Metric handles labelled with this backend.
    pub metrics: BackendMetrics,
    kind: Kind,
}

enum Kind {
    S3(Arc<s3::S3Backend>),
    Http(Box<http::HttpBackend>),
    Dir(dir::DirBackend),
    Variants,
}

impl Backend {
    /// The backend's config name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What a request for `host` (canonical, no port) and `path` (normalised) with `query` on
    /// `route` asks of this backend. Buckets and directories never see the query or the host;
    /// an origin sees the query without the route's credential parameters (on a cached route,
    /// in the form its key holds: only `query_keys`, normalised); the variant builder gets
    /// the variant `path` names, checked against the route's allowlists, in the format
    /// `accept` prefers for `auto`.
    pub fn ask(
        &self,
        route: &Route,
        host: &str,
        path: &str,
        query: Option<&str>,
        accept: Option<&str>,
    ) -> Result<Ask, OriginError> {
        match &self.kind {
            Kind::S3(b) => b.object_key(route, path).map(Ask::Object),
            Kind::Dir(b) => b.object_key(route, path).map(Ask::Object),
            Kind::Variants => {
                let limits = route.variants.as_ref().ok_or(OriginError::Internal)?;
                let spec = crate::variants::spec::parse(&origin_path(route, path), limits, accept)?;
                Ok(Ask::Variant {
                    path: spec.canonical_path(),
                    limits: crate::variants::builder::limits_header(limits),
                })
            }
            Kind::Http(_) => {
                let query = route.access.strip(query);
                let query = match &route.cache {
                    Some(policy) => {
                        kit::params::forwarded_query(query.as_deref(), policy.query_keys.as_deref())
                    }
                    None => query.map(|q| q.into_owned()),
                };
                Ok(Ask::Origin {
                    path: origin_path(route, path),
                    query,
                    host: host.to_string(),
                })
            }
        }
    }

    /// Reads the original stored as `key` (relative to the backend's key prefix), refusing
    /// one longer than `max` bytes before reading its body.
    pub async fn read_original(&self, key: &str, max: u64) -> Result<Vec<u8>, OriginalError> {
        match &self.kind {
            Kind::S3(b) => b.read_original(key, max).await,
            Kind::Dir(b) => b.read_original(key, max),
            Kind::Http(_) => Err(OriginalError::Unsupported("http")),
            Kind::Variants => Err(OriginalError::Unsupported("variants")),
        }
    }

    /// The key of a local file inside a `dir` backend's root and key prefix (its original
    /// can be registered where it lies); `None` for other kinds and files elsewhere.
    pub fn key_of_local_file(&self, path: &std::path::Path) -> Option<String> {
        match &self.kind {
            Kind::Dir(b) => b.key_of_local_file(path),
            Kind::S3(_) | Kind::Http(_) | Kind::Variants => None,
        }
    }

    /// Stores an original as `key` (relative to the backend's key prefix).
    pub async fn write_original(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), OriginalError> {
        match &self.kind {
            Kind::S3(b) => b.write_original(key, bytes, content_type).await,
            Kind::Dir(b) => b.write_original(key, &bytes),
            Kind::Http(_) => Err(OriginalError::Unsupported("http")),
            Kind::Variants => Err(OriginalError::Unsupported("variants")),
        }
    }

    /// The bucket's client, shared (the object cache tier uses it), for an `s3` backend.
    pub fn bucket(&self) -> Option<Arc<s3::S3Backend>> {
        match &self.kind {
            Kind::S3(b) => Some(b.clone()),
            Kind::Http(_) | Kind::Dir(_) | Kind::Variants => None,
        }
    }

    /// The bucket, for an `s3` backend.
    pub fn s3(&self) -> Option<&s3::S3Backend> {
        match &self.kind {
            Kind::S3(b) => Some(b),
            Kind::Http(_) | Kind::Dir(_) | Kind::Variants => None,
        }
    }

    /// The directory whose files the gateway serves itself; `None` for proxied backends.
    pub fn local(&self) -> Option<&dir::DirBackend> {
        match &self.kind {
            Kind::Dir(b) => Some(b),
            Kind::S3(_) | Kind::Http(_) | Kind::Variants => None,
        }
    }

    /// The peer for the next connection attempt, and the pool member it is (http). `attempt`
    /// says how many connects failed so far, `tried` which members this request already used,
    /// `hash` the request's key for consistent pools.
    pub async fn peer(
        &self,
        attempt: usize,
        tried: &[usize],
        hash: Option<u64>,
    ) -> Result<(HttpPeer, Option<usize>), OriginError> {
        match &self.kind {
            Kind::S3(b) => Ok((b.peer(attempt).await.map_err(OriginError::from)?, None)),
            Kind::Http(b) => {
                let member = b.select(hash, tried).ok_or(OriginError::Unreachable)?;
                let peer = b.peer(member).ok_or(OriginError::Unreachable)?;
                Ok((peer, Some(member)))
            }
            Kind::Dir(_) | Kind::Variants => {
                let path = local::socket_path();
                let peer = HttpPeer::new_uds(&path.to_string_lossy(), false, String::new())
                    .map_err(|_| OriginError::Internal)?;
                Ok((peer, None))
            }
        }
    }

    /// Whether another connection attempt may follow `attempts` failed ones, given the members
    /// already `tried`.
    pub fn may_retry_connect(&self, attempts: usize, tried: &[usize]) -> bool {
        match &self.kind {
            Kind::S3(b) => b.may_retry_connect(attempts),
            Kind::Http(b) => b.may_retry_connect(tried),
            Kind::Dir(_) | Kind::Variants => false,
        }
    }

    /// Whether a pool member not in `tried` is left (http; other kinds have no members).
    pub fn has_untried_member(&self, tried: &[usize]) -> bool {
        match &self.kind {
            Kind::Http(b) => b.may_retry_connect(tried),
            Kind::S3(_) | Kind::Dir(_) | Kind::Variants => false,
        }
    }

    /// Whether the backend can take requests now: some pool member passes health checks and is
    /// not ejected; a bucket passes its checks. A directory always can (its root was checked at
    /// load; no file-system call on the request path).
    pub fn usable(&self) -> bool {
        match &self.kind {
            Kind::S3(b) => b.health().healthy() && b.credentials_accepted(),
            Kind::Http(b) => b.usable(),
            Kind::Dir(_) | Kind::Variants => true,
        }
    }

    /// Whether the backend only serves GET and HEAD (buckets, directories).
    pub fn read_only(&self) -> bool {
        !matches!(self.kind, Kind::Http(_))
    }

    /// What a consistent pool hashes (`None` for every other backend).
    pub fn affinity(&self) -> Option<&kit::affinity::AffinityKey> {
        match &self.kind {
            Kind::Http(b) => b.affinity(),
            Kind::S3(_) | Kind::Dir(_) | Kind::Variants => None,
        }
    }

    /// Limit on the whole upstream exchange, when configured.
    pub fn total_timeout(&self) -> Option<std::time::Duration> {
        match &self.kind {
            Kind::Http(b) => b.total_timeout(),
            Kind::S3(b) => b.total_timeout(),
            Kind::Dir(_) | Kind::Variants => None,
        }
    }

    /// Records what happened at pool member `member` (metrics, passive ejection).
    pub fn record(&self, member: Option<usize>, outcome: MemberOutcome) {
        if let (Kind::Http(b), Some(i)) = (&self.kind, member) {
            b.record(i, outcome);
        }
    }

    /// The address of pool member `member`, for the access log (`-` when none).
    pub fn member_label(&self, member: Option<usize>) -> &str {
        match (&self.kind, member) {
            (Kind::Http(b), Some(i)) => b.member_label(i),
            _ => "-",
        }
    }

    /// Rewrites the client's request into the one this backend gets.
    pub async fn prepare(
        &self,
        req: &mut RequestHeader,
        ask: &Ask,
        client: &ClientInfo,
    ) -> Result<(), OriginError> {
        match (&self.kind, ask) {
            (Kind::S3(b), Ask::Object(key)) => b.prepare_request(req, key).await.map_err(|e| {
                tracing::error!(backend = %self.name, error = %e, "cannot prepare S3 request");
                OriginError::from(e)
            }),
            (Kind::Http(b), Ask::Origin { path, query, host }) => b
                .prepare_request(req, path, query.as_deref(), host, client)
                .map_err(|_| OriginError::Internal),
            (Kind::Dir(_), Ask::Object(key)) => {
                *req = local::request(req, &self.name, key)?;
                Ok(())
            }
            (Kind::Variants, Ask::Variant { path, limits }) => {
                *req = local::variant_request(req, path, limits)?;
                Ok(())
            }
            _ => Err(OriginError::Internal),
        }
    }

    /// Judges the upstream response header: pass it on, or replace it with an error answer.
    pub async fn judge(&self, resp: &ResponseHeader, ask: &Ask) -> Verdict {
        match (&self.kind, ask) {
            (Kind::S3(b), Ask::Object(key)) => b.judge(resp, key, &self.metrics).await,
            _ => Verdict::Pass,
        }
    }

    /// Each member (origin address, endpoint or directory) and whether it is usable now.
    pub fn member_health(&self) -> Vec<(String, bool)> {
        match &self.kind {
            Kind::S3(b) => vec![(
                b.endpoint_url(),
                b.health().healthy() && b.credentials_accepted(),
            )],
            Kind::Http(b) => b.member_health(),
            Kind::Dir(b) => vec![(b.root().display().to_string(), b.root().is_dir())],
            Kind::Variants => vec![("in-process".to_string(), true)],
        }
    }

    /// A presigned GET URL for the bucket key `key` (s3 backends only: others answer
    /// `Internal`). With `in_prefix`, `key` is relative to the backend's `key_prefix`.
    pub async fn presign_get(
        &self,
        key: &str,
        in_prefix: bool,
        expires_in: std::time::Duration,
    ) -> Result<String, OriginError> {
        match &self.kind {
            Kind::S3(b) => {
                let key = if in_prefix {
                    b.key_in_prefix(key)
                } else {
                    key.to_string()
                };
                b.presign_get(&key, expires_in).await
            }
            .map_err(|e| {
                tracing::error!(backend = %self.name, error = %e, "cannot presign");
                OriginError::from(e)
            }),
            Kind::Http(_) | Kind::Dir(_) | Kind::Variants => Err(OriginError::Internal),
        }
    }

    /// Whether the client's request headers, `Authorization` among them, reach this backend
    /// (origins); buckets are asked with the gateway's own signed request.
    pub fn forwards_client_headers(&self) -> bool {
        matches!(self.kind, Kind::Http(_))
    }

    /// Whether this response is one the origin marked as degraded (its `degraded` marker):
    /// such an answer is never stored in a shared cache tier.
    pub fn marks_degraded(&self, resp: &ResponseHeader) -> bool {
        match &self.kind {
            Kind::Http(b) => b.degraded_marker().is_some_and(|m| m.marks(&resp.headers)),
            Kind::S3(_) | Kind::Dir(_) | Kind::Variants => false,
        }
    }

    /// Lower-case response header names (or `prefix*`) removed before responses reach clients.
    pub fn strip_headers(&self) -> &[String] {
        match &self.kind {
            Kind::S3(b) => b.strip_headers(),
            Kind::Http(b) => b.strip_headers(),
            Kind::Dir(_) | Kind::Variants => &[],
        }
    }
}

impl crate::routing::Usable for Backend {
    fn usable(&self) -> bool {
        Backend::usable(self)
    }
}

/// Services that must run beside the proxy: origin health checks, endpoint name refreshes.
pub type BackgroundServices = Vec<Box<dyn ServiceWithDependents>>;

/// Builds every configured backend, counting into `metrics`; also returns the background
/// services to register.
pub fn build(
    config: &Config,
    metrics: &OriginMetrics,
) -> Result<(HashMap<String, Arc<Backend>>, BackgroundServices), String> {
    let mut out = HashMap::new();
    let mut services: BackgroundServices = Vec::new();
    let mut resolvers = Vec::new();
    let mut buckets = Vec::new();
    for (name, spec) in &config.backends {
        let kind = match spec {
            BackendSpec::S3(s) => {
                let bucket = Arc::new(s3::S3Backend::new(name, s));
                resolvers.push(bucket.resolver());
                if let Some(interval) = bucket.health_interval() {
                    buckets.push((bucket.clone(), interval));
                }
                Kind::S3(bucket)
            }
            BackendSpec::Dir(d) => Kind::Dir(dir::DirBackend::new(name, d)),
            BackendSpec::Variants => Kind::Variants,
            BackendSpec::Http(h) => {
                let (backend, check) = http::HttpBackend::new(name, h, metrics)?;
                services.extend(check);
                Kind::Http(Box::new(backend))
            }
        };
        let backend = Backend {
            name: name.clone(),
            metrics: metrics.backend(name),
            kind,
        };
        out.insert(name.clone(), Arc::new(backend));
    }
    let refresh = resolve::RefreshService::new(resolvers);
    if !refresh.is_empty() {
        services.push(Box::new(background_service("endpoint names", refresh)));
    }
    let checks = health::BucketChecks::new(buckets);
    if !checks.is_empty() {
        services.push(Box::new(background_service("bucket health checks", checks)));
    }
    Ok((out, services))
}
