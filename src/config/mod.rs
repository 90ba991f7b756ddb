//! Configuration: TOML on disk → [`raw`] serde structs → [`validate`] → the typed [`Config`].
//!
//! The typed config is an immutable snapshot; everything the request path decides is read from
//! it. `assetgate check -c FILE` runs [`load`] and prints every [`Problem`] at once.

pub mod raw;
mod validate;

pub use kit::problems::{Problem, Problems};
pub use validate::{from_toml_str, load};

use kit::secret::Secret;

use http::{HeaderName, HeaderValue, Method};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Process-wide settings.
    pub server: ServerSettings,
    /// Downstream listeners.
    pub listeners: Vec<Listener>,
    /// Admin listener (metrics, health, admin API), if configured.
    pub admin: Option<SocketAddr>,
    /// Admin tokens, audit log and presigned-redirect lifetime.
    pub admin_access: AdminAccess,
    /// Logging.
    pub log: LogSettings,
    /// Response compression.
    pub compression: CompressionSettings,
    /// Request head size and request rate limits.
    pub limits: crate::limits::LimitSettings,
    /// Keys and lists of the access schemes.
    pub auth: AuthSettings,
    /// How keys and visibilities become client URLs.
    pub resolve: ResolveSettings,
    /// Backends by name.
    pub backends: BTreeMap<String, BackendSpec>,
    /// Groups (weighted, sticky sets of backends) by name.
    pub groups: BTreeMap<String, GroupSpec>,
    /// Virtual hosts in file order.
    pub hosts: Vec<Host>,
    /// The shared cache's tiers and fill lock.
    pub cache: CacheSettings,
    /// The asset metadata store and variant workers, when configured.
    pub assets: Option<AssetSettings>,
    /// Things that are valid but probably not meant (a rule no request can reach); `check`
    /// prints them, `run` logs them.
    pub warnings: Vec<Problem>,
}

/// A group: backends with their shares, and how a client stays on one.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// Backend name and weight (0 drains it; at least one is positive).
    pub weights: Vec<(String, u32)>,
    /// How assignment sticks.
    pub sticky: crate::routing::group::Sticky,
}

/// Active health checks of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    /// Time between checks; `None` turns them off.
    pub interval: Option<Duration>,
    /// HTTP path checked (http); `None`: a TCP/TLS connect.
    pub path: Option<String>,
    /// Status the HTTP check expects.
    pub status: u16,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive passes that bring an unhealthy member back.
    pub rise: usize,
    /// Consecutive failures that take a healthy member out.
    pub fall: usize,
}

/// How an HTTP pool picks a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Round robin over healthy members.
    RoundRobin,
    /// Consistent (Ketama) hashing of this key over healthy members.
    Consistent(crate::routing::affinity::AffinityKey),
}

/// Passive ejection of pool members that keep failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// Consecutive failures that eject a member; 0 disables ejection.
    pub after: u32,
    /// How long an ejected member stays out.
    pub cool_down: Duration,
}

/// Process-wide settings: Pingora's, and who may speak for clients.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Peers whose X-Forwarded-For is believed (empty: none; the peer is the client).
    pub trusted_proxies: kit::client::TrustedProxies,
    /// Worker threads per listener service.
    pub threads: usize,
    /// Work stealing between worker threads.
    pub work_stealing: bool,
    /// PID file used in daemon mode.
    pub pid_file: String,
    /// Socket for listener hand-over on graceful upgrade.
    pub upgrade_sock: String,
    /// Grace period after a shutdown signal.
    pub grace_period_seconds: u64,
    /// Time allowed for in-flight requests to finish on shutdown.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Idle upstream connections kept.
    pub upstream_keepalive_pool_size: usize,
    /// Most upstream attempts for one request, the first included.
    pub upstream_attempts: usize,
}

/// One downstream listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Bound address.
    pub address: SocketAddr,
    /// TLS material, when the listener speaks TLS.
    pub tls: Option<TlsFiles>,
}

/// PEM files of a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert_file: PathBuf,
    /// Private key.
    pub key_file: PathBuf,
    /// Offer `h2` through ALPN.
    pub http2: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// `tracing` filter directive.
    pub level: String,
    /// Whether an access-log event is emitted per request.
    pub access_log: bool,
}

/// `[resolve]`.
#[derive(Debug, Clone, Default)]
pub struct ResolveSettings {
    /// Base of public URLs.
    pub public_base: Option<String>,
    /// Base of private (signed) URLs.
    pub private_base: Option<String>,
    /// Scheme signing private URLs (`Hmac` or `CloudFront`).
    pub private_scheme: Option<crate::auth::Scheme>,
    /// Lifetime of private URLs.
    pub private_ttl: Duration,
    /// Backend presigning admin-private URLs.
    pub admin_backend: Option<String>,
}

/// The admin credential settings of `[admin]`.
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    /// Admin tokens: id and secret.
    pub tokens: Vec<(String, Secret)>,
    /// Audit log file.
    pub audit_log: Option<PathBuf>,
    /// Token required by `/metrics` when set.
    pub metrics_token: Option<Secret>,
    /// Lifetime of presigned URLs admin routes redirect to.
    pub presign_ttl: Duration,
}

/// `[auth]`: what the access schemes verify with.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Clock difference tolerated on issue and not-before times.
    pub clock_skew: Duration,
    /// Revocation list file, re-read when it changes.
    pub revocation_file: Option<PathBuf>,
    /// Default longest credential lifetime of a route.
    pub max_token_lifetime: Duration,
    /// HMAC keys.
    pub hmac: HmacSettings,
    /// CloudFront key group.
    pub cloudfront: CloudFrontSettings,
    /// JWT keys and rules (built and checked at load; shared, not cloned per request).
    pub jwt: std::sync::Arc<crate::auth::jwt::JwtVerifier>,
}

/// `[auth.cloudfront]`.
#[derive(Debug, Clone, Default)]
pub struct CloudFrontSettings {
    /// Keys by `Key-Pair-Id`.
    pub keys: Vec<CloudFrontKey>,
}

/// One CloudFront key.
#[derive(Debug, Clone)]
pub struct CloudFrontKey {
    /// `Key-Pair-Id`.
    pub id: String,
    /// PEM of the public key.
    pub public_pem: Vec<u8>,
    /// PEM of the private key, for minting.
    pub private_pem: Option<Secret>,
}

/// `[auth.hmac]`.
#[derive(Debug, Clone, Default)]
pub struct HmacSettings {
    /// Active keys: id and secret.
    pub keys: Vec<(String, Secret)>,
    /// Retired key ids.
    pub retired: Vec<String>,
}

/// `[cache]`: the tiers cached routes draw on.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// The memory tier, when configured.
    pub memory: Option<MemoryTierSettings>,
    /// The disk tier, when configured.
    pub disk: Option<crate::cache::disk::DiskSettings>,
    /// The Redis tier, when configured.
    pub redis: Option<crate::cache::redis::RedisSettings>,
    /// The object-store tier, when configured.
    pub object: Option<crate::cache::object::ObjectSettings>,
    /// How long a request waits for another's fill of the same key.
    pub lock_timeout: Duration,
    /// Response headers whose values tag entries for purges.
    pub tag_headers: Vec<http::HeaderName>,
}

impl CacheSettings {
    /// The tiers configured, top first.
    pub fn tiers(&self) -> Vec<crate::cache::tier::TierName> {
        use crate::cache::tier::TierName;
        let mut tiers = Vec::new();
        if self.memory.is_some() {
            tiers.push(TierName::Memory);
        }
        if self.disk.is_some() {
            tiers.push(TierName::Disk);
        }
        if self.redis.is_some() {
            tiers.push(TierName::Redis);
        }
        if self.object.is_some() {
            tiers.push(TierName::Object);
        }
        tiers
    }
}

/// `[cache.memory]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryTierSettings {
    /// Bytes the tier may hold.
    pub size: usize,
    /// Largest single entry.
    pub max_entry: usize,
}

/// Response compression settings.
#[derive(Debug, Clone)]
pub struct CompressionSettings {
    /// Level for gzip/brotli/zstd; 0 disables compression.
    pub level: u32,
    /// Compressible media types; an entry ending in `*` is a prefix.
    pub types: Vec<String>,
    /// Bodies declared shorter than this many bytes are sent as they are.
    pub min_size: usize,
}

/// A named upstream.
#[derive(Debug, Clone)]
pub enum BackendSpec {
    /// An S3 or S3-compatible bucket.
    S3(S3Spec),
    /// A pool of HTTP origin servers.
    Http(HttpSpec),
    /// A local directory.
    Dir(DirSpec),
    /// The image variant builder (originals from `[assets]`).
    Variants,
}

/// `[assets]`, validated.
#[derive(Debug, Clone)]
pub struct AssetSettings {
    /// Database URL (may hold a password: never logged unredacted).
    pub database: Secret,
    /// The `s3` or `dir` backend holding originals.
    pub originals: String,
    /// Key prefix of originals in it.
    pub key_prefix: String,
    /// How long a lookup is remembered.
    pub lookup_ttl: Duration,
    /// Most lookups remembered.
    pub lookup_entries: usize,
    /// Decode/encode workers.
    pub workers: usize,
    /// Jobs that may wait for a worker.
    pub queue: usize,
    /// rav1e speed for AVIF.
    pub avif_speed: u8,
    /// Originals registered at start.
    pub register: Option<crate::assets::service::StartupOriginals>,
}

/// Where an S3 endpoint lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Use TLS.
    pub tls: bool,
    /// Host name or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// The value of the Host header for this endpoint (port omitted when it is the default).
    pub fn authority(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The endpoint as a URL, e.g. `https://s3.us-east-1.amazonaws.com`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.authority()
        )
    }
}

/// How requests to a bucket are signed.
#[derive(Debug, Clone)]
pub enum CredentialSpec {
    /// The AWS default chain: env, profile, web identity, container, instance metadata.
    Default,
    /// Keys read from env vars or files at load time.
    Static {
        /// Access key id.
        access_key_id: Secret,
        /// Secret access key.
        secret_access_key: Secret,
        /// Optional session token.
        session_token: Option<Secret>,
    },
    /// Unsigned requests (public buckets).
    Anonymous,
}

/// An S3 backend.
#[derive(Debug, Clone)]
pub struct S3Spec {
    /// Bucket name.
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Where requests go.
    pub endpoint: Endpoint,
    /// Path-style addressing (`/bucket/key`).
    pub path_style: bool,
    /// Prefix of every key read through this backend.
    pub key_prefix: String,
    /// Signing credentials.
    pub credentials: CredentialSpec,
    /// Status answered when the bucket denies access to an object.
    pub access_denied_status: u16,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
    /// Response headers removed (lower-case names; entries ending in `*` are prefixes).
    pub strip_response_headers: Vec<String>,
    /// Active health checks (a signed zero-key listing of the bucket).
    pub health: HealthSpec,
    /// Limit on the whole upstream exchange.
    pub total_timeout: Option<Duration>,
}

/// An HTTP origin pool.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// Members as `host:port`.
    pub addresses: Vec<String>,
    /// Host header sent upstream; the client's when `None`.
    pub host_header: Option<String>,
    /// TLS to the origin.
    pub tls: bool,
    /// SNI for TLS.
    pub sni: String,
    /// Verify the origin certificate.
    pub verify_cert: bool,
    /// Active health checks.
    pub health: HealthSpec,
    /// How a member is picked.
    pub balance: Balance,
    /// Passive ejection of failing members.
    pub ejection: Ejection,
    /// Limit on the whole upstream exchange.
    pub total_timeout: Option<Duration>,
    /// The header by which the origin marks degraded answers (never stored in a shared tier).
    pub degraded: Option<crate::cache::policy::DegradedMarker>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
    /// Response headers removed.
    pub strip_response_headers: Vec<String>,
}

/// A local directory backend.
#[derive(Debug, Clone)]
pub struct DirSpec {
    /// Directory root (canonical path).
    pub root: PathBuf,
    /// Sub-directory prefix inside the root.
    pub key_prefix: String,
    /// Response headers removed (dir responses are built by the gateway, so this is rarely needed).
    pub strip_response_headers: Vec<String>,
}

/// How a host name in the config matches the request's Host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostPattern {
    /// This exact name.
    Exact(String),
    /// Any name ending in this suffix (stored with its leading dot: `.example.com`).
    Suffix(String),
    /// Any host at all.
    Any,
}

/// A virtual host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Names as written, e.g. `*.example.com`; the first is the metrics label.
    pub names: Vec<String>,
    /// Compiled patterns, one per name.
    pub patterns: Vec<HostPattern>,
    /// Ordered routes.
    pub routes: Vec<Route>,
    /// Steering rules, in order (each names a group in [`Config::groups`]).
    pub rules: Vec<crate::routing::rules::Rule<String>>,
    /// Response header naming who served, when configured.
    pub steering_header: Option<HeaderName>,
}

/// What a route points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// A backend in [`Config::backends`].
    Backend(String),
    /// A group in [`Config::groups`].
    Group(String),
}

/// How a route matches the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Segment-aware prefix.
    Prefix(String),
    /// Exact path.
    Exact(String),
}

/// A route: where a path on a host goes and what its responses carry.
#[derive(Debug, Clone)]
pub struct Route {
    /// Label for metrics and logs.
    pub name: String,
    /// Path matcher.
    pub matcher: PathMatch,
    /// The backend or group serving the route.
    pub target: RouteTarget,
    /// Backend answering GET/HEAD when the target fails.
    pub backup: Option<String>,
    /// Leading path part removed before key construction.
    pub strip_prefix: Option<String>,
    /// Text prepended after stripping.
    pub add_prefix: String,
    /// Allowed methods.
    pub methods: Vec<Method>,
    /// Cache-Control for successful responses.
    pub cache_control: Option<HeaderValue>,
    /// The same intent compiled for the shared cache.
    pub freshness: crate::cache::policy::Freshness,
    /// How the route uses the shared cache; `None`: never stored.
    pub cache: Option<crate::cache::policy::RoutePolicy>,
    /// Add `Content-Disposition: attachment`.
    pub download: bool,
    /// CORS policy.
    pub cors: Option<Cors>,
    /// Who may read the route.
    pub access: crate::auth::AccessPolicy,
    /// The route's request rate limit (`None`: unlimited).
    pub rate_limit: Option<crate::limits::RateLimit>,
    /// Allowlists and source limits, on a route of a `variants` backend.
    pub variants: Option<crate::variants::VariantLimits>,
}

/// Which origins a CORS policy allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin (`*`), never with credentials.
    Any,
    /// These exact origins (lower-case `scheme://host[:port]`).
    List(Vec<String>),
}

/// A CORS policy.
#[derive(Debug, Clone)]
pub struct Cors {
    /// Allowed origins.
    pub origins: AllowedOrigins,
    /// Methods answered in preflight.
    pub methods: Vec<Method>,
    /// `methods` joined once for `Access-Control-Allow-Methods`.
    pub methods_value: Option<HeaderValue>,
    /// Allowed request headers (lower-case).
    pub allow_headers: Vec<HeaderName>,
    /// Exposed response headers.
    pub expose_headers: Vec<HeaderName>,
    /// `expose_headers` joined once for `Access-Control-Expose-Headers`.
    pub expose_value: Option<HeaderValue>,
    /// Credentials allowed.
    pub allow_credentials: bool,
    /// Preflight cache lifetime in seconds.
    pub max_age: Option<u32>,
}
