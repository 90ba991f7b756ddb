//! Criterion benches of the access verifiers on the request path: an HMAC token, a CloudFront
//! signed URL (RSA-2048, SHA-1) both cold (RSA verification) and remembered, JWTs of each
//! algorithm, and the credential-parameter stripping every signed request pays.
//!
//!   cargo bench --bench verifiers

use ::hmac as hmac_crate;
use access::cloudfront::{self, CloudFrontKeys};
use access::hmac::{self, Claims, HmacKeys, Limits, Scope};
use access::jwt::{self, Algorithm, JwtKey, JwtVerifier, Rules};
use access::AccessRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderMap, Method};
use kit::params;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use std::hint::black_box;

const NOW: u64 = 1_800_000_000;
const PATH: &str = "/private/u1/photos/2025/holiday.jpg";

fn request<'a>(query: &'a str, headers: &'a HeaderMap) -> AccessRequest<'a> {
    AccessRequest {
        method: &Method::GET,
        host: "cdn.example.com",
        path: PATH,
        raw_path: PATH,
        query: Some(query),
        headers,
        authority: "cdn.example.com",
        tls: true,
        client: Some("192.0.2.7".parse().expect("address")),
        now: NOW,
    }
}

fn bench_hmac(c: &mut Criterion) {
    let secret = b"0123456789abcdef0123456789abcdef";
    let keys = HmacKeys::new([("k1", &secret[..])], []);
    let query = Claims {
        key_id: "k1".into(),
        host: "cdn.example.com".into(),
        scope: Scope::Path(PATH.into()),
        issued_at: NOW - 10,
        expires_at: NOW + 890,
        not_before: None,
        ip: None,
        user: Some("u1".into()),
        token_id: Some("t-1".into()),
        methods: None,
    }
    .to_query(secret);
    let headers = HeaderMap::new();
    let limits = Limits {
        max_lifetime: 3600,
        skew: 60,
    };
    c.bench_function("hmac verify", |b| {
        b.iter(|| {
            hmac::verify(&keys, black_box(&request(&query, &headers)), limits).expect("valid")
        })
    });
    let names: Vec<&str> = hmac::PARAMS.to_vec();
    let with_app_params = format!("w=640&{query}&fmt=webp");
    c.bench_function("strip credential parameters", |b| {
        b.iter(|| params::strip(black_box(Some(&with_app_params)), &names))
    });
}

fn rsa_sign(key: &PKey<Private>, data: &[u8]) -> Vec<u8> {
    let mut signer = Signer::new(MessageDigest::sha1(), key).expect("signer");
    signer.sign_oneshot_to_vec(data).expect("sign")
}

fn bench_cloudfront(c: &mut Criterion) {
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("key");
    let keys = CloudFrontKeys::new([("KBENCH", &key.public_key_to_pem().expect("pem")[..])])
        .expect("keys");
    let resource = format!("https://cdn.example.com{PATH}");
    let policy = cloudfront::canned_policy(&resource, NOW + 600);
    let signature = cloudfront::encode_base64(&rsa_sign(&key, policy.as_bytes()));
    let query = format!(
        "Expires={}&Signature={signature}&Key-Pair-Id=KBENCH",
        NOW + 600
    );
    let headers = HeaderMap::new();
    let public_url = Some("https://cdn.example.com");
    c.bench_function("cloudfront verify (RSA, cold)", |b| {
        b.iter_batched(
            || keys.verified.clear(),
            |_| {
                cloudfront::verify(&keys, &request(&query, &headers), public_url, 3600, 60)
                    .expect("valid")
            },
            BatchSize::PerIteration,
        )
    });
    c.bench_function("cloudfront verify (remembered)", |b| {
        b.iter(|| {
            cloudfront::verify(
                &keys,
                black_box(&request(&query, &headers)),
                public_url,
                3600,
                60,
            )
            .expect("valid")
        })
    });
}

fn jwt_token(alg: &str, kid: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#));
    let claims = format!(
        r#"{{"sub":"u1","iss":"https://id.example.com","aud":"assetgate","exp":{}}}"#,
        NOW + 600
    );
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(sign(signed.as_bytes()))
    )
}

fn bench_jwt(c: &mut Criterion) {
    use hmac_crate::{KeyInit, Mac};
    let secret = b"jwt-secret-0123456789abcdef0123456789";
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("key");
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("curve");
    let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec")).expect("key");
    let ed = PKey::generate_ed25519().expect("ed25519");
    let pem = |k: &PKey<Private>| k.public_key_to_pem().expect("pem");
    let verifier = JwtVerifier {
        keys: vec![
            JwtKey::secret(Some("hs".into()), secret),
            JwtKey::pem(Some("rs".into()), Algorithm::Rs256, &pem(&rsa)).expect("rs"),
            JwtKey::pem(Some("es".into()), Algorithm::Es256, &pem(&ec)).expect("es"),
            JwtKey::pem(Some("ed".into()), Algorithm::EdDsa, &pem(&ed)).expect("ed"),
        ],
        rules: Rules {
            issuer: Some("https://id.example.com".into()),
            audience: vec!["assetgate".into()],
            leeway: 30,
            user_claim: "sub".into(),
            cookie: None,
        },
    };
    let tokens = [
        (
            "HS256",
            jwt_token("HS256", "hs", |d| {
                let mut m = hmac_crate::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
                m.update(d);
                m.finalize().into_bytes().to_vec()
            }),
        ),
        (
            "RS256",
            jwt_token("RS256", "rs", |d| {
                let mut s = Signer::new(MessageDigest::sha256(), &rsa).expect("signer");
                s.sign_oneshot_to_vec(d).expect("sign")
            }),
        ),
        (
            "ES256",
            jwt_token("ES256", "es", |d| {
                let digest = openssl::hash::hash(MessageDigest::sha256(), d).expect("hash");
                let sig = openssl::ecdsa::EcdsaSig::sign(&digest, &ec.ec_key().expect("ec"))
                    .expect("sign");
                let mut raw = sig.r().to_vec_padded(32).expect("r");
                raw.extend(sig.s().to_vec_padded(32).expect("s"));
                raw
            }),
        ),
        (
            "EdDSA",
            jwt_token("EdDSA", "ed", |d| {
                let mut s = Signer::new_without_digest(&ed).expect("signer");
                s.sign_oneshot_to_vec(d).expect("sign")
            }),
        ),
    ];
    for (alg, token) in tokens {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        c.bench_function(&format!("jwt verify {alg}"), |b| {
            b.iter(|| {
                jwt::verify(&verifier, black_box(&request("", &headers)), 3600).expect("valid")
            })
        });
    }
}

// The macro's generated function carries no doc comment.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench_hmac, bench_cloudfront, bench_jwt);
}
use group::benches;
criterion_main!(benches);
