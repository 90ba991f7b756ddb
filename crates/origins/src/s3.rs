//! S3 and S3-compatible (R2, Garage, MinIO) buckets.
//!
//! The gateway proxies GET/HEAD through Pingora to the bucket's endpoint. Each upstream request
//! is rebuilt from scratch (only Range and conditional headers are copied from the client) and
//! signed with SigV4 by `aws-sigv4`. [`S3Backend::judge`] owns the status policy: error statuses
//! from the bucket are mapped by [`classify_status`]; a 403 is ambiguous (object denied vs. our
//! own credentials rejected), so [`S3Backend::forbidden_cause`] asks the bucket once with the SDK
//! and caches the answer briefly; failures are counted and logged here, and the proxy applies the
//! returned [`Verdict`].

use super::error::OriginError;
use super::keys::{object_key, MAX_OBJECT_KEY_BYTES};
use super::metrics::BackendMetrics;
use super::origin::{Origin, OriginalStore, RouteView};
use super::resolve::Resolver;
use super::spec::{CredentialSpec, S3Spec};
use super::Ask;
use super::OriginalError;
use super::Verdict;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use kit::client::ClientInfo;
use kit::path::encode;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Mutex, OnceCell};

/// How long the answer to "why did the bucket say 403?" is reused.
const FORBIDDEN_PROBE_TTL: Duration = Duration::from_secs(10);
/// Credentials closer than this to expiry are refreshed before use.
const CREDENTIAL_REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// Failures while preparing a request to the bucket.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The credential chain produced no credentials.
    #[error("no credentials: {0}")]
    NoCredentials(String),
    /// SigV4 signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The endpoint's host name did not resolve.
    #[error("cannot resolve endpoint {0}")]
    Resolve(String),
}

impl From<S3Error> for OriginError {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::NoCredentials(_) => OriginError::CredentialsRejected,
            S3Error::Signing(_) => OriginError::Internal,
            S3Error::Resolve(_) => OriginError::Unreachable,
        }
    }
}

/// What a bucket's 403 meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenCause {
    /// Our credentials are fine; this object is denied to us.
    ObjectDenied,
    /// The bucket rejects the gateway's credentials (bad secret, unknown or expired key).
    CredentialsRejected,
}

/// What to do with a bucket response status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusVerdict {
    /// Pass the response through (2xx, 304).
    Pass,
    /// A 403/401: ask [`S3Backend::forbidden_cause`].
    Forbidden,
    /// Replace the response with this error.
    Fail(OriginError),
}

/// Maps a bucket's response status to what the client gets.
pub fn classify_status(status: u16) -> StatusVerdict {
    match status {
        200..=299 | 304 => StatusVerdict::Pass,
        401 | 403 => StatusVerdict::Forbidden,
        404 => StatusVerdict::Fail(OriginError::NotFound),
        412 => StatusVerdict::Fail(OriginError::PreconditionFailed),
        416 => StatusVerdict::Fail(OriginError::RangeNotSatisfiable { size: None }),
        429 | 503 => StatusVerdict::Fail(OriginError::Throttled),
        _ => StatusVerdict::Fail(OriginError::Failed),
    }
}

/// Whether an S3 error code (and message) says the request's credentials were rejected.
pub fn is_credential_rejection(code: Option<&str>, message: Option<&str>) -> bool {
    const CODES: &[&str] = &[
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "RequestTimeTooSkewed",
        "AuthorizationHeaderMalformed",
        "InvalidSecurity",
        "InvalidClientTokenId",
    ];
    if code.is_some_and(|c| CODES.contains(&c)) {
        return true;
    }
    // Garage answers AccessDenied for both; its message names the cause.
    let message = message.unwrap_or_default().to_ascii_lowercase();
    code == Some("AccessDenied")
        && (message.contains("signature")
            || message.contains("no such key")
            || message.contains("access key"))
}

/// A bucket backend, shared by all requests.
pub struct S3Backend {
    /// Config name, used in metrics and logs.
    pub name: String,
    spec: S3Spec,
    /// Host name connected to (and sent as SNI): `bucket.endpoint` unless path-style.
    connect_host: String,
    /// Host header value, built once.
    host_header: String,
    /// Endpoint URL plus `/bucket` for path-style: the signed URL is this plus the key's path.
    url_prefix: String,
    /// Request path prefix: `/bucket/` for path-style, `/` otherwise.
    path_prefix: String,
    resolver: Arc<Resolver>,
    provider: OnceCell<Option<SharedCredentialsProvider>>,
    /// Last credentials obtained; read on every request without waiting.
    credentials: std::sync::RwLock<Option<Credentials>>,
    /// Held while refreshing, so only one request asks the provider.
    refresh: Mutex<()>,
    client: OnceCell<aws_sdk_s3::Client>,
    forbidden: Mutex<Option<(Instant, ForbiddenCause)>>,
    health: super::health::Health,
}

impl S3Backend {
    /// Builds the backend; nothing is contacted until the first request.
    pub fn new(name: &str, spec: &S3Spec) -> S3Backend {
        let (connect_host, host_header, path_prefix) = if spec.path_style {
            (
                spec.endpoint.host.clone(),
                spec.endpoint.authority(),
                format!("/{}/", spec.bucket),
            )
        } else {
            (
                format!("{}.{}", spec.bucket, spec.endpoint.host),
                format!("{}.{}", spec.bucket, spec.endpoint.authority()),
                "/".to_string(),
            )
        };
        let scheme = if spec.endpoint.tls { "https" } else { "http" };
        S3Backend {
            name: name.to_string(),
            resolver: Arc::new(Resolver::new(&connect_host, spec.endpoint.port)),
            url_prefix: format!("{scheme}://{host_header}"),
            connect_host,
            host_header,
            path_prefix,
            spec: spec.clone(),
            provider: OnceCell::new(),
            credentials: std::sync::RwLock::new(None),
            refresh: Mutex::new(()),
            client: OnceCell::new(),
            forbidden: Mutex::new(None),
            health: super::health::Health::new(spec.health.rise, spec.health.fall),
        }
    }

    /// The bucket's active health (see [`super::health::BucketChecks`]).
    pub fn health(&self) -> &super::health::Health {
        &self.health
    }

    /// Time between health checks, when they are on.
    pub fn health_interval(&self) -> Option<Duration> {
        self.spec.health.interval
    }

    /// Limit on the whole upstream exchange.
    pub fn total_timeout(&self) -> Option<Duration> {
        self.spec.total_timeout
    }

    /// One health check: a signed zero-key listing under the prefix. The bucket is up when it
    /// answers in time with anything but a 5xx or a rejection of the gateway's credentials (a
    /// principal that may not list still proves the bucket answers).
    pub async fn check_health(&self) -> bool {
        match self.list_nothing(self.spec.health.timeout).await {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let up = status.is_some_and(|s| s < 500)
                    && !is_credential_rejection(e.code(), e.message());
                if !up {
                    tracing::debug!(backend = %self.name, error = %e, "bucket health check failed");
                }
                up
            }
            None => false,
        }
    }

    /// Lists zero keys under the prefix with the gateway's credentials; `None` when the bucket
    /// did not answer within `limit`.
    async fn list_nothing(&self, limit: Duration) -> Option<Result<(), Box<ListError>>> {
        let client = self.sdk_client().await;
        let mut list = client
            .list_objects_v2()
            .bucket(&self.spec.bucket)
            .max_keys(0);
        if !self.spec.key_prefix.is_empty() {
            list = list.prefix(&self.spec.key_prefix);
        }
        tokio::time::timeout(limit, list.send())
            .await
            .ok()
            .map(|r| r.map(|_| ()).map_err(Box::new))
    }

    /// The object key a matched request asks for. An empty key or one ending in `/` would
    /// become a bucket listing: it is 404. A key longer than S3 allows is 414 at the gateway,
    /// never a bucket error counted against the backend.
    pub fn object_key(
        &self,
        route: &(impl RouteView + ?Sized),
        path: &str,
    ) -> Result<String, OriginError> {
        let key = object_key(route, &self.spec.key_prefix, path);
        if key.is_empty() || key.ends_with('/') {
            return Err(OriginError::NotFound);
        }
        if key.len() > MAX_OBJECT_KEY_BYTES {
            return Err(OriginError::KeyTooLong);
        }
        Ok(key)
    }

    /// The endpoint's resolver (refreshed by [`super::resolve::RefreshService`]).
    pub fn resolver(&self) -> Arc<Resolver> {
        self.resolver.clone()
    }

    /// The status answered when an object is denied.
    pub fn denied_error(&self) -> OriginError {
        if self.spec.access_denied_status == 403 {
            OriginError::Forbidden
        } else {
            OriginError::NotFound
        }
    }

    /// The endpoint URL (a metrics label).
    pub fn endpoint_url(&self) -> String {
        self.spec.endpoint.url()
    }

    /// False once a 403 probe found the gateway's credentials rejected (until it is re-probed).
    pub fn credentials_accepted(&self) -> bool {
        match self.forbidden.try_lock() {
            Ok(guard) => !matches!(*guard, Some((_, ForbiddenCause::CredentialsRejected))),
            Err(_) => true,
        }
    }

    /// Response headers that must not reach clients.
    pub fn strip_headers(&self) -> &[String] {
        &self.spec.strip_response_headers
    }

    /// Encoded request path for `key`.
    fn request_path(&self, key: &str) -> String {
        use std::fmt::Write;
        let mut path = String::with_capacity(self.path_prefix.len() + key.len() + 16);
        path.push_str(&self.path_prefix);
        let _ = write!(path, "{}", encode(key));
        path
    }

    /// The peer for connection attempt `attempt` (0 first): the endpoint's addresses in order,
    /// so a refused address falls through to the next.
    pub async fn peer(&self, attempt: usize) -> Result<HttpPeer, S3Error> {
        let addrs = self.resolver.addresses().await;
        if addrs.is_empty() {
            return Err(S3Error::Resolve(self.connect_host.clone()));
        }
        let addr = addrs[attempt % addrs.len()];
        let mut peer = HttpPeer::new(addr, self.spec.endpoint.tls, self.connect_host.clone());
        peer.options.connection_timeout = Some(self.spec.connect_timeout);
        peer.options.total_connection_timeout = Some(self.spec.connect_timeout * 2);
        peer.options.read_timeout = Some(self.spec.read_timeout);
        peer.options.write_timeout = Some(self.spec.read_timeout);
        Ok(peer)
    }

    /// Whether another connection attempt may follow `attempts` failed ones.
    pub fn may_retry_connect(&self, attempts: usize) -> bool {
        attempts < self.resolver.known()
    }

    async fn provider(&self) -> Option<SharedCredentialsProvider> {
        self.provider
            .get_or_init(|| async {
                match &self.spec.credentials {
                    CredentialSpec::Anonymous => None,
                    CredentialSpec::Static {
                        access_key_id,
                        secret_access_key,
                        session_token,
                    } => Some(SharedCredentialsProvider::new(Credentials::new(
                        access_key_id.expose(),
                        secret_access_key.expose(),
                        session_token.as_ref().map(|t| t.expose().to_string()),
                        None,
                        "assetgate-config",
                    ))),
                    CredentialSpec::Default => aws_config::defaults(BehaviorVersion::latest())
                        .region(Region::new(self.spec.region.clone()))
                        .load()
                        .await
                        .credentials_provider(),
                }
            })
            .await
            .clone()
    }

    /// The cached credentials unless they expire within [`CREDENTIAL_REFRESH_MARGIN`].
    fn fresh_credentials(&self) -> Option<Credentials> {
        let cached = self
            .credentials
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cached
            .as_ref()
            .filter(|c| {
                c.expiry()
                    .is_none_or(|exp| exp > SystemTime::now() + CREDENTIAL_REFRESH_MARGIN)
            })
            .cloned()
    }

    /// Current credentials, refreshed shortly before they expire; `None` for anonymous access.
    /// Requests read the cache without waiting; one of them refreshes it when it runs stale.
    pub(crate) async fn current_credentials(&self) -> Result<Option<Credentials>, S3Error> {
        let Some(provider) = self.provider().await else {
            return Ok(None);
        };
        if let Some(creds) = self.fresh_credentials() {
            return Ok(Some(creds));
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(creds) = self.fresh_credentials() {
            return Ok(Some(creds));
        }
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| S3Error::NoCredentials(e.to_string()))?;
        *self
            .credentials
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(creds.clone());
        Ok(Some(creds))
    }

    /// SigV4 parameters for this bucket's region, signed now.
    fn signing_params<'a>(
        &'a self,
        identity: &'a Identity,
        settings: SigningSettings,
    ) -> Result<aws_sigv4::http_request::SigningParams<'a>, S3Error> {
        Ok(v4::SigningParams::builder()
            .identity(identity)
            .region(&self.spec.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| S3Error::Signing(e.to_string()))?
            .into())
    }

    /// Replaces `req` with a signed GET/HEAD for `key`, keeping only range and conditional headers.
    pub async fn prepare_request(&self, req: &mut RequestHeader, key: &str) -> Result<(), S3Error> {
        let path = self.request_path(key);
        let host = self.host_header.clone();
        let mut upstream = RequestHeader::build(req.method.clone(), path.as_bytes(), None)
            .map_err(|e| S3Error::Signing(e.to_string()))?;
        let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
        for name in kit::conditional::REQUEST_CONDITIONS {
            if let Some(v) = req.headers.get(&name).and_then(|v| v.to_str().ok()) {
                headers.push((name.as_str().to_string(), v.to_string()));
            }
        }
        if let Some(creds) = self.current_credentials().await? {
            let identity: Identity = creds.into();
            let mut settings = signing_settings();
            settings.payload_checksum_kind =
                aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
            let params = self.signing_params(&identity, settings)?;
            let url = format!("{}{}", self.url_prefix, path);
            let signable = SignableRequest::new(
                req.method.as_str(),
                url,
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::UnsignedPayload,
            )
            .map_err(|e| S3Error::Signing(e.to_string()))?;
            let (instructions, _) = sign(signable, &params)
                .map_err(|e| S3Error::Signing(e.to_string()))?
                .into_parts();
            let (signed, _) = instructions.into_parts();
            for h in signed {
                headers.push((h.name().to_string(), h.value().to_string()));
            }
        }
        for (k, v) in headers {
            upstream
                .insert_header(k, v)
                .map_err(|e| S3Error::Signing(e.to_string()))?;
        }
        *req = upstream;
        Ok(())
    }

    /// The bucket key of `key` relative to this backend's `key_prefix` (joined segment-wise).
    pub fn key_in_prefix(&self, key: &str) -> String {
        kit::path::join_key(&[&self.spec.key_prefix, key])
    }

    /// A SigV4 presigned GET URL for `key`, valid for `expires_in` (at most 7 days, S3's limit);
    /// the plain object URL for an anonymous (public) bucket.
    pub async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, S3Error> {
        let url = format!("{}{}", self.url_prefix, self.request_path(key));
        let Some(creds) = self.current_credentials().await? else {
            return Ok(url);
        };
        let identity: Identity = creds.into();
        let mut settings = signing_settings();
        settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in.min(Duration::from_secs(7 * 86_400)));
        let params = self.signing_params(&identity, settings)?;
        let host = [("host", self.host_header.as_str())];
        let signable = SignableRequest::new(
            "GET",
            url.clone(),
            host.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| S3Error::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| S3Error::Signing(e.to_string()))?
            .into_parts();
        let (_, query) = instructions.into_parts();
        let query: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={}", kit::path::encode_component(value)))
            .collect();
        Ok(format!("{url}?{}", query.join("&")))
    }

    /// Reads the object `key` (relative to `key_prefix`) whole for the variant builder; one
    /// longer than `max` is refused from its `Content-Length`, before the body is read.
    pub async fn read_original(&self, key: &str, max: u64) -> Result<Vec<u8>, OriginalError> {
        let client = self.sdk_client().await;
        let out = client
            .get_object()
            .bucket(&self.spec.bucket)
            .key(self.key_in_prefix(key))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_no_such_key() => OriginalError::Missing,
                _ => OriginalError::Failed(error_chain(&e)),
            })?;
        let length = out.content_length().unwrap_or(0).max(0) as u64;
        if length > max {
            return Err(OriginalError::TooLarge(length));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| OriginalError::Failed(e.to_string()))?
            .into_bytes();
        if bytes.len() as u64 > max {
            return Err(OriginalError::TooLarge(bytes.len() as u64));
        }
        Ok(bytes.to_vec())
    }

    /// Uploads `bytes` as the object `key` (relative to `key_prefix`).
    pub async fn write_original(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), OriginalError> {
        let client = self.sdk_client().await;
        client
            .put_object()
            .bucket(&self.spec.bucket)
            .key(self.key_in_prefix(key))
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| OriginalError::Failed(error_chain(&e)))?;
        Ok(())
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.spec.bucket
    }

    /// The bucket's region (as signed).
    pub fn region(&self) -> &str {
        &self.spec.region
    }

    /// The bucket's own URL (where a presigned POST form goes), ending in `/`.
    pub fn bucket_url(&self) -> String {
        format!("{}{}", self.url_prefix, self.path_prefix)
    }

    /// An SDK client for the bucket, with the backend's credentials (built once).
    pub async fn sdk_client(&self) -> aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let mut conf = aws_sdk_s3::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new(self.spec.region.clone()))
                    .endpoint_url(self.spec.endpoint.url())
                    .force_path_style(self.spec.path_style);
                match self.provider().await {
                    Some(p) => conf = conf.credentials_provider(p),
                    // Unsigned requests to a public bucket (health checks).
                    None => conf = conf.allow_no_auth(),
                }
                aws_sdk_s3::Client::from_conf(conf.build())
            })
            .await
            .clone()
    }

    /// The status policy: what the client gets for the bucket's response header. Failures are
    /// counted in `metrics` and logged with the bucket's request id.
    pub async fn judge(
        &self,
        resp: &ResponseHeader,
        key: &str,
        metrics: &BackendMetrics,
    ) -> Verdict {
        let status = resp.status.as_u16();
        let failure = match classify_status(status) {
            StatusVerdict::Pass => return Verdict::Pass,
            StatusVerdict::Fail(e) => e,
            StatusVerdict::Forbidden => match self.forbidden_cause().await {
                ForbiddenCause::CredentialsRejected => OriginError::CredentialsRejected,
                ForbiddenCause::ObjectDenied => {
                    metrics.error("access_denied");
                    self.denied_error()
                }
            },
        };
        let request_id = resp
            .headers
            .get("x-amz-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        if status == 404 {
            // Missing keys are routine; keep them out of the default log level.
            tracing::debug!(backend = %self.name, request_id, key, "no such key");
        } else {
            tracing::warn!(
                backend = %self.name, status, request_id, key, answer = %failure,
                "bucket answered with an error"
            );
        }
        if failure.is_backend_failure() {
            metrics.error(failure.label());
        }
        Verdict::Replace(failure)
    }

    /// Decides what a 403 from the bucket meant by listing zero keys under the prefix with the
    /// same credentials. A valid principal that may not list still gets `AccessDenied` without a
    /// credential complaint, so the answer is right for object-level policies too.
    pub async fn forbidden_cause(&self) -> ForbiddenCause {
        if matches!(self.spec.credentials, CredentialSpec::Anonymous) {
            return ForbiddenCause::ObjectDenied;
        }
        let mut cached = self.forbidden.lock().await;
        if let Some((at, cause)) = *cached {
            if at.elapsed() < FORBIDDEN_PROBE_TTL {
                return cause;
            }
        }
        let cause = match self.list_nothing(self.spec.read_timeout).await {
            Some(Ok(())) => ForbiddenCause::ObjectDenied,
            Some(Err(e)) if is_credential_rejection(e.code(), e.message()) => {
                ForbiddenCause::CredentialsRejected
            }
            Some(Err(e)) => {
                tracing::debug!(backend = %self.name, error = %e, "403 probe: not a credential error");
                ForbiddenCause::ObjectDenied
            }
            None => ForbiddenCause::ObjectDenied,
        };
        *cached = Some((Instant::now(), cause));
        cause
    }
}

/// What a failed zero-key listing returns.
type ListError = aws_sdk_s3::error::SdkError<
    aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
>;

/// Settings both header and query signing share: S3 keys are encoded once and never
/// normalised.
fn signing_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// An SDK error with its cause chain, for logs (the SDK's own `Display` says only "service
/// error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A bucket as one backend kind: requests are proxied, signed for the bucket; its answers
/// are judged by the bucket's status policy; originals are objects under the key prefix.
#[async_trait::async_trait]
impl<R: RouteView + ?Sized> Origin<R> for Arc<S3Backend> {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn ask(
        &self,
        route: &R,
        _host: &str,
        path: &str,
        _query: Option<&str>,
        _accept: Option<&str>,
    ) -> Result<Ask, OriginError> {
        self.object_key(route, path).map(Ask::Object)
    }

    async fn peer(
        &self,
        attempt: usize,
        _tried: &[usize],
        _hash: Option<u64>,
    ) -> Result<(HttpPeer, Option<usize>), OriginError> {
        let bucket: &S3Backend = self;
        Ok((bucket.peer(attempt).await?, None))
    }

    async fn prepare(
        &self,
        name: &str,
        req: &mut RequestHeader,
        ask: &Ask,
        _client: &ClientInfo,
    ) -> Result<(), OriginError> {
        let Ask::Object(key) = ask else {
            return Err(OriginError::Internal);
        };
        self.prepare_request(req, key).await.map_err(|e| {
            tracing::error!(backend = %name, error = %e, "cannot prepare S3 request");
            OriginError::from(e)
        })
    }

    fn member_health(&self) -> Vec<(String, bool)> {
        vec![(
            self.endpoint_url(),
            self.health().healthy() && self.credentials_accepted(),
        )]
    }

    async fn judge(&self, resp: &ResponseHeader, ask: &Ask, metrics: &BackendMetrics) -> Verdict {
        match ask {
            Ask::Object(key) => S3Backend::judge(self, resp, key, metrics).await,
            _ => Verdict::Pass,
        }
    }

    fn may_retry_connect(&self, attempts: usize, _tried: &[usize]) -> bool {
        S3Backend::may_retry_connect(self, attempts)
    }

    fn usable(&self) -> bool {
        self.health().healthy() && self.credentials_accepted()
    }

    fn total_timeout(&self) -> Option<Duration> {
        S3Backend::total_timeout(self)
    }

    fn strip_headers(&self) -> &[String] {
        S3Backend::strip_headers(self)
    }

    fn originals(&self) -> Option<&dyn OriginalStore> {
        Some(self)
    }

    fn bucket(&self) -> Option<Arc<S3Backend>> {
        Some(self.clone())
    }

    async fn presign_get(
        &self,
        key: &str,
        in_prefix: bool,
        expires_in: Duration,
    ) -> Result<String, OriginError> {
        let key = if in_prefix {
            self.key_in_prefix(key)
        } else {
            key.to_string()
        };
        S3Backend::presign_get(self, &key, expires_in)
            .await
            .map_err(|e| {
                tracing::error!(backend = %self.name, error = %e, "cannot presign");
                OriginError::from(e)
            })
    }
}

#[async_trait::async_trait]
impl OriginalStore for Arc<S3Backend> {
    async fn read_original(&self, key: &str, max: u64) -> Result<Vec<u8>, OriginalError> {
        S3Backend::read_original(self, key, max).await
    }

    async fn write_original(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), OriginalError> {
        S3Backend::write_original(self, key, bytes, content_type).await
    }

    async fn begin_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn crate::upload::OriginalUpload>, OriginalError> {
        Ok(Box::new(
            S3Backend::begin_upload(self, key, content_type).await,
        ))
    }

    async fn open_original(
        &self,
        key: &str,
    ) -> Result<Box<dyn crate::upload::OriginalReader>, OriginalError> {
        Ok(Box::new(S3Backend::open_original(self, key).await?))
    }

    async fn move_original(&self, from: &str, to: &str) -> Result<(), OriginalError> {
        S3Backend::move_original(self, from, to).await
    }

    async fn delete_original(&self, key: &str) -> Result<(), OriginalError> {
        S3Backend::delete_original(self, key).await
    }

    async fn list_originals(
        &self,
        after: Option<&str>,
    ) -> Result<crate::listing::ListPage, OriginalError> {
        S3Backend::list_originals(self, after).await
    }

    async fn presign_post(
        &self,
        conditions: &crate::presign::PostConditions,
    ) -> Result<crate::presign::PresignedPost, OriginalError> {
        S3Backend::presign_post(self, conditions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_client_answers() {
        assert_eq!(classify_status(200), StatusVerdict::Pass);
        assert_eq!(classify_status(206), StatusVerdict::Pass);
        assert_eq!(classify_status(304), StatusVerdict::Pass);
        assert_eq!(classify_status(403), StatusVerdict::Forbidden);
        assert_eq!(
            classify_status(404),
            StatusVerdict::Fail(OriginError::NotFound)
        );
        assert_eq!(
            classify_status(503),
            StatusVerdict::Fail(OriginError::Throttled)
        );
        assert_eq!(
            classify_status(500),
            StatusVerdict::Fail(OriginError::Failed)
        );
        assert_eq!(
            classify_status(301),
            StatusVerdict::Fail(OriginError::Failed)
        );
    }

    #[test]
    fn credential_rejections() {
        assert!(is_credential_rejection(Some("SignatureDoesNotMatch"), None));
        assert!(is_credential_rejection(
            Some("InvalidAccessKeyId"),
            Some("x")
        ));
        assert!(is_credential_rejection(
            Some("AccessDenied"),
            Some("Forbidden: Invalid signature")
        ));
        assert!(!is_credential_rejection(
            Some("AccessDenied"),
            Some("Access Denied")
        ));
        assert!(!is_credential_rejection(None, None));
    }
}
