//! The `s3` backend against Garage, which checks SigV4 strictly and answers conditional GETs.

use crate::harness::*;
use futures_util::StreamExt;
use std::net::TcpListener;
use std::time::Duration;

fn s3_config(g: &Garage, secret: &str) -> String {
    format!(
        "{}\n[[hosts]]\nnames = [\"cdn.test\", \"*\"]\n\
         [[hosts.routes]]\nname = \"assets\"\npath = \"/\"\nbackend = \"bucket\"\n\
         cache_control = \"public, max-age=31536000, immutable\"\n",
        g.backend_toml("bucket", "", secret)
    )
}

fn no_backend_headers(r: &reqwest::Response) {
    for (name, _) in r.headers() {
        let n = name.as_str();
        assert!(
            !n.starts_with("x-amz-") && !n.starts_with("x-garage") && n != "server",
            "backend-internal header leaked: {n}"
        );
    }
}

#[tokio::test]
async fn awkward_keys_are_fetched_exactly() {
    let g = garage().await;
    let keys = [
        "awkward/space name.txt",
        "awkward/plus+sign.txt",
        "awkward/café ☕ 日本.txt",
        "awkward/100%.txt",
        "awkward/semi;colon=eq&amp.txt",
        "awkward/(parens)[brackets]{braces}!$'*,.txt",
        "awkward/tilde~dash-under_score.txt",
        "awkward/deep/ly/nested/file.txt",
    ];
    for key in keys {
        g.put(key, format!("body of {key}"), "text/plain").await;
    }
    let gw = Gateway::start(&s3_config(g, GARAGE_SECRET));
    let c = client();
    for key in keys {
        let encoded: String = key
            .split('/')
            .map(|s| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("/");
        let r = c.get(gw.url(&format!("/{encoded}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{key}: {}", gw.log());
        no_backend_headers(&r);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert!(r.headers().get("etag").is_some());
        assert!(r.headers().get("last-modified").is_some());
        assert_eq!(r.text().await.unwrap(), format!("body of {key}"));
    }
    // '+' in a path is a plus, not a space.
    let r = c
        .get(gw.url("/awkward/plus+sign.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "body of awkward/plus+sign.txt");
    // Text from the bucket is compressed for clients that accept it (from 1 KiB, the default
    // `compression.min_size`); ranges never are.
    let large = "text ".repeat(400);
    g.put("awkward/large text.txt", large.clone(), "text/plain")
        .await;
    let r = c
        .get(gw.url("/awkward/large%20text.txt"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers()["etag"].to_str().unwrap().starts_with("W/"));
    assert_eq!(gunzip(&r.bytes().await.unwrap()), large);
    let r = c
        .get(gw.url("/awkward/plus+sign.txt"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.text().await.unwrap(), "body of awkward/plus+sign.txt");
    let r = c
        .get(gw.url("/awkward/plus+sign.txt"))
        .header("accept-encoding", "gzip")
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.text().await.unwrap(), "body");
}

fn data_body() -> Vec<u8> {
    (0..1000u32).map(|i| (i % 251) as u8).collect()
}

/// A gateway on Garage with `range/data.bin` (1000 bytes of [`data_body`]) stored.
async fn start_with_data() -> Gateway {
    let g = garage().await;
    g.put("range/data.bin", data_body(), "application/octet-stream")
        .await;
    Gateway::start(&s3_config(g, GARAGE_SECRET))
}

async fn get_data(gw: &Gateway, header: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = client().get(gw.url("/range/data.bin"));
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn whole_object_streams_with_its_length() {
    let gw = start_with_data().await;
    let r = get_data(&gw, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), data_body());
}

#[tokio::test]
async fn single_ranges_are_206_and_past_the_end_416() {
    let gw = start_with_data().await;
    let body = data_body();
    let r = get_data(&gw, Some(("range", "bytes=100-199"))).await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/1000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), body[100..200].to_vec());
    let r = get_data(&gw, Some(("range", "bytes=-10"))).await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().to_vec(), body[990..].to_vec());
    let r = get_data(&gw, Some(("range", "bytes=5000-"))).await;
    assert_eq!(r.status(), 416);
    no_backend_headers(&r);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = get_data(&gw, Some(("if-match", "\"not-the-etag\""))).await;
    assert_eq!(r.status(), 412);
    // The client's own range and precondition are not the bucket's failures.
    let m = gw.metrics().await;
    assert!(!m.contains("assetgate_backend_errors_total{"), "{m}");
}

#[tokio::test]
async fn bucket_validators_answer_304() {
    let gw = start_with_data().await;
    let r = get_data(&gw, None).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    let r = get_data(&gw, Some(("if-none-match", &etag))).await;
    assert_eq!(r.status(), 304, "{}", gw.log());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = get_data(&gw, Some(("if-modified-since", &modified))).await;
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn head_has_the_length() {
    let gw = start_with_data().await;
    let r = client()
        .head(gw.url("/range/data.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1000");
}

#[tokio::test]
async fn missing_keys_are_a_short_uncached_404() {
    let gw = start_with_data().await;
    let r = client()
        .get(gw.url("/range/missing.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    no_backend_headers(&r);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-length"], "10");
    assert_eq!(r.text().await.unwrap(), "not found\n");
    let r = client()
        .head(gw.url("/range/missing.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn writes_to_a_bucket_route_are_405() {
    let gw = start_with_data().await;
    let r = client()
        .put(gw.url("/range/data.bin"))
        .body("overwrite")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn wrong_secret_is_a_bad_gateway() {
    let g = garage().await;
    g.put("creds/visible.txt", "visible", "text/plain").await;
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let gw = Gateway::start(&s3_config(g, wrong));
    let r = client()
        .get(gw.url("/creds/visible.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502, "{}", gw.log());
    no_backend_headers(&r);
    assert_eq!(
        r.text().await.unwrap(),
        "backend rejected the gateway's credentials\n"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(
            r#"assetgate_backend_errors_total{backend="bucket",reason="credentials_rejected"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"assetgate_backend_up{backend="bucket""#));
}

#[tokio::test]
async fn backend_down_is_502_and_silence_is_504() {
    // Nothing listens on this port.
    let dead = free_port();
    // This one accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming() {
            held.push(s);
        }
    });
    let backend = |name: &str, port: u16| {
        format!(
            "[backends.{name}]\nkind = \"s3\"\nbucket = \"assets\"\nregion = \"garage\"\n\
             endpoint = \"http://127.0.0.1:{port}\"\npath_style = true\nread_timeout = \"1s\"\n\
             connect_timeout = \"1s\"\ncredentials = {{ from = \"anonymous\" }}\n"
        )
    };
    let gw = Gateway::start(&format!(
        "{}{}[[hosts]]\nnames = [\"*\"]\n\
         [[hosts.routes]]\npath = \"/dead\"\nbackend = \"dead\"\n\
         [[hosts.routes]]\npath = \"/silent\"\nbackend = \"silent\"\n",
        backend("dead", dead),
        backend("silent", silent_port)
    ));
    let c = client();
    let r = c.get(gw.url("/dead/x.txt")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.text().await.unwrap(), "backend unreachable\n");
    let started = std::time::Instant::now();
    let r = c.get(gw.url("/silent/x.txt")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.text().await.unwrap(), "backend timed out\n");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Byte `i` of the large object: a pattern that catches reordered or dropped chunks.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

#[tokio::test]
async fn streams_256_mib_in_constant_memory() {
    const SIZE: u64 = 256 * 1024 * 1024;
    let g = garage().await;
    let body: Vec<u8> = (0..SIZE).map(pattern).collect();
    g.put("big/blob.bin", body, "application/octet-stream")
        .await;
    let gw = Gateway::start(&s3_config(g, GARAGE_SECRET));
    let c = client();
    // Warm up connection pools and allocator before the baseline.
    g.put("big/small.txt", "small", "text/plain").await;
    for _ in 0..3 {
        let _ = c
            .get(gw.url("/big/small.txt"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await;
    }
    let baseline = rss_kib(gw.pid());
    let r = c.get(gw.url("/big/blob.bin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], SIZE.to_string());
    let mut stream = r.bytes_stream();
    let mut offset = 0u64;
    let mut peak = baseline;
    let mut next_sample = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for (i, b) in chunk.iter().enumerate() {
            if *b != pattern(offset + i as u64) {
                panic!("byte {} differs", offset + i as u64);
            }
        }
        offset += chunk.len() as u64;
        if offset >= next_sample {
            peak = peak.max(rss_kib(gw.pid()));
            next_sample = offset + 4 * 1024 * 1024;
        }
    }
    assert_eq!(offset, SIZE);
    let growth_mib = (peak.saturating_sub(baseline)) as f64 / 1024.0;
    eprintln!(
        "gateway RSS baseline {} KiB, peak {} KiB, growth {growth_mib:.1} MiB",
        baseline, peak
    );
    assert!(
        growth_mib < 16.0,
        "RSS grew by {growth_mib:.1} MiB while streaming 256 MiB"
    );
}

#[tokio::test]
async fn denied_objects_are_hidden_and_counted_and_unknown_keys_are_502() {
    let g = garage().await;
    g.put("denied/x.txt", "not for this key", "text/plain")
        .await;
    // A real key with no permission on the bucket: Garage answers 403 AccessDenied.
    let (weak_id, weak_secret) = (
        "GKdeadbeefdeadbeefdeadbeef",
        "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233",
    );
    g.import_key(weak_id, weak_secret);
    let unknown_id = "GK000000000000000000000000";
    let gw = Gateway::start(&format!(
        "{}{}{}[[hosts]]\nnames = [\"*\"]\n\
         [[hosts.routes]]\npath = \"/hidden\"\nstrip_prefix = \"/hidden\"\nbackend = \"hidden\"\n\
         [[hosts.routes]]\npath = \"/told\"\nstrip_prefix = \"/told\"\nbackend = \"told\"\n\
         [[hosts.routes]]\npath = \"/unknown\"\nstrip_prefix = \"/unknown\"\nbackend = \"unknown\"\n",
        g.backend_toml_with_key("hidden", "", weak_id, weak_secret),
        g.backend_toml_with_key("told", "", weak_id, weak_secret).replace(
            "[backends.told.credentials]",
            "access_denied_status = 403\n[backends.told.credentials]"
        ),
        g.backend_toml_with_key("unknown", "", unknown_id, weak_secret),
    ));
    let c = client();
    let r = c.get(gw.url("/hidden/denied/x.txt")).send().await.unwrap();
    assert_eq!(r.status(), 404, "{}", gw.log());
    no_backend_headers(&r);
    assert_eq!(r.text().await.unwrap(), "not found\n");
    let r = c.head(gw.url("/hidden/denied/x.txt")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = c.get(gw.url("/told/denied/x.txt")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "forbidden\n");
    let r = c.get(gw.url("/unknown/denied/x.txt")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let metrics = gw.metrics().await;
    for expected in [
        r#"assetgate_backend_errors_total{backend="hidden",reason="access_denied"} 2"#,
        r#"assetgate_backend_errors_total{backend="told",reason="access_denied"} 1"#,
        r#"assetgate_backend_errors_total{backend="unknown",reason="credentials_rejected"} 1"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

/// Garage cannot be made to throttle, so a socket answers as S3 does when it does: 503 SlowDown.
#[tokio::test]
async fn throttling_is_503_with_retry_after() {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            let _ = write!(
                s,
                "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nx-amz-request-id: REQ123\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let gw = Gateway::start(&format!(
        "[backends.busy]\nkind = \"s3\"\nbucket = \"assets\"\nregion = \"garage\"\n\
         endpoint = \"http://127.0.0.1:{port}\"\npath_style = true\ncredentials = {{ from = \"anonymous\" }}\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"busy\"\n"
    ));
    let r = client().get(gw.url("/x.txt")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    no_backend_headers(&r);
    assert_eq!(r.text().await.unwrap(), "backend is throttling requests\n");
    assert!(
        gw.log().contains("REQ123"),
        "the bucket's request id is logged"
    );
}

/// A route under `/static` on a bucket with `key_prefix = "tenant"` and `add_prefix = "pub"`.
fn prefixed_config(g: &Garage, endpoint: &str, path_style: bool) -> String {
    let backend = g
        .backend_toml("bucket", "tenant", GARAGE_SECRET)
        .replace(
            &format!("endpoint = \"{}\"", g.endpoint),
            &format!("endpoint = \"{endpoint}\""),
        )
        .replace("path_style = true", &format!("path_style = {path_style}"));
    format!(
        "{backend}\n[[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\nname = \"static\"\npath = \"/static\"\n\
         backend = \"bucket\"\nstrip_prefix = \"/static\"\nadd_prefix = \"pub\"\n"
    )
}

/// Stores `tenant/pub/NAME`, then fetches `/static/NAME` through a gateway whose bucket backend
/// uses `endpoint` and `path_style`; returns the gateway (for its log) and the response.
async fn fetch_prefixed(
    g: &Garage,
    endpoint: &str,
    path_style: bool,
    name: &str,
    body: &str,
) -> (Gateway, reqwest::Response) {
    g.put(
        &format!("tenant/pub/{name}"),
        body.to_string(),
        "text/plain",
    )
    .await;
    let gw = Gateway::start(&prefixed_config(g, endpoint, path_style));
    let r = client()
        .get(gw.url(&format!("/static/{name}")))
        .send()
        .await
        .unwrap();
    (gw, r)
}

#[tokio::test]
async fn key_prefix_and_add_prefix_join_segment_wise() {
    let g = garage().await;
    g.put("tenantpub/joined.txt", "glued", "text/plain").await;
    let (gw, r) = fetch_prefixed(g, &g.endpoint, true, "joined.txt", "joined").await;
    assert_eq!(r.status(), 200, "{}", gw.log());
    assert_eq!(r.text().await.unwrap(), "joined");
}

#[tokio::test]
async fn keys_longer_than_s3_allows_are_414_at_the_gateway() {
    let g = garage().await;
    let gw = Gateway::start(&s3_config(g, GARAGE_SECRET));
    let c = client();
    let long = "k".repeat(1025);
    let r = c.get(gw.url(&format!("/{long}"))).send().await.unwrap();
    assert_eq!(r.status(), 414);
    assert_eq!(
        r.text().await.unwrap(),
        "request path too long for an object key\n"
    );
    // Exactly 1024 bytes is a valid key: the bucket is asked and says it does not exist.
    let r = c
        .get(gw.url(&format!("/{}", "k".repeat(1024))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let m = gw.metrics().await;
    assert!(!m.contains("assetgate_backend_errors_total{"), "{m}");
    assert!(m.contains("route=\"assets\",status=\"414\"} 1"), "{m}");
}

#[tokio::test]
async fn endpoint_named_localhost_is_resolved() {
    let g = garage().await;
    let by_name = g.endpoint.replace("127.0.0.1", "localhost");
    let (gw, r) = fetch_prefixed(g, &by_name, true, "by-name.txt", "by name").await;
    assert_eq!(r.status(), 200, "{}", gw.log());
    assert_eq!(r.text().await.unwrap(), "by name");
}

#[tokio::test]
async fn virtual_hosted_style_signs_for_the_bucket_host() {
    let g = garage().await;
    // Garage's root domain is `.s3.garage.localhost`: the bucket is named by the Host header
    // `assets.s3.garage.localhost:PORT`, which resolves to loopback without DNS (RFC 6761):
    // [::1] first, where Garage does not listen, so every request also proves that a refused
    // address falls through to the next one.
    let endpoint = g.endpoint.replace("127.0.0.1", "s3.garage.localhost");
    let (gw, r) = fetch_prefixed(g, &endpoint, false, "virtual.txt", "virtual host").await;
    assert_eq!(r.status(), 200, "{}", gw.log());
    assert_eq!(r.text().await.unwrap(), "virtual host");
    let r = client()
        .get(gw.url("/static/absent.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
