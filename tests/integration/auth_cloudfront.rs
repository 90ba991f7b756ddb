//! CloudFront-compatible signed URLs and cookies against the real binary, minted by two
//! independent signers (botocore's `CloudFrontSigner` from PyPI and `@aws-sdk/cloudfront-signer`
//! from npm) and by `assetgate sign cloudfront`; tampering refused before the origin is asked.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const KEY_ID: &str = "K2JCJMDEHXQW5F";
const SIGNERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/signers");

struct Setup {
    origin: origin::Origin,
    gw: Gateway,
    private_key: PathBuf,
    other_private_key: PathBuf,
    _dir: tempfile::TempDir,
}

fn rsa_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let key = openssl::pkey::PKey::from_rsa(rsa).unwrap();
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    std::fs::write(&private, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(&public, key.public_key_to_pem().unwrap()).unwrap();
    (private, public)
}

fn start() -> Setup {
    let origin = origin::start();
    let dir = tempfile::tempdir().unwrap();
    let (private_key, public_key) = rsa_pair(dir.path(), "cf");
    let (other_private_key, other_public_key) = rsa_pair(dir.path(), "other");
    let gw = Gateway::start(&format!(
        r#"
[auth]
max_token_lifetime = "1h"
[[auth.hmac.keys]]
id = "k1"
secret = {{ file = "{hmac}" }}
[[auth.cloudfront.keys]]
id = "{KEY_ID}"
public_key_file = "{public}"
private_key = {{ file = "{private}" }}
[[auth.cloudfront.keys]]
id = "KOTHER"
public_key_file = "{other}"

[backends.origin]
kind = "http"
addresses = ["{origin}"]

[[hosts]]
names = ["cdn.test"]
public_url = "https://cdn.test"
[[hosts.routes]]
name = "private"
path = "/private"
backend = "origin"
access = "cloudfront"
[[hosts.routes]]
name = "either"
path = "/either"
backend = "origin"
access = ["cloudfront", "hmac"]

[[hosts]]
names = ["mirror.test"]
public_url = "https://mirror.test"
[[hosts.routes]]
path = "/"
backend = "origin"
access = "cloudfront"
"#,
        hmac = secret_file("0123456789abcdef0123456789abcdef").display(),
        public = public_key.display(),
        private = private_key.display(),
        other = other_public_key.display(),
        origin = origin.addr,
    ));
    Setup {
        origin,
        gw,
        private_key,
        other_private_key,
        _dir: dir,
    }
}

fn run_signer(program: &str, hint: &str, script: &str, args: serde_json::Value) -> String {
    let bin = require_binary(program, hint);
    let out = Command::new(bin)
        .current_dir(SIGNERS)
        .arg(Path::new(SIGNERS).join(script))
        .arg(args.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed (install the signers with .ci/run): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// botocore's CloudFrontSigner (PyPI: botocore, cryptography).
fn botocore(args: serde_json::Value) -> String {
    run_signer(
        "python3",
        "apt-get install python3 && pip install botocore cryptography",
        "botocore_sign.py",
        args,
    )
}

/// `@aws-sdk/cloudfront-signer` (npm, installed in tests/signers by .ci/run).
fn npm(args: serde_json::Value) -> String {
    assert!(
        Path::new(SIGNERS).join("node_modules/@aws-sdk/cloudfront-signer").is_dir(),
        "npm package @aws-sdk/cloudfront-signer missing: run `npm ci --prefix tests/signers` (.ci/run does)"
    );
    run_signer("node", "apt-get install nodejs npm", "npm_sign.cjs", args)
}

/// GET a signed `https://HOST/...` URL through the gateway with that Host; status and body.
async fn fetch(gw: &Gateway, url: &str, cookie: Option<&str>) -> (u16, String) {
    let rest = url.strip_prefix("https://").expect("https URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut req = client().get(gw.url(path)).header("host", host);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn cookie_header(json: &str) -> String {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(text) => format!("{k}={text}"),
            None => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn botocore_signed_urls_are_accepted() {
    let s = start();
    let key = s.private_key.display().to_string();
    let url = "https://cdn.test/private/caf%C3%A9%20x.jpg?w=100";
    let canned = botocore(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "expires": now() + 600}),
    );
    let (status, body) = fetch(&s.gw, &canned, None).await;
    assert_eq!(status, 200, "{canned}: {body}");
    assert!(
        body.contains("query=w=100\n"),
        "CloudFront parameters are removed: {body}"
    );
    let custom = botocore(serde_json::json!({
        "key_id": KEY_ID, "key_file": key, "url": "https://cdn.test/private/a/b.png",
        "resource": "https://cdn.test/private/a/*", "expires": now() + 600,
        "not_before": now() - 10, "ip": "127.0.0.1/32",
    }));
    assert_eq!(fetch(&s.gw, &custom, None).await.0, 200, "{custom}");
    // The same custom policy (a wildcard) covers another object under it ...
    let sibling = custom.replace("/private/a/b.png", "/private/a/c.png");
    assert_eq!(fetch(&s.gw, &sibling, None).await.0, 200);
    // ... and nothing outside it.
    let outside = custom.replace("/private/a/b.png", "/private/b/c.png");
    assert_eq!(fetch(&s.gw, &outside, None).await.0, 403);
    let other_ip = botocore(serde_json::json!({
        "key_id": KEY_ID, "key_file": key, "url": "https://cdn.test/private/a/b.png",
        "expires": now() + 600, "ip": "203.0.113.0/24",
    }));
    let (status, body) = fetch(&s.gw, &other_ip, None).await;
    assert_eq!(
        (status, body.trim()),
        (403, "credentials bound to another client address")
    );
}

#[tokio::test]
async fn npm_signed_urls_and_cookies_are_accepted() {
    let s = start();
    let key = s.private_key.display().to_string();
    // The npm signer re-encodes each path segment: the URL it returns is what clients send.
    let canned = npm(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": "https://cdn.test/private/café x (1).jpg", "expires": now() + 600}),
    );
    assert!(
        canned.starts_with("https://cdn.test/private/caf%C3%A9%20x%20(1).jpg?"),
        "{canned}"
    );
    assert_eq!(fetch(&s.gw, &canned, None).await.0, 200, "{canned}");
    let sha256 = npm(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": "https://cdn.test/private/a.jpg", "expires": now() + 600, "not_before": now() - 5, "sha256": true}),
    );
    assert!(sha256.contains("Hash-Algorithm=SHA256"), "{sha256}");
    assert_eq!(fetch(&s.gw, &sha256, None).await.0, 200, "{sha256}");
    // SHA-1 signature claimed as SHA-256: refused.
    let sha1 = npm(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": "https://cdn.test/private/a.jpg", "expires": now() + 600}),
    );
    assert_eq!(
        fetch(&s.gw, &format!("{sha1}&Hash-Algorithm=SHA256"), None)
            .await
            .0,
        403
    );
    // Signed cookies: canned for one URL, custom with a wildcard for a tree.
    let cookies = npm(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": "https://cdn.test/private/a.jpg", "expires": now() + 600, "cookies": true}),
    );
    let header = cookie_header(&cookies);
    assert!(header.contains("CloudFront-Expires="), "{header}");
    assert_eq!(
        fetch(&s.gw, "https://cdn.test/private/a.jpg", Some(&header))
            .await
            .0,
        200
    );
    assert_eq!(
        fetch(&s.gw, "https://cdn.test/private/b.jpg", Some(&header))
            .await
            .0,
        403
    );
    let policy = serde_json::json!({"Statement": [{"Resource": "https://cdn.test/private/*", "Condition": {"DateLessThan": {"AWS:EpochTime": now() + 600}}}]}).to_string();
    let tree = npm(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": "https://cdn.test/private/a.jpg", "policy": policy, "cookies": true, "sha256": true}),
    );
    let header = format!("theme=dark; {}", cookie_header(&tree));
    assert_eq!(
        fetch(&s.gw, "https://cdn.test/private/x/y.jpg", Some(&header))
            .await
            .0,
        200
    );
    assert_eq!(
        fetch(&s.gw, "https://cdn.test/either/x.jpg", Some(&header))
            .await
            .0,
        403,
        "outside the Resource"
    );
}

#[tokio::test]
async fn assetgate_sign_cloudfront_mints_urls_and_cookies() {
    let s = start();
    let sign = |args: &[&str]| s.gw.signed("cloudfront", args);
    let canned = sign(&["https://cdn.test/private/a.jpg"]);
    assert!(
        canned.contains("Expires=") && canned.contains("Key-Pair-Id=K2JCJMDEHXQW5F"),
        "{canned}"
    );
    assert_eq!(fetch(&s.gw, &canned, None).await.0, 200);
    let custom = sign(&[
        "--sha256",
        "--resource",
        "https://cdn.test/private/*",
        "https://cdn.test/private/b.jpg",
    ]);
    assert!(
        custom.contains("Policy=") && custom.contains("Hash-Algorithm=SHA256"),
        "{custom}"
    );
    assert_eq!(fetch(&s.gw, &custom, None).await.0, 200);
    let cookies = sign(&[
        "--cookies",
        "--resource",
        "https://cdn.test/private/*",
        "https://cdn.test/private/c.jpg",
    ]);
    let header: Vec<&str> = cookies
        .lines()
        .map(|l| l.split(';').next().unwrap())
        .collect();
    assert_eq!(
        fetch(
            &s.gw,
            "https://cdn.test/private/z.jpg",
            Some(&header.join("; "))
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn every_tampering_is_refused_and_never_reaches_the_origin() {
    let s = start();
    let key = s.private_key.display().to_string();
    let url = "https://cdn.test/private/caf%C3%A9.jpg";
    let good = botocore(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "expires": now() + 600}),
    );
    let sig_at = good.find("Signature=").unwrap() + "Signature=".len();
    let sig_end = good[sig_at..].find('&').map_or(good.len(), |i| sig_at + i);
    let mut flipped = good.clone().into_bytes();
    flipped[sig_at + 10] = if flipped[sig_at + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let flipped = String::from_utf8(flipped).unwrap();
    let custom = botocore(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "resource": url, "expires": now() + 600}),
    );
    let policy_at = custom.find("Policy=").unwrap() + "Policy=".len();
    let policy_end = policy_at + custom[policy_at..].find('&').unwrap();
    let policy_json = String::from_utf8(
        access::cloudfront::decode_base64(&custom[policy_at..policy_end]).unwrap(),
    )
    .unwrap();
    let widened =
        access::cloudfront::encode_base64(policy_json.replace("caf%C3%A9.jpg", "*").as_bytes());
    let widened = format!(
        "{}{}{}",
        &custom[..policy_at],
        widened,
        &custom[policy_end..]
    )
    .replace("caf%C3%A9.jpg", "other.jpg");
    let other_key = botocore(
        serde_json::json!({"key_id": "KOTHER", "key_file": s.other_private_key.display().to_string(), "url": url, "expires": now() + 600}),
    );
    let signed_by_other = botocore(
        serde_json::json!({"key_id": KEY_ID, "key_file": s.other_private_key.display().to_string(), "url": url, "expires": now() + 600}),
    );
    let expired = botocore(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "expires": now() - 5}),
    );
    let too_long = botocore(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "expires": now() + 7200}),
    );
    let early = botocore(
        serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "expires": now() + 600, "not_before": now() + 300}),
    );
    let npm_policy = |policy: serde_json::Value| {
        npm(
            serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "policy": policy.to_string()}),
        )
    };
    let cond = serde_json::json!({"DateLessThan": {"AWS:EpochTime": now() + 600}});
    let two_statements = npm_policy(
        serde_json::json!({"Statement": [{"Resource": url, "Condition": cond}, {"Resource": "https://cdn.test/*", "Condition": cond}]}),
    );
    let unknown_field = npm_policy(
        serde_json::json!({"Statement": [{"Resource": url, "Condition": cond, "Effect": "Allow"}]}),
    );
    let no_expiry = npm_policy(
        serde_json::json!({"Statement": [{"Resource": url, "Condition": {"DateGreaterThan": {"AWS:EpochTime": 1}}}]}),
    );
    let cases: Vec<(&str, String, u16)> = vec![
        ("no credential", url.to_string(), 401),
        ("other path", good.replace("caf%C3%A9.jpg", "cafe.jpg"), 403),
        (
            "alternative encoding of the path",
            good.replace("%C3%A9", "%c3%a9"),
            403,
        ),
        (
            "other host",
            good.replace("https://cdn.test", "https://mirror.test"),
            403,
        ),
        ("expiry changed", good.replace("Expires=", "Expires=1"), 403),
        ("bit flip", flipped, 403),
        (
            "truncated signature",
            format!("{}{}", &good[..sig_end - 8], &good[sig_end..]),
            403,
        ),
        (
            "duplicated signature",
            format!("{good}&Signature=AAAA"),
            403,
        ),
        (
            "unknown key id",
            good.replace("Key-Pair-Id=K2JCJMDEHXQW5F", "Key-Pair-Id=KNOPE"),
            403,
        ),
        (
            "key id of another key",
            good.replace("Key-Pair-Id=K2JCJMDEHXQW5F", "Key-Pair-Id=KOTHER"),
            403,
        ),
        ("signed by another key", signed_by_other, 403),
        ("policy widened", widened, 403),
        ("expired", expired, 403),
        ("lifetime above the route's maximum", too_long, 403),
        ("not yet valid", early, 403),
        ("two statements", two_statements, 403),
        ("unknown policy field", unknown_field, 403),
        ("no DateLessThan", no_expiry, 403),
        (
            "both Expires and Policy",
            format!("{good}&Policy=e30_"),
            403,
        ),
        (
            "lower-case parameter names",
            good.replace("Signature=", "signature="),
            403,
        ),
    ];
    for (what, url, status) in &cases {
        let (got, body) = fetch(&s.gw, url, None).await;
        assert_eq!(got, *status, "{what}: {url}: {body}");
    }
    assert_eq!(s.origin.hits(), 0, "no refused request reached the origin");
    // The other key is valid for its own signatures.
    assert_eq!(fetch(&s.gw, &other_key, None).await.0, 200);
    let (_, body) = fetch(&s.gw, &botocore(serde_json::json!({"key_id": KEY_ID, "key_file": key, "url": url, "expires": now() - 5})), None).await;
    assert_eq!(body.trim(), "credentials expired");
    let metrics = s.gw.metrics().await;
    for reason in [
        "missing",
        "bad_signature",
        "unknown_key",
        "duplicated",
        "expired",
        "malformed",
        "lifetime_too_long",
        "not_yet_valid",
    ] {
        assert!(
            metrics.contains(&format!("reason=\"{reason}\"")),
            "{reason} not counted:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_present_invalid_credential_is_not_passed_to_the_next_scheme() {
    let s = start();
    let hmac = s.gw.signed("hmac", &["https://cdn.test/either/a.jpg"]);
    assert_eq!(
        fetch(&s.gw, &hmac, None).await.0,
        200,
        "the second scheme works on its own"
    );
    let with_bad_cloudfront = format!("{hmac}&Expires=1&Signature=AAAA&Key-Pair-Id={KEY_ID}");
    assert_eq!(fetch(&s.gw, &with_bad_cloudfront, None).await.0, 403);
    assert_eq!(s.origin.hits(), 1);
}
