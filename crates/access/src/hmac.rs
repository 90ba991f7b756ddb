//! assetgate HMAC tokens: expiring, scoped, revocable signed URLs (scheme version 1).
//!
//! A token is a set of query parameters. The signature is HMAC-SHA256, keyed by the secret of
//! key `ag_kid`, over a string-to-sign made of one line per field, in this fixed order, each
//! line `name:LENGTH:value\n` where LENGTH is the value's length in bytes (decimal) — so no
//! value can be read as part of another:
//!
//! | line | value | parameter | required |
//! |---|---|---|---|
//! | (first line) | the literal `AG1-HMAC-SHA256` | | yes |
//! | `kid` | key id | `ag_kid` | yes |
//! | `host` | request host, lower-case, without port | (the URL's) | yes |
//! | `path` or `prefix` | the normalised path, or a path prefix granting everything under it | `ag_prefix` for a prefix | yes |
//! | `iat` | issue time, Unix seconds | `ag_iat` | yes |
//! | `exp` | expiry, Unix seconds | `ag_exp` | yes |
//! | `nbf` | not before, Unix seconds | `ag_nbf` | no |
//! | `ip` | client address or CIDR | `ag_ip` | no |
//! | `uid` | user id | `ag_uid` | no |
//! | `tid` | token id (for revocation) | `ag_tid` | no |
//! | `methods` | allowed methods, comma-separated, e.g. `PUT` (absent: `GET,HEAD` only) | `ag_methods` | no |
//!
//! The signature is `ag_sig`, base64url without padding. Values are the decoded parameter
//! values; times are plain decimal (no sign, no leading zeros).

use super::{AccessRequest, Grant, Reason, Scheme};

/// The methods a URL minted without `methods` allows.
const READ_METHODS: &str = "GET,HEAD";
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use ipnet::IpNet;
use kit::params;
use kit::path::{has_prefix, is_normalised};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::net::IpAddr;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// First line of the string-to-sign: scheme and version.
pub const VERSION_LINE: &str = "AG1-HMAC-SHA256";

/// Query parameters of a token, in the order [`find`](params::find) returns them.
pub const PARAMS: [&str; 10] = [
    "ag_kid",
    "ag_iat",
    "ag_exp",
    "ag_nbf",
    "ag_ip",
    "ag_uid",
    "ag_tid",
    "ag_methods",
    "ag_prefix",
    "ag_sig",
];

/// Shortest secret accepted, in bytes (the HMAC-SHA256 output size).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token grants: one path, or every path under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Exactly this normalised path.
    Path(Cow<'a, str>),
    /// This path and everything below it, segment-wise.
    Prefix(Cow<'a, str>),
}

/// Every field a token binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims<'a> {
    /// Key id.
    pub key_id: Cow<'a, str>,
    /// Host name, lower-case, without port.
    pub host: Cow<'a, str>,
    /// The path or prefix granted.
    pub scope: Scope<'a>,
    /// Issue time (Unix seconds).
    pub issued_at: u64,
    /// Expiry (Unix seconds); the token is refused from this second on.
    pub expires_at: u64,
    /// Not valid before (Unix seconds).
    pub not_before: Option<u64>,
    /// Client address or CIDR the token is bound to.
    pub ip: Option<Cow<'a, str>>,
    /// User id.
    pub user: Option<Cow<'a, str>>,
    /// Token id, for revocation.
    pub token_id: Option<Cow<'a, str>>,
    /// Allowed methods, comma-separated.
    pub methods: Option<Cow<'a, str>>,
}

impl Claims<'_> {
    /// Feeds the string-to-sign to `sink` piece by piece (see the module docs).
    fn string_to_sign(&self, sink: &mut impl FnMut(&[u8])) {
        sink(VERSION_LINE.as_bytes());
        sink(b"\n");
        // On the request path: no allocation per line.
        let mut line = |name: &str, value: &[u8]| {
            let mut digits = [0u8; 20];
            sink(name.as_bytes());
            sink(b":");
            sink(decimal(value.len() as u64, &mut digits));
            sink(b":");
            sink(value);
            sink(b"\n");
        };
        let (mut iat, mut exp, mut nbf) = ([0u8; 20], [0u8; 20], [0u8; 20]);
        line("kid", self.key_id.as_bytes());
        line("host", self.host.as_bytes());
        match &self.scope {
            Scope::Path(p) => line("path", p.as_bytes()),
            Scope::Prefix(p) => line("prefix", p.as_bytes()),
        }
        line("iat", decimal(self.issued_at, &mut iat));
        line("exp", decimal(self.expires_at, &mut exp));
        if let Some(t) = self.not_before {
            line("nbf", decimal(t, &mut nbf));
        }
        let optional = [
            ("ip", &self.ip),
            ("uid", &self.user),
            ("tid", &self.token_id),
            ("methods", &self.methods),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                line(name, v.as_bytes());
            }
        }
    }

    /// The string-to-sign as text (for docs, tests and debugging).
    pub fn canonical(&self) -> String {
        let mut out = Vec::new();
        self.string_to_sign(&mut |b| out.extend_from_slice(b));
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The token's query parameters (signature last), percent-encoded, joined with `&`.
    pub fn to_query(&self, secret: &[u8]) -> String {
        let enc = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut q = format!(
            "ag_kid={}&ag_iat={}&ag_exp={}",
            enc(&self.key_id),
            self.issued_at,
            self.expires_at
        );
        if let Some(nbf) = self.not_before {
            let _ = write!(q, "&ag_nbf={nbf}");
        }
        let optional = [
            ("ag_ip", &self.ip),
            ("ag_uid", &self.user),
            ("ag_tid", &self.token_id),
            ("ag_methods", &self.methods),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                let _ = write!(q, "&{name}={}", enc(v));
            }
        }
        if let Scope::Prefix(p) = &self.scope {
            let _ = write!(q, "&ag_prefix={}", enc(p));
        }
        let _ = write!(q, "&ag_sig={}", self.signature(secret));
        q
    }

    /// The signature with this secret, base64url without padding.
    pub fn signature(&self, secret: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        self.string_to_sign(&mut |b| mac.update(b));
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// The active and retired HMAC keys.
#[derive(Clone, Default)]
pub struct HmacKeys {
    /// Key id → an HMAC state already keyed with its secret (cloned per request).
    active: HashMap<String, HmacSha256>,
    retired: HashSet<String>,
}

impl std::fmt::Debug for HmacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacKeys")
            .field("active", &self.active.keys().collect::<Vec<_>>())
            .field("retired", &self.retired)
            .finish()
    }
}

impl HmacKeys {
    /// Keys from `(id, secret)` pairs and the ids of retired keys.
    pub fn new<'a>(
        active: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        retired: impl IntoIterator<Item = &'a str>,
    ) -> HmacKeys {
        HmacKeys {
            active: active
                .into_iter()
                .map(|(id, secret)| {
                    let mac =
                        HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
                    (id.to_string(), mac)
                })
                .collect(),
            retired: retired.into_iter().map(str::to_string).collect(),
        }
    }

    /// Whether no key is active.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

/// Limits a route puts on tokens.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest `exp − iat` accepted, in seconds.
    pub max_lifetime: u64,
    /// Clock difference tolerated for `iat` and `nbf`, in seconds.
    pub skew: u64,
}

/// `n` in decimal ASCII, written into `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// A time parameter: plain decimal, at most 12 digits, no sign or leading zero.
pub(crate) fn time(raw: &str) -> Option<u64> {
    let ok = !raw.is_empty()
        && raw.len() <= 12
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    ok.then(|| raw.parse().ok()).flatten()
}

fn decoded(raw: Option<&str>) -> Result<Option<Cow<'_, str>>, Reason> {
    raw.map(|r| params::decode(r).ok_or(Reason::Malformed))
        .transpose()
}

/// Checks the token in `req`'s query (which must hold at least one of [`PARAMS`]).
pub fn verify(keys: &HmacKeys, req: &AccessRequest<'_>, limits: Limits) -> Result<Grant, Reason> {
    let [kid, iat, exp, nbf, ip, uid, tid, methods, prefix, sig] =
        params::find(req.query, &PARAMS).map_err(|_| Reason::Duplicated)?;
    let (Some(kid), Some(iat), Some(exp), Some(sig)) = (kid, iat, exp, sig) else {
        return Err(Reason::Malformed);
    };
    let key_id = params::decode(kid).ok_or(Reason::Malformed)?;
    let scope = match decoded(prefix)? {
        Some(p) => Scope::Prefix(p),
        None => Scope::Path(Cow::Borrowed(req.path)),
    };
    let claims = Claims {
        key_id,
        host: Cow::Borrowed(req.host),
        scope,
        issued_at: time(iat).ok_or(Reason::Malformed)?,
        expires_at: time(exp).ok_or(Reason::Malformed)?,
        not_before: nbf.map(|n| time(n).ok_or(Reason::Malformed)).transpose()?,
        ip: decoded(ip)?,
        user: decoded(uid)?,
        token_id: decoded(tid)?,
        methods: decoded(methods)?,
    };
    let sig = params::decode(sig).ok_or(Reason::BadSignature)?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig.as_bytes())
        .map_err(|_| Reason::BadSignature)?;
    if keys.retired.contains(claims.key_id.as_ref()) {
        return Err(Reason::RetiredKey);
    }
    let mut mac = keys
        .active
        .get(claims.key_id.as_ref())
        .ok_or(Reason::UnknownKey)?
        .clone();
    claims.string_to_sign(&mut |b| mac.update(b));
    // Constant time: `verify_slice` compares with `subtle`.
    mac.verify_slice(&signature)
        .map_err(|_| Reason::BadSignature)?;
    check_claims(&claims, req, limits)?;
    Ok(Grant {
        scheme: Scheme::Hmac,
        key_id: Some(claims.key_id.into_owned()),
        user: claims.user.map(Cow::into_owned),
        token_id: claims.token_id.map(Cow::into_owned),
        expires_at: Some(claims.expires_at),
    })
}

/// The checks after the signature: times, client address, method, path scope.
fn check_claims(c: &Claims<'_>, req: &AccessRequest<'_>, limits: Limits) -> Result<(), Reason> {
    if c.expires_at <= c.issued_at {
        return Err(Reason::Malformed);
    }
    if c.issued_at > req.now.saturating_add(limits.skew) {
        return Err(Reason::IssuedInFuture);
    }
    if c.expires_at - c.issued_at > limits.max_lifetime {
        return Err(Reason::LifetimeTooLong);
    }
    if req.now >= c.expires_at {
        return Err(Reason::Expired);
    }
    if c.not_before
        .is_some_and(|nbf| nbf > req.now.saturating_add(limits.skew))
    {
        return Err(Reason::NotYetValid);
    }
    if let Some(bound) = &c.ip {
        let net: IpNet = match bound.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => bound
                .parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| Reason::Malformed)?,
        };
        if !req.client.is_some_and(|addr| net.contains(&addr)) {
            return Err(Reason::WrongClient);
        }
    }
    // A URL minted without `methods` reads: it must never write (upload routes take PUT/POST).
    let allowed = c.methods.as_deref().unwrap_or(READ_METHODS);
    if !allowed.split(',').any(|m| m == req.method.as_str()) {
        return Err(Reason::WrongMethod);
    }
    if let Scope::Prefix(prefix) = &c.scope {
        // The prefix is a decoded path (a literal `%` in it is no escape).
        if !is_normalised(prefix) {
            return Err(Reason::Malformed);
        }
        if !has_prefix(req.path, prefix) {
            return Err(Reason::WrongPath);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> Claims<'static> {
        Claims {
            key_id: "k1".into(),
            host: "cdn.example.com".into(),
            scope: Scope::Path("/private/u1/a.jpg".into()),
            issued_at: 1_700_000_000,
            expires_at: 1_700_000_900,
            not_before: None,
            ip: None,
            user: Some("u1".into()),
            token_id: None,
            methods: None,
        }
    }

    fn keys() -> HmacKeys {
        HmacKeys::new([("k1", SECRET)], ["k0"])
    }

    const LIMITS: Limits = Limits {
        max_lifetime: 86_400,
        skew: 60,
    };

    fn request<'a>(path: &'a str, query: &'a str, now: u64) -> AccessRequest<'a> {
        AccessRequest {
            method: &Method::GET,
            host: "cdn.example.com",
            path,
            raw_path: path,
            query: Some(query),
            headers: Box::leak(Box::default()),
            authority: "cdn.example.com",
            tls: true,
            client: Some("192.0.2.7".parse().unwrap()),
            now,
        }
    }

    #[test]
    fn string_to_sign_is_length_prefixed_in_fixed_order() {
        let mut c = claims();
        c.methods = Some("GET,HEAD".into());
        c.not_before = Some(1_700_000_010);
        assert_eq!(
            c.canonical(),
            "AG1-HMAC-SHA256\nkid:2:k1\nhost:15:cdn.example.com\npath:17:/private/u1/a.jpg\n\
             iat:10:1700000000\nexp:10:1700000900\nnbf:10:1700000010\nuid:2:u1\nmethods:8:GET,HEAD\n"
        );
    }

    #[test]
    fn known_vector() {
        // Computed independently: python3 -c 'import hmac,hashlib,base64; ...' (see README).
        let sig = claims().signature(SECRET);
        assert_eq!(sig, "dL8krdBc-BGCV8_g_LR21VjFqCaXZpSzdOc5FSITw6I");
    }

    #[test]
    fn minted_tokens_verify_and_bind_everything() {
        let q = claims().to_query(SECRET);
        let now = 1_700_000_100;
        let grant = verify(&keys(), &request("/private/u1/a.jpg", &q, now), LIMITS).unwrap();
        assert_eq!(grant.user.as_deref(), Some("u1"));
        let other_path = request("/private/u1/b.jpg", &q, now);
        assert_eq!(
            verify(&keys(), &other_path, LIMITS),
            Err(Reason::BadSignature)
        );
        let mut other_host = request("/private/u1/a.jpg", &q, now);
        other_host.host = "evil.example.com";
        assert_eq!(
            verify(&keys(), &other_host, LIMITS),
            Err(Reason::BadSignature)
        );
        let late = request("/private/u1/a.jpg", &q, 1_700_000_900);
        assert_eq!(verify(&keys(), &late, LIMITS), Err(Reason::Expired));
        let tampered = q.replace("ag_exp=1700000900", "ag_exp=1700000901");
        let r = request("/private/u1/a.jpg", &tampered, now);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::BadSignature));
        let uid = q.replace("ag_uid=u1", "ag_uid=u2");
        let r = request("/private/u1/a.jpg", &uid, now);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::BadSignature));
    }

    #[test]
    fn refuses_unknown_and_retired_keys_and_bad_times() {
        let mut c = claims();
        c.key_id = "k0".into();
        let q = c.to_query(SECRET);
        let r = request("/private/u1/a.jpg", &q, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::RetiredKey));
        c.key_id = "k9".into();
        let q = c.to_query(SECRET);
        let r = request("/private/u1/a.jpg", &q, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::UnknownKey));
        let q = claims().to_query(SECRET);
        let early = request("/private/u1/a.jpg", &q, 1_700_000_000 - 61);
        assert_eq!(verify(&keys(), &early, LIMITS), Err(Reason::IssuedInFuture));
        let short = Limits {
            max_lifetime: 899,
            skew: 60,
        };
        let r = request("/private/u1/a.jpg", &q, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, short), Err(Reason::LifetimeTooLong));
    }

    #[test]
    fn optional_claims_are_enforced() {
        let mut c = claims();
        c.ip = Some("198.51.100.0/24".into());
        c.methods = Some("HEAD".into());
        let q = c.to_query(SECRET);
        let r = request("/private/u1/a.jpg", &q, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::WrongClient));
        c.ip = Some("192.0.2.7".into());
        let q = c.to_query(SECRET);
        let r = request("/private/u1/a.jpg", &q, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::WrongMethod));
        c.methods = None;
        // Without `methods`, a URL reads and never writes.
        let q = c.to_query(SECRET);
        let mut put = request("/private/u1/a.jpg", &q, 1_700_000_100);
        put.method = &Method::PUT;
        assert_eq!(verify(&keys(), &put, LIMITS), Err(Reason::WrongMethod));
        c.not_before = Some(1_700_000_500);
        let q = c.to_query(SECRET);
        let r = request("/private/u1/a.jpg", &q, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::NotYetValid));
    }

    #[test]
    fn prefix_grants_cover_only_their_subtree() {
        let mut c = claims();
        c.scope = Scope::Prefix("/private/u1".into());
        let q = c.to_query(SECRET);
        for (path, ok) in [
            ("/private/u1/a.jpg", true),
            ("/private/u1/deep/b.png", true),
            ("/private/u10/a.jpg", false),
            ("/private/u2/a.jpg", false),
        ] {
            let r = request(path, &q, 1_700_000_100);
            assert_eq!(verify(&keys(), &r, LIMITS).is_ok(), ok, "{path}");
        }
    }

    #[test]
    fn a_prefix_with_a_literal_percent_is_granted() {
        // Found by fuzzing: the prefix (a decoded path) was checked as if it were raw, so a
        // folder named `100%` could never be granted by prefix.
        let mut c = claims();
        c.scope = Scope::Prefix("/private/100%".into());
        let q = c.to_query(SECRET);
        let r = request("/private/100%/a.jpg", &q, 1_700_000_100);
        assert!(verify(&keys(), &r, LIMITS).is_ok());
        // Still refused: prefixes that are not normalised paths.
        for bad in ["/private/../u1", "/private//u1", "private/u1"] {
            c.scope = Scope::Prefix(bad.into());
            let q = c.to_query(SECRET);
            let r = request("/private/u1/a.jpg", &q, 1_700_000_100);
            assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::Malformed), "{bad}");
        }
    }

    #[test]
    fn malformed_tokens() {
        let q = claims().to_query(SECRET);
        for bad in [
            q.replace("ag_iat=1700000000", "ag_iat=01700000000"),
            q.replace("ag_iat=1700000000", "ag_iat=+1700000000"),
            q.replace("&ag_exp=1700000900", ""),
            format!("{q}&ag_kid=k1"),
        ] {
            let r = request("/private/u1/a.jpg", &bad, 1_700_000_100);
            assert!(
                matches!(
                    verify(&keys(), &r, LIMITS),
                    Err(Reason::Malformed | Reason::Duplicated)
                ),
                "{bad}"
            );
        }
        let truncated = &q[..q.len() - 3];
        let r = request("/private/u1/a.jpg", truncated, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::BadSignature));
        let padded = format!("{q}=");
        let r = request("/private/u1/a.jpg", &padded, 1_700_000_100);
        assert_eq!(verify(&keys(), &r, LIMITS), Err(Reason::BadSignature));
    }
}
