//! JSON Web Tokens against the real binary, minted by PyJWT (an independent signer): HS256,
//! RS256, ES256 and EdDSA from config keys and a JWKS file, bearer and cookie, claim checks,
//! and the classic attacks (`alg: none`, an HS256 token keyed with the RS256 public key).

use crate::harness::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use openssl::pkey::PKey;
use std::path::{Path, PathBuf};
use std::process::Command;

const HS_SECRET: &str = "jwt-hs256-secret-0123456789abcdef0123";
const SIGNERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/signers");

struct Setup {
    origin: origin::Origin,
    gw: Gateway,
    rsa: PathBuf,
    rsa_public: PathBuf,
    ec: PathBuf,
    ed: PathBuf,
    _dir: tempfile::TempDir,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ec_key = openssl::ec::EcKey::generate(&group).unwrap();
    let ec = PKey::from_ec_key(ec_key.clone()).unwrap();
    let ed = PKey::generate_ed25519().unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let (mut x, mut y) = (
        openssl::bn::BigNum::new().unwrap(),
        openssl::bn::BigNum::new().unwrap(),
    );
    ec_key
        .public_key()
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
        .unwrap();
    let jwks = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec1", "x": b64(&x.to_vec_padded(32).unwrap()), "y": b64(&y.to_vec_padded(32).unwrap())},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b64(&ed.raw_public_key().unwrap())},
        {"kty": "RSA", "kid": "enc1", "use": "enc", "n": "AQAB", "e": "AQAB"},
    ]});
    let setup_paths = (
        write("rsa.pem", rsa.private_key_to_pem_pkcs8().unwrap()),
        write("rsa.pub.pem", rsa.public_key_to_pem().unwrap()),
        write("ec.pem", ec.private_key_to_pem_pkcs8().unwrap()),
        write("ed.pem", ed.private_key_to_pem_pkcs8().unwrap()),
        write("jwks.json", jwks.to_string().into_bytes()),
        write("hs.key", HS_SECRET.as_bytes().to_vec()),
    );
    let origin = origin::start();
    let gw = Gateway::start(&format!(
        r#"
[auth.jwt]
issuer = "https://id.test"
audience = ["assetgate"]
leeway = "5s"
cookie = "session"
jwks_files = ["{jwks}"]
[[auth.jwt.keys]]
id = "hs1"
algorithm = "HS256"
secret = {{ file = "{hs}" }}
[[auth.jwt.keys]]
id = "rs1"
algorithm = "RS256"
public_key_file = "{rsa_pub}"

[backends.origin]
kind = "http"
addresses = ["{origin}"]

[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/users"
backend = "origin"
access = "jwt"
owner_prefix = "/users"
"#,
        jwks = setup_paths.4.display(),
        hs = setup_paths.5.display(),
        rsa_pub = setup_paths.1.display(),
        origin = origin.addr,
    ));
    Setup {
        origin,
        gw,
        rsa: setup_paths.0,
        rsa_public: setup_paths.1,
        ec: setup_paths.2,
        ed: setup_paths.3,
        _dir: dir,
    }
}

/// PyJWT (PyPI: PyJWT, cryptography).
fn pyjwt(args: serde_json::Value) -> String {
    let python = require_binary(
        "python3",
        "apt-get install python3 && pip install PyJWT cryptography",
    );
    let out = Command::new(python)
        .arg(Path::new(SIGNERS).join("pyjwt_sign.py"))
        .arg(args.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyjwt_sign.py failed (pip install PyJWT cryptography; .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn claims(sub: &str, exp_in: i64) -> serde_json::Value {
    let now = now() as i64;
    serde_json::json!({"sub": sub, "iss": "https://id.test", "aud": "assetgate", "iat": now, "exp": now + exp_in})
}

async fn get(gw: &Gateway, path: &str, token: Option<&str>, cookie: bool) -> reqwest::Response {
    let mut req = client().get(gw.url(path));
    if let Some(t) = token {
        req = if cookie {
            req.header("cookie", format!("theme=dark; session={t}"))
        } else {
            req.header("authorization", format!("Bearer {t}"))
        };
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn tokens_of_every_algorithm_are_accepted_from_bearer_and_cookie() {
    let s = start();
    let tokens = [
        pyjwt(
            serde_json::json!({"alg": "HS256", "secret": HS_SECRET, "kid": "hs1", "claims": claims("u1", 300)}),
        ),
        pyjwt(
            serde_json::json!({"alg": "RS256", "key_file": s.rsa, "kid": "rs1", "claims": claims("u1", 300)}),
        ),
        pyjwt(
            serde_json::json!({"alg": "ES256", "key_file": s.ec, "kid": "ec1", "claims": claims("u1", 300)}),
        ),
        pyjwt(
            serde_json::json!({"alg": "EdDSA", "key_file": s.ed, "kid": "ed1", "claims": claims("u1", 300)}),
        ),
        // No kid: the keys of the token's algorithm are tried.
        pyjwt(serde_json::json!({"alg": "RS256", "key_file": s.rsa, "claims": claims("u1", 300)})),
    ];
    for token in &tokens {
        let r = get(&s.gw, "/users/u1/a.jpg", Some(token), false).await;
        assert_eq!(r.status(), 200, "{token}");
        let r = get(&s.gw, "/users/u1/a.jpg", Some(token), true).await;
        assert_eq!(r.status(), 200, "cookie: {token}");
    }
    assert_eq!(s.origin.hits(), tokens.len() * 2);
    // Within the leeway an expired token still passes.
    let just_expired = pyjwt(
        serde_json::json!({"alg": "HS256", "secret": HS_SECRET, "kid": "hs1", "claims": claims("u1", -2)}),
    );
    assert_eq!(
        get(&s.gw, "/users/u1/a.jpg", Some(&just_expired), false)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn attacks_and_bad_claims_are_refused_before_the_origin() {
    let s = start();
    let missing = get(&s.gw, "/users/u1/a.jpg", None, false).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"assetgate\""
    );
    let hs = |c: serde_json::Value| {
        pyjwt(serde_json::json!({"alg": "HS256", "secret": HS_SECRET, "kid": "hs1", "claims": c}))
    };
    let now = now() as i64;
    let none = pyjwt(serde_json::json!({"alg": "none", "claims": claims("u1", 300)}));
    // Algorithm confusion: HS256 keyed with the RS256 public key, naming the RSA key.
    let confused = {
        let header = b64(br#"{"alg":"HS256","kid":"rs1","typ":"JWT"}"#);
        let payload = b64(claims("u1", 300).to_string().as_bytes());
        let signed = format!("{header}.{payload}");
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&std::fs::read(&s.rsa_public).unwrap())
                .unwrap();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
    };
    let good = hs(claims("u1", 300));
    let other = hs(claims("u2", 300));
    let spliced = {
        let g: Vec<&str> = good.split('.').collect();
        let o: Vec<&str> = other.split('.').collect();
        format!("{}.{}.{}", g[0], o[1], g[2])
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "signature does not match"),
        (
            "HS256 keyed with the RSA public key",
            confused,
            "signature does not match",
        ),
        (
            "payload spliced from another token",
            spliced,
            "signature does not match",
        ),
        (
            "truncated",
            good[..good.len() - 5].to_string(),
            "signature does not match",
        ),
        ("not three parts", format!("{good}.x"), "malformed"),
        ("expired", hs(claims("u1", -60)), "credentials expired"),
        (
            "not yet valid",
            hs(
                serde_json::json!({"sub": "u1", "iss": "https://id.test", "aud": "assetgate", "nbf": now + 120, "exp": now + 300}),
            ),
            "not valid yet",
        ),
        (
            "wrong issuer",
            hs(
                serde_json::json!({"sub": "u1", "iss": "https://evil.test", "aud": "assetgate", "exp": now + 300}),
            ),
            "issuer",
        ),
        (
            "wrong audience",
            hs(
                serde_json::json!({"sub": "u1", "iss": "https://id.test", "aud": ["other"], "exp": now + 300}),
            ),
            "audience",
        ),
        (
            "no expiry",
            hs(serde_json::json!({"sub": "u1", "iss": "https://id.test", "aud": "assetgate"})),
            "malformed",
        ),
        ("far-future expiry", hs(claims("u1", 7 * 86_400)), "exceeds"),
        (
            "unknown kid",
            pyjwt(
                serde_json::json!({"alg": "HS256", "secret": HS_SECRET, "kid": "zz", "claims": claims("u1", 300)}),
            ),
            "unknown key",
        ),
        ("another user's path", other.clone(), "another owner"),
    ];
    for (what, token, message) in &cases {
        let r = get(&s.gw, "/users/u1/a.jpg", Some(token), false).await;
        assert_eq!(r.status(), 403, "{what}");
        let body = r.text().await.unwrap();
        assert!(body.contains(message), "{what}: {body}");
    }
    let two_bearers = client()
        .get(s.gw.url("/users/u1/a.jpg"))
        .header("authorization", format!("Bearer {good}"))
        .header("authorization", format!("Bearer {other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(two_bearers.status(), 403);
    assert_eq!(s.origin.hits(), 0);
}
