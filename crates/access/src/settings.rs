//! What the access schemes verify with, as the config gives it: `[auth]` and the admin
//! credentials of `[admin]`. The config's validation fills these ([`super::config`]);
//! [`super::Authenticator`] is built from them.

use super::jwt::JwtSettings;
use kit::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

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
    /// JWT key sources and claim rules (the verifier is built from them at start).
    pub jwt: JwtSettings,
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
