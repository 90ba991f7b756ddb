//! Streamed uploads through the admin API (`PUT /v1/assets`): hashed on the fly, placed by
//! the server, idempotent, and leaving nothing behind when refused or cut off.

use crate::harness::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub(crate) const TOKEN: &str = "upload-test-token-0123456789abcdef0123456789";

/// A gateway whose asset store keeps its SQLite file (and the audit log) in `state` and its
/// originals in the `store` backend named by `originals_toml`; `extra` goes into `[assets]`.
pub(crate) fn upload_gateway(state: &Path, originals_toml: &str, extra: &str) -> Gateway {
    let db = format!("sqlite://{}", state.join("assets.db").display());
    upload_gateway_on(&db, state, originals_toml, extra)
}

/// [`upload_gateway`] with the asset store at `database`.
pub(crate) fn upload_gateway_on(
    database: &str,
    state: &Path,
    originals_toml: &str,
    extra: &str,
) -> Gateway {
    Gateway::start_with_admin(
        &format!(
            "audit_log = \"{}\"\ntokens = [{{ id = \"ops\", secret = {{ file = \"{}\" }} }}]",
            state.join("audit.jsonl").display(),
            secret_file(TOKEN).display()
        ),
        &format!(
            r#"
[assets]
database = "{database}"
originals = "store"
{extra}

{originals_toml}

[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "store"
"#,
        ),
    )
}

pub(crate) fn dir_store(root: &Path) -> String {
    format!(
        "[backends.store]\nkind = \"dir\"\nroot = \"{}\"\n",
        root.display()
    )
}

/// `PUT /v1/assets` with `query` and `body`: the status and the JSON answer.
pub(crate) async fn put(gw: &Gateway, query: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    put_to(gw.admin_url(&format!("/v1/assets?{query}")), body).await
}

/// `PUT` of `body` to the admin URL `url` with the token.
async fn put_to(url: String, body: Vec<u8>) -> (u16, serde_json::Value) {
    answered(client().put(url).bearer_auth(TOKEN).body(body)).await
}

/// `GET` of the admin path `path` with the token: the status and the JSON answer.
pub(crate) async fn admin_get(gw: &Gateway, path: &str) -> (u16, serde_json::Value) {
    answered(client().get(gw.admin_url(path)).bearer_auth(TOKEN)).await
}

/// `POST` of `body` to the admin path `path` with the token: the status and the JSON answer.
pub(crate) async fn admin_post(
    gw: &Gateway,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let req = client().post(gw.admin_url(path)).bearer_auth(TOKEN);
    answered(req.body(body.to_string())).await
}

/// Sends `req`: the status and the JSON answer (`null` when it is not JSON).
async fn answered(req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default(),
    )
}

/// `n` identical uploads of `bytes` with `query` at once, each answered 200; their asset ids.
async fn at_once(gw: &Gateway, query: &str, bytes: &[u8], n: usize) -> Vec<serde_json::Value> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let url = gw.admin_url(&format!("/v1/assets?{query}"));
            tokio::spawn(put_to(url, bytes.to_vec()))
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let (status, answer) = t.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        ids.push(answer["id"].clone());
    }
    ids
}

/// Waits (at most 5 s) until the job `id` is done; returns it.
pub(crate) async fn finished(gw: &Gateway, id: &serde_json::Value) -> serde_json::Value {
    let url = gw.admin_url(&format!("/v1/jobs/{}", id.as_str().expect("a job id")));
    for _ in 0..100 {
        let r = client().get(&url).bearer_auth(TOKEN).send().await.unwrap();
        let job: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        if job["state"] == "done" {
            return job;
        }
        assert_ne!(job["state"], "failed", "{job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never finished");
}

/// Rows of `blobs`, `objects` and `assets` in the SQLite store.
pub(crate) fn rows(state: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import sqlite3; c = sqlite3.connect('{}'); \
                 print(*[c.execute('select count(*) from ' + t).fetchone()[0] for t in ('blobs', 'objects', 'assets')])",
                state.join("assets.db").display()
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every file below `root`, relative to it.
pub(crate) fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn png() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/sample/images/banner.png"
    ))
    .unwrap()
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits until the store has connected (the admin listener answers `/readyz` 200).
pub(crate) async fn ready(gw: &Gateway) {
    for _ in 0..100 {
        if let Ok(r) = client().get(gw.admin_url("/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the asset store never became ready");
}

#[tokio::test]
async fn uploads_are_hashed_placed_and_idempotent_under_concurrency() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = upload_gateway(state.path(), &dir_store(root.path()), "");
    ready(&gw).await;
    let bytes = png();
    let hash = hex_sha256(&bytes);
    let query = "owner=alice&module=avatars&visibility=public&name=banner.png";
    let (status, first) = put(&gw, query, bytes.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["hash"], hash.as_str());
    assert_eq!(first["type"], "image/png");
    assert_eq!(first["size"], bytes.len() as u64);
    assert_eq!(first["uploaded"], true);
    let key = format!("{}/{}/{hash}", &hash[..2], &hash[2..4]);
    assert_eq!(first["key"], key.as_str());
    assert_eq!(std::fs::read(root.path().join(&key)).unwrap(), bytes);
    // Served at once from the backend it was placed in.
    let served = client()
        .get(gw.url(&format!("/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
    // Twenty identical uploads at once: one blob, one object, one asset, no staging left.
    let ids = at_once(&gw, query, &bytes, 20).await;
    assert!(ids.iter().all(|id| *id == first["id"]), "{ids:?}");
    assert_eq!(rows(state.path()), "1 1 1");
    assert_eq!(files(root.path()), vec![key.clone()]);
    // Another owner of the same bytes shares the content-addressed object.
    let (status, bob) = put(&gw, "owner=bob&module=avatars&visibility=public", bytes).await;
    assert_eq!(status, 200);
    assert_eq!(bob["uploaded"], false);
    assert_ne!(bob["id"], first["id"]);
    assert_eq!(rows(state.path()), "1 1 2");
    let audit = std::fs::read_to_string(state.path().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"upload\"") && audit.contains("alice/avatars/banner.png"),
        "{audit}"
    );
}

#[tokio::test]
async fn identical_uploads_at_once_on_postgres_make_one_blob_and_one_asset_per_owner() {
    let pg = postgres();
    let name = format!("uploads_{}", std::process::id());
    let database = pg.database(&name);
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = upload_gateway_on(&database, state.path(), &dir_store(root.path()), "");
    ready(&gw).await;
    let bytes = png();
    // Two owners racing each other, ten uploads each, all at once.
    let (alice, bob) = tokio::join!(
        at_once(
            &gw,
            "owner=alice&module=avatars&visibility=public",
            &bytes,
            10
        ),
        at_once(
            &gw,
            "owner=bob&module=avatars&visibility=public",
            &bytes,
            10
        ),
    );
    assert!(alice.iter().all(|id| *id == alice[0]), "{alice:?}");
    assert!(
        bob.iter().all(|id| *id == bob[0]) && bob[0] != alice[0],
        "{bob:?}"
    );
    let counts = pg.psql(
        &name,
        "SELECT (SELECT COUNT(*) FROM blobs) || ' ' || (SELECT COUNT(*) FROM objects) || ' ' || \
         (SELECT COUNT(*) FROM assets)",
    );
    assert_eq!(counts.trim(), "1 1 2");
    let hash = hex_sha256(&bytes);
    assert_eq!(
        files(root.path()),
        vec![format!("{}/{}/{hash}", &hash[..2], &hash[2..4])]
    );
}

#[tokio::test]
async fn refused_uploads_leave_no_object_and_no_row() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = upload_gateway(
        state.path(),
        &dir_store(root.path()),
        "[assets.upload]\nmax_size = \"200KiB\"\ntypes = [\"image/*\"]\n",
    );
    ready(&gw).await;
    let q = "owner=alice&module=docs";
    // The type is sniffed from the bytes: text named .png is still text.
    let (status, answer) = put(&gw, &format!("{q}&name=x.png"), b"plain words".repeat(50)).await;
    assert_eq!(status, 415, "{answer}");
    // Over the limit, past the first pieces.
    let mut big = png();
    big.resize(1 << 20, 0);
    let (status, answer) = put(&gw, q, big).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("204800"),
        "{answer}"
    );
    // An owner that is not one safe segment, a missing owner.
    let (status, _) = put(&gw, "owner=..&module=docs", png()).await;
    assert_eq!(status, 400);
    let (status, _) = put(&gw, "module=docs", png()).await;
    assert_eq!(status, 400);
    // Counted by what went wrong (a missing owner is refused before any upload begins).
    let metrics = gw.metrics().await;
    for line in [
        "assetgate_asset_ingest_total{path=\"api\",result=\"unsupported_type\"} 1",
        "assetgate_asset_ingest_total{path=\"api\",result=\"too_large\"} 1",
        "assetgate_asset_ingest_total{path=\"api\",result=\"refused\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line} in:\n{metrics}");
    }
    // No token, the wrong method.
    let r = client()
        .put(gw.admin_url("/v1/assets?owner=a&module=b"))
        .body(png())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .delete(gw.admin_url("/v1/assets"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, PUT");
    assert_eq!(rows(state.path()), "0 0 0");
    assert!(files(root.path()).is_empty(), "{:?}", files(root.path()));
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_nothing() {
    use tokio::io::AsyncWriteExt;
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = upload_gateway(state.path(), &dir_store(root.path()), "");
    ready(&gw).await;
    let addr = gw.admin_url("").trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /v1/assets?owner=alice&module=big HTTP/1.1\r\nHost: admin\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Length: 4194304\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut body = png();
    body.resize(1 << 20, 7);
    s.write_all(&body).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(s);
    // The gateway notices, aborts the object and records nothing.
    for _ in 0..50 {
        if files(root.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(files(root.path()).is_empty(), "{:?}", files(root.path()));
    assert_eq!(rows(state.path()), "0 0 0");
    // And still takes uploads.
    let (status, _) = put(&gw, "owner=alice&module=big", png()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_large_upload_goes_to_garage_in_parts_and_leaves_no_staging_object() {
    let garage = garage().await;
    let state = tempfile::tempdir().unwrap();
    let prefix = format!("upload-test-{}", std::process::id());
    let gw = upload_gateway(
        state.path(),
        &garage.backend_toml("store", &prefix, GARAGE_SECRET),
        "",
    );
    ready(&gw).await;
    // 20 MiB: three parts of a multipart upload.
    let mut bytes = png();
    let mut n: u32 = 1;
    while bytes.len() < 20 << 20 {
        n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    let hash = hex_sha256(&bytes);
    let (status, answer) = put(&gw, "owner=carol&module=video&name=big.png", bytes.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["hash"], hash.as_str());
    let key = format!("{prefix}/{}/{}/{hash}", &hash[..2], &hash[2..4]);
    let s3 = garage.client();
    let head = s3
        .head_object()
        .bucket(GARAGE_BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(bytes.len() as i64));
    assert_eq!(head.content_type(), Some("image/png"));
    let staging = s3
        .list_objects_v2()
        .bucket(GARAGE_BUCKET)
        .prefix(format!("{prefix}/.uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(staging.key_count(), Some(0));
    let uploads = s3
        .list_multipart_uploads()
        .bucket(GARAGE_BUCKET)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
}

#[tokio::test]
async fn deleting_the_last_asset_removes_object_rows_and_cached_variants() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let variants =
        "[cache.memory]\nsize = \"16MiB\"\n\n[backends.variants]\nkind = \"variants\"\n\n\
                    [[hosts]]\nnames = [\"img.test\"]\n[[hosts.routes]]\npath = \"/v\"\n\
                    strip_prefix = \"/v\"\nbackend = \"variants\"\ncache = {}\n";
    let private = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[assets.placements]]\nvisibility = \"private\"\nbackend = \"mine\"\nkey = \"{{user}}/{{hash}}.{{ext}}\"\n\n\
         [backends.mine]\nkind = \"dir\"\nroot = \"{}\"\n\n{variants}",
        private.path().display()
    );
    let gw = upload_gateway(state.path(), &dir_store(root.path()), &extra);
    ready(&gw).await;
    let bytes = png();
    let hash = hex_sha256(&bytes);
    let (_, alice) = put(&gw, "owner=alice&module=m&visibility=public", bytes.clone()).await;
    let (_, bob) = put(&gw, "owner=bob&module=m&visibility=public", bytes.clone()).await;
    let (_, carol) = put(
        &gw,
        "owner=carol&module=m&visibility=private",
        bytes.clone(),
    )
    .await;
    assert_eq!(rows(state.path()), "1 2 3");
    let variant = format!("/v/{hash}/320x240/80.webp");
    let req = |p: &str| client().get(gw.url(p)).header("host", "img.test").send();
    assert_eq!(req(&variant).await.unwrap().status(), 200);
    let hit = req(&variant).await.unwrap();
    let hit_status = hit.headers()["cache-status"].to_str().unwrap().to_string();
    assert!(hit_status.contains("hit"), "{hit_status}");
    let delete = |id: &serde_json::Value| {
        client()
            .delete(gw.admin_url(&format!("/v1/assets/{}", id.as_str().unwrap())))
            .bearer_auth(TOKEN)
            .send()
    };
    // Carol's own object goes with her asset; the blob stays (alice and bob).
    let r = delete(&carol["id"]).await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(answer["blob_removed"], false);
    assert!(files(private.path()).is_empty());
    // Alice's goes, bob still shares the object.
    assert_eq!(delete(&alice["id"]).await.unwrap().status(), 200);
    assert_eq!(files(root.path()).len(), 1);
    let got = client()
        .get(gw.admin_url(&format!("/v1/assets/{}", bob["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    // The object itself is served by the dir route; every worker thread has it open.
    let object = format!("/{}", bob["key"].as_str().unwrap());
    let object_url = gw.url(&object);
    let plain = || client().get(object_url.clone()).send();
    for _ in 0..20 {
        assert_eq!(plain().await.unwrap().status(), 200);
    }
    // Bob's is the last: object, rows and every cached variant go.
    let r = delete(&bob["id"]).await.unwrap();
    assert_eq!(r.status(), 200);
    // Gone at once on every thread, not after the open-file check interval.
    for _ in 0..20 {
        assert_eq!(plain().await.unwrap().status(), 404);
    }
    let answer: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(answer["blob_removed"], true, "{answer}");
    assert!(files(root.path()).is_empty());
    assert_eq!(rows(state.path()), "0 0 0");
    // The cached variant was purged by the original's tag, not just refused.
    assert_eq!(answer["purged"]["removed"]["memory"], 1, "{answer}");
    let after = req(&variant).await.unwrap();
    assert_eq!(after.status(), 404, "{:?}", after.headers());
    // Deleting again is 404; the calls are audited.
    assert_eq!(delete(&bob["id"]).await.unwrap().status(), 404);
    let audit = std::fs::read_to_string(state.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"delete\""), "{audit}");
}

#[tokio::test]
async fn a_deletion_changes_access_on_every_gateway_within_a_second() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let redis = Redis::start();
    let extra = format!(
        "[cache.memory]\nsize = \"16MiB\"\n[cache.redis]\nurl = \"{}\"\nkey_prefix = \"del:\"\n\n\
         [[auth.hmac.keys]]\nid = \"k1\"\nsecret = {{ file = \"{}\" }}\n\n\
         [backends.variants]\nkind = \"variants\"\n\n\
         [[hosts]]\nnames = [\"img.test\"]\n[[hosts.routes]]\npath = \"/v\"\n\
         strip_prefix = \"/v\"\nbackend = \"variants\"\naccess = \"hmac\"\ncache = {{}}\n",
        redis.url(),
        secret_file("0123456789abcdef0123456789abcdef").display()
    );
    let a = upload_gateway(state.path(), &dir_store(root.path()), &extra);
    let b = upload_gateway(state.path(), &dir_store(root.path()), &extra);
    ready(&a).await;
    ready(&b).await;
    let bytes = png();
    let hash = hex_sha256(&bytes);
    // The same bytes: public for alice, private for bob.
    let (_, alice) = put(&a, "owner=alice&module=m&visibility=public", bytes.clone()).await;
    let (status, _) = put(&a, "owner=bob&module=m&visibility=private", bytes).await;
    assert_eq!(status, 200);
    let variant = format!("/v/{hash}/320x240/80.webp");
    let anonymous = |gw: &Gateway| {
        client()
            .get(gw.url(&variant))
            .header("host", "img.test")
            .send()
    };
    // Public: gateway b serves it without a credential (and now remembers the lookup).
    assert_eq!(anonymous(&b).await.unwrap().status(), 200);
    let r = client()
        .delete(a.admin_url(&format!("/v1/assets/{}", alice["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Only bob's private asset is left: b refuses anonymous requests within a second, well
    // before its remembered lookup (5 s) would have lapsed.
    let started = std::time::Instant::now();
    loop {
        let status = anonymous(&b).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still {status} on b"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(anonymous(&a).await.unwrap().status(), 401);
}

#[tokio::test]
async fn originals_are_served_by_hash_with_the_stores_access() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let routes = |originals: bool| {
        format!(
            "[[hosts.routes]]\npath = \"/{p}\"\nstrip_prefix = \"/{p}\"\nbackend = \"variants\"\n\
             access = \"hmac\"\ncache = {{}}\n[hosts.routes.variants]\noriginals = {originals}\n",
            p = if originals { "o" } else { "v" }
        )
    };
    let extra = format!(
        "[cache.memory]\nsize = \"16MiB\"\n\n[[auth.hmac.keys]]\nid = \"k1\"\nsecret = {{ file = \"{}\" }}\n\n\
         [backends.variants]\nkind = \"variants\"\n\n[[hosts]]\nnames = [\"img.test\"]\n{}{}",
        secret_file("0123456789abcdef0123456789abcdef").display(),
        routes(true),
        routes(false)
    );
    let gw = upload_gateway(state.path(), &dir_store(root.path()), &extra);
    ready(&gw).await;
    let public = png();
    let mut private = png();
    private.extend_from_slice(b"-bob's");
    let (_, _) = put(
        &gw,
        "owner=alice&module=m&visibility=public",
        public.clone(),
    )
    .await;
    let (_, _) = put(
        &gw,
        "owner=bob&module=m&visibility=private",
        private.clone(),
    )
    .await;
    let get = |path: String, auth: Option<String>| {
        let url = auth.unwrap_or_else(|| gw.url(&path));
        client().get(url).header("host", "img.test").send()
    };
    let public_path = format!("/o/{}/original", hex_sha256(&public));
    let r = get(public_path.clone(), None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.headers()["etag"],
        format!("\"{}\"", hex_sha256(&public)).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), public.as_slice());
    // A private original: 401 without a credential, 403 for another user, 200 for its owner.
    let private_path = format!("/o/{}/original", hex_sha256(&private));
    assert_eq!(get(private_path.clone(), None).await.unwrap().status(), 401);
    // Signed for the img.test host; sent to the gateway's address with that Host.
    let signed = |user: &str| {
        let host_url = format!("http://img.test{private_path}");
        let url = gw.signed("hmac", &["--user", user, "--ttl", "10m", &host_url]);
        gw.url(url.trim_start_matches("http://img.test"))
    };
    assert_eq!(
        get(String::new(), Some(signed("carol")))
            .await
            .unwrap()
            .status(),
        403
    );
    let r = get(String::new(), Some(signed("bob"))).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("private"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), private.as_slice());
    // A route that serves variants only refuses originals.
    let r = get(format!("/v/{}/original", hex_sha256(&public)), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn publishing_moves_the_bytes_to_the_public_placement_and_back() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (public_root, private_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let extra = format!(
        "[[assets.placements]]\nvisibility = \"private\"\nbackend = \"priv\"\n\
         key = \"private/{{user}}/{{module}}/{{hash}}.{{ext}}\"\n\
         [[assets.placements]]\nvisibility = \"public\"\nbackend = \"pub\"\nkey = \"public/{{user}}/{{name}}\"\n\n\
         [backends.priv]\nkind = \"dir\"\nroot = \"{}\"\n[backends.pub]\nkind = \"dir\"\nroot = \"{}\"\n\n\
         [resolve]\npublic_base = \"http://cdn.test\"\n\n\
         [[hosts]]\nnames = [\"cdn.test\"]\n[[hosts.routes]]\npath = \"/public\"\nbackend = \"pub\"\n",
        private_root.path().display(),
        public_root.path().display()
    );
    let gw = upload_gateway(state.path(), &dir_store(root.path()), &extra);
    ready(&gw).await;
    let bytes = png();
    let hash = hex_sha256(&bytes);
    let (status, up) = put(
        &gw,
        "owner=alice&module=shots&visibility=private&name=My Shot.png",
        bytes.clone(),
    )
    .await;
    assert_eq!(status, 200, "{up}");
    // The answer gives the URL [resolve] gives the asset, or why there is none.
    assert!(
        up["url_error"]
            .as_str()
            .unwrap()
            .contains("resolve.private_base"),
        "{up}"
    );
    let (_, public_up) = put(
        &gw,
        "owner=alice&module=shots&visibility=public&name=p.png",
        {
            let mut b = bytes.clone();
            b.extend_from_slice(b"public");
            b
        },
    )
    .await;
    assert_eq!(
        public_up["url"], "http://cdn.test/public/alice/p.png",
        "{public_up}"
    );
    let (_, _) = client()
        .delete(gw.admin_url(&format!("/v1/assets/{}", public_up["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    let private_key = format!("private/alice/shots/{hash}.png");
    assert_eq!(files(private_root.path()), vec![private_key.clone()]);
    let public_url = "/public/alice/My-Shot.png";
    let fetch = || {
        client()
            .get(gw.url(public_url))
            .header("host", "cdn.test")
            .send()
    };
    assert_eq!(fetch().await.unwrap().status(), 404);
    let call = |verb: &str| {
        client()
            .post(gw.admin_url(&format!("/v1/assets/{}/{verb}", up["id"].as_str().unwrap())))
            .bearer_auth(TOKEN)
            .send()
    };
    // Publish: served at the public URL, gone from the private placement.
    let r = call("publish").await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(answer["after"]["visibility"], "public", "{answer}");
    // The switch is at once; the bytes move in a durable job.
    let job = finished(&gw, &answer["job"]).await;
    assert_eq!(
        (job["kind"].as_str(), job["attempts"].as_u64()),
        (Some("move"), Some(1))
    );
    let got = client()
        .get(gw.admin_url(&format!("/v1/assets/{}", up["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let got: serde_json::Value = serde_json::from_str(&got.text().await.unwrap()).unwrap();
    assert_eq!(got["key"], "public/alice/My-Shot.png");
    assert_eq!(got["backend"], "pub");
    let r = fetch().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert!(files(private_root.path()).is_empty());
    assert_eq!(rows(state.path()), "1 1 1");
    // Unpublish: back in the private placement, the public URL answers 404 at once.
    let r = call("unpublish").await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    finished(&gw, &answer["job"]).await;
    assert_eq!(fetch().await.unwrap().status(), 404);
    assert_eq!(files(private_root.path()), vec![private_key]);
    assert!(files(public_root.path()).is_empty());
    assert_eq!(rows(state.path()), "1 1 1");
    // The wrong method, and an asset that does not exist.
    let r = client()
        .get(gw.admin_url("/v1/assets/x/publish"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = client()
        .post(gw.admin_url("/v1/assets/nope/publish"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The jobs list: both moves done; the metrics count them.
    let admin_get = |path: &str| client().get(gw.admin_url(path)).bearer_auth(TOKEN).send();
    let r = admin_get("/v1/jobs?state=done").await.unwrap();
    let list: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let moves = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "move");
    assert_eq!(moves.count(), 2, "{list}");
    assert_eq!(
        admin_get("/v1/jobs?state=bogus").await.unwrap().status(),
        400
    );
    let metrics = admin_get("/metrics").await.unwrap().text().await.unwrap();
    let runs = "assetgate_asset_job_runs_total{kind=\"move\",result=\"done\"} 2";
    assert!(metrics.contains(runs), "{metrics}");
}

#[tokio::test]
async fn assets_are_listed_by_owner_module_and_visibility_in_pages() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = upload_gateway(state.path(), &dir_store(root.path()), "");
    ready(&gw).await;
    let mut ids = Vec::new();
    for (i, query) in [
        "owner=dana&module=avatars&visibility=public",
        "owner=dana&module=avatars",
        "owner=dana&module=posts",
        "owner=dana&module=avatars",
        "owner=erik&module=avatars",
    ]
    .iter()
    .enumerate()
    {
        let (status, up) = put(&gw, query, format!("bytes {i}").into_bytes()).await;
        assert_eq!(status, 200, "{up}");
        ids.push(up["id"].as_str().unwrap().to_string());
    }
    let list = |query: &str| {
        let url = gw.admin_url(&format!("/v1/assets?{query}"));
        async move {
            let r = client().get(url).bearer_auth(TOKEN).send().await.unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            (status, v)
        }
    };
    let listed = |v: &serde_json::Value| -> Vec<String> {
        v["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Dana's avatars, two per page, in id order.
    let mut want: Vec<String> = vec![ids[0].clone(), ids[1].clone(), ids[3].clone()];
    want.sort();
    let (_, first) = list("owner=dana&module=avatars&limit=2").await;
    assert_eq!(listed(&first), want[..2], "{first}");
    let next = first["next"].as_str().expect("a next page").to_string();
    let (_, second) = list(&format!("owner=dana&module=avatars&limit=2&after={next}")).await;
    assert_eq!(listed(&second), want[2..], "{second}");
    assert!(second["next"].is_null(), "{second}");
    let (_, public) = list("visibility=public").await;
    assert_eq!(listed(&public), vec![ids[0].clone()]);
    let (_, all) = list("").await;
    assert_eq!(listed(&all).len(), 5);
    assert_eq!(list("limit=0").await.0, 400);
    assert_eq!(list("visibility=secret").await.0, 400);
    // The CLI calls the same endpoint.
    let out = Command::new(env!("CARGO_BIN_EXE_assetgate"))
        .args(["assets", "list", "--owner", "erik", "-c"])
        .arg(gw.dir.path().join("assetgate.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(&format!("{}  erik/avatars  private", ids[4])),
        "{text}"
    );
    assert!(text.trim_end().ends_with("(end)"), "{text}");
}

#[tokio::test]
async fn a_1_gib_upload_to_garage_keeps_the_gateways_memory_bounded() {
    let garage = garage().await;
    let state = tempfile::tempdir().unwrap();
    let prefix = format!("gib-{}", std::process::id());
    let gw = upload_gateway(
        state.path(),
        &garage.backend_toml("store", &prefix, GARAGE_SECRET),
        "",
    );
    ready(&gw).await;
    // Warm: one small upload, so what is measured is the large one's growth alone.
    let (status, _) = put(&gw, "owner=ops&module=warm", png()).await;
    assert_eq!(status, 200);
    let before = rss_kib(gw.pid());
    const TOTAL: u64 = 1 << 30;
    const PIECE: usize = 1 << 20;
    // The body is made as it is sent (never whole in the test's memory either), hashed as it
    // goes.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let producer = tokio::spawn(async move {
        let mut hasher = Sha256::new();
        let mut n: u32 = 7;
        for _ in 0..TOTAL / PIECE as u64 {
            let mut piece = vec![0u8; PIECE];
            for chunk in piece.chunks_mut(4) {
                n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                chunk.copy_from_slice(&n.to_le_bytes());
            }
            hasher.update(&piece);
            if tx.send(Ok(piece)).await.is_err() {
                break;
            }
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    let pid = gw.pid();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let r = client()
        .put(gw.admin_url("/v1/assets?owner=ops&module=video&name=big.bin"))
        .bearer_auth(TOKEN)
        .header("content-length", TOTAL.to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    sampler.abort();
    let status = r.status();
    let answer: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(status, 200, "{answer}");
    let hash = producer.await.unwrap();
    assert_eq!(answer["hash"], hash.as_str());
    assert_eq!(answer["size"], TOTAL);
    let head = garage
        .client()
        .head_object()
        .bucket(GARAGE_BUCKET)
        .key(format!("{prefix}/{}/{}/{hash}", &hash[..2], &hash[2..4]))
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(TOTAL as i64));
    let growth_mib = (peak.load(std::sync::atomic::Ordering::Relaxed) - before) / 1024;
    assert!(
        growth_mib < 64,
        "RSS grew {growth_mib} MiB during a 1 GiB upload"
    );
    eprintln!("1 GiB upload: RSS grew {growth_mib} MiB");
}
