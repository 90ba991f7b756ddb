//! CloudFront-compatible signed URLs and signed cookies (RSA), verified as CloudFront does.
//!
//! A signed URL carries `Expires` (canned policy) or `Policy` (custom policy), `Signature`,
//! `Key-Pair-Id` and optionally `Hash-Algorithm=SHA256`; signed cookies carry the same values
//! as `CloudFront-*` cookies. The signature is RSA PKCS#1 v1.5 over SHA-1 (or SHA-256) of the
//! policy JSON; base64 values use CloudFront's alphabet (`+`→`-`, `=`→`_`, `/`→`~`).
//!
//! The resource a request asks for is `{public_url}{path as sent}{?query}`, the query without
//! CloudFront's own parameters: the raw path, because signers differ in how they encode paths
//! (botocore signs the URL it is given; `@aws-sdk/cloudfront-signer` re-encodes each segment)
//! and a client sends the path of the URL it was handed. A canned policy is rebuilt from that
//! resource and `Expires` byte for byte as both signers write it; a custom policy is parsed
//! strictly (one statement, known fields only, `DateLessThan` required) and its `Resource` may
//! use `*` and `?` wildcards.
//!
//! RSA verification is the expensive part: verified signatures are remembered in
//! [`Verified`] (keyed by a SHA-256 of key id, algorithm, policy and signature), while time,
//! client address and resource are checked on every request.

use super::{AccessRequest, Grant, Reason, Scheme};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ipnet::IpNet;
use kit::params;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use serde::Deserialize;
use sha2::Digest;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Query parameters of a signed URL, in the order [`params::find`] returns them.
pub const PARAMS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];

/// Cookie names of signed cookies, in the same order as [`PARAMS`].
pub const COOKIES: [&str; 5] = [
    "CloudFront-Expires",
    "CloudFront-Policy",
    "CloudFront-Signature",
    "CloudFront-Key-Pair-Id",
    "CloudFront-Hash-Algorithm",
];

/// How many verified signatures are remembered (two generations of this many).
pub const VERIFIED_CAPACITY: usize = 32_768;

/// Parses a PEM RSA public key (SubjectPublicKeyInfo or PKCS#1).
pub fn public_key(pem: &[u8]) -> Result<PKey<Public>, String> {
    let key = PKey::public_key_from_pem(pem)
        .or_else(|_| openssl::rsa::Rsa::public_key_from_pem_pkcs1(pem).and_then(PKey::from_rsa))
        .map_err(|_| "is not a PEM RSA public key".to_string())?;
    if key.rsa().is_err() {
        return Err("is not an RSA key (CloudFront signatures are RSA)".to_string());
    }
    Ok(key)
}

/// CloudFront's base64 alphabet → standard base64, then decoded.
pub fn decode_base64(value: &str) -> Option<Vec<u8>> {
    let standard: Vec<u8> = value
        .bytes()
        .map(|c| match c {
            b'-' => b'+',
            b'_' => b'=',
            b'~' => b'/',
            c => c,
        })
        .collect();
    STANDARD.decode(standard).ok()
}

/// Standard base64 in CloudFront's alphabet.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// The hash a signature uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    /// SHA-1 (the default).
    Sha1,
    /// SHA-256 (`Hash-Algorithm=SHA256`).
    Sha256,
}

impl Hash {
    fn parse(value: Option<&str>) -> Result<Hash, Reason> {
        match value {
            None | Some("SHA1") => Ok(Hash::Sha1),
            Some("SHA256") => Ok(Hash::Sha256),
            Some(_) => Err(Reason::Malformed),
        }
    }

    /// OpenSSL's digest.
    pub fn digest(self) -> MessageDigest {
        match self {
            Hash::Sha1 => MessageDigest::sha1(),
            Hash::Sha256 => MessageDigest::sha256(),
        }
    }
}

/// A canned policy exactly as botocore and `@aws-sdk/cloudfront-signer` write it.
pub fn canned_policy(resource: &str, expires: u64) -> String {
    format!(
        "{{\"Statement\":[{{\"Resource\":\"{resource}\",\"Condition\":{{\"DateLessThan\":{{\"AWS:EpochTime\":{expires}}}}}}}]}}"
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(rename = "Statement")]
    statement: Vec<RawStatement>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Resource")]
    resource: String,
    #[serde(rename = "Condition")]
    condition: RawCondition,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(rename = "DateLessThan")]
    date_less_than: EpochTime,
    #[serde(rename = "DateGreaterThan")]
    date_greater_than: Option<EpochTime>,
    #[serde(rename = "IpAddress")]
    ip_address: Option<SourceIp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EpochTime {
    #[serde(rename = "AWS:EpochTime")]
    time: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceIp {
    #[serde(rename = "AWS:SourceIp")]
    ip: String,
}

/// A custom policy's one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Resource pattern (`*` any run of characters, `?` one character).
    pub resource: String,
    /// Refused from this second on.
    pub date_less_than: u64,
    /// Refused before this second.
    pub date_greater_than: Option<u64>,
    /// Client network.
    pub source_ip: Option<IpNet>,
}

impl Policy {
    /// Parses a custom policy: one statement, known fields only, `DateLessThan` required.
    pub fn parse(json: &[u8]) -> Result<Policy, Reason> {
        let raw: RawPolicy = serde_json::from_slice(json).map_err(|_| Reason::Malformed)?;
        let [statement] =
            <[RawStatement; 1]>::try_from(raw.statement).map_err(|_| Reason::Malformed)?;
        let c = statement.condition;
        let source_ip = c
            .ip_address
            .map(|s| {
                s.ip.parse::<IpNet>()
                    .or_else(|_| s.ip.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| Reason::Malformed)
            })
            .transpose()?;
        Ok(Policy {
            resource: statement.resource,
            date_less_than: c.date_less_than.time,
            date_greater_than: c.date_greater_than.map(|t| t.time),
            source_ip,
        })
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included)
/// and `?` exactly one. Iterative, linear in practice (no backtracking explosion).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Verified credentials by SHA-256 identity, with the policy each one carries.
type Generation = HashMap<[u8; 32], Arc<Policy>>;

/// Signatures already verified: two generations (current, previous), so the most recent ones
/// survive a turnover.
#[derive(Debug, Default)]
pub struct Verified {
    generations: Mutex<(Generation, Generation)>,
}

impl Verified {
    fn get(&self, id: &[u8; 32]) -> Option<Arc<Policy>> {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.0.get(id).or_else(|| g.1.get(id)).cloned()
    }

    fn insert(&self, id: [u8; 32], policy: Arc<Policy>) {
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.len() >= VERIFIED_CAPACITY {
            g.1 = std::mem::take(&mut g.0);
        }
        g.0.insert(id, policy);
    }

    /// Forgets every verified signature (when keys change).
    pub fn clear(&self) {
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.0.clear();
        g.1.clear();
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.0.len() + g.1.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key group and the verified-signature memory.
#[derive(Default)]
pub struct CloudFrontKeys {
    keys: HashMap<String, PKey<Public>>,
    /// Signatures verified so far.
    pub verified: Arc<Verified>,
}

impl std::fmt::Debug for CloudFrontKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudFrontKeys")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CloudFrontKeys {
    /// A key group from `(Key-Pair-Id, PEM public key)` pairs.
    pub fn new<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<CloudFrontKeys, String> {
        let mut out = HashMap::new();
        for (id, pem) in keys {
            out.insert(
                id.to_string(),
                public_key(pem).map_err(|e| format!("key {id}: {e}"))?,
            );
        }
        Ok(CloudFrontKeys {
            keys: out,
            verified: Arc::default(),
        })
    }

    /// The policy of a credential: remembered when this exact credential (key id, hash,
    /// encoded policy or canned resource and expiry, encoded signature) was verified before;
    /// otherwise the signature is decoded and verified with RSA, then the policy remembered.
    fn verified_policy(
        &self,
        cred: &Credential<'_>,
        resource: &str,
    ) -> Result<Arc<Policy>, Reason> {
        let canned = cred.expires.as_deref().map(|e| (resource, e));
        let mut id = sha2::Sha256::new();
        let form: &[&[u8]] = match (canned, &cred.policy) {
            (Some((r, e)), _) => &[b"canned", r.as_bytes(), e.as_bytes()],
            (None, Some(p)) => &[b"custom", p.as_bytes()],
            (None, None) => return Err(Reason::Malformed),
        };
        for part in [cred.key_id.as_bytes(), &[cred.hash as u8]]
            .into_iter()
            .chain(form.iter().copied())
            .chain([cred.signature.as_bytes()])
        {
            id.update((part.len() as u64).to_be_bytes());
            id.update(part);
        }
        let id: [u8; 32] = id.finalize().into();
        if let Some(policy) = self.verified.get(&id) {
            return Ok(policy);
        }
        let key = self
            .keys
            .get(cred.key_id.as_ref())
            .ok_or(Reason::UnknownKey)?;
        let signature = decode_base64(&cred.signature).ok_or(Reason::BadSignature)?;
        let json = match canned {
            Some((r, e)) => {
                let expires = super::hmac::time(e).ok_or(Reason::Malformed)?;
                if r.contains(['"', '\\']) {
                    return Err(Reason::Malformed);
                }
                canned_policy(r, expires).into_bytes()
            }
            None => decode_base64(cred.policy.as_deref().unwrap_or_default())
                .ok_or(Reason::Malformed)?,
        };
        let mut verifier = openssl::sign::Verifier::new(cred.hash.digest(), key)
            .map_err(|_| Reason::BadSignature)?;
        let ok = verifier.update(&json).is_ok() && verifier.verify(&signature).unwrap_or(false);
        if !ok {
            return Err(Reason::BadSignature);
        }
        let policy = match canned {
            Some((r, e)) => Policy {
                resource: r.to_string(),
                date_less_than: super::hmac::time(e).ok_or(Reason::Malformed)?,
                date_greater_than: None,
                source_ip: None,
            },
            None => Policy::parse(&json)?,
        };
        let policy = Arc::new(policy);
        self.verified.insert(id, policy.clone());
        Ok(policy)
    }
}

/// The credential values, from the query or from cookies.
struct Credential<'a> {
    expires: Option<Cow<'a, str>>,
    policy: Option<Cow<'a, str>>,
    signature: Cow<'a, str>,
    key_id: Cow<'a, str>,
    hash: Hash,
}

fn credential<'a>(values: [Option<&'a str>; 5], decode: bool) -> Result<Credential<'a>, Reason> {
    let dec = |v: Option<&'a str>| -> Result<Option<Cow<'a, str>>, Reason> {
        match v {
            None => Ok(None),
            Some(v) if decode => params::decode(v).map(Some).ok_or(Reason::Malformed),
            Some(v) => Ok(Some(Cow::Borrowed(v))),
        }
    };
    let [expires, policy, signature, key_id, hash] = values;
    let (expires, policy) = (dec(expires)?, dec(policy)?);
    if expires.is_some() == policy.is_some() {
        // Exactly one of the canned (Expires) and custom (Policy) forms.
        return Err(Reason::Malformed);
    }
    Ok(Credential {
        expires,
        policy,
        signature: dec(signature)?.ok_or(Reason::Malformed)?,
        key_id: dec(key_id)?.ok_or(Reason::Malformed)?,
        hash: Hash::parse(dec(hash)?.as_deref())?,
    })
}

/// Whether the request carries a signed URL or signed cookies.
pub fn present(req: &AccessRequest<'_>) -> bool {
    let in_query = req
        .query
        .is_some_and(|q| params::pairs(q).any(|(n, _)| PARAMS.contains(&n)));
    in_query || params::cookies(req.headers).any(|(n, _)| COOKIES.contains(&n))
}

/// The resource the request asks for: public URL, raw path, query without CloudFront's
/// parameters.
fn resource(req: &AccessRequest<'_>, public_url: Option<&str>) -> String {
    let mut out = match public_url {
        Some(u) => u.to_string(),
        None => format!(
            "{}://{}",
            if req.tls { "https" } else { "http" },
            req.authority
        ),
    };
    out.push_str(req.raw_path);
    if let Some(q) = params::strip(req.query, &PARAMS) {
        out.push('?');
        out.push_str(&q);
    }
    out
}

/// Checks a signed URL (or, when the query has none of [`PARAMS`], signed cookies).
pub fn verify(
    keys: &CloudFrontKeys,
    req: &AccessRequest<'_>,
    public_url: Option<&str>,
    max_lifetime: u64,
    skew: u64,
) -> Result<Grant, Reason> {
    let from_query = params::find(req.query, &PARAMS).map_err(|_| Reason::Duplicated)?;
    let cred = if from_query.iter().any(Option::is_some) {
        credential(from_query, true)?
    } else {
        let cookies =
            params::find_cookies(req.headers, &COOKIES).map_err(|_| Reason::Duplicated)?;
        credential(cookies, false)?
    };
    let resource = resource(req, public_url);
    let policy = keys.verified_policy(&cred, &resource)?;
    if req.now >= policy.date_less_than {
        return Err(Reason::Expired);
    }
    if policy.date_less_than - req.now > max_lifetime {
        return Err(Reason::LifetimeTooLong);
    }
    if policy
        .date_greater_than
        .is_some_and(|t| t > req.now.saturating_add(skew))
    {
        return Err(Reason::NotYetValid);
    }
    if let Some(net) = policy.source_ip {
        if !req.client.is_some_and(|c| net.contains(&c)) {
            return Err(Reason::WrongClient);
        }
    }
    if !wildcard_match(&policy.resource, &resource) {
        return Err(Reason::WrongPath);
    }
    Ok(Grant {
        scheme: Scheme::CloudFront,
        key_id: Some(cred.key_id.into_owned()),
        user: None,
        token_id: None,
        expires_at: Some(policy.date_less_than),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("https://a.test/*", "https://a.test/x/y.jpg"));
        assert!(wildcard_match(
            "https://a.test/*.jpg",
            "https://a.test/x/y.jpg"
        ));
        assert!(!wildcard_match(
            "https://a.test/*.jpg",
            "https://a.test/x/y.png"
        ));
        assert!(wildcard_match(
            "https://a.test/?.jpg",
            "https://a.test/a.jpg"
        ));
        assert!(!wildcard_match(
            "https://a.test/?.jpg",
            "https://a.test/ab.jpg"
        ));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*://a.test/x", "https://a.test/x"));
        assert!(!wildcard_match("https://a.test/x", "https://a.test/x?y=1"));
        let long = "a".repeat(5000);
        assert!(!wildcard_match(&format!("{}b", "*a".repeat(50)), &long));
    }

    #[test]
    fn base64_alphabet() {
        let bytes = [0xfb, 0xff, 0xbf, 0x01];
        let e = encode_base64(&bytes);
        assert!(!e.contains(['+', '/', '=']), "{e}");
        assert_eq!(decode_base64(&e).unwrap(), bytes);
    }

    #[test]
    fn canned_policy_is_byte_exact() {
        assert_eq!(
            canned_policy("https://d.test/a.jpg", 1700000000),
            r#"{"Statement":[{"Resource":"https://d.test/a.jpg","Condition":{"DateLessThan":{"AWS:EpochTime":1700000000}}}]}"#
        );
    }

    #[test]
    fn strict_custom_policies() {
        let ok = br#"{"Statement":[{"Resource":"https://d.test/*","Condition":{"DateLessThan":{"AWS:EpochTime":2000},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"},"DateGreaterThan":{"AWS:EpochTime":1000}}}]}"#;
        let p = Policy::parse(ok).unwrap();
        assert_eq!(p.date_less_than, 2000);
        assert_eq!(p.date_greater_than, Some(1000));
        for bad in [
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1}}},{"Resource":"y","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1},"Extra":{}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1.5}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Resource":"y","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
            r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1},"IpAddress":{"AWS:SourceIp":"nope"}}}]}"#,
        ] {
            assert_eq!(
                Policy::parse(bad.as_bytes()),
                Err(Reason::Malformed),
                "{bad}"
            );
        }
    }
}
