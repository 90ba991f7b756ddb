//! Backends: where a route's bytes come from.
//!
//! - [`s3::S3Backend`]: a bucket, proxied through Pingora with SigV4-signed requests.
//! - [`http::HttpBackend`]: a pool of HTTP origins: round robin or consistent hashing, active
//!   health checks, passive ejection.
//! - [`dir::DirBackend`]: a local directory served by the gateway itself.
//! - kinds the application serves in process (the image variant builder), given to
//!   [`build`] as an [`Origin`] of their own.
//!
//! Each kind implements [`Origin`], in its own module. [`Backend`] is the one interface the
//! proxy sees: a name, its metric handles and one `Origin` — what to ask ([`Backend::ask`]),
//! whether the gateway answers itself ([`Backend::answer_here`]), where to connect
//! ([`Backend::peer`]), how to rewrite the request ([`Backend::prepare`]) and what to make of
//! the response ([`Backend::judge`]), whether it can take requests now ([`Backend::usable`],
//! from [`health`] checks and ejection). Nothing outside a kind's module branches on the kind.

pub mod config;
pub mod dir;
mod error;
pub mod health;
pub mod http;
pub mod keys;
pub mod listing;
pub mod local;
pub mod metrics;
pub mod origin;
pub mod presign;
mod resolve;
pub mod s3;
pub mod spec;
pub mod upload;

pub use http::MemberOutcome;
pub use origin::{Origin, OriginalStore, RouteView};

pub use error::OriginError;
use kit::client::ClientInfo;
use metrics::{BackendMetrics, OriginMetrics};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::services::background::background_service;
use pingora::services::ServiceWithDependents;
use pingora::upstreams::peer::HttpPeer;
use spec::BackendSpec;
use std::collections::BTreeMap;
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

/// A live backend: its name, its metric handles and its kind ([`Origin`]), serving routes of
/// the application's type `R`.
pub struct Backend<R: ?Sized> {
    /// Config name.
    pub name: String,
    /// Metric handles labelled with this backend.
    pub metrics: BackendMetrics,
    origin: Box<dyn Origin<R>>,
}

impl<R: ?Sized> Backend<R> {
    /// The backend `name` of kind `origin`, counting into `metrics`.
    pub fn new(name: &str, metrics: BackendMetrics, origin: Box<dyn Origin<R>>) -> Backend<R> {
        Backend {
            name: name.to_string(),
            metrics,
            origin,
        }
    }

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
        route: &R,
        host: &str,
        path: &str,
        query: Option<&str>,
        accept: Option<&str>,
    ) -> Result<Ask, OriginError> {
        self.origin.ask(route, host, path, query, accept)
    }

    /// The bucket's client, shared (the object cache tier uses it), for an `s3` backend.
    pub fn bucket(&self) -> Option<Arc<s3::S3Backend>> {
        self.origin.bucket()
    }

    /// The directory whose files the gateway serves itself; `None` for proxied backends.
    pub fn local(&self) -> Option<&dir::DirBackend> {
        self.origin.local()
    }

    /// The gateway's own answer, when this backend answers `req` without a connection (a
    /// directory's file); `None` when the request is proxied.
    pub fn answer_here(
        &self,
        req: &RequestHeader,
        ask: &Ask,
    ) -> Option<Result<dir::FileAnswer, OriginError>> {
        self.origin.answer_here(req, ask)
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
        self.origin.peer(attempt, tried, hash).await
    }

    /// Whether another connection attempt may follow `attempts` failed ones, given the members
    /// already `tried`.
    pub fn may_retry_connect(&self, attempts: usize, tried: &[usize]) -> bool {
        self.origin.may_retry_connect(attempts, tried)
    }

    /// Whether a pool member not in `tried` is left (http; other kinds have no members).
    pub fn has_untried_member(&self, tried: &[usize]) -> bool {
        self.origin.has_untried_member(tried)
    }

    /// Whether the backend can take requests now: some pool member passes health checks and is
    /// not ejected; a bucket passes its checks. A directory always can (its root was checked at
    /// load; no file-system call on the request path).
    pub fn usable(&self) -> bool {
        self.origin.usable()
    }

    /// Whether the backend only serves GET and HEAD (buckets, directories).
    pub fn read_only(&self) -> bool {
        self.origin.read_only()
    }

    /// What a consistent pool hashes (`None` for every other backend).
    pub fn affinity(&self) -> Option<&kit::affinity::AffinityKey> {
        self.origin.affinity()
    }

    /// Limit on the whole upstream exchange, when configured.
    pub fn total_timeout(&self) -> Option<std::time::Duration> {
        self.origin.total_timeout()
    }

    /// Records what happened at pool member `member` (metrics, passive ejection).
    pub fn record(&self, member: Option<usize>, outcome: MemberOutcome) {
        if let Some(i) = member {
            self.origin.record(i, outcome);
        }
    }

    /// The address of pool member `member`, for the access log (`-` when none).
    pub fn member_label(&self, member: Option<usize>) -> &str {
        member.map_or("-", |i| self.origin.member_label(i))
    }

    /// Rewrites the client's request into the one this backend gets.
    pub async fn prepare(
        &self,
        req: &mut RequestHeader,
        ask: &Ask,
        client: &ClientInfo,
    ) -> Result<(), OriginError> {
        self.origin.prepare(&self.name, req, ask, client).await
    }

    /// Judges the upstream response header: pass it on, or replace it with an error answer.
    pub async fn judge(&self, resp: &ResponseHeader, ask: &Ask) -> Verdict {
        self.origin.judge(resp, ask, &self.metrics).await
    }

    /// Each member (origin address, endpoint or directory) and whether it is usable now.
    pub fn member_health(&self) -> Vec<(String, bool)> {
        self.origin.member_health()
    }

    /// A presigned GET URL for the bucket key `key` (s3 backends only: others answer
    /// `Internal`). With `in_prefix`, `key` is relative to the backend's `key_prefix`.
    pub async fn presign_get(
        &self,
        key: &str,
        in_prefix: bool,
        expires_in: std::time::Duration,
    ) -> Result<String, OriginError> {
        self.origin.presign_get(key, in_prefix, expires_in).await
    }

    /// Whether the client's request headers, `Authorization` among them, reach this backend
    /// (origins); buckets are asked with the gateway's own signed request.
    pub fn forwards_client_headers(&self) -> bool {
        self.origin.forwards_client_headers()
    }

    /// Whether this response is one the origin marked as degraded (its `degraded` marker):
    /// such an answer is never stored in a shared cache tier.
    pub fn marks_degraded(&self, resp: &ResponseHeader) -> bool {
        self.origin.marks_degraded(resp)
    }

    /// Lower-case response header names (or `prefix*`) removed before responses reach clients.
    pub fn strip_headers(&self) -> &[String] {
        self.origin.strip_headers()
    }
}

impl<R: ?Sized> routing::Usable for Backend<R> {
    fn usable(&self) -> bool {
        Backend::usable(self)
    }
}

/// A backend as the asset store sees it: a place for originals, when its kind holds them
/// (s3, dir); other kinds refuse with [`OriginalError::Unsupported`].
#[async_trait::async_trait]
impl<R: ?Sized> OriginalStore for Backend<R> {
    async fn read_original(&self, key: &str, max: u64) -> Result<Vec<u8>, OriginalError> {
        self.store()?.read_original(key, max).await
    }

    async fn write_original(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), OriginalError> {
        self.store()?.write_original(key, bytes, content_type).await
    }

    async fn begin_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn upload::OriginalUpload>, OriginalError> {
        self.store()?.begin_upload(key, content_type).await
    }

    async fn open_original(
        &self,
        key: &str,
    ) -> Result<Box<dyn upload::OriginalReader>, OriginalError> {
        self.store()?.open_original(key).await
    }

    async fn move_original(&self, from: &str, to: &str) -> Result<(), OriginalError> {
        self.store()?.move_original(from, to).await
    }

    async fn delete_original(&self, key: &str) -> Result<(), OriginalError> {
        self.store()?.delete_original(key).await
    }

    async fn list_originals(
        &self,
        after: Option<&str>,
    ) -> Result<listing::ListPage, OriginalError> {
        self.store()?.list_originals(after).await
    }

    async fn presign_post(
        &self,
        conditions: &presign::PostConditions,
    ) -> Result<presign::PresignedPost, OriginalError> {
        self.store()?.presign_post(conditions).await
    }

    fn key_of_local_file(&self, path: &std::path::Path) -> Option<String> {
        self.origin.originals()?.key_of_local_file(path)
    }
}

impl<R: ?Sized> Backend<R> {
    /// Where this backend keeps originals; a kind that holds none is refused.
    fn store(&self) -> Result<&dyn OriginalStore, OriginalError> {
        self.origin
            .originals()
            .ok_or(OriginalError::Unsupported(self.origin.kind()))
    }
}

/// Services that must run beside the proxy: origin health checks, endpoint name refreshes.
pub type BackgroundServices = Vec<Box<dyn ServiceWithDependents>>;

/// The live backends, by name.
pub type Backends<R> = HashMap<String, Arc<Backend<R>>>;

/// Builds every backend of `specs`, counting into `metrics`; a kind the application serves in
/// process (`variants`) is made by `in_process`. Also returns the background services to
/// register.
pub fn build<R: RouteView + ?Sized + 'static>(
    specs: &BTreeMap<String, BackendSpec>,
    metrics: &OriginMetrics,
    in_process: &dyn Fn(&str) -> Box<dyn Origin<R>>,
) -> Result<(Backends<R>, BackgroundServices), String> {
    let mut out = HashMap::new();
    let mut services: BackgroundServices = Vec::new();
    let mut resolvers = Vec::new();
    let mut buckets = Vec::new();
    for (name, spec) in specs {
        let origin: Box<dyn Origin<R>> = match spec {
            BackendSpec::S3(s) => {
                let bucket = Arc::new(s3::S3Backend::new(name, s));
                resolvers.push(bucket.resolver());
                if let Some(interval) = bucket.health_interval() {
                    buckets.push((bucket.clone(), interval));
                }
                Box::new(bucket)
            }
            BackendSpec::Dir(d) => Box::new(dir::DirBackend::new(name, d)),
            BackendSpec::Variants => in_process(name),
            BackendSpec::Http(h) => {
                let (backend, check) = http::HttpBackend::new(name, h, metrics)?;
                services.extend(check);
                Box::new(backend)
            }
        };
        let backend = Backend::new(name, metrics.backend(name), origin);
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
