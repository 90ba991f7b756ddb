//! Configuration: TOML on disk → raw serde structs → validation → the typed [`Config`].
//!
//! Each domain owns its sections: its raw structs and their checks live in the domain crate's
//! `config` module (`limits`, `origins`, `access`, `routing`, `cache`, `media`), each reporting
//! into the shared problems list through a [`kit::problems::Check`]. This module holds the
//! application's own sections ([`raw`]: server, listeners, admin, log, compression, resolve,
//! hosts and routes), assembles the whole and makes the checks that span domains (a route
//! names a backend, its access needs declared keys, a shared limit needs the Redis tier).
//! Validation builds no runtime object and writes no file; the server builds from the typed
//! config. The typed config is an immutable snapshot; everything the request path decides is
//! read from it. `assetgate check -c FILE` runs [`load`] and prints every [`Problem`] at once.

pub mod raw;
pub mod reference;
mod validate;

pub use access::settings::{
    AdminAccess, AuthSettings, CloudFrontKey, CloudFrontSettings, HmacSettings,
};
pub use cache::settings::{CacheSettings, MemoryTierSettings};
pub use kit::problems::{Problem, Problems};
pub use media::config::AssetSettings;
pub use origins::spec::{
    BackendSpec, Balance, CredentialSpec, DirSpec, Ejection, Endpoint, HealthSpec, HttpSpec, S3Spec,
};
pub use routing::spec::{GroupSpec, HostPattern, PathMatch, RouteTarget};
pub use validate::{from_toml_str, load};

/// A virtual host of the config, with its routes.
pub type Host = routing::spec::Host<Route>;

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
    pub limits: limits::LimitSettings,
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
    pub private_scheme: Option<access::Scheme>,
    /// Lifetime of private URLs.
    pub private_ttl: Duration,
    /// Backend presigning admin-private URLs.
    pub admin_backend: Option<String>,
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
    pub freshness: cache::policy::Freshness,
    /// How the route uses the shared cache; `None`: never stored.
    pub cache: Option<cache::policy::RoutePolicy>,
    /// Add `Content-Disposition: attachment`.
    pub download: bool,
    /// CORS policy.
    pub cors: Option<Cors>,
    /// Who may read the route.
    pub access: access::AccessPolicy,
    /// The route's request rate limit (`None`: unlimited).
    pub rate_limit: Option<limits::RateLimit>,
    /// Allowlists and source limits, on a route of a `variants` backend.
    pub variants: Option<media::variants::VariantLimits>,
    /// What `PUT`/`POST` on the route upload, when it takes uploads.
    pub upload: Option<RouteUpload>,
}

/// `[hosts.routes.upload]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUpload {
    /// The module of the uploaded assets.
    pub module: String,
    /// Their visibility.
    pub visibility: media::assets::Visibility,
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

impl routing::spec::RouteSpec for Route {
    fn name(&self) -> &str {
        &self.name
    }

    fn matcher(&self) -> &PathMatch {
        &self.matcher
    }

    fn target(&self) -> &RouteTarget {
        &self.target
    }

    fn backup(&self) -> Option<&str> {
        self.backup.as_deref()
    }
}
