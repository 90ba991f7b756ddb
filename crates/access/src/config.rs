//! The config of access control: `[auth]` (HMAC keys, CloudFront public keys, JWT keys and
//! rules, the revocation list), as written (serde structs that refuse unknown keys) and as
//! checked into [`AuthSettings`]. Key files are read and checked to parse; the runtime keys are
//! made later, by [`crate::Authenticator::from_config`]. A route's access policy is the
//! application's check: it names keys declared here and a backend's kind.

use crate::hmac::MIN_SECRET_BYTES;
use crate::jwt::{Algorithm, JwtKeySource, JwtSettings, Rules};
use crate::revocation::Revocations;
use crate::settings::{AuthSettings, CloudFrontKey, CloudFrontSettings, HmacSettings};
use kit::problems::Check;
use kit::secret::{RawSecret, Secret};
use kit::units::parse_duration;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

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

/// Default longest lifetime of an HMAC token.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Default clock skew tolerated on issue and not-before times.
const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How many keys of each scheme the config declares, readable or not (so a route that needs
/// one is refused only when none was written, and an unreadable secret is reported once).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeclaredKeys {
    /// `[[auth.hmac.keys]]` entries.
    pub hmac_keys: usize,
    /// `[[auth.cloudfront.keys]]` entries.
    pub cloudfront_keys: usize,
    /// `[[auth.jwt.keys]]` entries and JWKS files.
    pub jwt_keys: usize,
}

/// A secret that keys an HMAC or is compared as a bearer token: at least [`MIN_SECRET_BYTES`].
pub fn long_secret(raw: &RawSecret, base: &std::path::Path) -> Result<Secret, String> {
    let secret = Secret::resolve(raw, base)?;
    let len = secret.expose().len();
    if len < MIN_SECRET_BYTES {
        return Err(format!(
            "is {len} bytes; use at least {MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)"
        ));
    }
    Ok(secret)
}

/// Whether a key id is 1 to 64 of `A-Z a-z 0-9 . _ -`.
fn valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks `[auth]`; every problem goes to the [`Check`] with its key path.
pub trait CheckAccess {
    /// `[auth]`; see [`RawAuth`] for each key's meaning and default.
    fn auth(&mut self, value: Option<toml::Value>) -> (AuthSettings, DeclaredKeys);
}

impl CheckAccess for Check<'_> {
    fn auth(&mut self, value: Option<toml::Value>) -> (AuthSettings, DeclaredKeys) {
        let mut declared = DeclaredKeys::default();
        let raw = value
            .and_then(|v| self.item::<RawAuth>("auth", v))
            .unwrap_or_default();
        let clock_skew = match raw.clock_skew.as_deref().map(parse_duration) {
            None => DEFAULT_CLOCK_SKEW,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.problems.add("auth.clock_skew", e);
                DEFAULT_CLOCK_SKEW
            }
        };
        let revocation_file = raw.revocation_file.map(|f| {
            let full = self.resolve(&f);
            if let Err(e) = Revocations::load(&full) {
                self.problems.add("auth.revocation_file", e);
            }
            full
        });
        let hmac = raw
            .hmac
            .and_then(|v| self.item::<RawHmac>("auth.hmac", v))
            .map(|h| hmac(self, h, &mut declared))
            .unwrap_or_default();
        let cloudfront = raw
            .cloudfront
            .and_then(|v| self.item::<RawCloudFront>("auth.cloudfront", v))
            .map(|c| cloudfront(self, c, &mut declared))
            .unwrap_or_default();
        let jwt = raw
            .jwt
            .and_then(|v| self.item::<RawJwt>("auth.jwt", v))
            .map(|j| jwt(self, j, &mut declared))
            .unwrap_or_default();
        let max_token_lifetime = self.duration(
            "auth.max_token_lifetime",
            raw.max_token_lifetime.as_deref(),
            DEFAULT_MAX_LIFETIME,
        );
        let settings = AuthSettings {
            clock_skew,
            revocation_file,
            max_token_lifetime,
            hmac,
            cloudfront,
            jwt,
        };
        (settings, declared)
    }
}

/// Checks a key id's spelling and that `ids` (the ids seen so far) does not hold it yet.
pub fn key_id(cx: &mut Check<'_>, path: &str, id: &str, ids: &mut BTreeSet<String>) {
    if !valid_key_id(id) {
        cx.problems.add(
            format!("{path}.id"),
            format!("\"{id}\" is not a key id: 1 to 64 of A-Z a-z 0-9 . _ -"),
        );
    }
    if !ids.insert(id.to_string()) {
        cx.problems
            .add(format!("{path}.id"), format!("\"{id}\" is used twice"));
    }
}

/// `[auth.hmac]`.
fn hmac(cx: &mut Check<'_>, raw: RawHmac, declared: &mut DeclaredKeys) -> HmacSettings {
    let mut keys = Vec::new();
    let mut ids = BTreeSet::new();
    declared.hmac_keys = raw.keys.len();
    for (i, key) in raw.keys.into_iter().enumerate() {
        let path = format!("auth.hmac.keys[{i}]");
        key_id(cx, &path, &key.id, &mut ids);
        match long_secret(&key.secret, cx.base) {
            Ok(s) => keys.push((key.id, s)),
            Err(e) => cx.problems.add(format!("{path}.secret"), e),
        }
    }
    let retired = raw.retired.unwrap_or_default();
    for (i, id) in retired.iter().enumerate() {
        if ids.contains(id) {
            cx.problems.add(
                format!("auth.hmac.retired[{i}]"),
                format!("\"{id}\" is also an active key; remove it from one of the lists"),
            );
        }
    }
    HmacSettings { keys, retired }
}

/// `[auth.cloudfront]`: each public key read and checked to parse.
fn cloudfront(
    cx: &mut Check<'_>,
    raw: RawCloudFront,
    declared: &mut DeclaredKeys,
) -> CloudFrontSettings {
    let mut keys = Vec::new();
    let mut ids = BTreeSet::new();
    declared.cloudfront_keys = raw.keys.len();
    for (i, key) in raw.keys.into_iter().enumerate() {
        let path = format!("auth.cloudfront.keys[{i}]");
        key_id(cx, &path, &key.id, &mut ids);
        let file = cx.resolve(&key.public_key_file);
        let public_pem = match std::fs::read(&file) {
            Ok(pem) => match crate::cloudfront::public_key(&pem) {
                Ok(_) => pem,
                Err(e) => {
                    cx.problems.add(format!("{path}.public_key_file"), e);
                    continue;
                }
            },
            Err(e) => {
                cx.problems.add(
                    format!("{path}.public_key_file"),
                    format!("cannot read {}: {e}", file.display()),
                );
                continue;
            }
        };
        let private_pem =
            key.private_key
                .as_ref()
                .and_then(|raw| match Secret::resolve(raw, cx.base) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        cx.problems.add(format!("{path}.private_key"), e);
                        None
                    }
                });
        keys.push(CloudFrontKey {
            id: key.id,
            public_pem,
            private_pem,
        });
    }
    CloudFrontSettings { keys }
}

/// `[auth.jwt]`: every key source read and checked to give keys (the verifier itself is made
/// at start, by [`JwtVerifier::build`]).
fn jwt(cx: &mut Check<'_>, raw: RawJwt, declared: &mut DeclaredKeys) -> JwtSettings {
    let mut sources = Vec::new();
    declared.jwt_keys = raw.keys.len() + raw.jwks_files.as_ref().map_or(0, Vec::len);
    for (i, key) in raw.keys.into_iter().enumerate() {
        let path = format!("auth.jwt.keys[{i}]");
        let Some(algorithm) = Algorithm::parse(&key.algorithm) else {
            cx.problems.add(
                format!("{path}.algorithm"),
                format!(
                    "\"{}\" is not supported; use HS256, RS256, ES256 or EdDSA",
                    key.algorithm
                ),
            );
            continue;
        };
        let source = match (algorithm, &key.secret, &key.public_key_file) {
            (Algorithm::Hs256, Some(secret), None) => long_secret(secret, cx.base)
                .map(|secret| JwtKeySource::Secret {
                    id: key.id.clone(),
                    secret,
                })
                .map_err(|e| (format!("{path}.secret"), e)),
            (Algorithm::Hs256, _, _) => Err((
                path.clone(),
                "HS256 takes `secret` (and no public_key_file)".to_string(),
            )),
            (_, None, Some(file)) => read(cx, file)
                .map(|pem| JwtKeySource::Pem {
                    id: key.id.clone(),
                    algorithm,
                    pem,
                })
                .map_err(|e| (format!("{path}.public_key_file"), e)),
            (_, _, _) => Err((
                path.clone(),
                format!("{} takes `public_key_file` (and no secret)", key.algorithm),
            )),
        };
        match source.and_then(|s| checked(s).map_err(|e| (format!("{path}.public_key_file"), e))) {
            Ok(s) => sources.push(s),
            Err((at, e)) => cx.problems.add(at, e),
        }
    }
    for (i, file) in raw.jwks_files.unwrap_or_default().iter().enumerate() {
        match read(cx, file).map(JwtKeySource::Jwks).and_then(checked) {
            Ok(s) => sources.push(s),
            Err(e) => cx.problems.add(format!("auth.jwt.jwks_files[{i}]"), e),
        }
    }
    let leeway = match raw.leeway.as_deref().map(parse_duration) {
        None => Duration::from_secs(30),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            cx.problems.add("auth.jwt.leeway", e);
            Duration::from_secs(30)
        }
    };
    JwtSettings {
        sources,
        rules: Rules {
            issuer: raw.issuer,
            audience: raw.audience.unwrap_or_default(),
            leeway: leeway.as_secs(),
            user_claim: raw.user_claim.unwrap_or_else(|| "sub".to_string()),
            cookie: raw.cookie,
        },
    }
}

/// A file the config names, read whole.
fn read(cx: &Check<'_>, file: &std::path::Path) -> Result<Vec<u8>, String> {
    let full = cx.resolve(file);
    std::fs::read(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
}

/// `source` when its keys can be made (they are made again, and kept, at start).
fn checked(source: JwtKeySource) -> Result<JwtKeySource, String> {
    source.keys().map(|_| source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids() {
        assert!(valid_key_id("k1.2024-06_a"));
        assert!(!valid_key_id(""));
        assert!(!valid_key_id("k 1"));
        assert!(!valid_key_id(&"k".repeat(65)));
    }
}
