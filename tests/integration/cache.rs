//! The shared cache's memory tier in front of a real origin: what is stored and served again
//! (counted by the origin's own request counter), `Cache-Status`, the cache key (query
//! allowlist, signing parameters, steering groups), `Vary`, stale serving, and the cache
//! metrics a hit-ratio alert reads.

use crate::harness::*;
use std::time::Duration;

/// A gateway whose `cdn.test` routes are cached in memory, in front of `origin`.
fn cached(origin: &origin::Origin, route_cache: &str) -> Gateway {
    cached_with(origin, "", route_cache)
}

/// Like [`cached`], with more `[cache]` tables (e.g. `[cache.disk]`).
fn cached_with(origin: &origin::Origin, tiers: &str, route_cache: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[cache]
lock_timeout = "5s"
[cache.memory]
size = "8MiB"
{tiers}

[backends.web]
kind = "http"
addresses = ["{addr}"]
degraded_header = "X-Token-Valid: false"

[[hosts]]
names = ["cdn.test"]

[[hosts.routes]]
name = "assets"
path = "/"
backend = "web"
methods = ["GET", "HEAD", "POST"]
[hosts.routes.cache]
{route_cache}
"#,
        addr = origin.addr
    ))
}

async fn get(gw: &Gateway, path: &str) -> reqwest::Response {
    get_with(gw, path, &[]).await
}

async fn get_with(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(gw.url(path)).header("host", "cdn.test");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.send().await.unwrap()
}

fn cache_status(r: &reqwest::Response) -> String {
    r.headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Requests `path` twice and returns both `Cache-Status` values and bodies.
async fn twice(gw: &Gateway, path: &str) -> [(String, String); 2] {
    let mut out: [(String, String); 2] = Default::default();
    for slot in &mut out {
        let r = get(gw, path).await;
        *slot = (cache_status(&r), r.text().await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_miss_is_stored_and_the_next_request_is_a_memory_hit() {
    let origin = origin::start();
    let gw = cached(&origin, r#"tiers = ["memory"]"#);
    let path = "/a/with-headers?cache-control=max-age%3D300";
    let first = get(&gw, path).await;
    assert_eq!(first.status(), 200);
    let status = cache_status(&first);
    assert!(
        status.starts_with("assetgate; fwd=uri-miss; fwd-status=200; stored; ttl="),
        "{status}"
    );
    let body = first.text().await.unwrap();
    let second = get(&gw, path).await;
    let status = cache_status(&second);
    assert!(status.starts_with("assetgate; hit; ttl="), "{status}");
    assert!(status.ends_with("; detail=memory"), "{status}");
    assert!(second.headers().contains_key("age"));
    assert_eq!(second.text().await.unwrap(), body);
    // HEAD is answered from the same entry.
    let head = client()
        .head(gw.url(path))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(cache_status(&head).contains("; hit;"));
    assert_eq!(
        origin.hits(),
        1,
        "one origin request for three client requests"
    );
    // A Range request is cut from the stored body.
    let range = get_with(&gw, path, &[("range", "bytes=0-3")]).await;
    assert_eq!(range.status(), 206);
    assert_eq!(range.text().await.unwrap(), "with");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn conditional_requests_are_answered_from_the_entry() {
    let origin = origin::start();
    let gw = cached(&origin, "");
    let path = "/e/with-headers?cache-control=max-age%3D300&etag=%22v1%22";
    let first = get(&gw, path).await;
    assert_eq!(first.headers()["etag"], "\"v1\"");
    let not_modified = get_with(&gw, path, &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(not_modified.status(), 304);
    assert!(cache_status(&not_modified).contains("; hit;"));
    let changed = get_with(&gw, path, &[("if-none-match", "\"v0\"")]).await;
    assert_eq!(changed.status(), 200);
    assert!(changed.text().await.unwrap().starts_with("with headers"));
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn responses_without_freshness_need_a_route_default() {
    let origin = origin::start();
    let gw = cached(&origin, "");
    let [(one, _), (two, _)] = twice(&gw, "/n/with-headers").await;
    assert!(one.ends_with("detail=no_freshness"), "{one}");
    assert!(two.contains("fwd=uri-miss"), "{two}");
    assert_eq!(origin.hits(), 2);
    drop(gw);
    let gw = cached(&origin, r#"default_ttl = "1m""#);
    let [(one, a), (two, b)] = twice(&gw, "/n/with-headers").await;
    assert!(one.contains("stored; ttl=60"), "{one}");
    assert!(two.contains("; hit;"), "{two}");
    assert_eq!(a, b);
    assert_eq!(origin.hits(), 3);
}

/// Each of these is asked for twice and reaches the origin both times; `Cache-Status` names
/// why it was not stored.
#[tokio::test]
async fn never_stored() {
    let origin = origin::start();
    let gw = cached(&origin, r#"default_ttl = "1m""#);
    let cases = [
        ("/1/with-headers?set-cookie=s%3D1", "set_cookie"),
        (
            "/2/with-headers?cache-control=private%2C%20max-age%3D60",
            "private",
        ),
        ("/3/with-headers?cache-control=no-store", "private"),
        ("/4/with-headers?x-token-valid=false", "degraded"),
        ("/5/status/503", "status"),
        ("/6/status/403", "status"),
        ("/7/with-headers?vary=*", "vary_star"),
    ];
    for (path, reason) in cases {
        let before = origin.hits();
        let [(one, _), (two, _)] = twice(&gw, path).await;
        assert!(one.ends_with(&format!("detail={reason}")), "{path}: {one}");
        assert!(two.ends_with(&format!("detail={reason}")), "{path}: {two}");
        assert_eq!(
            origin.hits(),
            before + 2,
            "{path} was served from the cache"
        );
    }
    // A POST on a cached route is forwarded, never looked up.
    let post = client()
        .post(gw.url("/p"))
        .header("host", "cdn.test")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(cache_status(&post), "assetgate; fwd=bypass; detail=method");
}

#[tokio::test]
async fn a_forwarded_authorization_is_stored_only_with_the_origins_permission() {
    let origin = origin::start();
    let gw = cached(&origin, r#"default_ttl = "1m""#);
    let auth = [("authorization", "Bearer someone")];
    for _ in 0..2 {
        let r = get_with(&gw, "/auth/with-headers?cache-control=max-age%3D60", &auth).await;
        assert!(cache_status(&r).ends_with("detail=authorization"));
    }
    assert_eq!(origin.hits(), 2);
    for _ in 0..2 {
        get_with(
            &gw,
            "/auth/with-headers?cache-control=public%2C%20max-age%3D60",
            &auth,
        )
        .await;
    }
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn the_query_allowlist_decides_the_key() {
    let origin = origin::start();
    let gw = cached(&origin, "default_ttl = \"1m\"\nquery_keys = [\"w\"]");
    get(&gw, "/q/with-headers?w=100&cb=1").await;
    let r = get(&gw, "/q/with-headers?cb=2&w=100").await;
    assert!(cache_status(&r).contains("; hit;"), "{}", cache_status(&r));
    assert_eq!(origin.hits(), 1);
    let r = get(&gw, "/q/with-headers?w=200").await;
    assert!(cache_status(&r).contains("fwd=uri-miss"));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn an_origins_whole_query_is_in_the_key_by_default() {
    let origin = origin::start();
    let gw = cached(&origin, r#"default_ttl = "1m""#);
    get(&gw, "/q/with-headers?a=1&b=2").await;
    get(&gw, "/q/with-headers?b=2&a=%31").await;
    assert_eq!(
        origin.hits(),
        1,
        "same parameters in another order share the entry"
    );
    get(&gw, "/q/with-headers?a=1&b=3").await;
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn the_store_rule_keeps_only_matching_responses() {
    let origin = origin::start();
    let gw = cached(
        &origin,
        "default_ttl = \"1m\"\nstore_if_query = [{ name = \"output_format\", equals = \"file\" }]",
    );
    let [(one, _), _] = twice(&gw, "/s/with-headers?output_format=stream").await;
    assert!(one.ends_with("detail=query_rule"), "{one}");
    assert_eq!(origin.hits(), 2);
    let [_, (two, _)] = twice(&gw, "/s/with-headers?output_format=file").await;
    assert!(two.contains("; hit;"), "{two}");
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn each_vary_variant_is_stored_apart() {
    let origin = origin::start();
    let gw = cached(&origin, r#"default_ttl = "1m""#);
    let path = "/v/with-headers?vary=accept-language";
    let mut bodies = Vec::new();
    for lang in ["en", "fr", "en", "fr"] {
        let r = get_with(&gw, path, &[("accept-language", lang)]).await;
        bodies.push(r.text().await.unwrap());
    }
    assert_eq!(origin.hits(), 2, "one origin request per language");
    assert_eq!(bodies[0], bodies[2]);
    assert_eq!(bodies[1], bodies[3]);
    assert_ne!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_once_and_refreshes() {
    let origin = origin::start();
    let gw = cached(&origin, "");
    let path = "/swr/with-headers?cache-control=max-age%3D1%2C%20stale-while-revalidate%3D60";
    let first = get(&gw, path).await.text().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = get(&gw, path).await;
    let status = cache_status(&stale);
    assert!(status.starts_with("assetgate; hit; ttl=-"), "{status}");
    assert_eq!(
        stale.text().await.unwrap(),
        first,
        "the stale copy answered"
    );
    // One background request refreshed the entry.
    eventually(
        "the background revalidation",
        Duration::from_secs(5),
        || async { (origin.hits() == 2).then_some(()) },
    )
    .await;
    let fresh = get(&gw, path).await;
    assert!(cache_status(&fresh).starts_with("assetgate; hit; ttl="));
    assert!(!cache_status(&fresh).contains("ttl=-"));
    assert_ne!(
        fresh.text().await.unwrap(),
        first,
        "the refreshed copy answers now"
    );
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn stale_if_error_serves_stale_while_the_origin_is_down() {
    let mut origin = origin::start();
    let gw = cached(&origin, "");
    let path = "/sie/with-headers?cache-control=max-age%3D1%2C%20stale-if-error%3D60";
    let first = get(&gw, path).await.text().await.unwrap();
    origin.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = get(&gw, path).await;
    assert_eq!(r.status(), 200);
    assert!(cache_status(&r).starts_with("assetgate; hit; ttl=-"));
    assert_eq!(r.text().await.unwrap(), first);
    // Without a stale-if-error window the error is the answer.
    let plain = "/plain/with-headers?cache-control=max-age%3D1";
    origin.restart();
    get(&gw, plain).await;
    origin.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(&gw, plain).await.status(), 502);
}

/// A rule's canary answer is filed under its group, so a default-group client never gets it;
/// the sticky cookie is each new client's own, on hits too, never a stored one.
#[tokio::test]
async fn steering_groups_have_their_own_entries_and_cookies_are_never_stored() {
    let stable = origin::start_named("stable");
    let canary = origin::start_named("canary");
    let gw = Gateway::start(&format!(
        r#"
[cache.memory]
size = "8MiB"
[backends.stable]
kind = "http"
addresses = ["{}"]
[backends.canary]
kind = "http"
addresses = ["{}"]
[groups.web]
weights = {{ stable = 1, canary = 1 }}
[groups.beta]
weights = {{ canary = 1 }}
[[hosts]]
names = ["cdn.test"]
[[hosts.rules]]
name = "beta-testers"
header = {{ name = "x-beta", equals = "1" }}
group = "beta"
[[hosts.routes]]
path = "/"
group = "web"
cache = {{ default_ttl = "1m" }}
"#,
        stable.addr, canary.addr
    ));
    let page = "/page/with-headers";
    let beta = get_with(&gw, page, &[("x-beta", "1")]).await;
    assert_eq!(beta.headers()["x-origin-name"], "canary");
    let beta = get_with(&gw, page, &[("x-beta", "1")]).await;
    assert!(cache_status(&beta).contains("; hit;"));
    // Whichever backend the default group picks for this client, the beta entry is not it.
    let client_cookie = [("cookie", "ag_web=0000000000000001")];
    let first = get_with(&gw, page, &client_cookie).await;
    assert!(
        cache_status(&first).contains("fwd=uri-miss"),
        "{}",
        cache_status(&first)
    );
    let served = first.headers()["x-origin-name"].clone();
    let again = get_with(&gw, page, &client_cookie).await;
    assert!(cache_status(&again).contains("; hit;"));
    assert_eq!(again.headers()["x-origin-name"], served);
    assert!(
        again.headers().get("set-cookie").is_none(),
        "the client has its cookie"
    );
    assert_eq!(stable.hits() + canary.hits(), 2);
    // New clients each get their own id, whether their answer was a hit or not.
    let mut ids = std::collections::HashSet::new();
    let mut hits = 0;
    for _ in 0..8 {
        let r = get(&gw, page).await;
        hits += cache_status(&r).contains("; hit;") as usize;
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(set.starts_with("ag_web="), "{set}");
        ids.insert(set.split(';').next().unwrap().to_string());
    }
    assert_eq!(ids.len(), 8, "every new client got a new id");
    assert!(hits >= 6, "at most one miss per backend: {hits} hits");
    assert!(stable.hits() + canary.hits() <= 3);
}

#[tokio::test]
async fn signing_parameters_are_not_in_the_key_and_every_hit_is_authorised() {
    let origin = origin::start();
    let secret = secret_file("cache-test-secret-0123456789abcdef0123456789");
    let gw = Gateway::start(&format!(
        r#"
[cache.memory]
size = "8MiB"
[[auth.hmac.keys]]
id = "k1"
secret = {{ file = "{}" }}
[backends.web]
kind = "http"
addresses = ["{}"]
[[hosts]]
names = ["cdn.test"]
[[hosts.routes]]
path = "/private"
backend = "web"
access = "hmac"
cache = {{ default_ttl = "1m" }}
"#,
        secret.display(),
        origin.addr
    ));
    let path = "/private/doc/with-headers";
    let url = format!("http://cdn.test{path}");
    let sign = |ttl| {
        gw.signed("hmac", &["--ttl", ttl, &url])
            .trim_start_matches("http://cdn.test")
            .to_string()
    };
    let (one, two) = (sign("10m"), sign("20m"));
    assert_ne!(one, two);
    let a = get(&gw, &one).await;
    assert_eq!(a.status(), 200);
    let b = get(&gw, &two).await;
    assert_eq!(b.status(), 200);
    assert!(cache_status(&b).contains("; hit;"), "{}", cache_status(&b));
    assert_eq!(origin.hits(), 1);
    // The entry is there, but an unsigned request is refused before any lookup.
    let denied = get(&gw, path).await;
    assert!(denied.status() == 401 || denied.status() == 403);
    assert!(
        !cache_status(&denied).contains("hit"),
        "{}",
        cache_status(&denied)
    );
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn hit_ratio_metrics_and_tier_gauges() {
    let origin = origin::start();
    let gw = cached(&origin, r#"default_ttl = "1m""#);
    for _ in 0..4 {
        get(&gw, "/m/with-headers").await;
    }
    get(&gw, "/m/with-headers?set-cookie=a%3D1").await;
    let text = gw.metrics().await;
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(
        value(r#"assetgate_cache_requests_total{host="cdn.test",route="assets"}"#),
        5.0
    );
    assert_eq!(
        value(r#"assetgate_cache_hits_total{host="cdn.test",route="assets"}"#),
        3.0
    );
    assert_eq!(
        value(
            r#"assetgate_cache_not_stored_total{host="cdn.test",reason="set_cookie",route="assets"}"#
        ),
        1.0
    );
    assert_eq!(value(r#"assetgate_cache_tier_entries{tier="memory"}"#), 1.0);
    assert!(value(r#"assetgate_cache_tier_bytes{tier="memory"}"#) > 0.0);
    assert_eq!(
        value(r#"assetgate_cache_tier_hits_total{tier="memory"}"#),
        3.0
    );
}

/// Concurrent misses for one key in one gateway wait for one fill: the origin, slowed to
/// 500 ms so every request is in flight before it answers, is asked once.
#[tokio::test]
async fn concurrent_misses_collapse_into_one_origin_request() {
    let origin = origin::start();
    let gw = cached(&origin, "");
    let path = "/c/delay-500/with-headers?cache-control=max-age%3D60";
    let requests = (0..100).map(|_| async { cache_status(&get(&gw, path).await) });
    let statuses = futures_util::future::join_all(requests).await;
    assert_eq!(origin.hits(), 1, "{statuses:?}");
    let stored = statuses.iter().filter(|s| s.contains("; stored;")).count();
    let collapsed = statuses
        .iter()
        .filter(|s| s.ends_with("; collapsed"))
        .count();
    let hits = statuses.iter().filter(|s| s.contains("; hit;")).count();
    assert_eq!(stored, 1, "{statuses:?}");
    assert_eq!(stored + collapsed + hits, 100, "{statuses:?}");
    assert!(collapsed >= 90, "{collapsed} of 99 waited: {statuses:?}");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(&format!(
            "assetgate_cache_lock_waits_total{{host=\"cdn.test\",route=\"assets\"}} {collapsed}"
        )),
        "{metrics}"
    );
}

/// RFC 9111 §4.4: a successful POST to a URI drops what the cache holds for it.
#[tokio::test]
async fn a_successful_write_invalidates_the_stored_entry() {
    let mut origin = origin::start();
    let gw = cached(&origin, "");
    let path = "/w/with-headers?cache-control=max-age%3D60";
    let [_, (hit, before)] = twice(&gw, path).await;
    assert!(hit.contains("; hit;"));
    let post = client()
        .post(gw.url(path))
        .header("host", "cdn.test")
        .body("new")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(origin.hits(), 2);
    let [(miss, after), (hit, _)] = twice(&gw, path).await;
    assert!(miss.contains("fwd=uri-miss"), "{miss}");
    assert!(hit.contains("; hit;"), "{hit}");
    assert_ne!(before, after);
    // A failed write (the origin is down: 502) leaves the entry alone.
    origin.stop();
    let failed = client()
        .post(gw.url(path))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 502);
    let r = get(&gw, path).await;
    assert!(cache_status(&r).contains("; hit;"), "{}", cache_status(&r));
    assert_eq!(origin.hits(), 3);
}

/// A gateway whose `cdn.test` route uses memory and disk (folder `disk`), or only `tiers`.
fn tiered(
    origin: &origin::Origin,
    disk: &std::path::Path,
    tiers: &str,
    disk_extra: &str,
) -> Gateway {
    cached_with(
        origin,
        &format!(
            "[cache.disk]\npath = \"{}\"\nsize = \"64MiB\"\n{disk_extra}",
            disk.display()
        ),
        &format!("tiers = {tiers}\ndefault_ttl = \"1h\""),
    )
}

/// Every entry file under a disk tier's folder.
fn entry_files(disk: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(disk).unwrap().flatten() {
        if dir.file_name() == "tmp" || !dir.path().is_dir() {
            continue;
        }
        out.extend(
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|f| f.path()),
        );
    }
    out
}

#[tokio::test]
async fn the_disk_tier_survives_a_restart_and_promotes_into_memory() {
    let origin = origin::start();
    let disk = tempfile::tempdir().unwrap();
    let path = "/d/with-headers";
    let gw = tiered(&origin, disk.path(), r#"["memory", "disk"]"#, "");
    let [(miss, body), (hit, _)] = twice(&gw, path).await;
    assert!(miss.contains("; stored;"), "{miss}");
    assert!(hit.ends_with("detail=memory"), "{hit}");
    assert_eq!(entry_files(disk.path()).len(), 1);
    drop(gw);
    // A new process: memory is empty, the disk entry answers, then memory has it again.
    let gw = tiered(&origin, disk.path(), r#"["memory", "disk"]"#, "");
    let [(from_disk, a), (from_memory, b)] = twice(&gw, path).await;
    assert!(from_disk.ends_with("detail=disk"), "{from_disk}");
    assert!(from_memory.ends_with("detail=memory"), "{from_memory}");
    assert_eq!((a, b), (body.clone(), body));
    assert_eq!(origin.hits(), 1);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_tier_promotions_total{tier=\"memory\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("assetgate_cache_tier_entries{tier=\"disk\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_damaged_disk_entry_is_dropped_and_refetched() {
    let origin = origin::start();
    let disk = tempfile::tempdir().unwrap();
    let gw = tiered(&origin, disk.path(), r#"["disk"]"#, "");
    let path = "/x/with-headers";
    let first = get(&gw, path).await.text().await.unwrap();
    let hit = get(&gw, path).await;
    assert!(cache_status(&hit).ends_with("detail=disk"));
    // Flip one byte of the stored body.
    let file = entry_files(disk.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let refetched = get(&gw, path).await;
    assert!(
        cache_status(&refetched).contains("fwd=uri-miss"),
        "{}",
        cache_status(&refetched)
    );
    let body = refetched.text().await.unwrap();
    assert_ne!(
        body, first,
        "a new copy from the origin, not the damaged one"
    );
    assert_eq!(origin.hits(), 2);
    // A truncated entry too.
    let file = entry_files(disk.path()).pop().unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let again = get(&gw, path).await;
    assert!(cache_status(&again).contains("fwd=uri-miss"));
    assert_eq!(origin.hits(), 3);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_tier_corrupt_total{tier=\"disk\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_full_disk_stops_admission_and_requests_are_still_served() {
    let origin = origin::start();
    let disk = tempfile::tempdir().unwrap();
    // Demands more free space than any filesystem has: the disk is "full".
    let gw = tiered(
        &origin,
        disk.path(),
        r#"["disk"]"#,
        "min_free = \"1000TiB\"",
    );
    for _ in 0..2 {
        let r = get(&gw, "/f/with-headers").await;
        assert_eq!(r.status(), 200);
        assert!(!cache_status(&r).contains("stored"), "{}", cache_status(&r));
    }
    assert_eq!(origin.hits(), 2);
    assert!(entry_files(disk.path()).is_empty());
}

/// A cached `dir` route reaches its files through the in-process origin, so they are stored
/// and answered from the tiers like any backend's; its errors are not stored.
#[tokio::test]
async fn dir_files_are_cached_through_the_in_process_origin() {
    let root = tempfile::tempdir().unwrap();
    let disk = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), "first version\n").unwrap();
    std::fs::create_dir(root.path().join("sub dir")).unwrap();
    std::fs::write(root.path().join("sub dir/b c.txt"), "spaced\n").unwrap();
    let gw = Gateway::start(&format!(
        r#"
[cache.memory]
size = "8MiB"
[cache.disk]
path = "{}"
size = "64MiB"
[backends.files]
kind = "dir"
root = "{}"
[[hosts]]
names = ["cdn.test"]
[[hosts.routes]]
path = "/"
backend = "files"
cache_control = "public, max-age=300"
[hosts.routes.cache]
"#,
        disk.path().display(),
        root.path().display()
    ));
    let first = get(&gw, "/a.txt").await;
    assert_eq!(first.status(), 200);
    assert!(
        cache_status(&first).contains("; stored;"),
        "{}",
        cache_status(&first)
    );
    assert_eq!(first.headers()["cache-control"], "public, max-age=300");
    assert_eq!(first.text().await.unwrap(), "first version\n");
    // Changed on disk, but the stored copy answers while fresh.
    std::fs::write(root.path().join("a.txt"), "second version\n").unwrap();
    let hit = get(&gw, "/a.txt").await;
    assert!(
        cache_status(&hit).ends_with("detail=memory"),
        "{}",
        cache_status(&hit)
    );
    assert!(hit.headers().contains_key("etag"));
    assert_eq!(hit.text().await.unwrap(), "first version\n");
    let range = get_with(&gw, "/a.txt", &[("range", "bytes=0-4")]).await;
    assert_eq!(range.status(), 206);
    assert_eq!(range.text().await.unwrap(), "first");
    assert_eq!(entry_files(disk.path()).len(), 1);
    // Keys with spaces reach the right file.
    let spaced = get(&gw, "/sub%20dir/b%20c.txt").await;
    assert_eq!(spaced.status(), 200);
    assert_eq!(spaced.text().await.unwrap(), "spaced\n");
    // A missing file is the gateway's 404, never stored.
    for _ in 0..2 {
        let missing = get(&gw, "/nope.txt").await;
        assert_eq!(missing.status(), 404);
        assert!(!cache_status(&missing).contains("hit"));
    }
    assert_eq!(entry_files(disk.path()).len(), 2);
}

/// A gateway whose route uses memory then the Redis at `redis`.
fn with_redis(origin: &origin::Origin, redis: &Redis) -> Gateway {
    with_redis_and(origin, redis, "")
}

/// Like [`with_redis`], with more `[cache.redis]` lines.
fn with_redis_and(origin: &origin::Origin, redis: &Redis, extra: &str) -> Gateway {
    cached_with(
        origin,
        &format!(
            "[cache.redis]\nurl = \"{}\"\nkey_prefix = \"t:\"\n{extra}",
            redis.url()
        ),
        "tiers = [\"memory\", \"redis\"]\ndefault_ttl = \"1m\"\nstale_if_error = \"1h\"",
    )
}

#[tokio::test]
async fn gateways_sharing_a_redis_share_its_entries() {
    let origin = origin::start();
    let redis = Redis::start();
    let a = with_redis(&origin, &redis);
    let b = with_redis(&origin, &redis);
    let path = "/r/with-headers";
    let first = get(&a, path).await;
    assert!(cache_status(&first).contains("; stored;"));
    let body = first.text().await.unwrap();
    let from_redis = get(&b, path).await;
    assert!(
        cache_status(&from_redis).ends_with("detail=redis"),
        "{}",
        cache_status(&from_redis)
    );
    assert_eq!(from_redis.text().await.unwrap(), body);
    let from_memory = get(&b, path).await;
    assert!(cache_status(&from_memory).ends_with("detail=memory"));
    assert_eq!(origin.hits(), 1);
    // One entry, kept for its freshness plus its stale windows (60 s + 1 h).
    let keys = redis.cli(&["--scan", "--pattern", "t:e:*"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: u64 = redis.cli(&["PTTL", keys[0]]).trim().parse().unwrap();
    assert!(ttl > 3_600_000 && ttl <= 3_660_000, "{ttl} ms");
}

#[tokio::test]
async fn a_redis_that_goes_away_is_skipped_and_used_again_when_back() {
    let origin = origin::start();
    let mut redis = Redis::start();
    let a = with_redis(&origin, &redis);
    get(&a, "/before/with-headers").await;
    redis.stop();
    // Stored in memory before: still a hit. New keys: fetched and served, never a 5xx.
    let hit = get(&a, "/before/with-headers").await;
    assert!(cache_status(&hit).ends_with("detail=memory"));
    for n in 0..5 {
        let r = get(&a, &format!("/during-{n}/with-headers")).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(origin.hits(), 6);
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Back: written again, and another gateway reads it from Redis.
    eventually(
        "the redis tier to be used again",
        Duration::from_secs(10),
        || async {
            let path = format!("/after-{}/with-headers", origin.hits());
            get(&a, &path).await;
            let b = with_redis(&origin, &redis);
            let r = get(&b, &path).await;
            cache_status(&r).ends_with("detail=redis").then_some(())
        },
    )
    .await;
    let metrics = a.metrics().await;
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("assetgate_cache_tier_errors_total{tier=\"redis\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no redis errors counted:\n{metrics}"));
    assert!(errors > 0);
}

/// Two gateways on one Redis, the origin slowed to 500 ms, 200 concurrent requests for one
/// cold key split between them, all in flight before it answers: one origin request; every
/// other request waited for that fill and says so.
#[tokio::test]
async fn two_gateways_on_one_redis_fetch_a_cold_key_once() {
    let origin = origin::start();
    let redis = Redis::start();
    let a = with_redis(&origin, &redis);
    let b = with_redis(&origin, &redis);
    let path = "/fleet/delay-500/with-headers";
    let requests = (0..200).map(|i| {
        let gw = if i % 2 == 0 { &a } else { &b };
        async move { cache_status(&get(gw, path).await) }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert_eq!(origin.hits(), 1, "{statuses:?}");
    let stored = statuses.iter().filter(|s| s.contains("; stored;")).count();
    let collapsed = statuses
        .iter()
        .filter(|s| s.ends_with("; collapsed"))
        .count();
    assert_eq!(stored, 1, "{statuses:?}");
    assert!(collapsed >= 190, "{collapsed} of 199 waited: {statuses:?}");
    // The lock is gone once the fill is done.
    assert_eq!(redis.cli(&["--scan", "--pattern", "t:lock:*"]).trim(), "");
}

/// A fill that fails frees the lock at once, and the next request fetches again.
#[tokio::test]
async fn a_failed_fill_frees_the_fleet_lock() {
    let origin = origin::start();
    let redis = Redis::start();
    let a = with_redis(&origin, &redis);
    let r = get(&a, "/bad/status/503").await;
    assert_eq!(r.status(), 503);
    assert_eq!(redis.cli(&["--scan", "--pattern", "t:lock:*"]).trim(), "");
    let r = get(&a, "/bad/status/503").await;
    assert_eq!(r.status(), 503);
    assert_eq!(origin.hits(), 2);
}

/// A gateway that dies mid-fill never releases its lock: once the lease lapses, a waiter on
/// another gateway takes over and fills.
#[tokio::test]
async fn a_waiter_takes_over_from_a_gateway_that_died_mid_fill() {
    let origin = origin::start();
    let redis = Redis::start();
    let a = with_redis_and(&origin, &redis, "lock_lease = \"1s\"");
    let b = with_redis_and(&origin, &redis, "lock_lease = \"1s\"");
    let path = "/orphan/delay-3000/with-headers";
    let url = a.url(path);
    let doomed = tokio::spawn(async move {
        let _ = client().get(url).header("host", "cdn.test").send().await;
    });
    eventually("A to hold the lock", Duration::from_secs(5), || async {
        (!redis
            .cli(&["--scan", "--pattern", "t:lock:*"])
            .trim()
            .is_empty())
        .then_some(())
    })
    .await;
    drop(a);
    let started = std::time::Instant::now();
    let r = get(&b, path).await;
    assert_eq!(r.status(), 200);
    assert!(
        cache_status(&r).contains("; stored;"),
        "{}",
        cache_status(&r)
    );
    // B waited for the lapse of A's lease (renewals stopped with A), not for its timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(origin.hits(), 2);
    doomed.abort();
}
