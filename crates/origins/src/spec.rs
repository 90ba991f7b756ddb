//! The backends as the config describes them, validated: one spec per kind. The config's
//! validation fills these; [`super::build`] makes the live backends from them.

use kit::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

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
    Consistent(kit::affinity::AffinityKey),
}

/// Passive ejection of pool members that keep failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// Consecutive failures that eject a member; 0 disables ejection.
    pub after: u32,
    /// How long an ejected member stays out.
    pub cool_down: Duration,
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
    pub degraded: Option<super::http::DegradedMarker>,
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
