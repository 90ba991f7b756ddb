//! The object-store tier against Garage (strict SigV4): entries stored as objects, streamed
//! back (multipart for bodies over a part), promoted into memory, shared by gateways pointing
//! at the same bucket, purged by tag and URL, and skipped when the store is unreachable.

use crate::harness::*;

/// `[cache]` with a small memory tier and the object tier on backend `cachebucket` (the
/// `bucket` table), plus a `dir` backend at `root` and an http origin, both cached on `tiers`.
fn gateway(bucket: &str, root: &std::path::Path, origin: &origin::Origin, tiers: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[cache.memory]
size = "8MiB"
[cache.object]
backend = "cachebucket"
{bucket}
[backends.files]
kind = "dir"
root = "{root}"
[backends.web]
kind = "http"
addresses = ["{origin}"]
[[hosts]]
names = ["cdn.test"]
[[hosts.routes]]
path = "/files"
strip_prefix = "/files"
backend = "files"
cache_control = "public, max-age=300"
[hosts.routes.cache]
tiers = {tiers}
[[hosts.routes]]
path = "/"
backend = "web"
[hosts.routes.cache]
tiers = {tiers}
default_ttl = "5m"
"#,
        root = root.display(),
        origin = origin.addr,
    ))
}

async fn get(gw: &Gateway, path: &str, range: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut req = client().get(gw.url(path)).header("host", "cdn.test");
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, cache, r.bytes().await.unwrap().to_vec())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn large_entries_are_stored_as_objects_streamed_back_and_shared() {
    let g = garage().await;
    let origin = origin::start();
    let root = tempfile::tempdir().unwrap();
    let big = pattern(20 << 20);
    std::fs::write(root.path().join("big.bin"), &big).unwrap();
    std::fs::write(root.path().join("small.txt"), "small and shared\n").unwrap();
    let prefix = "objcache-a";
    let bucket = g.backend_toml("cachebucket", prefix, GARAGE_SECRET);
    let a = gateway(&bucket, root.path(), &origin, r#"["memory", "object"]"#);

    // 20 MiB: more than the memory tier takes, stored in the bucket (a multipart upload).
    let (status, miss, body) = get(&a, "/files/big.bin", None).await;
    assert_eq!(status, 200);
    assert!(miss.contains("; stored;"), "{miss}");
    assert_eq!(body, big);
    let stored = g.keys(&format!("{prefix}/")).await;
    assert_eq!(
        stored.iter().filter(|k| k.contains("/m/")).count(),
        1,
        "{stored:?}"
    );
    assert_eq!(stored.iter().filter(|k| k.contains("/b/")).count(), 1);
    let (status, hit, body) = get(&a, "/files/big.bin", None).await;
    assert_eq!(status, 200);
    assert!(
        hit.contains("; hit;") && hit.ends_with("detail=object"),
        "{hit}"
    );
    assert_eq!(body, big, "the object tier served other bytes");
    // A range of an object hit.
    let (status, _, part) = get(&a, "/files/big.bin", Some("bytes=9000000-9000009")).await;
    assert_eq!(status, 206);
    assert_eq!(part, big[9_000_000..9_000_010]);

    // A second gateway on the same bucket: an object hit, promoted into its memory.
    get(&a, "/files/small.txt", None).await;
    let b = gateway(&bucket, root.path(), &origin, r#"["memory", "object"]"#);
    let (_, first, body) = get(&b, "/files/small.txt", None).await;
    assert!(first.ends_with("detail=object"), "{first}");
    assert_eq!(body, b"small and shared\n");
    let (_, second, _) = get(&b, "/files/small.txt", None).await;
    assert!(second.ends_with("detail=memory"), "{second}");
    let metrics = b.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_tier_hits_total{tier=\"object\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn purges_remove_object_entries_for_every_gateway() {
    let g = garage().await;
    let origin = origin::start();
    let root = tempfile::tempdir().unwrap();
    let prefix = "objcache-purge";
    let bucket = g.backend_toml("cachebucket", prefix, GARAGE_SECRET);
    let gw = Gateway::start_with_admin(
        &format!(
            "audit_log = \"{}\"\ntokens = [{{ id = \"ops\", secret = {{ file = \"{}\" }} }}]",
            root.path().join("audit.jsonl").display(),
            secret_file("object-purge-token-0123456789abcdef012345").display()
        ),
        &gateway_body(&bucket, root.path(), &origin),
    );
    let tagged = "/t/with-headers?Surrogate-Key=sale";
    let plain = "/p/with-headers";
    for path in [tagged, plain] {
        get(&gw, path, None).await;
        let (_, hit, _) = get(&gw, path, None).await;
        assert!(hit.ends_with("detail=object"), "{hit}");
    }
    let purge = |body: serde_json::Value| {
        let gw = &gw;
        async move {
            let r = client()
                .post(gw.admin_url("/v1/purge"))
                .bearer_auth("object-purge-token-0123456789abcdef012345")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            (status, v)
        }
    };
    let (status, answer) = purge(serde_json::json!({ "tag": "sale" })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["removed"]["object"], 1, "{answer}");
    let (_, after, _) = get(&gw, tagged, None).await;
    assert!(after.contains("fwd=uri-miss"), "{after}");
    let (_, still, _) = get(&gw, plain, None).await;
    assert!(still.ends_with("detail=object"), "{still}");
    let (status, answer) =
        purge(serde_json::json!({ "url": "https://cdn.test/p/with-headers" })).await;
    assert_eq!(
        (status, &answer["removed"]["object"]),
        (200, &1.into()),
        "{answer}"
    );
    let (_, after, _) = get(&gw, plain, None).await;
    assert!(after.contains("fwd=uri-miss"), "{after}");
    let (status, _) = purge(serde_json::json!({ "everything": true })).await;
    assert_eq!(status, 200);
    assert!(g.keys(&format!("{prefix}/")).await.is_empty());
}

/// The `[[hosts]]` and backends of [`gateway`] with only the object tier on the origin route.
fn gateway_body(bucket: &str, root: &std::path::Path, origin: &origin::Origin) -> String {
    format!(
        r#"
[cache.object]
backend = "cachebucket"
{bucket}
[backends.web]
kind = "http"
addresses = ["{origin}"]
[backends.files]
kind = "dir"
root = "{root}"
[[hosts]]
names = ["cdn.test"]
[[hosts.routes]]
path = "/"
backend = "web"
[hosts.routes.cache]
tiers = ["object"]
default_ttl = "5m"
"#,
        origin = origin.addr,
        root = root.display(),
    )
}

/// A bucket that cannot be reached is skipped: every request is still answered.
#[tokio::test]
async fn an_unreachable_cache_bucket_is_skipped() {
    let origin = origin::start();
    let root = tempfile::tempdir().unwrap();
    let dead = format!(
        r#"
[backends.cachebucket]
kind = "s3"
bucket = "nowhere"
region = "garage"
endpoint = "http://127.0.0.1:{port}"
path_style = true
[backends.cachebucket.credentials]
from = "static"
access_key_id = {{ file = "{key}" }}
secret_access_key = {{ file = "{secret}" }}
"#,
        port = free_port(),
        key = secret_file("AKIDEXAMPLE").display(),
        secret = secret_file("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY").display()
    );
    let gw = gateway(&dead, root.path(), &origin, r#"["memory", "object"]"#);
    for n in 0..3 {
        let (status, cache, _) = get(&gw, &format!("/dead-{n}/with-headers"), None).await;
        assert_eq!(status, 200, "{cache}");
    }
    let (_, hit, _) = get(&gw, "/dead-0/with-headers", None).await;
    assert!(hit.ends_with("detail=memory"), "{hit}");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_tier_errors_total{tier=\"object\"}"),
        "{metrics}"
    );
}

/// A damaged metadata object (here: 2 MiB of garbage) is never served: the request is
/// answered from the origin, the damage counted, the entry stored afresh.
#[tokio::test]
async fn a_damaged_metadata_object_is_dropped_and_refetched() {
    let g = garage().await;
    let origin = origin::start();
    let root = tempfile::tempdir().unwrap();
    let prefix = "objcache-damaged";
    let bucket = g.backend_toml("cachebucket", prefix, GARAGE_SECRET);
    let gw = Gateway::start(&gateway_body(&bucket, root.path(), &origin));
    let path = "/damaged/with-headers";
    get(&gw, path, None).await;
    let meta = g.keys(&format!("{prefix}/m/")).await;
    assert_eq!(meta.len(), 1, "{meta:?}");
    g.put(&meta[0], vec![0x5a; 2 << 20], "application/octet-stream")
        .await;
    let (status, cache, body) = get(&gw, path, None).await;
    assert_eq!(status, 200);
    assert!(cache.contains("fwd=uri-miss"), "{cache}");
    assert!(String::from_utf8_lossy(&body).contains("serial=2"));
    assert_eq!(origin.hits(), 2);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_tier_corrupt_total{tier=\"object\"} 1"),
        "{metrics}"
    );
    let (_, hit, _) = get(&gw, path, None).await;
    assert!(hit.ends_with("detail=object"), "{hit}");
}
