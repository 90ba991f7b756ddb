//! Steering against several real origins: a migration's listener rules, weighted sticky canaries,
//! health-checked pools with passive ejection, retries, and failover to a backup (HTTP pool and
//! bucket).

use crate::harness::*;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// `GET url` on `host` with extra headers: (status, x-origin-name, set-cookie).
async fn fetch(
    c: &reqwest::Client,
    url: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let mut req = c.get(url).header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let origin = r
        .headers()
        .get("x-origin-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = r.bytes().await;
    (status, origin, cookie)
}

/// The value of the first metric line starting with `series` (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every metric line starting with `prefix`.
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn http_backend(name: &str, members: &[String], extra: &str) -> String {
    let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "[backends.{name}]\nkind = \"http\"\naddresses = [{}]\nhealth_check_interval = \"0s\"\n{extra}\n",
        list.join(", ")
    )
}

#[tokio::test]
async fn migration_listener_rules_in_priority_order() {
    let stable = origin::start_named("ec2");
    let ecs = origin::start_named("ecs");
    let gw = Gateway::start(&format!(
        r#"{}{}
[groups.ecs]
weights = {{ ecs = 1 }}

[[hosts]]
names = ["app.test"]
steering_header = "X-Served-By"

[[hosts.rules]]
name = "dev-mode"
header = {{ name = "X-Dev-Mode", equals = "true" }}
group = "ecs"

[[hosts.rules]]
name = "beta"
cookie = {{ name = "x-beta-access", equals = "true" }}
group = "ecs"

[[hosts.routes]]
path = "/"
backend = "ec2"
"#,
        http_backend("ec2", &[stable.addr.to_string()], ""),
        http_backend("ecs", &[ecs.addr.to_string()], ""),
    ));
    let c = client();
    let url = gw.url("/index.html");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "ec2"),
        (&[("X-Dev-Mode", "true")], "ecs"),
        (&[("x-dev-mode", "true")], "ecs"),
        (&[("X-Dev-Mode", "false")], "ec2"),
        (&[("X-Dev-Mode", "TRUE")], "ec2"),
        (&[("cookie", "theme=dark; X-Beta-Access=true")], "ecs"),
        (&[("cookie", "x-beta-access=false")], "ec2"),
        (
            &[("X-Dev-Mode", "true"), ("cookie", "x-beta-access=true")],
            "ecs",
        ),
    ];
    for (headers, want) in cases {
        let (status, served, cookie) = fetch(&c, &url, "app.test", headers).await;
        assert_eq!((status, served.as_str()), (200, *want), "{headers:?}");
        assert!(
            cookie.is_none(),
            "a one-backend group needs no sticky cookie"
        );
    }
    let r = c
        .get(&url)
        .header("host", "app.test")
        .header("x-dev-mode", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-served-by"], "ecs/ecs");
    let r = c.get(&url).header("host", "app.test").send().await.unwrap();
    assert_eq!(r.headers()["x-served-by"], "ec2");
    let m = gw.metrics().await;
    // dev-mode matched 4 times (3 cases + the header check), beta once (the both-case is dev-mode's).
    assert_eq!(
        metric(
            &m,
            "assetgate_rule_matches_total{host=\"app.test\",rule=\"dev-mode\"}"
        ),
        4.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "assetgate_rule_matches_total{host=\"app.test\",rule=\"beta\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "assetgate_group_requests_total{backend=\"ecs\",group=\"ecs\"}"
        ),
        5.0,
        "{m}"
    );
}

fn canary_config(stable: &origin::Origin, canary: &origin::Origin, sticky: &str) -> String {
    format!(
        r#"{}{}
[groups.web]
weights = {{ stable = 95, canary = 5 }}
{sticky}

[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
group = "web"
"#,
        http_backend("stable", &[stable.addr.to_string()], ""),
        http_backend("canary", &[canary.addr.to_string()], ""),
    )
}

#[tokio::test]
async fn a_five_percent_canary_is_five_percent_of_fresh_clients_and_sticks() {
    let stable = origin::start_named("stable");
    let canary = origin::start_named("canary");
    let gw = Gateway::start(&canary_config(&stable, &canary, ""));
    let url = gw.url("/app.js");
    // One client without a cookie store: every request arrives as a fresh client would.
    let fresh = client();
    let results: Vec<(u16, String, Option<String>)> = futures_util::stream::iter(0..4000)
        .map(|_| fetch(&fresh, &url, "www.test", &[]))
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(results.iter().all(|(s, _, _)| *s == 200));
    let on_canary = results.iter().filter(|(_, o, _)| o == "canary").count();
    let share = on_canary as f64 / 4000.0 * 100.0;
    assert!((3.5..=6.5).contains(&share), "canary share {share}%");
    assert_eq!(canary.hits(), on_canary);

    // Every fresh client got a cookie; with it, it stays where it was sent, and gets no new one.
    let c = client();
    let mut checked = HashMap::new();
    for (_, origin, cookie) in results
        .iter()
        .take(40)
        .chain(results.iter().filter(|(_, o, _)| o == "canary").take(10))
    {
        let set = cookie
            .as_deref()
            .expect("sticky cookie set on a fresh client");
        assert!(
            set.contains("Path=/") && set.contains("HttpOnly") && set.contains("Max-Age=2592000")
        );
        let pair = set.split(';').next().unwrap().to_string();
        assert!(pair.starts_with("ag_web="), "{set}");
        for _ in 0..3 {
            let (status, again, new_cookie) =
                fetch(&c, &url, "www.test", &[("cookie", &pair)]).await;
            assert_eq!((status, &again), (200, origin), "{pair}");
            assert!(new_cookie.is_none());
        }
        checked.insert(pair, origin.clone());
    }
    assert!(checked.values().any(|o| o == "canary"));
    let m = gw.metrics().await;
    assert!(
        metric(
            &m,
            "assetgate_group_requests_total{backend=\"canary\",group=\"web\"}"
        ) >= on_canary as f64,
        "{m}"
    );
}

#[tokio::test]
async fn a_header_keyed_canary_keeps_each_user_on_one_side() {
    let stable = origin::start_named("stable");
    let canary = origin::start_named("canary");
    let gw = Gateway::start(&canary_config(
        &stable,
        &canary,
        "sticky = \"header:X-User-Id\"",
    ));
    let c = client();
    let url = gw.url("/");
    let mut sides = HashMap::new();
    for round in 0..2 {
        for user in 0..300 {
            let id = format!("user-{user}");
            let (status, side, cookie) = fetch(&c, &url, "www.test", &[("x-user-id", &id)]).await;
            assert_eq!(status, 200);
            assert!(cookie.is_none(), "header stickiness sets no cookie");
            if round == 0 {
                sides.insert(id, side);
            } else {
                assert_eq!(sides[&id], side, "{id} moved");
            }
        }
    }
    let on_canary = sides.values().filter(|s| *s == "canary").count();
    assert!(
        (3..=35).contains(&on_canary),
        "{on_canary} of 300 users on the canary"
    );
}

/// Sends GETs until `stop` is set, recording every status; run beside a fault.
async fn steady_gets(url: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Vec<u16> {
    let c = client();
    let mut statuses = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let (status, _, _) = fetch(&c, &url, "pool.test", &[]).await;
        statuses.push(status);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    statuses
}

/// Kills member `a` of a two-member pool under steady GETs, waits until the gateway takes it out
/// (`out`: a metrics condition), checks that traffic moved to `b`, restarts `a`, waits until it
/// gets traffic again, and asserts that no GET failed throughout.
async fn kill_and_restore(pool: &str, out: impl Fn(&str, std::net::SocketAddr) -> bool) {
    let mut a = origin::start_named("a");
    let b = origin::start_named("b");
    let gw = Gateway::start(&format!(
        "[backends.pool]\nkind = \"http\"\naddresses = [\"{}\", \"{}\"]\nconnect_timeout = \"500ms\"\n{pool}\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"pool\"\n",
        a.addr, b.addr
    ));
    let c = client();
    for _ in 0..10 {
        assert_eq!(fetch(&c, &gw.url("/warm"), "pool.test", &[]).await.0, 200);
    }
    assert!(
        a.hits() > 0 && b.hits() > 0,
        "round robin uses both members"
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn(steady_gets(gw.url("/steady"), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.stop();
    metrics_when(&gw, "the killed member taken out", |m| out(m, a.addr)).await;
    let before = b.hits();
    for _ in 0..20 {
        let (status, side, _) = fetch(&c, &gw.url("/while-down"), "pool.test", &[]).await;
        assert_eq!((status, side.as_str()), (200, "b"));
    }
    assert!(b.hits() >= before + 20);

    a.restart();
    let hits_before = a.hits();
    eventually(
        "the restored member readmitted",
        Duration::from_secs(10),
        || async {
            let (status, side, _) = fetch(&c, &gw.url("/restored"), "pool.test", &[]).await;
            assert_eq!(status, 200);
            (side == "a").then_some(())
        },
    )
    .await;
    assert!(a.hits() > hits_before);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let statuses = load.await.unwrap();
    assert!(
        statuses.len() > 20,
        "the steady load ran ({} requests)",
        statuses.len()
    );
    let failed: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(failed.is_empty(), "failed GETs: {failed:?}\n{}", gw.log());
}

#[tokio::test]
async fn a_killed_member_is_ejected_then_readmitted_with_no_failed_get() {
    // Passive ejection alone: the first refused connect takes the member out for the cool-down.
    kill_and_restore(
        "health_check_interval = \"0s\"\neject_after = 1\neject_for = \"500ms\"",
        |m, addr| {
            let ejections = format!("assetgate_member_ejections_total{{backend=\"pool\",member=\"{addr}\"}}");
            let refused = format!(
                "assetgate_member_errors_total{{backend=\"pool\",member=\"{addr}\",reason=\"connect\"}}"
            );
            metric(m, &ejections) >= 1.0 && metric(m, &refused) >= 1.0
        },
    )
    .await;
}

#[tokio::test]
async fn a_killed_member_fails_http_health_checks_then_passes_them_again_with_no_failed_get() {
    // Active HTTP checks alone (no passive ejection): down after one failed check, up after two.
    kill_and_restore(
        "health_check_interval = \"200ms\"\nhealth_check_path = \"/healthz\"\n\
         health_check_rise = 2\nhealth_check_fall = 1\nhealth_check_timeout = \"500ms\"\neject_after = 0",
        |m, addr| m.contains(&format!("assetgate_backend_up{{backend=\"pool\",member=\"{addr}\"}} 0")),
    )
    .await;
}

#[tokio::test]
async fn reads_fail_over_to_the_backup_pool_and_writes_never_do() {
    let backup = origin::start_named("backup");
    let dead = free_port();
    let gw = Gateway::start(&format!(
        r#"
[log]
format = "json"
[backends.primary]
kind = "http"
addresses = ["127.0.0.1:{dead}"]
health_check_interval = "200ms"
health_check_fall = 1
[backends.spare]
kind = "http"
addresses = ["{}"]
health_check_interval = "0s"
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "primary"
backup = "spare"
methods = ["GET", "HEAD", "POST"]
"#,
        backup.addr
    ));
    let c = client();
    let (status, side, _) = fetch(&c, &gw.url("/a"), "x.test", &[]).await;
    assert_eq!((status, side.as_str()), (200, "backup"));
    let r = c.post(gw.url("/a")).body("order=1").send().await.unwrap();
    assert_eq!(r.status(), 502, "a write never goes to the backup");
    assert_eq!(backup.hits(), 1);
    metrics_when(&gw, "the primary marked down", |m| {
        m.contains(&format!(
            "assetgate_backend_up{{backend=\"primary\",member=\"127.0.0.1:{dead}\"}} 0"
        ))
    })
    .await;
    let (status, side, _) = fetch(&c, &gw.url("/b"), "x.test", &[]).await;
    assert_eq!((status, side.as_str()), (200, "backup"));
    let events = access_events(&gw, 3).await;
    let reason = |path: &str| {
        events
            .iter()
            .find(|e| e["path"] == path)
            .map(|e| e["failover"].as_str().unwrap_or_default().to_string())
    };
    // The first read may race the first health check: refused, or already unhealthy.
    assert!(
        matches!(reason("/a").as_deref(), Some("refused" | "unhealthy")),
        "{events:?}"
    );
    assert_eq!(reason("/b").as_deref(), Some("unhealthy"));
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(&m, "assetgate_failovers_total{backup=\"spare\""),
        2.0,
        "{m}"
    );
}

#[tokio::test]
async fn a_primary_that_answers_5xx_or_times_out_is_replaced_by_the_backup() {
    let primary = origin::start_named("primary");
    let backup = origin::start_named("backup");
    let gw = Gateway::start(&format!(
        "{}{}[[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"primary\"\nbackup = \"spare\"\n",
        http_backend("primary", &[primary.addr.to_string()], "read_timeout = \"1s\""),
        http_backend("spare", &[backup.addr.to_string()], ""),
    ));
    let c = client();
    let (status, side, _) = fetch(&c, &gw.url("/ok"), "x.test", &[]).await;
    assert_eq!((status, side.as_str()), (200, "primary"));
    let (status, side, _) = fetch(&c, &gw.url("/fail-on-primary/x"), "x.test", &[]).await;
    assert_eq!((status, side.as_str()), (200, "backup"));
    let started = std::time::Instant::now();
    let (status, side, _) = fetch(&c, &gw.url("/slow-on-primary/x"), "x.test", &[]).await;
    assert_eq!((status, side.as_str()), (200, "backup"));
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
    // Without a backup the 5xx is the answer.
    let (status, side, _) = fetch(&c, &gw.url("/fail-on-backup/x"), "x.test", &[]).await;
    assert_eq!((status, side.as_str()), (200, "primary"));
    let m = gw.metrics().await;
    for reason in ["status_5xx", "timeout"] {
        assert_eq!(
            metric(&m, &format!("assetgate_failovers_total{{backup=\"spare\",host=\"*\",reason=\"{reason}\",route=\"/\"}}")),
            1.0,
            "{reason}: {m}"
        );
    }
}

#[tokio::test]
async fn a_bucket_that_is_down_fails_over_to_the_backup_bucket() {
    let garage = garage().await;
    garage
        .put("failover/photo.txt", "from the backup bucket", "text/plain")
        .await;
    let dead = free_port();
    let gw = Gateway::start(&format!(
        r#"
[backends.r2]
kind = "s3"
bucket = "assets"
region = "auto"
endpoint = "http://127.0.0.1:{dead}"
path_style = true
credentials = {{ from = "anonymous" }}
health_check_interval = "200ms"
health_check_fall = 1
health_check_timeout = "500ms"
{}
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "r2"
backup = "s3"
"#,
        garage.backend_toml("s3", "failover", GARAGE_SECRET)
    ));
    let c = client();
    let r = c.get(gw.url("/photo.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "from the backup bucket");
    let down =
        format!("assetgate_backend_up{{backend=\"r2\",member=\"http://127.0.0.1:{dead}\"}} 0");
    metrics_when(&gw, "the dead bucket marked down", |m| m.contains(&down)).await;
    let r = c.get(gw.url("/photo.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "from the backup bucket");
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(&m, "assetgate_failovers_total{backup=\"s3\""),
        2.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "assetgate_failovers_total{backup=\"s3\",host=\"*\",reason=\"unhealthy\",route=\"/\"}"
        ) >= 1.0,
        "{m}"
    );
    // A missing key is the bucket's answer, not a failure: no failover, 404.
    let r = c.get(gw.url("/missing.txt")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_post_is_never_sent_twice_and_a_get_is_retried_on_another_member() {
    let one = origin::start_named("one");
    let two = origin::start_named("two");
    let gw = Gateway::start(&format!(
        "{}[[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"pool\"\nmethods = [\"GET\", \"POST\"]\n",
        http_backend("pool", &[one.addr.to_string(), two.addr.to_string()], ""),
    ));
    let c = client();
    let r = c
        .post(gw.url("/hangup"))
        .body("charge=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(
        one.hits() + two.hits(),
        1,
        "the POST reached an origin once"
    );
    let r = c.get(gw.url("/hangup")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(
        one.hits() + two.hits(),
        3,
        "the GET was asked of both members"
    );
    assert!(one.hits() >= 1 && two.hits() >= 1);
}

#[tokio::test]
async fn consistent_hashing_keeps_a_key_on_one_member() {
    let origins: Vec<_> = (0..3)
        .map(|i| origin::start_named(&format!("m{i}")))
        .collect();
    let members: Vec<String> = origins.iter().map(|o| o.addr.to_string()).collect();
    let gw = Gateway::start(&format!(
        "{}[[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"pool\"\n",
        http_backend(
            "pool",
            &members,
            "balance = \"consistent\"\nhash_key = \"path\""
        ),
    ));
    let c = client();
    let mut seen = HashMap::new();
    for round in 0..3 {
        for i in 0..30 {
            let path = format!("/asset-{i}.png");
            let (status, side, _) = fetch(&c, &gw.url(&path), "x.test", &[]).await;
            assert_eq!(status, 200);
            if round == 0 {
                seen.insert(path, side);
            } else {
                assert_eq!(seen[&path], side, "{path} moved");
            }
        }
    }
    let used: std::collections::HashSet<_> = seen.values().collect();
    assert!(used.len() >= 2, "keys spread over members: {used:?}");
}

#[tokio::test]
async fn a_rule_can_send_reads_to_a_directory_group_but_never_writes() {
    let api = origin::start_named("api");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.html"), "static copy\n").unwrap();
    let gw = Gateway::start(&format!(
        r#"{}
[backends.files]
kind = "dir"
root = "{}"
[groups.static]
weights = {{ files = 1 }}
[[hosts]]
names = ["*"]
[[hosts.rules]]
header = {{ name = "X-Static", present = true }}
group = "static"
[[hosts.routes]]
path = "/"
backend = "api"
methods = ["GET", "POST"]
"#,
        http_backend("api", &[api.addr.to_string()], ""),
        dir.path().display()
    ));
    let c = client();
    let r = c
        .get(gw.url("/page.html"))
        .header("x-static", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "static copy\n");
    let r = c
        .post(gw.url("/page.html"))
        .header("x-static", "1")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "a write never reaches a read-only backend");
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    let (status, side, _) = fetch(&c, &gw.url("/page.html"), "x.test", &[]).await;
    assert_eq!((status, side.as_str()), (200, "api"));
    assert_eq!(api.hits(), 1);
}
