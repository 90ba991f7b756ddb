//! The `dir` backend: files, ranges, conditionals, HEAD, decorations, CORS, compression.

use crate::harness::*;

fn sample_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("img")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello, assetgate\n").unwrap();
    std::fs::write(
        root.join("img/a b+c.png"),
        b"\x89PNG\r\n\x1a\nnot-really-a-png-but-bytes",
    )
    .unwrap();
    std::fs::write(root.join("style.css"), "body { color: red; }\n".repeat(50)).unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret outside root\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("escape.txt")).unwrap();
    dir
}

fn config(root: &std::path::Path) -> String {
    format!(
        r#"
[backends.files]
kind = "dir"
root = "{root}"

[[hosts]]
names = ["*"]

[[hosts.routes]]
name = "img"
path = "/img"
backend = "files"
cache_control = "public, max-age=31536000, immutable"
[hosts.routes.cors]
allow_origins = ["https://app.example.com"]
allow_headers = ["X-Token"]
expose_headers = ["ETag"]
max_age = 600

[[hosts.routes]]
name = "dl"
path = "/dl"
backend = "files"
strip_prefix = "/dl"
download = true

[[hosts.routes]]
name = "files"
path = "/"
backend = "files"
cache_control = "public, max-age=60"
"#,
        root = root.join("root").display()
    )
}

/// A gateway on the sample tree (the tree must outlive it).
fn start() -> (tempfile::TempDir, Gateway) {
    let tree = sample_tree();
    let gw = Gateway::start(&config(tree.path()));
    (tree, gw)
}

#[tokio::test]
async fn whole_file_has_validators_type_and_route_cache_control() {
    let (_tree, gw) = start();
    let r = client().get(gw.url("/hello.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["etag"].to_str().unwrap().starts_with('"'));
    assert!(r.headers().get("last-modified").is_some());
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["content-length"], "17");
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    assert_eq!(r.text().await.unwrap(), "hello, assetgate\n");
}

async fn get_range(gw: &Gateway, range: &str) -> reqwest::Response {
    client()
        .get(gw.url("/hello.txt"))
        .header("range", range)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn single_ranges_are_206() {
    let (_tree, gw) = start();
    let r = get_range(&gw, "bytes=7-15").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 7-15/17");
    assert_eq!(r.text().await.unwrap(), "assetgate");
    let r = get_range(&gw, "bytes=-4").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "ate\n");
}

#[tokio::test]
async fn range_past_the_end_is_416_with_the_length() {
    let (_tree, gw) = start();
    let r = get_range(&gw, "bytes=100-").await;
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */17");
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn matching_validators_are_304_and_others_200() {
    let (_tree, gw) = start();
    let c = client();
    let r = c.get(gw.url("/hello.txt")).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    let conditional =
        |name: &'static str, value: String| c.get(gw.url("/hello.txt")).header(name, value).send();
    let r = conditional("if-none-match", etag.clone()).await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = conditional("if-modified-since", last_modified)
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = conditional("if-none-match", "\"other\"".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn head_has_the_length_but_no_body() {
    let (_tree, gw) = start();
    let r = client().head(gw.url("/hello.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "17");
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn keys_with_space_and_plus_are_found_and_typed() {
    let (_tree, gw) = start();
    let r = client()
        .get(gw.url("/img/a%20b+c.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn errors_are_short_and_never_cached() {
    let tree = sample_tree();
    let gw = Gateway::start(&config(tree.path()));
    let c = client();
    let r = c.get(gw.url("/img/missing.png")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.text().await.unwrap(), "not found\n");
    // A directory is not a file.
    assert_eq!(c.get(gw.url("/img/")).send().await.unwrap().status(), 404);
    // A symlink leading outside the root is not served.
    let r = c.get(gw.url("/escape.txt")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Read-only backend: 405 with Allow.
    let r = c.put(gw.url("/hello.txt")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    let r = c.delete(gw.url("/img/a.png")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn download_mode_adds_content_disposition() {
    let tree = sample_tree();
    let gw = Gateway::start(&config(tree.path()));
    let r = client()
        .get(gw.url("/dl/img/a%20b+c.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"a b+c.png\"; filename*=UTF-8''a%20b%2Bc.png"
    );
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let tree = sample_tree();
    let gw = Gateway::start(&config(tree.path()));
    let c = client();
    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/img/a%20b+c.png"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "x-token, range")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers()["access-control-allow-methods"], "GET, HEAD");
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "x-token, range"
    );
    assert_eq!(r.headers()["access-control-max-age"], "600");
    assert_eq!(r.headers()["vary"], "Origin");

    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/img/a%20b+c.png"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = c
        .get(gw.url("/img/a%20b+c.png"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers()["access-control-expose-headers"], "etag");
    assert!(r.headers()["vary"].to_str().unwrap().contains("Origin"));
    let r = c
        .get(gw.url("/img/a%20b+c.png"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(r.headers()["vary"].to_str().unwrap().contains("Origin"));
}

#[tokio::test]
async fn compresses_text_but_not_images() {
    let tree = sample_tree();
    let gw = Gateway::start(&config(tree.path()));
    let c = client();
    let original = "body { color: red; }\n".repeat(50);
    for encoding in ["gzip", "br", "zstd"] {
        let r = c
            .get(gw.url("/style.css"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-encoding"], encoding, "{encoding}");
        assert!(r.headers()["vary"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding"));
        let body = r.bytes().await.unwrap();
        assert!(
            body.len() < original.len() / 4,
            "{encoding}: {} bytes",
            body.len()
        );
        if encoding == "gzip" {
            assert_eq!(gunzip(&body), original);
        }
    }
    let r = c
        .get(gw.url("/img/a%20b+c.png"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    // A range of a text file is never compressed (the bytes must match Content-Range).
    let r = c
        .get(gw.url("/style.css"))
        .header("accept-encoding", "gzip")
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.text().await.unwrap(), "body { col");
}
