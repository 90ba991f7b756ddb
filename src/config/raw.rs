//! Raw configuration as written in TOML: serde structs with `deny_unknown_fields`.
//!
//! Nothing here is trusted yet; validation turns these into the typed
//! [`super::Config`] and reports every problem with its key path.

pub use ::limits::config::RawRate;
pub use kit::secret::RawSecret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[server]`: process-wide settings handed to Pingora.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Worker threads per listener service (default: number of CPUs).
    pub threads: Option<usize>,
    /// Let idle worker threads steal tasks from busy ones (default false: one independent
    /// runtime per thread, like nginx workers, which has fewer cross-thread wake-ups).
    pub work_stealing: Option<bool>,
    /// PID file written when running as a daemon.
    pub pid_file: Option<String>,
    /// Unix socket used to hand listeners to a new process on graceful upgrade.
    pub upgrade_sock: Option<String>,
    /// Seconds to keep serving after a shutdown signal before closing listeners.
    pub grace_period_seconds: Option<u64>,
    /// Seconds to wait for in-flight requests after the grace period.
    pub graceful_shutdown_timeout_seconds: Option<u64>,
    /// Idle upstream connections kept for reuse, across all backends.
    pub upstream_keepalive_pool_size: Option<usize>,
    /// Most upstream attempts for one request, the first included (default 5, 1 to 16):
    /// connects to the next pool member or backend, a pooled connection the origin had
    /// closed opened again (once per request), a read failing over to the next backend. A
    /// request is only sent again when nothing reached the client and its method is
    /// idempotent.
    pub upstream_attempts: Option<usize>,
    /// Peers (CIDRs like `10.0.0.0/8`, or single addresses) whose X-Forwarded-For is believed.
    /// Default empty: the TCP peer is the client and a client's own X-Forwarded-For is replaced.
    pub trusted_proxies: Option<Vec<String>>,
}

/// `[[listeners]]`: one downstream socket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// `IP:port` to bind, e.g. `0.0.0.0:443`.
    pub address: String,
    /// TLS certificate and key ([`RawTls`]); when present the listener speaks TLS and offers
    /// HTTP/2 via ALPN. Kept raw so its own errors carry its own key path.
    pub tls: Option<toml::Value>,
}

/// `[listeners.tls]`: PEM files for a TLS listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Path to the PEM certificate chain.
    pub cert_file: PathBuf,
    /// Path to the PEM private key.
    pub key_file: PathBuf,
    /// Offer HTTP/2 through ALPN (default true).
    pub http2: Option<bool>,
}

/// `[admin]`: the listener for `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `IP:port` to bind; keep it on loopback or a private interface.
    pub address: String,
    /// Admin bearer tokens (several at once for rotation): the admin API and `access = "admin"`
    /// routes require one.
    #[serde(default)]
    pub tokens: Vec<RawAdminToken>,
    /// Append-only JSON-lines audit log of admin actions (required with `tokens`).
    pub audit_log: Option<PathBuf>,
    /// Optional token `/metrics` then requires (open by default; `/healthz` and `/readyz` stay
    /// open for load balancers).
    pub metrics_token: Option<RawSecret>,
    /// Lifetime of the S3 presigned URLs admin routes redirect to (default 5m, at most 7d).
    pub presign_ttl: Option<String>,
}

/// `[[admin.tokens]]`: one admin bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminToken {
    /// Id written to the audit log (never the token).
    pub id: String,
    /// The token ({ env } or { file }), at least 32 bytes.
    pub secret: RawSecret,
}

/// `[log]`: process and access logging.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `plain` (default) or `json`.
    pub format: Option<String>,
    /// Minimum level or a `tracing` filter directive, e.g. `info` or `assetgate=debug`.
    pub level: Option<String>,
    /// Emit one access-log line per request (default true).
    pub access_log: Option<bool>,
}

/// `[compression]`: on-the-fly response compression.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompression {
    /// Compression level for gzip, brotli and zstd; 0 turns compression off (default 5).
    pub level: Option<u32>,
    /// Media types that are compressed; a trailing `*` matches a prefix.
    pub types: Option<Vec<String>>,
    /// Smallest body compressed, by its `Content-Length`, e.g. `1KiB` (default `1KiB`):
    /// below it the coding's overhead eats most of the gain.
    pub min_size: Option<String>,
}

/// `[resolve]`: how an object key and a visibility become the URL a client should use
/// (`POST /v1/resolve` on the admin listener, and the library's `services::resolve`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResolve {
    /// Base of public URLs, e.g. `https://cdn.example.com/assets`: public → `{base}/{key}`.
    pub public_base: Option<String>,
    /// Base of private URLs, e.g. `https://private.example.com/private`; they are signed.
    pub private_base: Option<String>,
    /// How private URLs are signed: `hmac` (default) or `cloudfront`.
    pub private_scheme: Option<String>,
    /// Lifetime of signed private URLs (default 15m).
    pub private_ttl: Option<String>,
    /// The s3 backend whose presigned URLs admin-private objects get.
    pub admin_backend: Option<String>,
}

/// `[[hosts]]`: a virtual host and its ordered routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Host names: exact (`cdn.example.com`), wildcard (`*.example.com`) or `*` for any.
    pub names: Vec<String>,
    /// `scheme://name[:port]` clients use for this host, e.g. `https://cdn.example.com`: the start
    /// of the resource URL CloudFront-style signatures cover (default: `https` on a TLS listener,
    /// else `http`, and the Host header as sent).
    pub public_url: Option<String>,
    /// Routes tried in order; the first that matches wins. Kept raw so each is checked on its own.
    #[serde(default)]
    pub routes: Vec<toml::Value>,
    /// Steering rules ([`RawRule`]) run after the route matched; the first match names the
    /// group that serves the request. Kept raw so each is checked on its own.
    #[serde(default)]
    pub rules: Vec<toml::Value>,
    /// Response header naming the group and backend that served, e.g. `X-Served-By` (default
    /// none: nothing is added).
    pub steering_header: Option<String>,
}

/// `[[hosts.routes]]`: a path on a host, the backend it reads and what is added to responses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Name used in metrics and logs (default: the path).
    pub name: Option<String>,
    /// Path prefix matched segment-wise (`/img` matches `/img` and `/img/a`, not `/imgs`).
    pub path: Option<String>,
    /// Exact path matched instead of a prefix.
    pub exact: Option<String>,
    /// Name of the backend in `[backends]` (exactly one of `backend` and `group`).
    pub backend: Option<String>,
    /// Name of the group in `[groups]` (exactly one of `backend` and `group`).
    pub group: Option<String>,
    /// Backend that answers GET/HEAD when the target is unhealthy, refuses the connection,
    /// times out or answers 5xx.
    pub backup: Option<String>,
    /// Leading part of the request path removed before the key is built.
    pub strip_prefix: Option<String>,
    /// Text prepended to the remaining path (object key for s3/dir, URL path for http).
    pub add_prefix: Option<String>,
    /// Methods allowed (default `GET`, `HEAD`); s3 and dir backends are read-only.
    pub methods: Option<Vec<String>>,
    /// Cache-Control set on successful responses, e.g. `public, max-age=31536000, immutable`.
    pub cache_control: Option<String>,
    /// Add `Content-Disposition: attachment` with the key's file name.
    pub download: Option<bool>,
    /// The route's request rate ([`RawRate`]): past it, 429 with `Retry-After`.
    pub rate_limit: Option<RawRate>,
    /// Cross-origin resource sharing answered at the gateway ([`RawCors`]). Kept raw for
    /// precise error paths.
    pub cors: Option<toml::Value>,
    /// Who may read the route: `public` (default), `hmac`, `cloudfront`, or a list of schemes
    /// tried in order.
    pub access: Option<toml::Value>,
    /// Longest credential lifetime this route accepts, e.g. `15m` (default:
    /// `auth.max_token_lifetime`).
    pub max_token_lifetime: Option<String>,
    /// Paths under this prefix belong to the user named by the next segment
    /// (`/private` → `/private/{user}/...`); a credential's user must match it.
    pub owner_prefix: Option<String>,
    /// Store this route's responses in the shared cache ([`RawRouteCache`]); absent: never
    /// stored, every request goes to the backend. Kept raw for precise error paths.
    pub cache: Option<toml::Value>,
    /// What a route on a `variants` backend allows ([`RawRouteVariants`]); absent: the safe
    /// defaults. Kept raw for precise error paths.
    pub variants: Option<toml::Value>,
    /// `PUT`/`POST` on this route upload an asset for the credential's user
    /// ([`RawRouteUpload`]); needs `[assets]` and an `access` scheme that names a user.
    pub upload: Option<RawRouteUpload>,
}

/// `[hosts.routes.upload]`: what an upload through the route becomes. The owner is the user
/// the request's credential names (an HMAC URL minted with `--user` and `--methods PUT`, or a
/// JWT's subject); the file name is the request path's last segment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteUpload {
    /// The module the assets belong to, e.g. `avatars`.
    pub module: String,
    /// `private` (default), `public` or `admin-private`.
    pub visibility: Option<String>,
}

/// `[hosts.routes.cors]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// Origins allowed, e.g. `https://app.example.com`, or `*` for any (not with credentials).
    pub allow_origins: Vec<String>,
    /// Methods allowed in preflight (default: the route's methods).
    pub allow_methods: Option<Vec<String>>,
    /// Request headers allowed in preflight (default none beyond the safelisted ones).
    pub allow_headers: Option<Vec<String>>,
    /// Response headers exposed to scripts.
    pub expose_headers: Option<Vec<String>>,
    /// Send `Access-Control-Allow-Credentials: true`.
    pub allow_credentials: Option<bool>,
    /// Seconds a preflight answer may be cached by the browser.
    pub max_age: Option<u32>,
}

/// The whole file, with each item kept raw so errors in one item do not hide errors in another.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    pub server: Option<toml::Value>,
    /// `[[listeners]]`.
    #[serde(default)]
    pub listeners: Vec<toml::Value>,
    /// `[admin]`.
    pub admin: Option<toml::Value>,
    /// `[log]`.
    pub log: Option<toml::Value>,
    /// `[compression]`.
    pub compression: Option<toml::Value>,
    /// `[limits]` ([`RawLimits`]).
    pub limits: Option<toml::Value>,
    /// `[auth]`.
    pub auth: Option<toml::Value>,
    /// `[resolve]`.
    pub resolve: Option<toml::Value>,
    /// `[backends.NAME]`.
    #[serde(default)]
    pub backends: BTreeMap<String, toml::Value>,
    /// `[groups.NAME]`.
    #[serde(default)]
    pub groups: BTreeMap<String, toml::Value>,
    /// `[[hosts]]`.
    #[serde(default)]
    pub hosts: Vec<toml::Value>,
    /// `[cache]`.
    pub cache: Option<toml::Value>,
    /// `[assets]`.
    pub assets: Option<toml::Value>,
}
