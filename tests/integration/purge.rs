//! Purge and the fleet feed against the real binary, a real origin and real `redis-server`s:
//! by URL, prefix and tag through the admin API and `assetgate purge`, from memory, disk and
//! Redis; carried to other gateways within a second, replayed by one that was cut off, and
//! node-local tiers dropped when what was missed cannot be known; revocations carried the
//! same way.

use crate::harness::*;
use std::time::{Duration, Instant};

const ADMIN: &str = "purge-admin-token-0123456789abcdef0123";

/// `[admin]` lines: one token, and an audit log in `dir`.
fn admin_lines(dir: &std::path::Path) -> String {
    format!(
        "audit_log = \"{}\"\ntokens = [{{ id = \"ops\", secret = {{ file = \"{}\" }} }}]",
        dir.join("audit.jsonl").display(),
        secret_file(ADMIN).display()
    )
}

/// A gateway for `cdn.test` in front of `origin`, with `[cache]` tables `tiers` and the route
/// on `route_tiers`, plus `extra` TOML (keys, more routes' hosts).
fn gateway(
    origin: &origin::Origin,
    audit_dir: &std::path::Path,
    tiers: &str,
    route_tiers: &str,
    extra: &str,
) -> Gateway {
    Gateway::start_with_admin(
        &admin_lines(audit_dir),
        &format!(
            r#"
[cache]
lock_timeout = "5s"
[cache.memory]
size = "8MiB"
{tiers}

[backends.web]
kind = "http"
addresses = ["{addr}"]

{extra}

[[hosts]]
names = ["cdn.test", "alias.test"]

[[hosts.routes]]
name = "assets"
path = "/"
backend = "web"
[hosts.routes.cache]
tiers = {route_tiers}
default_ttl = "1h"
"#,
            addr = origin.addr
        ),
    )
}

/// A gateway on memory then the Redis at `redis_url`.
fn on_redis(origin: &origin::Origin, dir: &std::path::Path, redis_url: &str) -> Gateway {
    gateway(
        origin,
        dir,
        &format!("[cache.redis]\nurl = \"{redis_url}\"\nkey_prefix = \"p:\""),
        r#"["memory", "redis"]"#,
        "",
    )
}

async fn get(gw: &Gateway, path: &str) -> (String, String) {
    let r = client()
        .get(gw.url(path))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let status = r
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, r.text().await.unwrap())
}

/// Where `path` is answered from: `memory`, `disk`, `redis`, or `origin` (a miss).
async fn answered_from(gw: &Gateway, path: &str) -> String {
    let (status, _) = get(gw, path).await;
    match status.rsplit_once("detail=") {
        Some((head, tier)) if head.contains("; hit;") => tier.to_string(),
        _ => "origin".to_string(),
    }
}

/// `POST /v1/purge` with `body`; the status and JSON answer.
async fn purge(gw: &Gateway, body: serde_json::Value) -> (u16, serde_json::Value) {
    admin_post(gw, "purge", body, Some(ADMIN)).await
}

async fn admin_post(
    gw: &Gateway,
    action: &str,
    body: serde_json::Value,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = client()
        .post(gw.admin_url(&format!("/v1/{action}")))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// Every entry file under a disk tier's folder.
fn entry_files(disk: &std::path::Path) -> usize {
    std::fs::read_dir(disk)
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().len() == 2 && d.path().is_dir())
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

#[tokio::test]
async fn purges_by_url_prefix_tag_and_everything_remove_exactly_those_entries() {
    let origin = origin::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let gw = gateway(
        &origin,
        dir.path(),
        &format!(
            "[cache.disk]\npath = \"{}\"\nsize = \"64MiB\"",
            disk.display()
        ),
        r#"["memory", "disk"]"#,
        "",
    );
    let a = "/p/a/with-headers?Surrogate-Key=red%20blue";
    let a_other_query = "/p/a/with-headers?x=1";
    let b = "/p/b/with-headers?Cache-Tag=blue,green";
    let c = "/q/c/with-headers";
    let all = [a, a_other_query, b, c];
    for path in all {
        get(&gw, path).await;
        assert_eq!(answered_from(&gw, path).await, "memory", "{path}");
    }
    assert_eq!(origin.hits(), 4);
    assert_eq!(entry_files(&disk), 4);

    // By URL (through an alias of the host, with a query): both queries' entries go.
    let (status, answer) = purge(
        &gw,
        serde_json::json!({ "url": "https://alias.test/p/a/with-headers?ignored=1" }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["removed"]["memory"], 2, "{answer}");
    assert_eq!(answer["removed"]["disk"], 2, "{answer}");
    assert_eq!(answer["fleet"], "none");
    assert_eq!(entry_files(&disk), 2);
    assert_eq!(answered_from(&gw, a).await, "origin");
    assert_eq!(answered_from(&gw, b).await, "memory");

    // By tag, from either header style.
    let (status, answer) = purge(&gw, serde_json::json!({ "tag": "green" })).await;
    assert_eq!((status, &answer["removed"]["memory"]), (200, &1.into()));
    assert_eq!(answered_from(&gw, b).await, "origin");
    assert_eq!(answered_from(&gw, c).await, "memory");

    // By prefix.
    let (status, _) = purge(&gw, serde_json::json!({ "prefix": "https://cdn.test/q/" })).await;
    assert_eq!(status, 200);
    assert_eq!(answered_from(&gw, c).await, "origin");
    assert_eq!(answered_from(&gw, a).await, "memory");

    // Everything: explicitly.
    let (status, answer) = purge(&gw, serde_json::json!({ "everything": true })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(entry_files(&disk), 0);
    for path in [a, b, c] {
        assert_eq!(answered_from(&gw, path).await, "origin", "{path}");
    }
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_purges_total{kind=\"tag\",origin=\"admin\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("assetgate_cache_tier_purged_total{tier=\"disk\"}"),
        "{metrics}"
    );
    // Every call is audited with the token's id.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"purge\"").count(), 4, "{audit}");
    assert!(audit.contains("\"ops\"") && !audit.contains(ADMIN));
}

#[tokio::test]
async fn purges_that_would_be_too_broad_or_are_not_authorised_are_refused() {
    let origin = origin::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&origin, dir.path(), "", r#"["memory"]"#, "");
    get(&gw, "/x/with-headers").await;
    for body in [
        serde_json::json!({ "prefix": "https://cdn.test/" }),
        serde_json::json!({ "prefix": "https://cdn.test" }),
        serde_json::json!({}),
        serde_json::json!({ "everything": false }),
        serde_json::json!({ "url": "https://cdn.test/x", "tag": "t" }),
        serde_json::json!({ "url": "https://elsewhere.test/x" }),
        serde_json::json!({ "url": "/x/with-headers" }),
        serde_json::json!({ "tag": "two words" }),
        serde_json::json!({ "regex": ".*" }),
    ] {
        let (status, answer) = purge(&gw, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let everything = serde_json::json!({ "everything": true });
    let (status, _) = admin_post(&gw, "purge", everything.clone(), None).await;
    assert_eq!(status, 401);
    let (status, _) = admin_post(&gw, "purge", everything, Some("wrong")).await;
    assert_eq!(status, 403);
    assert_eq!(answered_from(&gw, "/x/with-headers").await, "memory");
}

/// The command line: `assetgate purge` finds the admin address and token in the config.
#[tokio::test]
async fn the_purge_command_purges_through_the_admin_api() {
    let origin = origin::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&origin, dir.path(), "", r#"["memory"]"#, "");
    get(&gw, "/cli/with-headers").await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_assetgate"))
            .arg("purge")
            .arg("-c")
            .arg(gw.dir.path().join("assetgate.toml"))
            .args(args)
            .env_remove("ASSETGATE_ADMIN_TOKEN")
            .output()
            .unwrap()
    };
    let out = run(&["--url", "https://cdn.test/cli/with-headers"]);
    assert!(out.status.success(), "{out:?}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["removed"]["memory"], 1, "{answer}");
    assert_eq!(answered_from(&gw, "/cli/with-headers").await, "origin");
    // Refused by the gateway: the answer is shown and the exit status says so.
    let out = run(&["--prefix", "https://cdn.test/"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("empty prefix"));
    // Nothing to purge named: refused before anything is sent.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
}

/// A fill that was already fetching when a purge of its URL came is not stored: it may be
/// the very content the purge was meant to remove.
#[tokio::test]
async fn a_fill_running_when_its_url_is_purged_is_not_stored() {
    let origin = origin::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&origin, dir.path(), "", r#"["memory"]"#, "");
    let path = "/race/delay-800/with-headers";
    let slow = {
        let url = gw.url(path);
        tokio::spawn(async move {
            let r = client()
                .get(url)
                .header("host", "cdn.test")
                .send()
                .await
                .unwrap();
            r.text().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = purge(
        &gw,
        serde_json::json!({ "url": format!("https://cdn.test{path}") }),
    )
    .await;
    assert_eq!(status, 200);
    let old = slow.await.unwrap();
    assert!(old.contains("serial=1"), "{old}");
    // The next request is fetched again, not answered with what was fetched before the purge.
    let (cache, body) = get(&gw, path).await;
    assert!(cache.contains("fwd=uri-miss"), "{cache}");
    assert!(body.contains("serial=2"), "{body}");
    assert_eq!(answered_from(&gw, path).await, "memory");
}

/// After a restart the disk tier's entries are indexed again from their files, so a purge
/// by tag still finds them.
#[tokio::test]
async fn a_restarted_gateway_still_purges_its_disk_entries_by_tag() {
    let origin = origin::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let tiers = format!(
        "[cache.disk]\npath = \"{}\"\nsize = \"64MiB\"",
        disk.display()
    );
    let path = "/r/with-headers?Surrogate-Key=season-1";
    let gw = gateway(&origin, dir.path(), &tiers, r#"["disk"]"#, "");
    get(&gw, path).await;
    drop(gw);
    let gw = gateway(&origin, dir.path(), &tiers, r#"["disk"]"#, "");
    assert_eq!(answered_from(&gw, path).await, "disk");
    let (status, answer) = purge(&gw, serde_json::json!({ "tag": "season-1" })).await;
    assert_eq!(status, 200);
    assert_eq!(answer["removed"]["disk"], 1, "{answer}");
    assert_eq!(entry_files(&disk), 0);
    assert_eq!(answered_from(&gw, path).await, "origin");
}

/// Waits until `gw` follows the fleet feed.
async fn following_the_feed(gw: &Gateway) {
    metrics_when(gw, "the gateway following the fleet feed", |m| {
        m.contains("assetgate_fleet_feed_connected 1")
    })
    .await;
}

/// Polls `path` on `gw` until it is no longer answered from memory; how long that took.
async fn until_not_in_memory(gw: &Gateway, path: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let from = answered_from(gw, path).await;
        if from != "memory" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{path} still answered from memory after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Gateway B holds an entry in memory; a purge through gateway A removes it from B within a
/// second, and from the Redis tier they share.
#[tokio::test]
async fn a_purge_through_one_gateway_reaches_anothers_memory_within_a_second() {
    let origin = origin::start();
    let redis = Redis::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = on_redis(&origin, dir_a.path(), &redis.url());
    let b = on_redis(&origin, dir_b.path(), &redis.url());
    let url_path = "/fleet/x/with-headers";
    let tagged = "/fleet/y/with-headers?Cache-Tag=launch";
    for path in [url_path, tagged] {
        get(&b, path).await;
        assert_eq!(answered_from(&b, path).await, "memory");
    }
    let (status, answer) = purge(
        &a,
        serde_json::json!({ "url": format!("https://cdn.test{url_path}") }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["fleet"], "sent");
    assert_eq!(answer["removed"]["redis"], 1, "{answer}");
    let took = until_not_in_memory(&b, url_path, Duration::from_secs(1)).await;
    eprintln!("purge reached gateway B in {took:?}");
    // The miss went to the origin (Redis no longer had it either), and is stored again.
    assert_eq!(answered_from(&b, url_path).await, "memory");
    assert_eq!(answered_from(&b, tagged).await, "memory");
    let (status, _) = purge(&a, serde_json::json!({ "tag": "launch" })).await;
    assert_eq!(status, 200);
    until_not_in_memory(&b, tagged, Duration::from_secs(1)).await;
    let metrics = b.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_purges_total{kind=\"url\",origin=\"fleet\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("assetgate_fleet_feed_connected 1"),
        "{metrics}"
    );
}

/// Gateway B is cut off from Redis while a purge is sent through A: when B reconnects it
/// replays what it missed and no longer serves the purged entry (other entries stay).
#[tokio::test]
async fn a_gateway_cut_off_during_a_purge_replays_it_when_it_reconnects() {
    let origin = origin::start();
    let redis = Redis::start();
    let relay = Relay::start(std::net::SocketAddr::from(([127, 0, 0, 1], redis.port)));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = on_redis(&origin, dir_a.path(), &redis.url());
    let b = on_redis(
        &origin,
        dir_b.path(),
        &format!("redis://127.0.0.1:{}/0", relay.port),
    );
    let purged = "/cut/purged/with-headers";
    let kept = "/cut/kept/with-headers";
    for path in [purged, kept] {
        get(&b, path).await;
        assert_eq!(answered_from(&b, path).await, "memory");
    }
    // B must be following the feed before it is cut off.
    following_the_feed(&b).await;
    relay.cut();
    let (status, answer) = purge(
        &a,
        serde_json::json!({ "url": format!("https://cdn.test{purged}") }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // While cut off, B cannot know: its memory copy still answers.
    assert_eq!(answered_from(&b, purged).await, "memory");
    relay.restore();
    until_not_in_memory(&b, purged, Duration::from_secs(10)).await;
    assert_eq!(
        answered_from(&b, kept).await,
        "memory",
        "a replay drops only what was purged"
    );
}

/// When Redis lost its data while a gateway was away, nobody can say what was purged
/// meanwhile: the gateway drops its node-local tiers instead of serving them.
#[tokio::test]
async fn a_gateway_that_cannot_know_what_it_missed_drops_its_local_tiers() {
    let origin = origin::start();
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let b = on_redis(&origin, dir.path(), &redis.url());
    let path = "/lost/with-headers";
    get(&b, path).await;
    assert_eq!(answered_from(&b, path).await, "memory");
    following_the_feed(&b).await;
    redis.stop();
    redis.restart();
    until_not_in_memory(&b, path, Duration::from_secs(10)).await;
    metrics_when(&b, "a resync that dropped the local tiers", |m| {
        m.contains("assetgate_fleet_feed_resyncs_total{outcome=\"dropped\"} 1")
    })
    .await;
}

const HMAC_SECRET: &str = "revocation-secret-0123456789abcdef0123";

/// A gateway on the Redis at `redis_url` with an HMAC-signed route `/private`.
fn signed_gateway(origin: &origin::Origin, dir: &std::path::Path, redis_url: &str) -> Gateway {
    gateway(
        origin,
        dir,
        &format!("[cache.redis]\nurl = \"{redis_url}\"\nkey_prefix = \"s:\""),
        r#"["memory", "redis"]"#,
        &format!(
            "[[auth.hmac.keys]]\nid = \"k1\"\nsecret = {{ file = \"{}\" }}\n\n\
             [[hosts]]\nnames = [\"private.test\"]\n[[hosts.routes]]\nname = \"private\"\n\
             path = \"/\"\nbackend = \"web\"\naccess = \"hmac\"",
            secret_file(HMAC_SECRET).display()
        ),
    )
}

async fn fetch_signed(gw: &Gateway, url: &str) -> u16 {
    let path = url.strip_prefix("https://private.test").unwrap();
    client()
        .get(gw.url(path))
        .header("host", "private.test")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A token revoked through gateway A is refused by gateway B within a second, and by a
/// gateway started afterwards; other tokens still pass.
#[tokio::test]
async fn a_token_revoked_on_one_gateway_is_refused_by_all() {
    let origin = origin::start();
    let redis = Redis::start();
    let (dir_a, dir_b, dir_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = signed_gateway(&origin, dir_a.path(), &redis.url());
    let b = signed_gateway(&origin, dir_b.path(), &redis.url());
    let leaked = a.signed(
        "hmac",
        &["--token-id", "t-leaked", "https://private.test/doc.txt"],
    );
    let other = a.signed(
        "hmac",
        &["--token-id", "t-other", "https://private.test/doc.txt"],
    );
    assert_eq!(fetch_signed(&b, &leaked).await, 200);
    following_the_feed(&b).await;
    let (status, answer) = admin_post(
        &a,
        "revoke",
        serde_json::json!({ "kind": "token", "id": "t-leaked" }),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["fleet"], "sent");
    assert_eq!(fetch_signed(&a, &leaked).await, 403);
    let started = Instant::now();
    while fetch_signed(&b, &leaked).await != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still accepts the revoked token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fetch_signed(&b, &other).await, 200);
    let c = signed_gateway(&origin, dir_c.path(), &redis.url());
    following_the_feed(&c).await;
    assert_eq!(fetch_signed(&c, &leaked).await, 403);
    assert_eq!(fetch_signed(&c, &other).await, 200);
    let (status, _) = admin_post(
        &a,
        "revoke",
        serde_json::json!({ "kind": "session", "id": "x" }),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 400);
}

/// A purge is an operator waiting for an answer: a Redis that was restarted since the last
/// call is reconnected to, not reported as a failure (or skipped) for the next second.
#[tokio::test]
async fn the_first_purge_after_redis_restarts_succeeds() {
    let origin = origin::start();
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = on_redis(&origin, dir.path(), &redis.url());
    let path = "/restart/with-headers";
    get(&gw, path).await;
    assert_eq!(answered_from(&gw, path).await, "memory");
    redis.stop();
    redis.restart();
    let url = format!("http://cdn.test{path}");
    let (status, answer) = purge(&gw, serde_json::json!({ "url": url })).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = purge(&gw, serde_json::json!({ "url": url })).await;
    assert_eq!(status, 200, "{answer}");
}
