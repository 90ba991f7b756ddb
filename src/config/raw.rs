//! Raw configuration as written in TOML: serde structs with `deny_unknown_fields`.
//!
//! Nothing here is trusted yet; validation turns these into the typed
//! [`super::Config`] and reports every problem with its key path.

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

/// `[limits]`: what one request and one client may ask of the gateway.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request head — target plus header fields — e.g. `32KiB` (default 32KiB, 1KiB
    /// to 1MiB); a larger one is answered 431.
    pub header_bytes: Option<String>,
    /// Most header fields in a request (default 100, 8 to 256); more are answered 431.
    pub header_count: Option<usize>,
    /// Longest time to receive a request's whole head, e.g. `30s` (default 30s, 1s to 1h;
    /// `0s`: no limit past Pingora's 60 s per read). Counted from the connection's accept for
    /// its first request and from the first byte of each later one; past it the client is
    /// answered 408 and the connection closed (closed silently if nothing was sent).
    pub header_timeout: Option<String>,
    /// Each client address's request rate over every route ([`RawRate`]; default none).
    pub client: Option<RawRate>,
    /// Most connections open at once from one address, IPv6 by its /64 (default 1024; 0:
    /// unlimited); more are closed as they arrive.
    pub connections_per_client: Option<usize>,
    /// Most client connections open at once in all (default 0: unlimited).
    pub connections: Option<usize>,
}

/// A request rate: a token bucket of `burst` requests refilled at `rate` per second. Past it,
/// requests are answered 429 with `Retry-After`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    /// Requests per second, sustained (may be fractional: `0.5` is one every two seconds).
    pub rate: f64,
    /// Requests allowed at once after a quiet spell (default: `rate`, at least 1).
    pub burst: Option<f64>,
    /// On a route: `client` (each client address its own bucket, the default) or `route`
    /// (one bucket for all of the route's requests).
    pub per: Option<String>,
    /// `true`: the buckets live in Redis (`[cache.redis]`), one for the whole fleet, instead
    /// of one per gateway (default false). If Redis fails, each gateway counts on its own.
    pub shared: Option<bool>,
}

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

/// `[auth]`: keys and lists the routes' access policies use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Clock difference tolerated on issue and not-before times, e.g. `60s` (default 60s).
    pub clock_skew: Option<String>,
    /// File of revoked token ids, key ids and user ids, re-read when it changes (see the README).
    pub revocation_file: Option<PathBuf>,
    /// Longest credential lifetime a route accepts unless it sets its own (default 1d).
    pub max_token_lifetime: Option<String>,
    /// `[auth.hmac]` ([`RawHmac`]). Kept raw for precise error paths.
    pub hmac: Option<toml::Value>,
    /// `[auth.cloudfront]` ([`RawCloudFront`]). Kept raw for precise error paths.
    pub cloudfront: Option<toml::Value>,
    /// `[auth.jwt]` ([`RawJwt`]). Kept raw for precise error paths.
    pub jwt: Option<toml::Value>,
}

/// `[auth.jwt]`: keys and claim rules of JSON Web Tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// Required `iss` claim (not checked when absent).
    pub issuer: Option<String>,
    /// Accepted audiences: the token's `aud` must name one (not checked when absent).
    pub audience: Option<Vec<String>>,
    /// Leeway on `exp`, `nbf` and `iat`, e.g. `30s` (default 30s).
    pub leeway: Option<String>,
    /// Claim holding the user id (default `sub`).
    pub user_claim: Option<String>,
    /// Cookie that may carry the token, besides `Authorization: Bearer`.
    pub cookie: Option<String>,
    /// JWKS files (RFC 7517): RSA, EC P-256 and Ed25519 keys, each with its `kid`.
    pub jwks_files: Option<Vec<PathBuf>>,
    /// Single keys.
    #[serde(default)]
    pub keys: Vec<RawJwtKey>,
}

/// `[[auth.jwt.keys]]`: one key, bound to one algorithm.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtKey {
    /// `kid` tokens name it by (optional).
    pub id: Option<String>,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// The HMAC secret (HS256), `{ env }` or `{ file }`, at least 32 bytes.
    pub secret: Option<RawSecret>,
    /// PEM public key file (RS256, ES256, EdDSA).
    pub public_key_file: Option<PathBuf>,
}

/// `[auth.cloudfront]`: public keys of CloudFront-compatible signed URLs and cookies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloudFront {
    /// The key group: `Key-Pair-Id` → public key. Unknown ids are refused.
    #[serde(default)]
    pub keys: Vec<RawCloudFrontKey>,
}

/// `[[auth.cloudfront.keys]]`: one CloudFront public key (and, for minting, its private key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloudFrontKey {
    /// The `Key-Pair-Id` signers name (e.g. `K2JCJMDEHXQW5F`).
    pub id: String,
    /// PEM file of the RSA public key (relative paths: the config file's folder).
    pub public_key_file: PathBuf,
    /// The RSA private key in PEM ({ env } or { file }); only `assetgate sign` uses it.
    pub private_key: Option<RawSecret>,
}

/// `[auth.hmac]`: keys of assetgate's HMAC-signed URLs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHmac {
    /// Active keys; tokens name theirs with `ag_kid`. Several at once rotate without downtime.
    #[serde(default)]
    pub keys: Vec<RawHmacKey>,
    /// Ids of retired keys: their tokens are refused as `retired_key`.
    pub retired: Option<Vec<String>>,
}

/// `[[auth.hmac.keys]]`: one HMAC key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHmacKey {
    /// Key id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// The secret ({ env = "..." } or { file = "..." }); its bytes are the HMAC key, 32 at least.
    pub secret: RawSecret,
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

/// `[[hosts.rules]]`: conditions (all must hold) and the group a matching request goes to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Label in metrics and logs (default `rules[N]`).
    pub name: Option<String>,
    /// Header conditions ([`RawHeaderCondition`]): one table or a list of them.
    pub header: Option<toml::Value>,
    /// Cookie conditions ([`RawValueCondition`]): one table or a list of them.
    pub cookie: Option<toml::Value>,
    /// Query parameter conditions ([`RawValueCondition`]): one table or a list of them.
    pub query: Option<toml::Value>,
    /// The normalised path starts with this prefix (segment-wise).
    pub path_prefix: Option<String>,
    /// The method is one of these.
    pub methods: Option<Vec<String>>,
    /// The client address (as derived with `server.trusted_proxies`) is in one of these CIDRs.
    pub client_cidrs: Option<Vec<String>>,
    /// The group in `[groups]` that serves a matching request.
    pub group: String,
}

/// A header condition: `name` and exactly one of `equals`, `matches` or `present`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderCondition {
    /// Header name (case-insensitive).
    pub name: String,
    /// Some field of the header equals this text exactly.
    pub equals: Option<String>,
    /// Some field of the header matches this regular expression (`(?i)` ignores case).
    pub matches: Option<String>,
    /// The header is present (`true`) or absent (`false`).
    pub present: Option<bool>,
}

/// A cookie or query parameter condition: `name` equals `equals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValueCondition {
    /// Cookie name (case-insensitive) or query parameter name (as sent).
    pub name: String,
    /// Required value (cookies as sent; query values after `%XX`/`+` decoding).
    pub equals: String,
}

/// `[groups.NAME]`: a weighted, sticky set of backends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Backend name → share, e.g. `{ ec2 = 95, ecs = 5 }`; 0 drains a backend, at least one
    /// must be positive.
    pub weights: BTreeMap<String, i64>,
    /// `cookie` (default: a client id in a cookie the gateway sets), or the request value whose
    /// hash keeps a client on one side: `header:NAME`, `cookie:NAME`, `query:NAME`, `client_ip`.
    pub sticky: Option<String>,
    /// Name of the sticky cookie (default `ag_GROUP`).
    pub cookie_name: Option<String>,
    /// Lifetime of the sticky cookie (default 30d).
    pub cookie_max_age: Option<String>,
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
}

/// `[hosts.routes.variants]`: the allowlists and source limits of a variants route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteVariants {
    /// Widths a variant may have (default 320, 640, 1024, 1920).
    pub widths: Option<Vec<u32>>,
    /// Heights a variant may have (default 240, 480, 768, 1080).
    pub heights: Option<Vec<u32>>,
    /// Qualities a variant may be encoded at, 1–100 (default 50, 60, 70, 75, 80, 85).
    pub qualities: Option<Vec<u32>>,
    /// Output formats a URL may name: `webp`, `jpeg`, `png`, `avif` (default all four).
    pub formats: Option<Vec<String>>,
    /// Formats `auto` chooses from by `Accept`, in preference order (default `webp`, `jpeg`;
    /// empty: `auto` is refused).
    pub auto: Option<Vec<String>>,
    /// Largest original read, e.g. `50MiB` (default 50MiB).
    pub max_source_bytes: Option<String>,
    /// Most pixels an original's header may declare (default 50000000); larger ones are
    /// refused with 422 before anything is decoded.
    pub max_source_pixels: Option<u64>,
    /// Time one variant may take, waiting for a worker included, e.g. `10s` (default 10s).
    pub timeout: Option<String>,
}

/// `[assets]`: the asset metadata store, where originals live, and the variant workers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssets {
    /// Database URL: `sqlite://PATH` (created on first start; a relative path is relative to
    /// the config file's folder) or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, or
    /// `{ env = "VAR" }` / `{ file = "PATH" }` holding one. Default:
    /// `sqlite://{state_dir}/assets.db`.
    pub database: Option<toml::Value>,
    /// Folder for the gateway's own state, such as the default SQLite file (default
    /// `/var/lib/assetgate`; relative to the config file's folder).
    pub state_dir: Option<PathBuf>,
    /// The `s3` or `dir` backend originals are uploaded to and read from.
    pub originals: String,
    /// Key prefix of originals in that backend (default `originals`); each is stored as
    /// `PREFIX/ab/cd/HASH`.
    pub key_prefix: Option<String>,
    /// How long a hash's lookup is remembered on the request path, e.g. `5s` (default 5s).
    pub lookup_ttl: Option<String>,
    /// Most lookups remembered (default 10000).
    pub lookup_entries: Option<usize>,
    /// Decode/encode workers (default: one per core).
    pub workers: Option<usize>,
    /// Variant jobs that may wait for a worker before requests get 503 (default 4 per
    /// worker).
    pub queue: Option<usize>,
    /// rav1e speed of AVIF variants, 1 (slow, small) to 10 (fast) (default 8).
    pub avif_speed: Option<u8>,
    /// Originals registered at every start ([`RawRegister`]), e.g. the quick start's samples.
    pub register: Option<RawRegister>,
}

/// `[assets.register]`: files registered (idempotently) at every start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegister {
    /// Files, or folders whose files are added (relative to the config file's folder).
    pub paths: Vec<PathBuf>,
    /// Owner of the assets (default `quickstart`).
    pub owner: Option<String>,
    /// Module of the assets (default `samples`).
    pub module: Option<String>,
    /// `public` (default), `private` or `admin-private`.
    pub visibility: Option<String>,
}

/// `[hosts.routes.cache]`: how a route uses the shared cache tiers of `[cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteCache {
    /// Tiers to use, from the top: `memory` (default: every tier configured in `[cache]`).
    pub tiers: Option<Vec<String>>,
    /// Freshness when the backend sends none (no `Cache-Control` lifetime, no `Expires`),
    /// e.g. `10m`. Default: the route's `cache_control` lifetime; without one such responses
    /// are not stored.
    pub default_ttl: Option<String>,
    /// Freshness that replaces whatever the backend says (`no-store`/`private` still win).
    pub ttl: Option<String>,
    /// Longest freshness guessed for a response with no lifetime of its own and no
    /// `default_ttl`: a tenth of the time since its `Last-Modified`, at most this (default
    /// `1d`; `0s` stores such responses only with a `default_ttl`).
    pub heuristic_max: Option<String>,
    /// Largest response body stored, e.g. `64MiB` (default 64MiB); larger ones pass through.
    pub max_size: Option<String>,
    /// Query parameters that are part of the cache key and reach an origin (default: every
    /// parameter; the others are removed before the request is sent). Signing parameters of
    /// the route's access schemes are refused here.
    pub query_keys: Option<Vec<String>>,
    /// Request headers that are part of the cache key, e.g. `["X-Forwarded-Prefix"]`. Of the
    /// headers that override what an origin takes the request to be (X-Original-URL,
    /// X-HTTP-Method-Override, X-Forwarded-Port, Forwarded, ...) only the ones named here
    /// reach the origin of a cached route; the rest are removed (default none).
    pub key_headers: Option<Vec<String>>,
    /// Store only when the query carries these parameters (`name`/`equals` pairs), e.g.
    /// generated sounds, cached only with `output_format=file`.
    pub store_if_query: Option<Vec<RawValueCondition>>,
    /// `stale-while-revalidate` used when the backend sends none, e.g. `30s`.
    pub stale_while_revalidate: Option<String>,
    /// `stale-if-error` used when the backend sends none, e.g. `1d`.
    pub stale_if_error: Option<String>,
}

/// `[cache]`: the tiers every cached route draws on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// `[cache.memory]`: the in-process tier ([`RawMemoryTier`]).
    pub memory: Option<RawMemoryTier>,
    /// `[cache.disk]`: the local-files tier ([`RawDiskTier`]).
    pub disk: Option<RawDiskTier>,
    /// `[cache.redis]`: the tier shared by the fleet ([`RawRedisTier`]).
    pub redis: Option<RawRedisTier>,
    /// `[cache.object]`: the cache-bucket tier ([`RawObjectTier`]).
    pub object: Option<RawObjectTier>,
    /// How long a request waits for another request's fill of the same key before it asks
    /// the backend itself (default 10s).
    pub lock_timeout: Option<String>,
    /// Response headers whose values tag an entry for purges by tag (default
    /// `["Surrogate-Key", "Cache-Tag"]`; split on commas and whitespace).
    pub tag_headers: Option<Vec<String>>,
}

/// `[cache.object]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjectTier {
    /// The `s3` backend whose bucket (under its `key_prefix`) holds the entries.
    pub backend: String,
    /// Largest body stored, e.g. `5GiB` (default 5GiB).
    pub max_entry: Option<String>,
}

/// `[cache.disk]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiskTier {
    /// Folder holding the entries (created if missing; relative to the config file), e.g.
    /// `/var/cache/assetgate`. One gateway process per folder.
    pub path: PathBuf,
    /// Bytes the tier may hold, e.g. `10GiB`.
    pub size: String,
    /// Largest single entry (default: 1/8 of `size`).
    pub max_entry: Option<String>,
    /// Stop admitting new entries when the filesystem has less free space than this
    /// (default 1GiB, at most half of `size`).
    pub min_free: Option<String>,
}

/// `[cache.redis]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisTier {
    /// `redis://[user@]host:port/db`, or `rediss://...` for TLS.
    pub url: String,
    /// AUTH password (`{ file = ... }` or `{ env = ... }`), instead of one in the URL.
    pub password: Option<RawSecret>,
    /// Largest body stored in Redis (default 1MiB, at most 512MiB).
    pub max_entry: Option<String>,
    /// Prefix of every key (default `assetgate:`); gateways sharing entries use the same.
    pub key_prefix: Option<String>,
    /// Longest a Redis call may take before the tier is skipped for a second (default 250ms).
    pub timeout: Option<String>,
    /// One gateway of the fleet fetches a missed key while the others wait (default true).
    pub fill_lock: Option<bool>,
    /// How long a fill lock lasts unless renewed (default 5s; renewed every third of it while
    /// the fill runs, so it only lapses when its owner is gone).
    pub lock_lease: Option<String>,
}

/// `[cache.memory]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMemoryTier {
    /// Bytes the tier may hold (bodies plus headers), e.g. `256MiB`.
    pub size: String,
    /// Largest single entry kept in memory (default: 1/8 of `size`, at most 64MiB).
    pub max_entry: Option<String>,
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
