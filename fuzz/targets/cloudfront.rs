//! CloudFront-compatible signed URLs, signed cookies and custom policies: never a panic on any
//! query, cookie or policy JSON; with a policy the fuzzer writes and a test key signs, the
//! verifier grants only what the policy allows (its resource matches the URL, the time is
//! inside its window).
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use access::cloudfront::{encode_base64, verify, wildcard_match, CloudFrontKeys, Policy};
use common::{fields, headers, request, text, NOW};
use libfuzzer_sys::fuzz_target;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use std::sync::OnceLock;

struct Signer {
    key: PKey<Private>,
    keys: CloudFrontKeys,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let rsa = Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let public = key.public_key_to_pem().unwrap();
        let keys = CloudFrontKeys::new([("K1", &public[..])]).unwrap();
        Signer { key, keys }
    })
}

fn sign(json: &[u8]) -> String {
    let mut s = openssl::sign::Signer::new(MessageDigest::sha1(), &signer().key).unwrap();
    s.update(json).unwrap();
    encode_base64(&s.sign_to_vec().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let [path, query, policy, lines] = fields(data, 4)[..] else {
        return;
    };
    let (path, query) = (text(path), text(query));
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let headers = headers(lines);
    let keys = &signer().keys;
    // Any query and cookies, unsigned.
    let _ = verify(
        keys,
        &request(&http::Method::GET, &path, Some(&query), &headers),
        None,
        86_400,
        60,
    );
    let parsed = Policy::parse(policy);
    // The fuzzer's policy, signed: the grant must follow the policy.
    let signed = format!(
        "{}{}Policy={}&Signature={}&Key-Pair-Id=K1",
        query,
        if query.is_empty() { "" } else { "&" },
        encode_base64(policy),
        sign(policy)
    );
    let empty = http::HeaderMap::new();
    let req = request(&http::Method::GET, &path, Some(&signed), &empty);
    if verify(keys, &req, None, 86_400, 60).is_ok() {
        let policy = parsed.expect("a grant from a policy that does not parse");
        assert!(NOW < policy.date_less_than, "{policy:?}");
        assert!(
            policy.date_greater_than.is_none_or(|t| t <= NOW + 60),
            "{policy:?}"
        );
        let url = if query.is_empty() {
            format!("https://a.test{path}")
        } else {
            format!("https://a.test{path}?{query}")
        };
        assert!(
            wildcard_match(&policy.resource, &url)
                || query.contains("Policy")
                || query.contains("Signature")
                || query.contains("Expires")
                || query.contains("Key-Pair-Id")
                || query.contains("Hash-Algorithm"),
            "{policy:?} granted {url}"
        );
    }
});
