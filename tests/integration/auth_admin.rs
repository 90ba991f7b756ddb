//! Admin credentials against the real binary and Garage: `access = "admin"` answers 302 to an
//! S3 presigned URL that Garage (strict SigV4) serves and refuses once tampered; the admin API
//! mints and resolves URLs; every admin action lands in the audit log with the token's id and
//! never the token.

use crate::harness::*;

const OPS: &str = "ops-token-0123456789abcdef0123456789abcdef";
const CI: &str = "ci-token-fedcba9876543210fedcba9876543210";
const METRICS: &str = "metrics-token-0123456789";

struct Setup {
    gw: Gateway,
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Setup {
    let g = garage().await;
    g.put(
        "admin/internal/report.pdf",
        b"%PDF admin only".to_vec(),
        "application/pdf",
    )
    .await;
    g.put("admin/public/logo.svg", b"<svg/>".to_vec(), "image/svg+xml")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let admin = format!(
        "audit_log = \"{audit}\"\npresign_ttl = \"2m\"\nmetrics_token = {{ file = \"{m}\" }}\n\
         tokens = [{{ id = \"ops\", secret = {{ file = \"{ops}\" }} }}, {{ id = \"ci\", secret = {{ file = \"{ci}\" }} }}]",
        audit = audit.display(),
        m = secret_file(METRICS).display(),
        ops = secret_file(OPS).display(),
        ci = secret_file(CI).display(),
    );
    let gw = Gateway::start_with_admin(
        &admin,
        &format!(
            r#"
{backend}
[[auth.hmac.keys]]
id = "k1"
secret = {{ file = "{hmac}" }}

[resolve]
public_base = "https://cdn.test"
private_base = "https://cdn.test/internal"
admin_backend = "bucket"

[[hosts]]
names = ["cdn.test"]
[[hosts.routes]]
name = "internal-admin"
path = "/internal"
backend = "bucket"
access = ["admin", "hmac"]
[[hosts.routes]]
path = "/"
backend = "bucket"
"#,
            backend = g.backend_toml("bucket", "admin", GARAGE_SECRET),
            hmac = secret_file("0123456789abcdef0123456789abcdef").display(),
        ),
    );
    Setup {
        gw,
        audit,
        _dir: dir,
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn audit_lines(s: &Setup) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&s.audit)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn admin_routes_redirect_to_a_presigned_url_that_the_bucket_honours() {
    let s = start().await;
    let get = |token: Option<&str>| {
        let mut req = no_redirects()
            .get(s.gw.url("/internal/report.pdf"))
            .header("host", "cdn.test");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.send()
    };
    let missing = get(None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"assetgate\""
    );
    assert_eq!(get(Some("wrong-token")).await.unwrap().status(), 403);
    let r = get(Some(CI)).await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("X-Amz-Signature=") && location.contains("X-Amz-Expires=120"),
        "{location}"
    );
    assert!(
        location.contains("/assets/admin/internal/report.pdf?"),
        "inside the key prefix: {location}"
    );
    let fetched = client().get(&location).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"%PDF admin only");
    // Garage refuses the presigned URL once it is tampered with.
    let tampered = location.replace("report.pdf", "logo.svg");
    assert_eq!(client().get(&tampered).send().await.unwrap().status(), 403);
    let events = audit_lines(&s);
    let ok: Vec<_> = events.iter().filter(|e| e["result"] == "ok").collect();
    assert_eq!(ok.len(), 1, "{events:?}");
    assert_eq!(ok[0]["token_id"], "ci");
    assert_eq!(ok[0]["action"], "redirect");
    assert_eq!(ok[0]["target"], "admin/internal/report.pdf");
    assert_eq!(ok[0]["client"], "127.0.0.1");
    assert!(events.iter().any(|e| e["result"] == "denied:bad_signature"));
    let raw = std::fs::read_to_string(&s.audit).unwrap();
    assert!(
        !raw.contains(CI) && !raw.contains(OPS),
        "tokens never reach the audit log"
    );
}

#[tokio::test]
async fn the_admin_api_mints_and_resolves_urls_and_audits_each_call() {
    let s = start().await;
    let api = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut req = client()
            .post(s.gw.admin_url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let body = serde_json::json!({"scheme": "hmac", "url": "https://cdn.test/internal/report.pdf", "ttl_seconds": 300});
    let missing = api("/v1/sign", None, body.clone()).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"assetgate-admin\""
    );
    let wrong = api("/v1/sign", Some("nope"), body.clone()).await.unwrap();
    assert_eq!(wrong.status(), 403);
    assert!(
        wrong.headers().get("www-authenticate").is_none(),
        "a challenge only answers a 401"
    );
    let signed = api("/v1/sign", Some(OPS), body)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse::<serde_json::Value>()
        .unwrap();
    let url = signed["url"].as_str().unwrap();
    let path = url.strip_prefix("https://cdn.test").unwrap();
    let r = client()
        .get(s.gw.url(path))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let resolve = |visibility: &str| {
        api(
            "/v1/resolve",
            Some(OPS),
            serde_json::json!({"key": "internal/report.pdf", "visibility": visibility}),
        )
    };
    let public = resolve("public")
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse::<serde_json::Value>()
        .unwrap();
    assert_eq!(public["url"], "https://cdn.test/internal/report.pdf");
    let private = resolve("private")
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse::<serde_json::Value>()
        .unwrap();
    let private = private["url"].as_str().unwrap();
    assert!(
        private.starts_with("https://cdn.test/internal/internal/report.pdf?ag_kid=k1&"),
        "{private}"
    );
    let admin = resolve("admin-private")
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse::<serde_json::Value>()
        .unwrap();
    let admin = admin["url"].as_str().unwrap();
    let fetched = client().get(admin).send().await.unwrap();
    assert_eq!(fetched.status(), 200, "{admin}");
    let s3 = api(
        "/v1/sign",
        Some(OPS),
        serde_json::json!({"scheme": "s3", "backend": "bucket", "key": "public/logo.svg"}),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
    .parse::<serde_json::Value>()
    .unwrap();
    assert_eq!(
        client()
            .get(s3["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Bad input: clear statuses and messages.
    let bad = api(
        "/v1/resolve",
        Some(OPS),
        serde_json::json!({"key": "../etc/passwd", "visibility": "public"}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 422);
    let bad = api(
        "/v1/resolve",
        Some(OPS),
        serde_json::json!({"key": "a", "visibility": "secret"}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let get = client()
        .get(s.gw.admin_url("/v1/sign"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let events = audit_lines(&s);
    let by_ops: Vec<_> = events.iter().filter(|e| e["token_id"] == "ops").collect();
    assert!(by_ops.len() >= 6, "{events:?}");
    assert!(events.iter().any(|e| e["action"] == "resolve"
        && e["target"] == "internal/report.pdf"
        && e["result"] == "ok"));
    // The metrics token guards /metrics.
    assert_eq!(
        client()
            .get(s.gw.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let m = client()
        .get(s.gw.admin_url("/metrics"))
        .bearer_auth(METRICS)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
}
