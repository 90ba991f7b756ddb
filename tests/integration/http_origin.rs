//! The `http` backend against a real origin: pass-through of methods, bodies, query strings and
//! headers; failures mapped to 502/504.

use crate::harness::*;

fn config(origin: std::net::SocketAddr, extra_member: Option<u16>) -> String {
    let members = match extra_member {
        Some(p) => format!("\"{origin}\", \"127.0.0.1:{p}\""),
        None => format!("\"{origin}\""),
    };
    format!(
        r#"
[backends.api]
kind = "http"
addresses = [{members}]
host_header = "origin.internal"
read_timeout = "1s"
connect_timeout = "1s"
health_check_interval = "1s"

[[hosts]]
names = ["api.test"]

[[hosts.routes]]
name = "exports"
path = "/api/exports"
backend = "api"
download = true

[[hosts.routes]]
name = "v1"
path = "/api"
backend = "api"
strip_prefix = "/api"
add_prefix = "/v1"
methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]
"#
    )
}

/// An origin and a gateway in front of it (the origin must outlive the gateway).
fn start() -> (origin::Origin, Gateway) {
    let origin = origin::start();
    let gw = Gateway::start(&config(origin.addr, None));
    (origin, gw)
}

/// `GET path` on host `api.test` with extra headers.
async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(gw.url(path)).header("host", "api.test");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn path_query_and_host_are_rewritten_for_the_origin() {
    let (_origin, gw) = start();
    let r = get(&gw, "/api/items/caf%C3%A9%20x?sort=asc&page=2", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-origin"], "yes");
    let text = r.text().await.unwrap();
    assert!(text.contains("method=GET\n"), "{text}");
    assert!(text.contains("path=/v1/items/caf%C3%A9%20x\n"), "{text}");
    assert!(text.contains("query=sort=asc&page=2\n"), "{text}");
    assert!(text.contains("host=origin.internal\n"), "{text}");
    assert!(text.contains("xff=127.0.0.1\n"), "{text}");
}

#[tokio::test]
async fn writes_carry_their_bodies() {
    let (_origin, gw) = start();
    for method in [reqwest::Method::PUT, reqwest::Method::POST] {
        let r = client()
            .request(method.clone(), gw.url("/api/upload"))
            .header("host", "api.test")
            .body(format!("payload for {method}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains(&format!("method={method}\n")), "{text}");
        assert!(
            text.contains(&format!("body=payload for {method}\n")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn origin_text_is_compressed_when_accepted() {
    let (_origin, gw) = start();
    let pad = "p".repeat(1100);
    let r = get(
        &gw,
        &format!("/api/compress-me?pad={pad}"),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let text = gunzip(&r.bytes().await.unwrap());
    assert!(text.contains("path=/v1/compress-me\n"), "{text}");
    // Below `compression.min_size` (1 KiB by default) a body is sent as it is.
    let r = get(&gw, "/api/compress-me", &[("accept-encoding", "gzip")]).await;
    assert!(!r.headers().contains_key("content-encoding"));
    assert!(r.text().await.unwrap().contains("path=/v1/compress-me\n"));
}

#[tokio::test]
async fn already_encoded_bodies_pass_untouched() {
    let (_origin, gw) = start();
    let r = get(
        &gw,
        "/api/encoded",
        &[("accept-encoding", "gzip, br, zstd")],
    )
    .await;
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        b"\x1f\x8bpretend-gzip-bytes-from-the-origin"
    );
}

#[tokio::test]
async fn download_names_come_from_the_path_never_the_query() {
    let (_origin, gw) = start();
    let r = get(&gw, "/api/exports/q3%20report.csv?token=abc", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"q3 report.csv\"; filename*=UTF-8''q3%20report.csv"
    );
}

#[tokio::test]
async fn head_and_origin_statuses_pass_through() {
    let (_origin, gw) = start();
    let r = client()
        .head(gw.url("/api/x"))
        .header("host", "api.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    // /api/status/418 → /v1/status/418: status and body untouched.
    let r = get(&gw, "/api/status/418", &[]).await;
    assert_eq!(r.status(), 418);
    assert_eq!(r.text().await.unwrap(), "origin status 418\n");
}

#[tokio::test]
async fn unknown_hosts_are_404_without_asking_the_origin() {
    let (origin, gw) = start();
    let r = client()
        .get(gw.url("/api/x"))
        .header("host", "other.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn origin_errors_timeouts_and_down_members() {
    let origin = origin::start();
    let c = client();
    let slow = format!(
        r#"
[backends.api]
kind = "http"
addresses = ["{}"]
read_timeout = "1s"
health_check_interval = "0s"
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "api"
"#,
        origin.addr
    );
    let gw = Gateway::start(&slow);
    let r = c.get(gw.url("/slow")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let r = c.get(gw.url("/status/503")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "origin status 503\n");
    drop(gw);

    // Only member down → 502.
    let dead = free_port();
    let gw = Gateway::start(&format!(
        "[backends.api]\nkind = \"http\"\naddresses = [\"127.0.0.1:{dead}\"]\nhealth_check_interval = \"0s\"\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"api\"\n"
    ));
    let r = c.get(gw.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.text().await.unwrap(), "backend unreachable\n");
}

#[tokio::test]
async fn a_refusing_member_is_skipped_before_health_checks_notice() {
    let origin = origin::start();
    let dead = free_port();
    let gw = Gateway::start(&format!(
        "[backends.api]\nkind = \"http\"\naddresses = [\"127.0.0.1:{dead}\", \"{}\"]\n\
         health_check_interval = \"0s\"\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"api\"\n",
        origin.addr
    ));
    let c = client();
    for _ in 0..6 {
        let r = c.get(gw.url("/ping")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", gw.log());
    }
    assert_eq!(origin.hits(), 6);
}

#[tokio::test]
async fn health_checks_steer_around_a_dead_member() {
    let origin = origin::start();
    let dead = free_port();
    let gw = Gateway::start(&config(origin.addr, Some(dead)));
    let c = client();
    let down = format!("assetgate_backend_up{{backend=\"api\",member=\"127.0.0.1:{dead}\"}} 0");
    metrics_when(&gw, "the dead member marked down", |m| m.contains(&down)).await;
    for _ in 0..6 {
        let r = c
            .get(gw.url("/api/ping"))
            .header("host", "api.test")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", gw.log());
    }
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(&format!(
            "assetgate_backend_up{{backend=\"api\",member=\"127.0.0.1:{dead}\"}} 0"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "assetgate_backend_up{{backend=\"api\",member=\"{}\"}} 1",
            origin.addr
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn answers_a_shared_cache_must_never_store_are_flagged() {
    let origin = origin::start();
    let gw = Gateway::start(&format!(
        r#"
[log]
format = "json"
[backends.api]
kind = "http"
addresses = ["{}"]
degraded_header = "X-Token-Valid: false"
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "api"
"#,
        origin.addr
    ));
    let cases = [
        ("/a/with-headers?set-cookie=s%3D1", "set_cookie"),
        (
            "/b/with-headers?cache-control=public%2C%20PRIVATE",
            "private",
        ),
        ("/c/with-headers?cache-control=no-store", "private"),
        ("/d/with-headers?x-token-valid=FALSE", "degraded"),
        (
            "/e/with-headers?x-token-valid=true&cache-control=max-age%3D60",
            "-",
        ),
        ("/f/with-headers", "-"),
    ];
    for (path, _) in &cases {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let events = access_events(&gw, cases.len()).await;
    for (path, flag) in &cases {
        let event = events
            .iter()
            .find(|e| {
                path.starts_with(e["path"].as_str().unwrap().trim_end_matches("with-headers"))
            })
            .unwrap_or_else(|| panic!("no access event for {path}"));
        assert_eq!(event["never_store"], *flag, "{path}: {event}");
    }
}
