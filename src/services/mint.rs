//! Minting credentials with the keys of a config: what `assetgate sign` prints.
//!
//! The URL to sign is checked against the config's routes first, so a URL the gateway would
//! refuse anyway (no route, a public route, a lifetime above the route's maximum, a missing
//! owner) is an error here rather than a confusing 403 later.

use crate::config::Config;
use access::hmac::{Claims, Scope};
use access::{AccessPolicy, Scheme};
use kit::host;
use kit::path::{has_prefix, normalise};
use routing::Router;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a credential could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The URL is not an absolute `http(s)://host/path` URL.
    #[error("\"{0}\" is not an absolute URL like https://cdn.example.com/private/a.jpg")]
    BadUrl(String),
    /// The URL's path would be refused by the gateway.
    #[error("the URL's path is refused by the gateway: {0}")]
    BadPath(#[from] kit::path::PathError),
    /// No configured route serves the URL.
    #[error("no route in the config serves {0}")]
    NoRoute(String),
    /// The route does not accept this scheme.
    #[error("route \"{route}\" does not accept {scheme} credentials")]
    NotAccepted {
        /// Route name.
        route: String,
        /// Scheme name.
        scheme: &'static str,
    },
    /// The key id is not an active key.
    #[error("no active key \"{0}\" in the config")]
    UnknownKey(String),
    /// The config has no key for the scheme.
    #[error("the config has no {0} key")]
    NoKey(&'static str),
    /// The lifetime is longer than the route accepts.
    #[error("lifetime {asked}s exceeds route \"{route}\"'s maximum of {max}s")]
    TooLong {
        /// Route name.
        route: String,
        /// Seconds asked for.
        asked: u64,
        /// Seconds allowed.
        max: u64,
    },
    /// The route has an owner prefix and the credential names no user, or another one.
    #[error(
        "route \"{route}\" serves {prefix}/{{user}}/...: give the user id of the path's owner"
    )]
    Owner {
        /// Route name.
        route: String,
        /// The owner prefix.
        prefix: String,
    },
    /// The object key is empty, a directory or not a plain key.
    #[error("\"{0}\" is not an object key (no leading '/', '..', '%' escapes or trailing '/')")]
    BadKey(String),
    /// A setting the request needs is missing from the config.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// The bucket could not presign (no credentials, signing failure).
    #[error("cannot presign: {0}")]
    Presign(String),
    /// The key has no usable private key in the config.
    #[error("key \"{0}\" has no usable private_key (PEM) in the config")]
    NoPrivateKey(String),
    /// The prefix does not cover the URL.
    #[error("prefix \"{0}\" does not cover the URL's path")]
    PrefixMismatch(String),
}

/// Optional claims of an HMAC URL.
#[derive(Debug, Clone, Default)]
pub struct HmacOptions {
    /// Key id (default: the first active key).
    pub key_id: Option<String>,
    /// Lifetime (`exp − iat`).
    pub ttl: Duration,
    /// Not valid before (Unix seconds).
    pub not_before: Option<u64>,
    /// Client address or CIDR.
    pub ip: Option<String>,
    /// User id.
    pub user: Option<String>,
    /// Token id (for revocation).
    pub token_id: Option<String>,
    /// Allowed methods, comma-separated.
    pub methods: Option<String>,
    /// Grant everything under this path prefix instead of the URL's path alone.
    pub prefix: Option<String>,
}

/// An absolute URL split into what credentials bind.
struct Target<'u> {
    host: String,
    path: String,
    raw: &'u str,
}

fn target(url: &str) -> Result<Target<'_>, MintError> {
    let uri: http::Uri = url.parse().map_err(|_| MintError::BadUrl(url.into()))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let name = uri.host().filter(|_| scheme_ok);
    let name = name.ok_or_else(|| MintError::BadUrl(url.into()))?;
    Ok(Target {
        host: host::canonical(name.trim_start_matches('[').trim_end_matches(']')).into_owned(),
        path: normalise(uri.path())?,
        raw: url,
    })
}

/// The access policy and name of the route that serves `host` + `path`.
fn route_policy(config: &Config, t: &Target<'_>) -> Result<(String, AccessPolicy), MintError> {
    let names: HashMap<String, Arc<()>> = config
        .backends
        .keys()
        .map(|k| (k.clone(), Arc::new(())))
        .collect();
    let route = Router::new(&config.hosts, &config.groups, &names)
        .find(&t.host, &t.path)
        .ok_or_else(|| MintError::NoRoute(t.raw.into()))?;
    Ok((route.route.name.clone(), route.route.access.clone()))
}

/// `url` with an HMAC token appended, minted with the config's keys at time `now`.
pub fn hmac_url(
    config: &Config,
    url: &str,
    opts: &HmacOptions,
    now: u64,
) -> Result<String, MintError> {
    let t = target(url)?;
    let (route, policy) = route_policy(config, &t)?;
    if !policy.schemes.contains(&Scheme::Hmac) {
        return Err(MintError::NotAccepted {
            route,
            scheme: "hmac",
        });
    }
    let asked = opts.ttl.as_secs().max(1);
    let max = policy.max_lifetime.as_secs();
    if asked > max {
        return Err(MintError::TooLong { route, asked, max });
    }
    if let Some(owner) = policy.owner(&t.path) {
        if owner.is_none() || owner != opts.user.as_deref() {
            return Err(MintError::Owner {
                route,
                prefix: policy.owner_prefix.clone().unwrap_or_default(),
            });
        }
    }
    let (key_id, secret) = match &opts.key_id {
        Some(id) => config
            .auth
            .hmac
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| MintError::UnknownKey(id.clone()))?,
        None => config
            .auth
            .hmac
            .keys
            .first()
            .ok_or(MintError::NoKey("hmac"))?,
    };
    let scope = match &opts.prefix {
        Some(p) => {
            let p = normalise(p)?;
            if !has_prefix(&t.path, &p) {
                return Err(MintError::PrefixMismatch(p));
            }
            Scope::Prefix(p.into())
        }
        None => Scope::Path(Cow::Borrowed(&t.path)),
    };
    let claims = Claims {
        key_id: key_id.as_str().into(),
        host: t.host.as_str().into(),
        scope,
        issued_at: now,
        expires_at: now + asked,
        not_before: opts.not_before,
        ip: opts.ip.as_deref().map(Cow::Borrowed),
        user: opts.user.as_deref().map(Cow::Borrowed),
        token_id: opts.token_id.as_deref().map(Cow::Borrowed),
        methods: opts.methods.as_deref().map(Cow::Borrowed),
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{url}{sep}{}",
        claims.to_query(secret.expose().as_bytes())
    ))
}

/// Options of a CloudFront signed URL or signed cookies.
#[derive(Debug, Clone, Default)]
pub struct CloudFrontOptions {
    /// `Key-Pair-Id` (default: the first key with a private key).
    pub key_id: Option<String>,
    /// Lifetime: `DateLessThan` = now + ttl.
    pub ttl: Duration,
    /// Custom policy `Resource` (wildcards allowed) instead of the URL itself.
    pub resource: Option<String>,
    /// Custom policy `DateGreaterThan` (Unix seconds).
    pub not_before: Option<u64>,
    /// Custom policy `IpAddress` (CIDR).
    pub ip: Option<String>,
    /// Sign over SHA-256 (`Hash-Algorithm=SHA256`) instead of SHA-1.
    pub sha256: bool,
}

/// The signed values of a CloudFront credential: `(name, value)` pairs in the URL parameter
/// names (`Expires`/`Policy`, `Signature`, `Key-Pair-Id`, `Hash-Algorithm`).
fn cloudfront_values(
    config: &Config,
    url: &str,
    opts: &CloudFrontOptions,
    now: u64,
) -> Result<Vec<(&'static str, String)>, MintError> {
    let t = target(url)?;
    let (route, policy) = route_policy(config, &t)?;
    if !policy.schemes.contains(&Scheme::CloudFront) {
        return Err(MintError::NotAccepted {
            route,
            scheme: "cloudfront",
        });
    }
    let asked = opts.ttl.as_secs().max(1);
    let max = policy.max_lifetime.as_secs();
    if asked > max {
        return Err(MintError::TooLong { route, asked, max });
    }
    let keys = &config.auth.cloudfront.keys;
    let key = match &opts.key_id {
        Some(id) => keys
            .iter()
            .find(|k| &k.id == id)
            .ok_or_else(|| MintError::UnknownKey(id.clone()))?,
        None => keys
            .iter()
            .find(|k| k.private_pem.is_some())
            .ok_or(MintError::NoKey("cloudfront private"))?,
    };
    let pem = key
        .private_pem
        .as_ref()
        .ok_or_else(|| MintError::NoPrivateKey(key.id.clone()))?;
    let expires = now + asked;
    let custom = opts.resource.is_some() || opts.not_before.is_some() || opts.ip.is_some();
    let policy_json = if custom {
        let mut condition = serde_json::json!({ "DateLessThan": { "AWS:EpochTime": expires } });
        if let Some(t) = opts.not_before {
            condition["DateGreaterThan"] = serde_json::json!({ "AWS:EpochTime": t });
        }
        if let Some(ip) = &opts.ip {
            condition["IpAddress"] = serde_json::json!({ "AWS:SourceIp": ip });
        }
        let resource = opts.resource.as_deref().unwrap_or(url);
        serde_json::json!({ "Statement": [{ "Resource": resource, "Condition": condition }] })
            .to_string()
    } else {
        access::cloudfront::canned_policy(url, expires)
    };
    let hash = if opts.sha256 {
        access::cloudfront::Hash::Sha256
    } else {
        access::cloudfront::Hash::Sha1
    };
    let signature = openssl::pkey::PKey::private_key_from_pem(pem.expose().as_bytes())
        .and_then(|k| {
            openssl::sign::Signer::new(hash.digest(), &k)?
                .sign_oneshot_to_vec(policy_json.as_bytes())
        })
        .map_err(|_| MintError::NoPrivateKey(key.id.clone()))?;
    let mut values = Vec::new();
    if custom {
        values.push((
            "Policy",
            access::cloudfront::encode_base64(policy_json.as_bytes()),
        ));
    } else {
        values.push(("Expires", expires.to_string()));
    }
    values.push(("Signature", access::cloudfront::encode_base64(&signature)));
    values.push(("Key-Pair-Id", key.id.clone()));
    if opts.sha256 {
        values.push(("Hash-Algorithm", "SHA256".to_string()));
    }
    Ok(values)
}

/// `url` signed as a CloudFront signed URL (canned policy unless `opts` asks for a custom one).
pub fn cloudfront_url(
    config: &Config,
    url: &str,
    opts: &CloudFrontOptions,
    now: u64,
) -> Result<String, MintError> {
    let values = cloudfront_values(config, url, opts, now)?;
    let query: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}{}", query.join("&")))
}

/// CloudFront signed cookies for `url` (or `opts.resource`): `(cookie name, value)` pairs.
pub fn cloudfront_cookies(
    config: &Config,
    url: &str,
    opts: &CloudFrontOptions,
    now: u64,
) -> Result<Vec<(String, String)>, MintError> {
    let values = cloudfront_values(config, url, opts, now)?;
    Ok(values
        .into_iter()
        .map(|(k, v)| (format!("CloudFront-{k}"), v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("MINT_TEST_SECRET", "0123456789abcdef0123456789abcdef");
        let text = format!(
            r#"
            [[listeners]]
            address = "127.0.0.1:0"
            [[auth.hmac.keys]]
            id = "k1"
            secret = {{ env = "MINT_TEST_SECRET" }}
            [backends.files]
            kind = "dir"
            root = "{}"
            [[hosts]]
            names = ["cdn.example.com"]
            [[hosts.routes]]
            path = "/private"
            backend = "files"
            access = "hmac"
            max_token_lifetime = "1h"
            owner_prefix = "/private"
            [[hosts.routes]]
            path = "/"
            backend = "files"
            "#,
            dir.path().display()
        );
        crate::config::from_toml_str(&text, dir.path()).unwrap()
    }

    fn opts(user: Option<&str>, ttl: u64) -> HmacOptions {
        HmacOptions {
            user: user.map(str::to_string),
            ttl: Duration::from_secs(ttl),
            ..HmacOptions::default()
        }
    }

    #[test]
    fn mints_only_what_the_gateway_would_accept() {
        let c = config();
        let url = "https://CDN.example.com/private/u1/a.jpg";
        let minted = hmac_url(&c, url, &opts(Some("u1"), 900), 1_000).unwrap();
        assert!(minted.starts_with("https://CDN.example.com/private/u1/a.jpg?ag_kid=k1&ag_iat=1000&ag_exp=1900&ag_uid=u1&ag_sig="), "{minted}");
        assert!(matches!(
            hmac_url(&c, url, &opts(Some("u1"), 7200), 0),
            Err(MintError::TooLong { .. })
        ));
        assert!(matches!(
            hmac_url(&c, url, &opts(Some("u2"), 60), 0),
            Err(MintError::Owner { .. })
        ));
        assert!(matches!(
            hmac_url(&c, url, &opts(None, 60), 0),
            Err(MintError::Owner { .. })
        ));
        let public = "https://cdn.example.com/pub/a.jpg";
        assert!(matches!(
            hmac_url(&c, public, &opts(None, 60), 0),
            Err(MintError::NotAccepted { .. })
        ));
        assert!(matches!(
            hmac_url(&c, "https://other.example/a", &opts(None, 60), 0),
            Err(MintError::NoRoute(_))
        ));
        assert!(matches!(
            hmac_url(&c, "/private/u1/a", &opts(None, 60), 0),
            Err(MintError::BadUrl(_))
        ));
        assert!(matches!(
            hmac_url(
                &c,
                "https://cdn.example.com/private/../x",
                &opts(None, 60),
                0
            ),
            Err(MintError::BadPath(_))
        ));
    }
}
