//! JSON Web Tokens (RFC 7519) from `Authorization: Bearer` or a configured cookie.
//!
//! Signatures: HS256, RS256, ES256 and EdDSA (Ed25519), keys from the config (HMAC secrets,
//! PEM public keys) and JWKS files. Every key is bound to exactly one algorithm and a token's
//! `alg` must equal its key's, so `alg: none` and algorithm confusion (an HS256 token "signed"
//! with an RSA public key) are refused. Claims: `exp` is required; `nbf` and `iat` are checked
//! when present; `iss` and `aud` when configured; all with the configured leeway. A configured
//! claim (default `sub`) names the user.

use super::{AccessRequest, Grant, Reason, Scheme};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use kit::params;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use serde::Deserialize;
use serde_json::Value;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// A signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256.
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// Parses a JOSE `alg` name (`none` and anything else are refused).
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "HS256" => Some(Algorithm::Hs256),
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }
}

/// Verification material of one key.
enum Material {
    Secret(Vec<u8>),
    Public(PKey<Public>),
}

/// One key: id, algorithm, material.
pub struct JwtKey {
    /// `kid` (optional: a token without `kid` tries every key of its algorithm).
    pub id: Option<String>,
    /// The one algorithm this key verifies.
    pub algorithm: Algorithm,
    material: Material,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl JwtKey {
    /// An HS256 key.
    pub fn secret(id: Option<String>, secret: &[u8]) -> JwtKey {
        JwtKey {
            id,
            algorithm: Algorithm::Hs256,
            material: Material::Secret(secret.to_vec()),
        }
    }

    /// A key from a PEM public key; the algorithm must fit the key type.
    pub fn pem(id: Option<String>, algorithm: Algorithm, pem: &[u8]) -> Result<JwtKey, String> {
        let key =
            PKey::public_key_from_pem(pem).map_err(|_| "is not a PEM public key".to_string())?;
        Self::public(id, algorithm, key)
    }

    fn public(
        id: Option<String>,
        algorithm: Algorithm,
        key: PKey<Public>,
    ) -> Result<JwtKey, String> {
        let fits = match algorithm {
            Algorithm::Hs256 => false,
            Algorithm::Rs256 => key.id() == Id::RSA && key.bits() >= 2048,
            Algorithm::Es256 => {
                key.ec_key().ok().and_then(|k| k.group().curve_name())
                    == Some(Nid::X9_62_PRIME256V1)
            }
            Algorithm::EdDsa => key.id() == Id::ED25519,
        };
        if !fits {
            return Err(format!(
                "the key does not fit {algorithm:?} (RS256: RSA >= 2048 bits, ES256: P-256, EdDSA: Ed25519; HS256 takes a secret)"
            ));
        }
        Ok(JwtKey {
            id,
            algorithm,
            material: Material::Public(key),
        })
    }

    fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
        match (&self.material, self.algorithm) {
            (Material::Secret(secret), Algorithm::Hs256) => {
                let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
                    return false;
                };
                mac.update(signed);
                mac.verify_slice(signature).is_ok()
            }
            (Material::Public(key), Algorithm::Rs256) => {
                verify_digest(MessageDigest::sha256(), key, signed, signature)
            }
            (Material::Public(key), Algorithm::Es256) => {
                // JOSE sends r || s (32 bytes each); OpenSSL wants DER.
                if signature.len() != 64 {
                    return false;
                }
                let der = BigNum::from_slice(&signature[..32])
                    .and_then(|r| Ok((r, BigNum::from_slice(&signature[32..])?)))
                    .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
                    .and_then(|sig| sig.to_der());
                der.is_ok_and(|der| verify_digest(MessageDigest::sha256(), key, signed, &der))
            }
            (Material::Public(key), Algorithm::EdDsa) => {
                openssl::sign::Verifier::new_without_digest(key)
                    .and_then(|mut v| v.verify_oneshot(signature, signed))
                    .unwrap_or(false)
            }
            _ => false,
        }
    }
}

fn verify_digest(md: MessageDigest, key: &PKey<Public>, data: &[u8], sig: &[u8]) -> bool {
    openssl::sign::Verifier::new(md, key)
        .and_then(|mut v| {
            v.update(data)?;
            v.verify(sig)
        })
        .unwrap_or(false)
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn b64(field: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let text = field
        .as_deref()
        .ok_or_else(|| format!("JWK without `{name}`"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("JWK `{name}` is not base64url"))
}

/// Keys of a JWKS document (RFC 7517): RSA (RS256), EC P-256 (ES256), OKP Ed25519 (EdDSA).
/// Keys marked for encryption (`use: enc`) are skipped.
pub fn parse_jwks(json: &[u8]) -> Result<Vec<JwtKey>, String> {
    let set: Jwks =
        serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut out = Vec::new();
    for (i, jwk) in set.keys.into_iter().enumerate() {
        if jwk.usage.as_deref() == Some("enc") {
            continue;
        }
        let wrap = |e: String| format!("keys[{i}]: {e}");
        let (default_alg, key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => {
                let n = BigNum::from_slice(&b64(&jwk.n, "n").map_err(wrap)?);
                let e = BigNum::from_slice(&b64(&jwk.e, "e").map_err(wrap)?);
                let key = n
                    .and_then(|n| Ok((n, e?)))
                    .and_then(|(n, e)| Rsa::from_public_components(n, e))
                    .and_then(PKey::from_rsa)
                    .map_err(|_| wrap("bad RSA key".into()))?;
                (Algorithm::Rs256, key)
            }
            ("EC", Some("P-256")) => {
                let group =
                    EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
                let x = BigNum::from_slice(&b64(&jwk.x, "x").map_err(wrap)?);
                let y = BigNum::from_slice(&b64(&jwk.y, "y").map_err(wrap)?);
                let key = x
                    .and_then(|x| Ok((x, y?)))
                    .and_then(|(x, y)| EcKey::from_public_key_affine_coordinates(&group, &x, &y))
                    .and_then(PKey::from_ec_key)
                    .map_err(|_| wrap("bad EC key".into()))?;
                (Algorithm::Es256, key)
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64(&jwk.x, "x").map_err(wrap)?;
                let key = PKey::public_key_from_raw_bytes(&x, Id::ED25519)
                    .map_err(|_| wrap("bad Ed25519 key".into()))?;
                (Algorithm::EdDsa, key)
            }
            (kty, crv) => return Err(wrap(format!("unsupported key type {kty} {crv:?}"))),
        };
        let alg = match jwk.alg.as_deref() {
            None => default_alg,
            Some(name) => {
                Algorithm::parse(name).ok_or_else(|| wrap(format!("unsupported alg {name}")))?
            }
        };
        out.push(JwtKey::public(jwk.kid, alg, key).map_err(wrap)?);
    }
    Ok(out)
}

/// Where one configured JWT key comes from, as validation found it: the material is read but
/// not yet made into a verifying key ([`JwtVerifier::build`] does that).
#[derive(Clone)]
pub enum JwtKeySource {
    /// An HS256 secret.
    Secret {
        /// `kid`.
        id: Option<String>,
        /// The secret's bytes.
        secret: kit::secret::Secret,
    },
    /// A PEM public key bound to one algorithm.
    Pem {
        /// `kid`.
        id: Option<String>,
        /// The algorithm it verifies.
        algorithm: Algorithm,
        /// The PEM text.
        pem: Vec<u8>,
    },
    /// A JWKS document: each of its keys.
    Jwks(Vec<u8>),
}

impl std::fmt::Debug for JwtKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKeySource::Secret { id, .. } => write!(f, "Secret({id:?})"),
            JwtKeySource::Pem { id, algorithm, .. } => write!(f, "Pem({id:?}, {algorithm:?})"),
            JwtKeySource::Jwks(_) => f.write_str("Jwks"),
        }
    }
}

impl JwtKeySource {
    /// The verifying keys this source gives.
    pub fn keys(&self) -> Result<Vec<JwtKey>, String> {
        match self {
            JwtKeySource::Secret { id, secret } => {
                Ok(vec![JwtKey::secret(id.clone(), secret.expose().as_bytes())])
            }
            JwtKeySource::Pem { id, algorithm, pem } => {
                JwtKey::pem(id.clone(), *algorithm, pem).map(|k| vec![k])
            }
            JwtKeySource::Jwks(json) => parse_jwks(json),
        }
    }
}

/// `[auth.jwt]` as validated: where the keys come from and the claim rules.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// Every configured key source, in order.
    pub sources: Vec<JwtKeySource>,
    /// Claim rules.
    pub rules: Rules,
}

/// What a JWT must satisfy beyond its signature.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Accepted audiences (any one in `aud`).
    pub audience: Vec<String>,
    /// Leeway on `exp`, `nbf` and `iat`, seconds.
    pub leeway: u64,
    /// Claim naming the user.
    pub user_claim: String,
    /// Cookie carrying the token, besides `Authorization: Bearer`.
    pub cookie: Option<String>,
}

/// The key set and rules.
#[derive(Debug, Default)]
pub struct JwtVerifier {
    /// Keys.
    pub keys: Vec<JwtKey>,
    /// Claim rules.
    pub rules: Rules,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

impl JwtVerifier {
    /// Makes the verifying keys of validated settings (each source was checked to parse when
    /// the config was validated; this is where the keys are built).
    pub fn build(settings: &JwtSettings) -> Result<JwtVerifier, String> {
        let mut keys = Vec::new();
        for source in &settings.sources {
            keys.extend(source.keys()?);
        }
        Ok(JwtVerifier {
            keys,
            rules: settings.rules.clone(),
        })
    }
}

/// The token in `Authorization: Bearer` or the configured cookie.
fn token<'r>(req: &AccessRequest<'r>, rules: &Rules) -> Result<Option<&'r str>, Reason> {
    let bearer = super::bearer(req.headers)?;
    if bearer.is_some() {
        return Ok(bearer);
    }
    match &rules.cookie {
        Some(name) => {
            let [value] = params::find_cookies(req.headers, &[name.as_str()])
                .map_err(|_| Reason::Duplicated)?;
            Ok(value)
        }
        None => Ok(None),
    }
}

/// Whether the request carries a JWT (bearer or cookie).
pub fn present(req: &AccessRequest<'_>, rules: &Rules) -> bool {
    !matches!(token(req, rules), Ok(None))
}

fn seconds(claims: &serde_json::Map<String, Value>, name: &str) -> Result<Option<u64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(Reason::Malformed),
    }
}

/// Verifies the request's JWT. The checks stay in one function, in the order RFC 8725 §3
/// gives them (the header and the algorithm before any key is tried, the signature before
/// any claim is believed), so that none can be reordered or skipped by a refactoring.
pub fn verify(
    v: &JwtVerifier,
    req: &AccessRequest<'_>,
    max_lifetime: u64,
) -> Result<Grant, Reason> {
    let token = token(req, &v.rules)?.ok_or(Reason::Missing)?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reason::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Reason::Malformed)?;
    if header.crit.is_some() {
        return Err(Reason::Malformed);
    }
    let alg = Algorithm::parse(&header.alg).ok_or(Reason::BadSignature)?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Reason::BadSignature)?;
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let candidates: Vec<&JwtKey> = match &header.kid {
        Some(kid) => {
            let key = v
                .keys
                .iter()
                .find(|k| k.id.as_deref() == Some(kid.as_str()))
                .ok_or(Reason::UnknownKey)?;
            vec![key]
        }
        None => v.keys.iter().filter(|k| k.algorithm == alg).collect(),
    };
    let key = candidates
        .into_iter()
        .find(|k| k.algorithm == alg && k.verify(signed, &signature))
        .ok_or(Reason::BadSignature)?;
    let claims: serde_json::Map<String, Value> = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Reason::Malformed)?;
    let leeway = v.rules.leeway;
    let exp = seconds(&claims, "exp")?.ok_or(Reason::Malformed)?;
    if req.now >= exp.saturating_add(leeway) {
        return Err(Reason::Expired);
    }
    if exp.saturating_sub(req.now) > max_lifetime {
        return Err(Reason::LifetimeTooLong);
    }
    if seconds(&claims, "nbf")?.is_some_and(|t| t > req.now.saturating_add(leeway)) {
        return Err(Reason::NotYetValid);
    }
    if seconds(&claims, "iat")?.is_some_and(|t| t > req.now.saturating_add(leeway)) {
        return Err(Reason::IssuedInFuture);
    }
    if let Some(iss) = &v.rules.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
            return Err(Reason::WrongIssuer);
        }
    }
    if !v.rules.audience.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => v.rules.audience.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| v.rules.audience.iter().any(|want| want == a)),
            _ => false,
        };
        if !ok {
            return Err(Reason::WrongAudience);
        }
    }
    let user = match claims.get(&v.rules.user_claim) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(Grant {
        scheme: Scheme::Jwt,
        key_id: key.id.clone(),
        user,
        token_id: claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_string),
        expires_at: Some(exp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    fn request(headers: &HeaderMap, now: u64) -> AccessRequest<'_> {
        AccessRequest {
            method: &Method::GET,
            host: "h",
            path: "/",
            raw_path: "/",
            query: None,
            headers,
            authority: "h",
            tls: false,
            client: None,
            now,
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    fn rules() -> Rules {
        Rules {
            user_claim: "iss".into(),
            ..Rules::default()
        }
    }

    /// RFC 7515 appendix A.1: the HS256 example (key and token from the RFC).
    #[test]
    fn rfc7515_hs256_example() {
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let v = JwtVerifier {
            keys: vec![JwtKey::secret(None, &key)],
            rules: rules(),
        };
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let h = bearer(token);
        let grant = verify(&v, &request(&h, 1_300_819_000), u64::MAX).unwrap();
        assert_eq!(grant.user.as_deref(), Some("joe"));
        // The RFC's token expired in 2011.
        assert_eq!(
            verify(&v, &request(&h, 1_300_819_380), u64::MAX),
            Err(Reason::Expired)
        );
        let tampered = bearer(&token.replace("dBjf", "dBjg"));
        assert_eq!(
            verify(&v, &request(&tampered, 1_300_819_000), u64::MAX),
            Err(Reason::BadSignature)
        );
    }

    /// RFC 8037 appendix A.4: the Ed25519 example. Its payload is not a claims set, so a
    /// verified signature shows as `Malformed` (claims) rather than `BadSignature`.
    #[test]
    fn rfc8037_ed25519_example() {
        let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let v = JwtVerifier {
            keys: parse_jwks(jwks).unwrap(),
            rules: rules(),
        };
        let token = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        assert_eq!(
            verify(&v, &request(&bearer(token), 0), u64::MAX),
            Err(Reason::Malformed)
        );
        let flipped = token.replace("hgyY", "hgyZ");
        assert_eq!(
            verify(&v, &request(&bearer(&flipped), 0), u64::MAX),
            Err(Reason::BadSignature)
        );
    }

    #[test]
    fn keys_are_bound_to_their_algorithm() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let pem = rsa.public_key_to_pem().unwrap();
        assert!(JwtKey::pem(None, Algorithm::Es256, &pem).is_err());
        assert!(JwtKey::pem(None, Algorithm::EdDsa, &pem).is_err());
        assert!(JwtKey::pem(None, Algorithm::Rs256, &pem).is_ok());
        assert_eq!(Algorithm::parse("none"), None);
        assert_eq!(Algorithm::parse("HS512"), None);
        assert!(parse_jwks(br#"{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}"#).is_err());
        assert!(parse_jwks(b"not json").is_err());
    }
}
