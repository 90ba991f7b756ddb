//! The URL a client should use for an object: what an application's `resolveUrl(asset)` returns, as a
//! library function (and `POST /v1/resolve` on the admin listener).
//!
//! - `public` → `{resolve.public_base}/{key}`, a plain CDN URL;
//! - `private` → `{resolve.private_base}/{key}` signed with `resolve.private_scheme` (HMAC by
//!   default) for `resolve.private_ttl` (15 minutes by default);
//! - `admin-private` → an S3 presigned GET URL from `resolve.admin_backend`, the key taken
//!   relative to that backend's `key_prefix`.

use super::mint::{self, CloudFrontOptions, HmacOptions, MintError};
use crate::backend::Backend;
use crate::config::Config;
use access::Scheme;
use kit::path::{encode, normalise};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Who may read an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    /// Anyone.
    Public,
    /// A signed user (a signed URL on the private host).
    Private,
    /// Administrators only (an S3 presigned URL that bypasses the CDN).
    AdminPrivate,
}

/// What to resolve.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The object key, e.g. `private/u1/report.pdf`.
    pub key: String,
    /// Its visibility.
    pub visibility: Visibility,
    /// The user the private URL is for (its `ag_uid`; required on owner-prefix routes).
    pub user: Option<String>,
    /// Lifetime in seconds (default: `resolve.private_ttl`, or `admin.presign_ttl`).
    pub ttl_seconds: Option<u64>,
}

/// The URL for `req` at time `now`.
pub async fn resolve_url(
    config: &Config,
    backends: &HashMap<String, Arc<Backend>>,
    req: &ResolveRequest,
    now: u64,
) -> Result<String, MintError> {
    let key = req.key.trim_start_matches('/');
    let probe = format!("/{key}");
    if key.is_empty() || key.ends_with('/') || normalise(&probe).ok().as_deref() != Some(&probe) {
        return Err(MintError::BadKey(req.key.clone()));
    }
    let settings = &config.resolve;
    let not_configured = MintError::NotConfigured;
    match req.visibility {
        Visibility::Public => {
            let base = settings
                .public_base
                .as_ref()
                .ok_or(not_configured("resolve.public_base"))?;
            Ok(format!("{base}/{}", encode(key)))
        }
        Visibility::Private => {
            let base = settings
                .private_base
                .as_ref()
                .ok_or(not_configured("resolve.private_base"))?;
            let url = format!("{base}/{}", encode(key));
            let ttl = req
                .ttl_seconds
                .map(Duration::from_secs)
                .unwrap_or(settings.private_ttl);
            match settings.private_scheme {
                Some(Scheme::CloudFront) => {
                    let opts = CloudFrontOptions {
                        ttl,
                        ..Default::default()
                    };
                    mint::cloudfront_url(config, &url, &opts, now)
                }
                _ => {
                    let opts = HmacOptions {
                        ttl,
                        user: req.user.clone(),
                        ..Default::default()
                    };
                    mint::hmac_url(config, &url, &opts, now)
                }
            }
        }
        Visibility::AdminPrivate => {
            let name = settings
                .admin_backend
                .as_ref()
                .ok_or(not_configured("resolve.admin_backend"))?;
            let backend = backends
                .get(name)
                .ok_or(not_configured("resolve.admin_backend"))?;
            let ttl = req
                .ttl_seconds
                .map(Duration::from_secs)
                .unwrap_or(config.admin_access.presign_ttl);
            backend
                .presign_get(key, true, ttl)
                .await
                .map_err(|e| MintError::Presign(e.to_string()))
        }
    }
}
