//! The access checks that span domains: `[admin]` credentials (with the audit log the
//! application writes), `[resolve]` (it names a backend) and each route's access policy (the
//! keys `[auth]` declares, the route's backend kind). `[auth]` itself is checked by the access
//! crate (`access::config`).

use super::Validator;
use crate::config::raw::*;
use crate::config::*;
use access::config::{key_id, long_secret};
use access::{AccessPolicy, Scheme};
use kit::path::has_prefix;
use std::collections::BTreeSet;

/// Default lifetime of presigned URLs behind admin routes.
const DEFAULT_PRESIGN_TTL: Duration = Duration::from_secs(300);

impl Validator<'_> {
    pub(super) fn resolve_settings(
        &mut self,
        value: Option<toml::Value>,
        backends: &BTreeMap<String, String>,
    ) -> ResolveSettings {
        let raw = value
            .and_then(|v| self.check().item::<RawResolve>("resolve", v))
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
        let private_ttl = self.check().duration(
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
            key_id(&mut self.check(), &path, &token.id, &mut ids);
            match long_secret(&token.secret, self.base) {
                Ok(s) => tokens.push((token.id.clone(), s)),
                Err(e) => self.problems.add(format!("{path}.secret"), e),
            }
        }
        let audit_log = raw.audit_log.map(|p| self.check().resolve(&p));
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
        let presign_ttl = self.check().duration(
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
        let max_lifetime = self.check().duration(
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
        if schemes.contains(&Scheme::Hmac) && self.declared_keys.hmac_keys == 0 {
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
        if schemes.contains(&Scheme::Jwt) && self.declared_keys.jwt_keys == 0 {
            self.problems.add(
                format!("{path}.access"),
                "jwt needs keys in [[auth.jwt.keys]] or auth.jwt.jwks_files",
            );
        }
        if schemes.contains(&Scheme::CloudFront) && self.declared_keys.cloudfront_keys == 0 {
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
            .check()
            .normal_path(&opath, prefix)?
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
