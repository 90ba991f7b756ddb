//! Validation of `[auth]` and of each route's access policy.

use super::{item, Validator};
use crate::config::raw::*;
use crate::config::*;
use access::hmac::MIN_SECRET_BYTES;
use access::jwt::{parse_jwks, Algorithm, JwtKey, JwtVerifier, Rules};
use access::revocation::Revocations;
use access::{AccessPolicy, Scheme};
use kit::path::has_prefix;
use kit::units::parse_duration;
use std::collections::BTreeSet;

/// Default longest lifetime of an HMAC token.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Default lifetime of presigned URLs behind admin routes.
const DEFAULT_PRESIGN_TTL: Duration = Duration::from_secs(300);
/// Default clock skew tolerated on issue and not-before times.
const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A secret that keys an HMAC or is compared as a bearer token: at least [`MIN_SECRET_BYTES`].
fn long_secret(raw: &RawSecret, base: &std::path::Path) -> Result<Secret, String> {
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

impl Validator<'_> {
    pub(super) fn auth(&mut self, value: Option<toml::Value>) -> AuthSettings {
        let raw = value
            .and_then(|v| item::<RawAuth>(self.problems, "auth", v))
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
            .and_then(|v| item::<RawHmac>(self.problems, "auth.hmac", v))
            .map(|h| self.hmac(h))
            .unwrap_or_default();
        let cloudfront = raw
            .cloudfront
            .and_then(|v| item::<RawCloudFront>(self.problems, "auth.cloudfront", v))
            .map(|c| self.cloudfront(c))
            .unwrap_or_default();
        let jwt = raw
            .jwt
            .and_then(|v| item::<RawJwt>(self.problems, "auth.jwt", v))
            .map(|j| self.jwt(j))
            .unwrap_or_default();
        let max_token_lifetime = self.duration(
            "auth.max_token_lifetime",
            raw.max_token_lifetime.as_deref(),
            DEFAULT_MAX_LIFETIME,
        );
        AuthSettings {
            clock_skew,
            revocation_file,
            max_token_lifetime,
            hmac,
            cloudfront,
            jwt: std::sync::Arc::new(jwt),
        }
    }

    fn jwt(&mut self, raw: RawJwt) -> JwtVerifier {
        let mut keys = Vec::new();
        self.jwt_keys_declared = raw.keys.len() + raw.jwks_files.as_ref().map_or(0, Vec::len);
        for (i, key) in raw.keys.into_iter().enumerate() {
            let path = format!("auth.jwt.keys[{i}]");
            let Some(algorithm) = Algorithm::parse(&key.algorithm) else {
                self.problems.add(
                    format!("{path}.algorithm"),
                    format!(
                        "\"{}\" is not supported; use HS256, RS256, ES256 or EdDSA",
                        key.algorithm
                    ),
                );
                continue;
            };
            let built = match (algorithm, &key.secret, &key.public_key_file) {
                (Algorithm::Hs256, Some(secret), None) => long_secret(secret, self.base)
                    .map(|s| JwtKey::secret(key.id.clone(), s.expose().as_bytes()))
                    .map_err(|e| (format!("{path}.secret"), e)),
                (Algorithm::Hs256, _, _) => Err((
                    path.clone(),
                    "HS256 takes `secret` (and no public_key_file)".to_string(),
                )),
                (_, None, Some(file)) => {
                    let full = self.resolve(file);
                    std::fs::read(&full)
                        .map_err(|e| format!("cannot read {}: {e}", full.display()))
                        .and_then(|pem| JwtKey::pem(key.id.clone(), algorithm, &pem))
                        .map_err(|e| (format!("{path}.public_key_file"), e))
                }
                (_, _, _) => Err((
                    path.clone(),
                    format!("{} takes `public_key_file` (and no secret)", key.algorithm),
                )),
            };
            match built {
                Ok(k) => keys.push(k),
                Err((at, e)) => self.problems.add(at, e),
            }
        }
        for (i, file) in raw.jwks_files.unwrap_or_default().iter().enumerate() {
            let full = self.resolve(file);
            let parsed = std::fs::read(&full)
                .map_err(|e| format!("cannot read {}: {e}", full.display()))
                .and_then(|json| parse_jwks(&json));
            match parsed {
                Ok(list) => keys.extend(list),
                Err(e) => self.problems.add(format!("auth.jwt.jwks_files[{i}]"), e),
            }
        }
        let leeway = match raw.leeway.as_deref().map(parse_duration) {
            None => Duration::from_secs(30),
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.problems.add("auth.jwt.leeway", e);
                Duration::from_secs(30)
            }
        };
        JwtVerifier {
            keys,
            rules: Rules {
                issuer: raw.issuer,
                audience: raw.audience.unwrap_or_default(),
                leeway: leeway.as_secs(),
                user_claim: raw.user_claim.unwrap_or_else(|| "sub".to_string()),
                cookie: raw.cookie,
            },
        }
    }

    pub(super) fn resolve_settings(
        &mut self,
        value: Option<toml::Value>,
        backends: &BTreeMap<String, String>,
    ) -> ResolveSettings {
        let raw = value
            .and_then(|v| item::<RawResolve>(self.problems, "resolve", v))
            .unwrap_or_default();
        let mut base = |key: &str, value: Option<String>| {
            let v = value?.trim_end_matches('/').to_string();
            let ok = v.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.host().is_some()
                    && u.query().is_none()
            });
            if !ok {
                self.problems.add(
                    format!("resolve.{key}"),
                    format!("\"{v}\" is not a base URL like https://cdn.example.com/assets"),
                );
            }
            Some(v)
        };
        let public_base = base("public_base", raw.public_base);
        let private_base = base("private_base", raw.private_base);
        let private_scheme = match raw.private_scheme.as_deref() {
            None | Some("hmac") => Some(Scheme::Hmac),
            Some("cloudfront") => Some(Scheme::CloudFront),
            Some(other) => {
                self.problems.add(
                    "resolve.private_scheme",
                    format!("\"{other}\" cannot sign URLs; use hmac or cloudfront"),
                );
                None
            }
        };
        let private_ttl = self.duration(
            "resolve.private_ttl",
            raw.private_ttl.as_deref(),
            Duration::from_secs(900),
        );
        if let Some(name) = &raw.admin_backend {
            match backends.get(name).map(String::as_str) {
                Some("s3") => {}
                Some(_) => self.problems.add(
                    "resolve.admin_backend",
                    format!("\"{name}\" is not an s3 backend"),
                ),
                None => self.problems.add(
                    "resolve.admin_backend",
                    format!("unknown backend \"{name}\""),
                ),
            }
        }
        ResolveSettings {
            public_base,
            private_base,
            private_scheme,
            private_ttl,
            admin_backend: raw.admin_backend,
        }
    }

    pub(super) fn admin_access(&mut self, raw: Option<RawAdmin>) -> AdminAccess {
        let Some(raw) = raw else {
            return AdminAccess {
                presign_ttl: DEFAULT_PRESIGN_TTL,
                ..AdminAccess::default()
            };
        };
        let mut ids = BTreeSet::new();
        let mut tokens = Vec::new();
        self.admin_tokens_declared = raw.tokens.len();
        for (i, token) in raw.tokens.iter().enumerate() {
            let path = format!("admin.tokens[{i}]");
            self.key_id(&path, &token.id, &mut ids);
            match long_secret(&token.secret, self.base) {
                Ok(s) => tokens.push((token.id.clone(), s)),
                Err(e) => self.problems.add(format!("{path}.secret"), e),
            }
        }
        let audit_log = raw.audit_log.map(|p| self.resolve(&p));
        match &audit_log {
            None if !raw.tokens.is_empty() => self.problems.add(
                "admin.audit_log",
                "is required with admin tokens: every admin action is audited",
            ),
            Some(p) => {
                if let Err(e) = crate::audit::AuditLog::check(p) {
                    self.problems.add("admin.audit_log", e);
                }
            }
            None => {}
        }
        let metrics_token = raw.metrics_token.as_ref().and_then(|s| {
            Secret::resolve(s, self.base)
                .map_err(|e| self.problems.add("admin.metrics_token", e))
                .ok()
        });
        let presign_ttl = self.duration(
            "admin.presign_ttl",
            raw.presign_ttl.as_deref(),
            DEFAULT_PRESIGN_TTL,
        );
        if presign_ttl > Duration::from_secs(7 * 86_400) {
            self.problems
                .add("admin.presign_ttl", "is longer than S3's limit of 7d");
        }
        AdminAccess {
            tokens,
            audit_log,
            metrics_token,
            presign_ttl,
        }
    }

    /// Checks a key id's spelling and that `ids` (the ids seen so far) does not hold it yet.
    fn key_id(&mut self, path: &str, id: &str, ids: &mut BTreeSet<String>) {
        if !valid_key_id(id) {
            self.problems.add(
                format!("{path}.id"),
                format!("\"{id}\" is not a key id: 1 to 64 of A-Z a-z 0-9 . _ -"),
            );
        }
        if !ids.insert(id.to_string()) {
            self.problems
                .add(format!("{path}.id"), format!("\"{id}\" is used twice"));
        }
    }

    fn hmac(&mut self, raw: RawHmac) -> HmacSettings {
        let mut keys = Vec::new();
        let mut ids = BTreeSet::new();
        self.hmac_keys_declared = raw.keys.len();
        for (i, key) in raw.keys.into_iter().enumerate() {
            let path = format!("auth.hmac.keys[{i}]");
            self.key_id(&path, &key.id, &mut ids);
            match long_secret(&key.secret, self.base) {
                Ok(s) => keys.push((key.id, s)),
                Err(e) => self.problems.add(format!("{path}.secret"), e),
            }
        }
        let retired = raw.retired.unwrap_or_default();
        for (i, id) in retired.iter().enumerate() {
            if ids.contains(id) {
                self.problems.add(
                    format!("auth.hmac.retired[{i}]"),
                    format!("\"{id}\" is also an active key; remove it from one of the lists"),
                );
            }
        }
        HmacSettings { keys, retired }
    }

    fn cloudfront(&mut self, raw: RawCloudFront) -> CloudFrontSettings {
        let mut keys = Vec::new();
        let mut ids = BTreeSet::new();
        self.cloudfront_keys_declared = raw.keys.len();
        for (i, key) in raw.keys.into_iter().enumerate() {
            let path = format!("auth.cloudfront.keys[{i}]");
            self.key_id(&path, &key.id, &mut ids);
            let file = self.resolve(&key.public_key_file);
            let public_pem = match std::fs::read(&file) {
                Ok(pem) => match access::cloudfront::public_key(&pem) {
                    Ok(_) => pem,
                    Err(e) => {
                        self.problems.add(format!("{path}.public_key_file"), e);
                        continue;
                    }
                },
                Err(e) => {
                    self.problems.add(
                        format!("{path}.public_key_file"),
                        format!("cannot read {}: {e}", file.display()),
                    );
                    continue;
                }
            };
            let private_pem =
                key.private_key
                    .as_ref()
                    .and_then(|raw| match Secret::resolve(raw, self.base) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            self.problems.add(format!("{path}.private_key"), e);
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

    /// A route's access policy; `route_path` is what the route matches, to check `owner_prefix`
    /// against.
    pub(super) fn access(
        &mut self,
        path: &str,
        raw: &RawRoute,
        route_path: Option<&str>,
        auth: &AuthSettings,
        public_url: Option<&str>,
        backend_kind: Option<&str>,
    ) -> AccessPolicy {
        let schemes = self.access_schemes(path, raw.access.as_ref(), backend_kind);
        let max_lifetime = self.duration(
            &format!("{path}.max_token_lifetime"),
            raw.max_token_lifetime.as_deref(),
            auth.max_token_lifetime,
        );
        let owner_prefix = raw
            .owner_prefix
            .as_ref()
            .and_then(|p| self.owner_prefix(path, p, &schemes, route_path));
        if raw.max_token_lifetime.is_some() && schemes.is_empty() {
            self.problems.add(
                format!("{path}.max_token_lifetime"),
                "has no effect on a public route",
            );
        }
        AccessPolicy::new(
            schemes,
            max_lifetime,
            owner_prefix,
            public_url.map(str::to_string),
        )
    }

    /// A route's `access`: a scheme name or a list of them, each with the keys it needs
    /// declared (and, for admin, an s3 backend to presign with).
    fn access_schemes(
        &mut self,
        path: &str,
        access: Option<&toml::Value>,
        backend_kind: Option<&str>,
    ) -> Vec<Scheme> {
        let names: Vec<String> = match access {
            None => Vec::new(),
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(toml::Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect(),
            Some(_) => {
                self.problems.add(
                    format!("{path}.access"),
                    "must be a scheme name or a list of them, e.g. \"hmac\"",
                );
                Vec::new()
            }
        };
        let mut schemes = Vec::new();
        for name in &names {
            match (name.as_str(), Scheme::parse(name)) {
                ("public", _) if names.len() == 1 => {}
                ("public", _) => self.problems.add(
                    format!("{path}.access"),
                    "\"public\" cannot be combined with other schemes",
                ),
                (_, Some(s)) if schemes.contains(&s) => self.problems.add(
                    format!("{path}.access"),
                    format!("\"{name}\" is listed twice"),
                ),
                (_, Some(s)) => schemes.push(s),
                (_, None) => self.problems.add(
                    format!("{path}.access"),
                    format!(
                        "\"{name}\" is not an access scheme; use public, hmac, cloudfront, jwt or admin"
                    ),
                ),
            }
        }
        if schemes.contains(&Scheme::Hmac) && self.hmac_keys_declared == 0 {
            self.problems.add(
                format!("{path}.access"),
                "hmac needs at least one key in [[auth.hmac.keys]]",
            );
        }
        if schemes.contains(&Scheme::Admin) {
            if self.admin_tokens_declared == 0 {
                self.problems.add(
                    format!("{path}.access"),
                    "admin needs tokens in [[admin.tokens]]",
                );
            }
            if backend_kind.is_some_and(|k| k != "s3") {
                self.problems.add(
                    format!("{path}.access"),
                    "admin redirects to an S3 presigned URL: the route's backend must be s3",
                );
            }
        }
        if schemes.contains(&Scheme::Jwt) && self.jwt_keys_declared == 0 {
            self.problems.add(
                format!("{path}.access"),
                "jwt needs keys in [[auth.jwt.keys]] or auth.jwt.jwks_files",
            );
        }
        if schemes.contains(&Scheme::CloudFront) && self.cloudfront_keys_declared == 0 {
            self.problems.add(
                format!("{path}.access"),
                "cloudfront needs at least one key in [[auth.cloudfront.keys]]",
            );
        }
        schemes
    }

    /// A route's `owner_prefix`: inside the route's path, with a scheme that names a user.
    fn owner_prefix(
        &mut self,
        path: &str,
        prefix: &str,
        schemes: &[Scheme],
        route_path: Option<&str>,
    ) -> Option<String> {
        let opath = format!("{path}.owner_prefix");
        let p = self
            .route_path(&opath, prefix)?
            .trim_end_matches('/')
            .to_string();
        if !schemes.contains(&Scheme::Hmac) && !schemes.contains(&Scheme::Jwt) {
            self.problems.add(
                &opath,
                "needs an access scheme that names a user (hmac, jwt)",
            );
        }
        if schemes.contains(&Scheme::CloudFront) {
            self.problems.add(
                &opath,
                "cannot be used with cloudfront: its signatures name no user (the policy's Resource scopes them)",
            );
        }
        if route_path.is_some_and(|r| !has_prefix(&p, r)) {
            self.problems
                .add(&opath, "must lie inside the route's path");
        }
        Some(p)
    }
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
