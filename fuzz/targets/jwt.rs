//! JWTs in `Authorization: Bearer` or a cookie, and JWKS documents: never a panic; with a
//! header and claims the fuzzer writes and a test key signs (HS256), a grant means the claims
//! said what the rules require (issuer, audience, an `exp` in the future).
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use access::jwt::{parse_jwks, verify, JwtKey, JwtVerifier, Rules};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{fields, headers, request, NOW};
use libfuzzer_sys::fuzz_target;
use openssl::pkey::PKey;
use openssl::sign::Signer;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let verifier = JwtVerifier {
        keys: vec![JwtKey::secret(Some("k1".into()), SECRET)],
        rules: Rules {
            issuer: Some("https://issuer.test".into()),
            audience: vec!["cdn".into()],
            leeway: 30,
            user_claim: "sub".into(),
            cookie: Some("session".into()),
        },
    };
    let [header, claims, lines] = fields(data, 3)[..] else {
        return;
    };
    let _ = parse_jwks(lines);
    let raw = headers(lines);
    let _ = verify(
        &verifier,
        &request(&http::Method::GET, "/", None, &raw),
        86_400,
    );
    // Signed with the verifier's own key: only the claims can be wrong.
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = PKey::hmac(SECRET).unwrap();
    let mut signer = Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(signed.as_bytes()).unwrap();
    let token = format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    );
    let mut bearer = http::HeaderMap::new();
    let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) else {
        return;
    };
    bearer.insert(http::header::AUTHORIZATION, value);
    if let Ok(grant) = verify(
        &verifier,
        &request(&http::Method::GET, "/", None, &bearer),
        86_400,
    ) {
        let claims: serde_json::Value =
            serde_json::from_slice(claims).expect("granted on claims that are not JSON");
        assert_eq!(claims["iss"], "https://issuer.test");
        let aud_ok = claims["aud"] == "cdn"
            || claims["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "cdn"));
        assert!(aud_ok, "{claims}");
        let exp = grant.expires_at.unwrap();
        assert!(exp + 30 > NOW && exp <= NOW + 86_400, "{claims}");
    }
});
