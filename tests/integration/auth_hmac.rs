//! HMAC-signed URLs against the real binary: tokens minted by the access-control guide's Python function
//! (standard library only) and by `assetgate sign`, every tampering refused before the origin
//! is asked, revocation reloaded without a restart.

use crate::harness::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const K1: &str = "k1-secret-0123456789abcdef0123456789abcdef";
const K2: &str = "k2-secret-fedcba9876543210fedcba9876543210";
const OLD: &str = "old-secret-0000000000000000000000000000000";

struct Setup {
    origin: origin::Origin,
    gw: Gateway,
    revoked: PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Setup {
    let origin = origin::start();
    let dir = tempfile::tempdir().unwrap();
    let revoked = dir.path().join("revoked.txt");
    std::fs::write(&revoked, "# nothing revoked yet\n").unwrap();
    let gw = Gateway::start(&format!(
        r#"
[auth]
clock_skew = "5s"
revocation_file = "{revoked}"
[auth.hmac]
retired = ["old"]
[[auth.hmac.keys]]
id = "k1"
secret = {{ file = "{k1}" }}
[[auth.hmac.keys]]
id = "k2"
secret = {{ file = "{k2}" }}

[backends.origin]
kind = "http"
addresses = ["{origin}"]

[[hosts]]
names = ["cdn.test", "mirror.test"]

[[hosts.routes]]
name = "private"
path = "/private"
backend = "origin"
access = "hmac"
max_token_lifetime = "1h"
owner_prefix = "/private"
[hosts.routes.cors]
allow_origins = ["https://app.test"]

[[hosts.routes]]
name = "shared"
path = "/shared"
backend = "origin"
access = ["hmac"]
methods = ["GET", "HEAD", "PUT"]

[[hosts.routes]]
name = "public"
path = "/"
backend = "origin"
"#,
        revoked = revoked.display(),
        k1 = secret_file(K1).display(),
        k2 = secret_file(K2).display(),
        origin = origin.addr,
    ));
    Setup {
        origin,
        gw,
        revoked,
        _dir: dir,
    }
}

/// The access-control guide's `sign_url` (docs/access-control.md), run by `python3` with these keyword arguments (Python literals).
fn python_mint(url: &str, key_id: &str, secret: &str, kwargs: &str) -> String {
    let python = require_binary("python3", "apt-get install python3");
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/access-control.md"
    ))
    .unwrap();
    let code = guide
        .split("<!-- hmac-python-minter -->\n```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/access-control.md has the Python minter block");
    let script = format!(
        "{code}\nprint(sign_url({url:?}, {key_id:?}, {secret:?}{sep}{kwargs}))\n",
        sep = if kwargs.is_empty() { "" } else { ", " }
    );
    let out = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// GET `url` (an `http://cdn.test/...` URL) through the gateway; status and body.
async fn fetch(gw: &Gateway, method: &str, url: &str) -> (u16, String) {
    let path = url.strip_prefix("http://cdn.test").expect("a cdn.test URL");
    let r = client()
        .request(method.parse().unwrap(), gw.url(path))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const ALICE: &str = "http://cdn.test/private/alice/report.txt";

#[tokio::test]
async fn a_token_minted_by_the_readme_python_function_is_accepted() {
    let s = start();
    let url = python_mint(ALICE, "k1", K1, "uid='alice', tid='t-1'");
    let (status, body) = fetch(&s.gw, "GET", &url).await;
    assert_eq!(status, 200, "{body}");
    // The origin saw the path without any ag_* parameter.
    assert!(
        body.contains("path=/private/alice/report.txt\nquery=\n"),
        "{body}"
    );
    let other_params = python_mint(
        "http://cdn.test/shared/a.txt?w=100",
        "k2",
        K2,
        "methods='GET,PUT'",
    );
    let (status, body) = fetch(&s.gw, "GET", &other_params).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("query=w=100\n"), "{body}");
    let log = s.gw.log();
    assert!(log.contains("auth=hmac user=\"alice\""), "{log}");
}

#[tokio::test]
async fn a_url_minted_by_assetgate_sign_is_accepted() {
    let s = start();
    let url =
        s.gw.signed("hmac", &["--user", "alice", "--ttl", "10m", ALICE]);
    assert!(url.starts_with(&format!("{ALICE}?ag_kid=k1&")), "{url}");
    assert_eq!(fetch(&s.gw, "GET", &url).await.0, 200);
    // `sign` refuses what the gateway would refuse.
    let refused = s.gw.sign("hmac", &["--user", "bob", ALICE]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("owner"));
}

#[tokio::test]
async fn every_tampering_is_refused_and_never_reaches_the_origin() {
    let s = start();
    let good = python_mint(ALICE, "k1", K1, "uid='alice'");
    let sig_at = good.find("ag_sig=").unwrap() + "ag_sig=".len();
    let sig = &good[sig_at..];
    let mut flipped = sig.as_bytes().to_vec();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{}{}", &good[..sig_at], String::from_utf8(flipped).unwrap());
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("no token", ALICE.to_string(), 401, "missing"),
        (
            "other path",
            good.replace("report.txt", "report2.txt"),
            403,
            "bad_signature",
        ),
        (
            "other user's path",
            good.replace("/alice/", "/bob/"),
            403,
            "bad_signature",
        ),
        (
            "case of the path",
            good.replace("report.txt", "Report.txt"),
            403,
            "bad_signature",
        ),
        (
            "expiry pushed",
            good.replace("ag_exp=", "ag_exp=1"),
            403,
            "bad_signature",
        ),
        (
            "key id swapped",
            good.replace("ag_kid=k1", "ag_kid=k2"),
            403,
            "bad_signature",
        ),
        (
            "unknown key",
            good.replace("ag_kid=k1", "ag_kid=k9"),
            403,
            "unknown_key",
        ),
        (
            "user changed",
            good.replace("ag_uid=alice", "ag_uid=alicf"),
            403,
            "bad_signature",
        ),
        ("bit flip", flipped, 403, "bad_signature"),
        (
            "truncated",
            good[..good.len() - 4].to_string(),
            403,
            "bad_signature",
        ),
        (
            "signature removed",
            good[..sig_at - "&ag_sig=".len()].to_string(),
            403,
            "malformed",
        ),
        (
            "duplicated expiry",
            format!("{good}&ag_exp=99999999999"),
            403,
            "duplicated",
        ),
        ("padding added", format!("{good}%3D"), 403, "bad_signature"),
        (
            "nbf added",
            format!("{good}&ag_nbf=1"),
            403,
            "bad_signature",
        ),
    ];
    for (what, url, status, _) in &cases {
        assert_eq!(fetch(&s.gw, "GET", url).await.0, *status, "{what}: {url}");
    }
    // Each case was refused for its own reason: the counters match the table exactly.
    let metrics = s.gw.metrics().await;
    for (what, _, _, reason) in &cases {
        let scheme = if *reason == "missing" { "none" } else { "hmac" };
        let expected = cases.iter().filter(|c| c.3 == *reason).count();
        let line = format!(
            "assetgate_auth_denied_total{{reason=\"{reason}\",scheme=\"{scheme}\"}} {expected}\n"
        );
        assert!(
            metrics.contains(&line),
            "{what}: {line} missing in\n{metrics}"
        );
    }
    // Another host with the same routes: the token is bound to the host it was minted for.
    let on_host = |host: &'static str| {
        client()
            .get(s.gw.url(good.strip_prefix("http://cdn.test").unwrap()))
            .header("host", host)
            .send()
    };
    assert_eq!(on_host("mirror.test").await.unwrap().status(), 403);
    assert_eq!(
        on_host("CDN.test:80").await.unwrap().status(),
        200,
        "case and port are not part of the host"
    );
    assert_eq!(
        s.origin.hits(),
        1,
        "only the untampered request reached the origin"
    );
}

#[tokio::test]
async fn time_client_method_and_owner_claims_are_enforced() {
    let s = start();
    let t = now();
    let cases = [
        (
            "expired",
            python_mint(
                ALICE,
                "k1",
                K1,
                &format!("uid='alice', iat={}, ttl=60", t - 120),
            ),
            "credentials expired",
        ),
        (
            "issued in the future",
            python_mint(ALICE, "k1", K1, &format!("uid='alice', iat={}", t + 600)),
            "issued in the future",
        ),
        (
            "not yet valid",
            python_mint(ALICE, "k1", K1, &format!("uid='alice', nbf={}", t + 600)),
            "not valid yet",
        ),
        (
            "lifetime too long",
            python_mint(ALICE, "k1", K1, "uid='alice', ttl=7200"),
            "exceeds",
        ),
        (
            "other client",
            python_mint(ALICE, "k1", K1, "uid='alice', ip='203.0.113.0/24'"),
            "another client",
        ),
        (
            "method not allowed",
            python_mint(ALICE, "k1", K1, "uid='alice', methods='HEAD'"),
            "method",
        ),
        (
            "another user's prefix",
            python_mint(
                "http://cdn.test/private/bob/notes.txt",
                "k1",
                K1,
                "uid='alice'",
            ),
            "another owner",
        ),
        (
            "no user on an owner route",
            python_mint(ALICE, "k1", K1, ""),
            "another owner",
        ),
        (
            "retired key",
            python_mint(ALICE, "old", OLD, "uid='alice'"),
            "retired",
        ),
        (
            "prefix grant outside its prefix",
            python_mint(
                "http://cdn.test/private/alice/x",
                "k1",
                K1,
                "uid='alice', prefix='/private/alice/docs'",
            ),
            "do not cover",
        ),
    ];
    for (what, url, message) in &cases {
        let (status, body) = fetch(&s.gw, "GET", url).await;
        assert_eq!(status, 403, "{what}: {url}");
        assert!(body.contains(message), "{what}: {body}");
    }
    // The same claims, satisfied, are accepted.
    let ok = [
        python_mint(ALICE, "k1", K1, "uid='alice', ip='127.0.0.1'"),
        python_mint(ALICE, "k1", K1, &format!("uid='alice', nbf={}", t - 1)),
        python_mint(
            "http://cdn.test/private/alice/docs/a.pdf",
            "k1",
            K1,
            "uid='alice', prefix='/private/alice/docs'",
        ),
        // Another spelling of the same normalised path is the same path.
        python_mint(ALICE, "k1", K1, "uid='alice'").replace("/report.txt", "/%72eport.txt"),
    ];
    for url in &ok {
        assert_eq!(fetch(&s.gw, "GET", url).await.0, 200, "{url}");
    }
    let head_only = python_mint(ALICE, "k1", K1, "uid='alice', methods='HEAD'");
    assert_eq!(fetch(&s.gw, "HEAD", &head_only).await.0, 200);
    assert_eq!(s.origin.hits(), ok.len() + 1);
}

#[tokio::test]
async fn revocations_apply_without_a_restart() {
    let s = start();
    let url = python_mint(ALICE, "k1", K1, "uid='alice', tid='t-42'");
    let other = python_mint(ALICE, "k2", K2, "uid='alice', tid='t-43'");
    assert_eq!(fetch(&s.gw, "GET", &url).await.0, 200);
    std::fs::write(&s.revoked, "token t-42\n").unwrap();
    eventually("token t-42 revoked", Duration::from_secs(5), || async {
        let (status, body) = fetch(&s.gw, "GET", &url).await;
        (status == 403 && body.contains("revoked")).then_some(())
    })
    .await;
    assert_eq!(
        fetch(&s.gw, "GET", &other).await.0,
        200,
        "only t-42 is revoked"
    );
    // A broken file keeps the last good list in force.
    std::fs::write(&s.revoked, "token t-42\nnonsense\n").unwrap();
    metrics_when(&s.gw, "reload error counted", |m| {
        m.contains("assetgate_revocation_reloads_total{result=\"error\"}")
    })
    .await;
    assert_eq!(fetch(&s.gw, "GET", &url).await.0, 403);
    std::fs::write(&s.revoked, "key k2\n").unwrap();
    eventually("key k2 revoked", Duration::from_secs(5), || async {
        (fetch(&s.gw, "GET", &other).await.0 == 403).then_some(())
    })
    .await;
    assert_eq!(
        fetch(&s.gw, "GET", &url).await.0,
        200,
        "t-42 is no longer listed"
    );
}

#[tokio::test]
async fn preflights_need_no_credentials_and_public_routes_pass_tokens_through() {
    let s = start();
    let r = client()
        .request(
            reqwest::Method::OPTIONS,
            s.gw.url("/private/alice/report.txt"),
        )
        .header("host", "cdn.test")
        .header("origin", "https://app.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // On a public route, ag_* parameters are the application's own and go upstream untouched.
    let (status, body) = fetch(&s.gw, "GET", "http://cdn.test/pub/a?ag_sig=x&v=1").await;
    assert_eq!(status, 200);
    assert!(body.contains("query=ag_sig=x&v=1\n"), "{body}");
}
