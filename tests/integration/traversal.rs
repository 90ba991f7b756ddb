//! Path-safety inputs against every backend kind: refused with 400 before any backend is asked,
//! and nothing outside the configured prefix or directory is ever returned.

use crate::harness::*;

/// Raw request targets that must be refused with 400.
pub const EVIL_PATHS: &[&str] = &[
    "/files/../secret.txt",
    "/files/./hello.txt",
    "/files/%2e%2e/secret.txt",
    "/files/%2E%2E/secret.txt",
    "/files/.%2e/secret.txt",
    "/files/%252e%252e/secret.txt",
    "/files/..%2fsecret.txt",
    "/files/..%2Fsecret.txt",
    "/files/..%5csecret.txt",
    "/files/..\\secret.txt",
    "/files/%5c..%5csecret.txt",
    "/files/hello.txt%00.png",
    "/files/%ff%fe.txt",
    "/files/a%zz",
];

/// Every evil path answers 400 and leaks nothing, while `/files/hello.txt` is still served.
async fn assert_refused(gw: &Gateway, what: &str) {
    for path in EVIL_PATHS {
        let response = raw_request(
            gw.addr,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let status = raw_status(&response);
        assert_eq!(status, 400, "{what}: {path} answered {status}: {response}");
        assert!(
            !response.contains("secret"),
            "{what}: {path} leaked: {response}"
        );
    }
    let ok = client()
        .get(gw.url("/files/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{what}: the good path is not served");
}

#[tokio::test]
async fn dir_backend_refuses_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("public");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "secret\n").unwrap();
    let gw = Gateway::start(&format!(
        r#"
[backends.files]
kind = "dir"
root = "{}"
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/files"
strip_prefix = "/files"
backend = "files"
"#,
        root.display()
    ));
    assert_refused(&gw, "dir").await;
}

#[tokio::test]
async fn http_backend_refuses_traversal_without_asking_the_origin() {
    let origin = origin::start();
    let gw = Gateway::start(&format!(
        r#"
[backends.api]
kind = "http"
addresses = ["{}"]
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/files"
backend = "api"
"#,
        origin.addr
    ));
    let before = origin.hits();
    assert_refused(&gw, "http").await;
    // Only the one good request reached the origin.
    assert_eq!(
        origin.hits(),
        before + 1,
        "the origin saw a refused request"
    );
}

#[tokio::test]
async fn s3_backend_refuses_traversal_and_stays_inside_its_prefix() {
    let g = garage().await;
    g.put("secret.txt", "secret at the bucket root\n", "text/plain")
        .await;
    g.put("tenant-a/hello.txt", "hello from tenant a\n", "text/plain")
        .await;
    g.put(
        "tenant-a-other/x.txt",
        "secret of a sibling prefix\n",
        "text/plain",
    )
    .await;
    let gw = Gateway::start(&format!(
        "{}\n[[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/files\"\nstrip_prefix = \"/files\"\nbackend = \"bucket\"\n",
        g.backend_toml("bucket", "tenant-a/", GARAGE_SECRET)
    ));
    assert_refused(&gw, "s3").await;
    let c = client();
    let ok = c.get(gw.url("/files/hello.txt")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "hello from tenant a\n");
    // The prefix root and the bucket root never turn into a listing.
    for path in ["/files", "/files/", "/files//"] {
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(!r.text().await.unwrap().contains("ListBucketResult"));
    }
    // Climbing into a sibling prefix, sent as written (a client library would resolve "..").
    let response = raw_request(
        gw.addr,
        b"GET /files/../tenant-a-other/x.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&response), 400, "{response}");
    assert!(!response.contains("sibling"), "{response}");
}
