//! `[limits]` and routes' `rate_limit` against the real gateway: oversized request heads get
//! 431, clients and routes past their token bucket get 429 with `Retry-After`, and the
//! buckets refill; a request head that trickles in is cut off with 408.

use crate::harness::*;
use std::time::Duration;

/// A gateway with `limits` and a route `/r` (with `route_limit` lines) in front of `origin`;
/// X-Forwarded-For from loopback is believed, so tests can speak as several clients.
fn gateway(origin: &origin::Origin, limits: &str, route_limit: &str) -> Gateway {
    Gateway::start_with_server(
        "threads = 2\ntrusted_proxies = [\"127.0.0.1\"]",
        &format!(
            r#"
[limits]
{limits}

[backends.web]
kind = "http"
addresses = ["{addr}"]

[[hosts]]
names = ["cdn.test"]

[[hosts.routes]]
path = "/r"
backend = "web"
{route_limit}

[[hosts.routes]]
path = "/"
backend = "web"
"#,
            addr = origin.addr
        ),
    )
}

async fn get_as(gw: &Gateway, address: &str, path: &str) -> reqwest::Response {
    client()
        .get(gw.url(path))
        .header("host", "cdn.test")
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn oversized_request_heads_are_refused_with_431() {
    let origin = origin::start();
    let gw = gateway(&origin, "header_bytes = \"8KiB\"\nheader_count = 20", "");
    let big = "x".repeat(9 * 1024);
    let r = client()
        .get(gw.url("/a"))
        .header("host", "cdn.test")
        .header("x-big", big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let mut req = client().get(gw.url("/a")).header("host", "cdn.test");
    for i in 0..25 {
        req = req.header(format!("x-h{i}"), "1");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    // A long URL counts as well.
    let long = format!("/a?{}", "q".repeat(9 * 1024));
    let r = client()
        .get(gw.url(&long))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    assert_eq!(origin.hits(), 0);
    let r = client()
        .get(gw.url("/a"))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_client_past_its_rate_waits_and_others_do_not() {
    let origin = origin::start();
    let gw = gateway(&origin, "client = { rate = 1, burst = 2 }", "");
    for _ in 0..2 {
        assert_eq!(get_as(&gw, "192.0.2.1", "/a").await.status(), 200);
    }
    let refused = get_as(&gw, "192.0.2.1", "/a").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["cache-control"], "no-store");
    // Another client has its own bucket.
    assert_eq!(get_as(&gw, "192.0.2.2", "/a").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_as(&gw, "192.0.2.1", "/a").await.status(), 200);
    assert_eq!(origin.hits(), 4);
    metrics_when(&gw, "429s counted", |m| {
        m.lines()
            .any(|l| l.contains("status=\"429\"") && l.ends_with(" 1"))
            && m.contains("assetgate_rate_limited_total{limit=\"client\"} 1")
    })
    .await;
}

#[tokio::test]
async fn a_route_limit_counts_each_client_or_the_whole_route() {
    let origin = origin::start();
    let gw = gateway(&origin, "", "rate_limit = { rate = 0.5, burst = 1 }");
    assert_eq!(get_as(&gw, "192.0.2.1", "/r/x").await.status(), 200);
    let refused = get_as(&gw, "192.0.2.1", "/r/x").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "2");
    assert_eq!(get_as(&gw, "192.0.2.2", "/r/x").await.status(), 200);
    // Other routes are not limited.
    for _ in 0..3 {
        assert_eq!(get_as(&gw, "192.0.2.1", "/other").await.status(), 200);
    }
    drop(gw);
    let gw = gateway(
        &origin,
        "",
        "rate_limit = { rate = 0.5, burst = 1, per = \"route\" }",
    );
    assert_eq!(get_as(&gw, "192.0.2.1", "/r/x").await.status(), 200);
    assert_eq!(get_as(&gw, "192.0.2.2", "/r/x").await.status(), 429);
}

#[tokio::test]
async fn limits_that_make_no_sense_are_config_errors() {
    let (passed, text) = check_config(
        r#"
[[listeners]]
address = "127.0.0.1:1"
[limits]
header_bytes = "10"
header_count = 1000
header_timeout = "500ms"
client = { rate = 0 }
[backends.web]
kind = "http"
addresses = ["127.0.0.1:1"]
[[hosts]]
names = ["a.test"]
[[hosts.routes]]
path = "/"
backend = "web"
rate_limit = { rate = 5, burst = 0.5, per = "planet" }
"#,
    );
    assert!(!passed);
    for key in [
        "limits.header_bytes",
        "limits.header_count",
        "limits.header_timeout",
        "limits.client.rate",
        "rate_limit.burst",
        "rate_limit.per",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
}

/// Whether the gateway answers a request on `stream` (a connection over a limit is closed as
/// it arrives).
fn answers(stream: &mut std::net::TcpStream) -> bool {
    use std::io::{Read, Write};
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    if stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: cdn.test\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(stream.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200"))
}

#[tokio::test]
async fn connections_past_the_per_client_limit_are_closed_on_arrival() {
    let origin = origin::start();
    let gw = gateway(&origin, "connections_per_client = 2", "");
    let addr = gw.addr;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut first = std::net::TcpStream::connect(addr).unwrap();
        let mut second = std::net::TcpStream::connect(addr).unwrap();
        let both = answers(&mut first) && answers(&mut second);
        let mut third = std::net::TcpStream::connect(addr).unwrap();
        let third_answered = answers(&mut third);
        drop(first);
        // The closed connection frees its place as soon as the gateway sees it close (which
        // on a loaded machine can take a moment).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let fourth_answered = loop {
            std::thread::sleep(Duration::from_millis(200));
            let mut fourth = std::net::TcpStream::connect(addr).unwrap();
            if answers(&mut fourth) {
                break true;
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
        };
        (both, third_answered, fourth_answered)
    })
    .await
    .unwrap();
    assert_eq!(outcome, (true, false, true));
    metrics_when(&gw, "the refusal counted", |m| {
        m.lines()
            .find_map(|l| l.strip_prefix("assetgate_client_connections_refused_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n >= 1)
    })
    .await;
}

/// What the gateway sends on `stream` until it closes it (or 10 s pass), and how long that
/// took from `since`.
fn until_closed(stream: &mut std::net::TcpStream, since: std::time::Instant) -> (String, Duration) {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

/// Sends `GET /a` on a kept-alive `stream` and reads exactly its answer (framed by
/// `Content-Length`), so the connection can carry another; gives the status.
fn status_of_whole_answer(stream: &mut std::net::TcpStream) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: cdn.test\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    assert!(reader.buffer().is_empty(), "nothing past the answer");
    status
}

#[tokio::test]
async fn a_request_head_that_trickles_in_is_cut_off_with_408() {
    let origin = origin::start();
    let gw = gateway(&origin, "header_timeout = \"1s\"", "");
    let addr = gw.addr;
    let (dripped, silent, kept_alive) = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        // One byte every 100 ms: each read is quick, the whole head never comes.
        let mut drip = std::net::TcpStream::connect(addr).unwrap();
        let started = std::time::Instant::now();
        let writer = {
            let mut drip = drip.try_clone().unwrap();
            std::thread::spawn(move || {
                for byte in b"GET /a HTTP/1.1\r\nHost: cdn.test\r\nX-Slow: "
                    .iter()
                    .cycle()
                    .take(60)
                {
                    if drip.write_all(&[*byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let dripped = until_closed(&mut drip, started);
        writer.join().unwrap();
        // A connection that never sends anything is closed without an answer.
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        let silent = until_closed(&mut silent, std::time::Instant::now());
        // Idle time between requests is not the head's: a kept-alive connection that waits
        // longer than the limit is still served.
        let mut kept = std::net::TcpStream::connect(addr).unwrap();
        let first = status_of_whole_answer(&mut kept);
        std::thread::sleep(Duration::from_millis(1500));
        let second = status_of_whole_answer(&mut kept);
        (dripped, silent, (first, second))
    })
    .await
    .unwrap();
    let (answer, took) = dripped;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let (answer, took) = silent;
    assert_eq!(answer, "");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(kept_alive, (200, 200));
    assert_eq!(origin.hits(), 2);
    metrics_when(&gw, "both timeouts counted", |m| {
        m.contains("assetgate_request_head_timeouts_total{stage=\"partial\"} 1")
            && m.contains("assetgate_request_head_timeouts_total{stage=\"idle\"} 1")
    })
    .await;
}

/// A gateway whose `/r` route's limit is `rate_limit` with its buckets in `redis`.
fn sharing(origin: &origin::Origin, redis: &Redis, rate_limit: &str) -> Gateway {
    // `[limits]` stays empty; the Redis tier's table follows it.
    let redis_tier = format!(
        "[cache.redis]\nurl = \"{}\"\nkey_prefix = \"rl-test:\"",
        redis.url()
    );
    gateway(origin, &redis_tier, &format!("rate_limit = {rate_limit}"))
}

#[tokio::test]
async fn a_shared_limit_is_one_bucket_for_the_whole_fleet() {
    let origin = origin::start();
    let mut redis = Redis::start();
    let limit = "{ rate = 0.2, burst = 4, shared = true }";
    let (a, b) = (
        sharing(&origin, &redis, limit),
        sharing(&origin, &redis, limit),
    );
    // One client over two gateways gets the burst once, not once per gateway.
    let mut statuses = Vec::new();
    for gw in [&a, &b, &a, &b, &a, &b] {
        statuses.push(get_as(gw, "192.0.2.1", "/r/x").await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    let refused = get_as(&b, "192.0.2.1", "/r/x").await;
    let wait: u32 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&wait), "{wait}");
    // Another client has a bucket of its own; the bucket lives in Redis and expires.
    assert_eq!(get_as(&a, "192.0.2.2", "/r/x").await.status(), 200);
    let key = "rl-test:rl:route:cdn.test:/r:192.0.2.1";
    let keys = redis.cli(&["--scan", "--pattern", "rl-test:rl:*"]);
    assert!(keys.lines().any(|k| k == key), "{keys}");
    let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
    assert!(ttl > 0 && ttl <= 21_000, "{ttl} ms");
    // Redis gone: each gateway counts on its own (a fresh local bucket), never refusing all.
    redis.stop();
    assert_eq!(get_as(&a, "192.0.2.3", "/r/x").await.status(), 200);
    metrics_when(&a, "the fallback counted", |m| {
        m.contains("assetgate_rate_limit_fallbacks_total 1")
    })
    .await;
}

#[tokio::test]
async fn a_shared_limit_needs_the_redis_tier() {
    let (passed, text) = check_config(
        r#"
[[listeners]]
address = "127.0.0.1:1"
[limits]
client = { rate = 10, shared = true }
[backends.web]
kind = "http"
addresses = ["127.0.0.1:1"]
[[hosts]]
names = ["a.test"]
[[hosts.routes]]
path = "/"
backend = "web"
rate_limit = { rate = 5, shared = true }
"#,
    );
    assert!(!passed);
    for key in [
        "limits.client.shared",
        "rate_limit.shared: needs [cache.redis]",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
}
