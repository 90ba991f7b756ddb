//! Access policies: which requests may read a route.
//!
//! Each route carries an [`AccessPolicy`]: the schemes it accepts (none means public), the
//! longest token lifetime it accepts and, optionally, an owner prefix. The proxy calls
//! [`Authenticator::check`] right after the route matched (and after a CORS preflight was
//! answered: browsers send those without credentials), before anything is read from a cache
//! or a backend. A scheme's verifier is a pure function of the request parts, its keys and the
//! time (one file per scheme: [`hmac`]); this module picks the scheme, applies what is common
//! (revocation, the owner prefix) and names every denial with a [`Reason`].
//!
//! A credential that is present but invalid is denied; it is never passed on to the route's
//! next scheme. Credential parameters are removed from the query before it goes upstream
//! ([`AccessPolicy::strip`]).

pub mod admin;
pub mod cloudfront;
pub mod config;
pub mod hmac;
pub mod jwt;
pub mod metrics;
pub mod revocation;
pub mod settings;

use http::Method;
use kit::path::has_prefix;
use revocation::Revocations;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// A way to prove access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// assetgate's HMAC-signed URLs ([`hmac`]).
    Hmac,
    /// CloudFront-compatible RSA signed URLs and cookies ([`cloudfront`]).
    CloudFront,
    /// JSON Web Tokens in `Authorization: Bearer` or a cookie ([`jwt`]).
    Jwt,
    /// An admin token ([`admin`]); the request is answered with a redirect to an S3 presigned
    /// URL instead of the object.
    Admin,
}

impl Scheme {
    /// Name used in config, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Hmac => "hmac",
            Scheme::CloudFront => "cloudfront",
            Scheme::Jwt => "jwt",
            Scheme::Admin => "admin",
        }
    }

    /// Parses a scheme name as written in a route's `access`.
    pub fn parse(name: &str) -> Option<Scheme> {
        match name {
            "hmac" => Some(Scheme::Hmac),
            "cloudfront" => Some(Scheme::CloudFront),
            "jwt" => Some(Scheme::Jwt),
            "admin" => Some(Scheme::Admin),
            _ => None,
        }
    }

    /// Query parameters that carry this scheme's credential.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Scheme::Hmac => &hmac::PARAMS,
            Scheme::CloudFront => &cloudfront::PARAMS,
            Scheme::Jwt | Scheme::Admin => &[],
        }
    }

    /// Whether the request carries a credential of this scheme (it may still be invalid).
    fn present(self, req: &AccessRequest<'_>, auth: &Authenticator) -> bool {
        match self {
            Scheme::Jwt => jwt::present(req, &auth.jwt.rules),
            // An admin route's bearer token, unless a JWT scheme on the same route claims it.
            Scheme::Admin => req.headers.contains_key(http::header::AUTHORIZATION),
            Scheme::Hmac => req.query.is_some_and(|q| {
                kit::params::pairs(q).any(|(name, _)| self.params().contains(&name))
            }),
            Scheme::CloudFront => cloudfront::present(req),
        }
    }
}

/// Why a request was denied. Every reason has a stable label for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No credential of any scheme the route accepts (401).
    Missing,
    /// A credential is present but cannot be parsed, or misses a required part.
    Malformed,
    /// A credential parameter appears more than once.
    Duplicated,
    /// The key id is not configured.
    UnknownKey,
    /// The key id has been retired.
    RetiredKey,
    /// The signature does not match what was signed (tampering, or another host or path), or
    /// the algorithm is not the key's.
    BadSignature,
    /// The token's issuer is not the configured one.
    WrongIssuer,
    /// The token's audience does not include a configured one.
    WrongAudience,
    /// The credential has expired.
    Expired,
    /// The credential is not valid yet (`nbf`).
    NotYetValid,
    /// The issue time lies in the future beyond the allowed clock skew.
    IssuedInFuture,
    /// Expiry minus issue time exceeds the route's maximum lifetime.
    LifetimeTooLong,
    /// The token, its key or its user is on the revocation list.
    Revoked,
    /// The client address is not the one the credential is bound to.
    WrongClient,
    /// The method is not one the credential allows.
    WrongMethod,
    /// The path is outside the prefix the credential grants.
    WrongPath,
    /// The path's owner segment is not the credential's user.
    WrongOwner,
}

impl Reason {
    /// 401 when no credential was presented, 403 for every credential that was.
    pub fn status(self) -> u16 {
        if self == Reason::Missing {
            401
        } else {
            403
        }
    }

    /// Stable label (`reason` in `assetgate_auth_denied_total`).
    pub fn label(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::Duplicated => "duplicated",
            Reason::UnknownKey => "unknown_key",
            Reason::RetiredKey => "retired_key",
            Reason::BadSignature => "bad_signature",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::IssuedInFuture => "issued_in_future",
            Reason::LifetimeTooLong => "lifetime_too_long",
            Reason::Revoked => "revoked",
            Reason::WrongClient => "wrong_client",
            Reason::WrongMethod => "wrong_method",
            Reason::WrongPath => "wrong_path",
            Reason::WrongOwner => "wrong_owner",
        }
    }

    /// One line for the response body; says what to fix without echoing the credential.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Missing => "credentials required",
            Reason::Malformed => "malformed credentials",
            Reason::Duplicated => "credential parameter given more than once",
            Reason::UnknownKey => "unknown key id",
            Reason::RetiredKey => "key id has been retired",
            Reason::BadSignature => "signature does not match",
            Reason::WrongIssuer => "token issuer not accepted",
            Reason::WrongAudience => "token audience not accepted",
            Reason::Expired => "credentials expired",
            Reason::NotYetValid => "credentials not valid yet",
            Reason::IssuedInFuture => "credentials issued in the future",
            Reason::LifetimeTooLong => "credential lifetime exceeds the route's maximum",
            Reason::Revoked => "credentials revoked",
            Reason::WrongClient => "credentials bound to another client address",
            Reason::WrongMethod => "credentials do not allow this method",
            Reason::WrongPath => "credentials do not cover this path",
            Reason::WrongOwner => "credentials belong to another owner",
        }
    }
}

/// A denied request: the scheme whose credential failed (`none` when none was presented) and
/// why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// Scheme label (`scheme` in `assetgate_auth_denied_total`).
    pub scheme: &'static str,
    /// Why.
    pub reason: Reason,
    /// `WWW-Authenticate` value for a 401, when an accepted scheme defines one (bearer tokens).
    pub challenge: Option<&'static str>,
}

impl Denied {
    /// The HTTP status: see [`Reason::status`].
    pub fn status(self) -> u16 {
        self.reason.status()
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason.message())
    }
}

/// What a valid credential established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The scheme that verified it.
    pub scheme: Scheme,
    /// The key that signed it.
    pub key_id: Option<String>,
    /// The user it speaks for.
    pub user: Option<String>,
    /// Its id, for revocation.
    pub token_id: Option<String>,
    /// When it expires (Unix seconds); `None` for credentials without an expiry (admin
    /// tokens). Bounds how long a client may keep what it granted (private variants).
    pub expires_at: Option<u64>,
}

/// The parts of a request the verifiers read.
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Host, lower-case, without port or trailing dot.
    pub host: &'a str,
    /// The normalised path (the one routing and object keys use).
    pub path: &'a str,
    /// The path exactly as sent (for schemes that sign the raw URL).
    pub raw_path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The request headers (cookies, `Authorization`).
    pub headers: &'a http::HeaderMap,
    /// The Host (authority) as sent, port included.
    pub authority: &'a str,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// The derived client address.
    pub client: Option<IpAddr>,
    /// Now, in Unix seconds.
    pub now: u64,
}

/// The token of the one `Authorization: Bearer` header, if any; a second bearer header or one
/// that is not text is refused.
pub fn bearer(headers: &http::HeaderMap) -> Result<Option<&str>, Reason> {
    let mut bearer = None;
    for value in headers.get_all(http::header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| Reason::Malformed)?;
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            if bearer.is_some() {
                return Err(Reason::Duplicated);
            }
            bearer = Some(rest.trim());
        }
    }
    Ok(bearer)
}

/// One route's access rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Accepted schemes, in the order they are tried; empty means public.
    pub schemes: Vec<Scheme>,
    /// Longest credential lifetime accepted (`exp − iat`).
    pub max_lifetime: Duration,
    /// Paths under this prefix belong to the user named by their next segment
    /// (`/private` + `/private/{user}/...`).
    pub owner_prefix: Option<String>,
    /// The host's `public_url` (`scheme://name`), the start of CloudFront resource URLs.
    pub public_url: Option<String>,
    /// Every credential parameter of the accepted schemes (removed before going upstream).
    params: Vec<&'static str>,
}

impl AccessPolicy {
    /// A policy accepting `schemes` (empty: public).
    pub fn new(
        schemes: Vec<Scheme>,
        max_lifetime: Duration,
        owner_prefix: Option<String>,
        public_url: Option<String>,
    ) -> AccessPolicy {
        let params = schemes.iter().flat_map(|s| s.params()).copied().collect();
        AccessPolicy {
            schemes,
            max_lifetime,
            owner_prefix,
            public_url,
            params,
        }
    }

    /// Whether anyone may read the route.
    pub fn is_public(&self) -> bool {
        self.schemes.is_empty()
    }

    /// The query without this policy's credential parameters (what upstreams and cache keys see).
    pub fn strip<'q>(&self, query: Option<&'q str>) -> Option<Cow<'q, str>> {
        kit::params::strip(query, &self.params)
    }

    /// The owner of `path`: `None` when the route has no owner prefix, `Some(None)` when the
    /// path names no owner under it, `Some(Some(user))` otherwise.
    pub fn owner<'p>(&self, path: &'p str) -> Option<Option<&'p str>> {
        let prefix = self.owner_prefix.as_deref()?;
        if !has_prefix(path, prefix) {
            return Some(None);
        }
        let rest = path[prefix.len()..].trim_start_matches('/');
        Some(rest.split('/').next().filter(|s| !s.is_empty()))
    }
}

/// Keys and lists shared by every route's checks.
#[derive(Debug)]
pub struct Authenticator {
    /// HMAC keys.
    pub hmac: hmac::HmacKeys,
    /// CloudFront key group.
    pub cloudfront: cloudfront::CloudFrontKeys,
    /// JWT keys and rules.
    pub jwt: Arc<jwt::JwtVerifier>,
    /// Admin tokens.
    pub admin: admin::AdminTokens,
    /// Clock difference tolerated on issue and not-before times.
    pub clock_skew: Duration,
    /// The revocation list in force.
    pub revocations: Arc<Revocations>,
}

impl Authenticator {
    /// Builds the keys and loads the revocation list from a validated config.
    pub fn from_config(
        settings: &settings::AuthSettings,
        admin: &settings::AdminAccess,
    ) -> Result<Authenticator, String> {
        let revocations = match &settings.revocation_file {
            Some(file) => Revocations::load(file)?,
            None => Revocations::none(),
        };
        let hmac = hmac::HmacKeys::new(
            settings
                .hmac
                .keys
                .iter()
                .map(|(id, secret)| (id.as_str(), secret.expose().as_bytes())),
            settings.hmac.retired.iter().map(String::as_str),
        );
        let cloudfront = cloudfront::CloudFrontKeys::new(
            settings
                .cloudfront
                .keys
                .iter()
                .map(|k| (k.id.as_str(), k.public_pem.as_slice())),
        )?;
        Ok(Authenticator {
            hmac,
            cloudfront,
            jwt: Arc::new(jwt::JwtVerifier::build(&settings.jwt)?),
            admin: admin::AdminTokens::new(
                admin
                    .tokens
                    .iter()
                    .map(|(id, secret)| (id.as_str(), secret.expose())),
            ),
            clock_skew: settings.clock_skew,
            revocations: Arc::new(revocations),
        })
    }

    /// The service that re-reads the revocation file, when there is one.
    pub fn reload_service(
        &self,
        metrics: &metrics::AccessMetrics,
    ) -> Option<revocation::ReloadService> {
        self.revocations
            .has_file()
            .then(|| revocation::ReloadService::new(self.revocations.clone(), metrics))
    }

    /// Decides whether `req` may read a route with `policy`: `Ok(None)` for a public route,
    /// `Ok(Some(grant))` for a valid credential.
    pub fn check(
        &self,
        policy: &AccessPolicy,
        req: &AccessRequest<'_>,
    ) -> Result<Option<Grant>, Denied> {
        if policy.is_public() {
            return Ok(None);
        }
        let Some(scheme) = policy
            .schemes
            .iter()
            .copied()
            .find(|s| s.present(req, self))
        else {
            return Err(Denied {
                scheme: "none",
                reason: Reason::Missing,
                challenge: policy
                    .schemes
                    .iter()
                    .any(|s| matches!(s, Scheme::Jwt | Scheme::Admin))
                    .then_some("Bearer realm=\"assetgate\""),
            });
        };
        let denied = |reason| Denied {
            scheme: scheme.name(),
            reason,
            challenge: None,
        };
        let grant = match scheme {
            Scheme::Hmac => {
                let limits = hmac::Limits {
                    max_lifetime: policy.max_lifetime.as_secs(),
                    skew: self.clock_skew.as_secs(),
                };
                hmac::verify(&self.hmac, req, limits).map_err(denied)?
            }
            Scheme::CloudFront => cloudfront::verify(
                &self.cloudfront,
                req,
                policy.public_url.as_deref(),
                policy.max_lifetime.as_secs(),
                self.clock_skew.as_secs(),
            )
            .map_err(denied)?,
            Scheme::Jwt => {
                jwt::verify(&self.jwt, req, policy.max_lifetime.as_secs()).map_err(denied)?
            }
            Scheme::Admin => {
                let id = self.admin.authenticate(req.headers).map_err(denied)?;
                Grant {
                    scheme: Scheme::Admin,
                    key_id: Some(id.to_string()),
                    user: None,
                    token_id: None,
                    expires_at: None,
                }
            }
        };
        let revoked = self.revocations.refuses(
            grant.key_id.as_deref(),
            grant.token_id.as_deref(),
            grant.user.as_deref(),
        );
        if revoked {
            return Err(denied(Reason::Revoked));
        }
        if let Some(owner) = policy.owner(req.path) {
            if owner.is_none() || owner != grant.user.as_deref() {
                return Err(denied(Reason::WrongOwner));
            }
        }
        Ok(Some(grant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn authenticator(revoked: &str) -> Authenticator {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("revoked");
        std::fs::write(&file, revoked).unwrap();
        Authenticator {
            hmac: hmac::HmacKeys::new([("k1", SECRET)], []),
            cloudfront: cloudfront::CloudFrontKeys::default(),
            jwt: Arc::default(),
            admin: admin::AdminTokens::default(),
            clock_skew: Duration::from_secs(60),
            revocations: Arc::new(Revocations::load(&file).unwrap()),
        }
    }

    fn policy() -> AccessPolicy {
        AccessPolicy::new(
            vec![Scheme::Hmac],
            Duration::from_secs(3600),
            Some("/private".into()),
            None,
        )
    }

    fn token(path: &str, user: &str, token_id: Option<&str>) -> String {
        hmac::Claims {
            key_id: "k1".into(),
            host: "cdn.example.com".into(),
            scope: hmac::Scope::Path(path.to_string().into()),
            issued_at: 1_000,
            expires_at: 1_900,
            not_before: None,
            ip: None,
            user: Some(user.to_string().into()),
            token_id: token_id.map(|t| t.to_string().into()),
            methods: None,
        }
        .to_query(SECRET)
    }

    fn request<'a>(path: &'a str, query: Option<&'a str>) -> AccessRequest<'a> {
        AccessRequest {
            method: &Method::GET,
            host: "cdn.example.com",
            path,
            raw_path: path,
            query,
            headers: Box::leak(Box::default()),
            authority: "cdn.example.com",
            tls: true,
            client: None,
            now: 1_100,
        }
    }

    #[test]
    fn missing_is_401_and_invalid_is_403() {
        let auth = authenticator("");
        let denied = auth
            .check(&policy(), &request("/private/u1/a", None))
            .unwrap_err();
        assert_eq!((denied.status(), denied.scheme), (401, "none"));
        let q = Some("ag_sig=AAAA");
        let denied = auth
            .check(&policy(), &request("/private/u1/a", q))
            .unwrap_err();
        assert_eq!((denied.status(), denied.reason), (403, Reason::Malformed));
        let public = AccessPolicy::default();
        assert_eq!(auth.check(&public, &request("/x", None)), Ok(None));
    }

    #[test]
    fn owners_read_only_their_own_prefix() {
        let auth = authenticator("");
        let q = token("/private/u1/a.jpg", "u1", None);
        assert!(auth
            .check(&policy(), &request("/private/u1/a.jpg", Some(&q)))
            .is_ok());
        // A valid token for user u1 that names a path of user u2 (a mis-issued token).
        let q = token("/private/u2/a.jpg", "u1", None);
        let denied = auth
            .check(&policy(), &request("/private/u2/a.jpg", Some(&q)))
            .unwrap_err();
        assert_eq!(denied.reason, Reason::WrongOwner);
        let q = token("/private", "u1", None);
        let denied = auth
            .check(&policy(), &request("/private", Some(&q)))
            .unwrap_err();
        assert_eq!(denied.reason, Reason::WrongOwner);
    }

    #[test]
    fn revoked_tokens_users_and_keys_are_refused() {
        let q = token("/private/u1/a.jpg", "u1", Some("t-9"));
        let r = request("/private/u1/a.jpg", Some(&q));
        for list in ["token t-9", "user u1", "key k1"] {
            let denied = authenticator(list).check(&policy(), &r).unwrap_err();
            assert_eq!(denied.reason, Reason::Revoked, "{list}");
        }
        assert!(authenticator("token t-8").check(&policy(), &r).is_ok());
    }

    /// Query strings, cookies and Authorization headers made of the credential vocabulary of
    /// every scheme, shuffled with hostile bytes: every combination gets a decision, never a
    /// panic, on a route that accepts all schemes.
    mod hostile {
        use super::*;
        use proptest::prelude::*;

        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("ag_sig=".to_string()),
                Just("ag_exp=99999999999".to_string()),
                Just("ag_iat=0".to_string()),
                Just("ag_kid=k1".to_string()),
                Just("ag_prefix=%2F".to_string()),
                Just("ag_ip=::1/200".to_string()),
                Just("Expires=1".to_string()),
                Just("Policy=e30_".to_string()),
                Just("Signature=~~~".to_string()),
                Just("Key-Pair-Id=K".to_string()),
                Just("Hash-Algorithm=SHA512".to_string()),
                Just("&".to_string()),
                Just("=".to_string()),
                Just("%".to_string()),
                Just("%zz".to_string()),
                Just("+".to_string()),
                "[a-zA-Z0-9_~.-]{0,12}",
                "\\PC{0,6}",
            ]
        }

        fn text() -> impl Strategy<Value = String> {
            proptest::collection::vec(piece(), 0..12).prop_map(|p| p.concat())
        }

        proptest! {
            #[test]
            fn any_credential_gets_a_decision(query in text(), cookie in text(), bearer in text()) {
                let auth = authenticator("");
                let policy = AccessPolicy::new(
                    vec![Scheme::Hmac, Scheme::CloudFront, Scheme::Jwt],
                    Duration::from_secs(3600),
                    Some("/private".into()),
                    None,
                );
                let mut headers = http::HeaderMap::new();
                if let Ok(v) = http::HeaderValue::from_str(&cookie.replace('&', "; ")) {
                    headers.insert(http::header::COOKIE, v);
                }
                if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {bearer}")) {
                    headers.insert(http::header::AUTHORIZATION, v);
                }
                let mut req = request("/private/u1/a", Some(&query));
                req.headers = &headers;
                let _ = auth.check(&policy, &req);
                let _ = policy.strip(Some(&query));
            }
        }
    }

    #[test]
    fn credential_parameters_are_stripped() {
        let q = format!("w=100&{}", token("/private/u1/a.jpg", "u1", None));
        assert_eq!(policy().strip(Some(&q)).as_deref(), Some("w=100"));
        assert_eq!(
            AccessPolicy::default().strip(Some(&q)).as_deref(),
            Some(q.as_str())
        );
    }
}
