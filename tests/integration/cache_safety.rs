//! A shared cache must not be turned against its clients: each test here sends what cache
//! poisoning and desynchronisation research sends to CDNs — a crafted request, then a clean
//! one — and checks the clean one never gets the crafted answer, that what reaches the origin
//! is what the key holds, and that stored answers are framed and replayed correctly.

use crate::harness::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

/// A config caching `names` in memory in front of `origin`, with `route_cache` in the
/// route's cache table.
fn config(origin: &origin::Origin, names: &str, route_cache: &str) -> String {
    format!(
        r#"
[cache.memory]
size = "8MiB"

[backends.web]
kind = "http"
addresses = ["{addr}"]

[[hosts]]
names = [{names}]

[[hosts.routes]]
name = "site"
path = "/"
backend = "web"
[hosts.routes.cache]
{route_cache}
"#,
        addr = origin.addr
    )
}

/// A gateway running [`config`].
fn gateway(origin: &origin::Origin, names: &str, route_cache: &str) -> Gateway {
    Gateway::start(&config(origin, names, route_cache))
}

async fn get(gw: &Gateway, host: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(gw.url(path)).header("host", host);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.send().await.unwrap()
}

async fn body(gw: &Gateway, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    get(gw, host, path, headers).await.text().await.unwrap()
}

/// The head of a raw HTTP/1.1 answer, lower-cased names: (status, headers).
fn head_of(response: &str) -> (u16, Vec<(String, String)>) {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn a_stored_chunked_answer_is_replayed_with_its_length_alone() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    let path = "/c/with-headers?transfer-encoding=chunked&cache-control=max-age%3D60";
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n").into_bytes();
    let first = raw_request(gw.addr, &request);
    assert_eq!(head_of(&first).0, 200, "{first}");
    // Served from the memory tier's fast path: one framing, the length.
    let second = raw_request(gw.addr, &request);
    let (status, headers) = head_of(&second);
    assert_eq!(status, 200, "{second}");
    assert!(
        header(&headers, "cache-status").concat().contains("hit"),
        "{second}"
    );
    assert!(header(&headers, "transfer-encoding").is_empty(), "{second}");
    let length: usize = header(&headers, "content-length")[0].parse().unwrap();
    let body = second.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(body.len(), length, "{second}");
    assert!(body.starts_with("with headers"), "{second}");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn the_origin_is_told_the_host_the_key_holds() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""*""#, "");
    let evil = body(&gw, "evil.example", "/h/headers", &[]).await;
    assert!(evil.contains("host: evil.example\n"), "{evil}");
    let good = body(&gw, "good.example", "/h/headers", &[]).await;
    assert!(good.contains("host: good.example\n"), "{good}");
    assert_eq!(origin.hits(), 2, "each host has its own entry");
    // A port is not part of the host: not in the key, and not sent on to the origin.
    let ported = body(&gw, "good.example:1337", "/h/headers", &[]).await;
    assert_eq!(ported, good);
    assert_eq!(origin.hits(), 2);
    let plain = body(&gw, "other.example:1337", "/p/headers", &[]).await;
    assert!(plain.contains("host: other.example\n"), "{plain}");
}

/// Headers that make origins and frameworks take a request for another one.
const OVERRIDES: [(&str, &str); 8] = [
    ("x-original-url", "/admin"),
    ("x-rewrite-url", "/admin"),
    ("x-http-method-override", "DELETE"),
    ("x-forwarded-scheme", "nothttps"),
    ("x-forwarded-port", "1337"),
    ("x-forwarded-prefix", "/evil"),
    ("x-host", "evil.example"),
    ("forwarded", "host=evil.example;proto=http"),
];

#[tokio::test]
async fn override_headers_never_reach_the_origin_of_a_cached_route() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    let crafted = body(&gw, "cdn.test", "/o/headers", &OVERRIDES).await;
    for (name, _) in OVERRIDES {
        assert!(
            !crafted.contains(&format!("{name}:")),
            "{name} reached the origin: {crafted}"
        );
    }
    let clean = body(&gw, "cdn.test", "/o/headers", &[]).await;
    assert_eq!(clean, crafted);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_keyed_override_header_reaches_the_origin_and_splits_the_key() {
    let origin = origin::start();
    let gw = gateway(
        &origin,
        r#""cdn.test""#,
        r#"key_headers = ["X-Forwarded-Prefix"]"#,
    );
    let prefixed = body(
        &gw,
        "cdn.test",
        "/k/headers",
        &[("x-forwarded-prefix", "/v2")],
    )
    .await;
    assert!(prefixed.contains("x-forwarded-prefix: /v2\n"), "{prefixed}");
    assert!(!prefixed.contains("x-original-url"), "{prefixed}");
    let clean = body(&gw, "cdn.test", "/k/headers", &[]).await;
    assert!(!clean.contains("x-forwarded-prefix"), "{clean}");
    assert_eq!(origin.hits(), 2);
    let again = body(
        &gw,
        "cdn.test",
        "/k/headers",
        &[("x-forwarded-prefix", "/v2")],
    )
    .await;
    assert_eq!(again, prefixed);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn a_key_header_that_is_a_signing_or_hop_header_is_refused() {
    let origin = origin::start();
    let config = config(
        &origin,
        r#""cdn.test""#,
        r#"key_headers = ["Connection", "Not A Header"]"#,
    );
    let (passed, text) = check_config(&config);
    assert!(!passed);
    assert!(text.contains("key_headers[0]"), "{text}");
    assert!(text.contains("key_headers[1]"), "{text}");
}

#[tokio::test]
async fn a_read_with_a_body_is_refused_on_a_cached_route() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    for request in [
        "GET /b/headers HTTP/1.1\r\nHost: cdn.test\r\nContent-Length: 5\r\n\r\nhello".to_string(),
        "GET /b/headers HTTP/1.1\r\nHost: cdn.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            .to_string(),
        "HEAD /b/headers HTTP/1.1\r\nHost: cdn.test\r\nContent-Length: 5\r\n\r\nhello".to_string(),
    ] {
        let answer = raw_request(gw.addr, request.as_bytes());
        let (status, headers) = head_of(&answer);
        assert_eq!(status, 400, "{answer}");
        assert_eq!(header(&headers, "connection"), ["close"], "{answer}");
    }
    assert_eq!(origin.hits(), 0);
    // An empty body is no body.
    let ok = raw_request(
        gw.addr,
        b"GET /b/headers HTTP/1.1\r\nHost: cdn.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head_of(&ok).0, 200, "{ok}");
    assert_eq!(origin.hits(), 1);
}

/// The query the origin's echo reports.
fn echoed_query(echo: &str) -> &str {
    echo.lines()
        .find_map(|l| l.strip_prefix("query="))
        .unwrap_or_default()
}

#[tokio::test]
async fn queries_reach_the_origin_exactly_as_keyed() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, r#"default_ttl = "1m""#);
    let evil = body(&gw, "cdn.test", "/q?a=evil&a=good", &[]).await;
    assert_eq!(echoed_query(&evil), "a=evil&a=good");
    let good = body(&gw, "cdn.test", "/q?a=good&a=evil", &[]).await;
    assert_eq!(echoed_query(&good), "a=good&a=evil");
    assert_eq!(
        origin.hits(),
        2,
        "duplicate parameters in another order are another query"
    );
    // Other parameters are put in order: the same query for the key and the origin.
    let sorted = body(&gw, "cdn.test", "/q?b=2&a=1", &[]).await;
    assert_eq!(echoed_query(&sorted), "a=1&b=2");
    let same = body(&gw, "cdn.test", "/q?a=1&b=2", &[]).await;
    assert_eq!(same, sorted);
    assert_eq!(origin.hits(), 3);
    // Bytes that are not UTF-8 are kept apart, not folded into U+FFFD.
    let ff = body(&gw, "cdn.test", "/q?x=%FF", &[]).await;
    let fe = body(&gw, "cdn.test", "/q?x=%FE", &[]).await;
    assert_eq!(echoed_query(&ff), "x=%FF");
    assert_eq!(echoed_query(&fe), "x=%FE");
    assert_eq!(origin.hits(), 5);
}

#[tokio::test]
async fn parameters_outside_query_keys_never_reach_the_origin() {
    let origin = origin::start();
    let gw = gateway(
        &origin,
        r#""cdn.test""#,
        "default_ttl = \"1m\"\nquery_keys = [\"w\"]",
    );
    let crafted = body(&gw, "cdn.test", "/k?w=100&callback=evil", &[]).await;
    assert_eq!(echoed_query(&crafted), "w=100");
    let clean = body(&gw, "cdn.test", "/k?w=100", &[]).await;
    assert_eq!(clean, crafted);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_vary_longer_than_the_key_holds_is_not_stored() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    let names: Vec<String> = (1..=17).map(|i| format!("x-v{i}")).collect();
    let path = format!(
        "/v/with-headers?cache-control=max-age%3D60&vary={}",
        names.join("%2C")
    );
    let first = get(&gw, "cdn.test", &path, &[]).await;
    let status = first.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(status.contains("detail=vary_too_many"), "{status}");
    get(&gw, "cdn.test", &path, &[("x-v17", "other")]).await;
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn hop_by_hop_headers_are_neither_stored_nor_replayed() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    let path = "/hop/with-headers?cache-control=max-age%3D60&connection=x-secret&x-secret=1\
                &keep-alive=timeout%3D99&proxy-connection=keep-alive&x-kept=yes";
    for round in ["miss", "hit"] {
        let r = get(&gw, "cdn.test", path, &[]).await;
        let h = r.headers();
        for name in ["x-secret", "keep-alive", "proxy-connection"] {
            assert!(!h.contains_key(name), "{round}: {name} replayed: {h:?}");
        }
        assert_eq!(h["x-kept"], "yes", "{round}");
    }
    assert_eq!(origin.hits(), 1);
}

/// Sends one request on `stream` and reads its answer (framed by `Content-Length`).
fn exchange(
    stream: &mut std::net::TcpStream,
    request: &str,
) -> Option<(u16, Vec<(String, String)>)> {
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let (status, headers) = head_of(&head);
    let length: usize = header(&headers, "content-length").first()?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((status, headers))
}

#[tokio::test]
async fn a_stale_answer_for_a_failed_origin_keeps_its_word_on_the_connection() {
    let mut origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, r#"stale_if_error = "1m""#);
    let path = "/s/with-headers?cache-control=max-age%3D1";
    assert_eq!(get(&gw, "cdn.test", path, &[]).await.status(), 200);
    origin.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let addr = gw.addr;
    let request = format!("GET {path} HTTP/1.1\r\nHost: cdn.test\r\n\r\n");
    let outcome = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let first = exchange(&mut stream, &request).expect("a stale answer");
        let second = exchange(&mut stream, &request);
        (first, second)
    })
    .await
    .unwrap();
    let ((status, headers), second) = outcome;
    assert_eq!(status, 200);
    // Served stale: a hit whose freshness ran out (RFC 9211's negative `ttl`).
    let cache_status = header(&headers, "cache-status").concat();
    assert!(cache_status.contains("hit; ttl=-"), "{headers:?}");
    // Either the answer said the connection ends, or the connection carries the next one.
    let says_close = header(&headers, "connection") == ["close"];
    assert!(
        says_close || second.is_some(),
        "promised keep-alive, then closed: {headers:?}"
    );
}

#[tokio::test]
async fn an_origin_that_hangs_up_is_asked_at_most_twice_per_request() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    // Twenty pooled connections first: each retry could take another one the origin will
    // hang up on, as a busy gateway's pool would hold.
    let paths: Vec<String> = (0..20)
        .map(|i| format!("/warm{i}/delay-200/headers"))
        .collect();
    let warm: Vec<_> = paths
        .iter()
        .map(|path| get(&gw, "cdn.test", path, &[]))
        .collect();
    for r in futures_util::future::join_all(warm).await {
        assert_eq!(r.status(), 200);
    }

    let before = origin.hits();
    let r = get(&gw, "cdn.test", "/x/hangup", &[]).await;
    assert_eq!(r.status(), 502);
    let asked = origin.hits() - before;
    assert!((1..=2).contains(&asked), "asked {asked} times");
}

#[tokio::test]
async fn ranges_on_a_cached_route_follow_rfc_9110() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    let path = "/r/headers";
    let full = body(&gw, "cdn.test", path, &[]).await;
    // Zero-length suffixes cannot be satisfied, whatever the length.
    let r = get(&gw, "cdn.test", path, &[("range", "bytes=-0")]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{}", full.len()).as_str()
    );
    // A malformed Range, or another unit, is ignored: the whole body.
    for range in ["bytes=abc", "bytes=5-2", "items=0-1", "bytes"] {
        let r = get(&gw, "cdn.test", path, &[("range", range)]).await;
        assert_eq!(r.status(), 200, "{range}");
        assert_eq!(r.text().await.unwrap(), full, "{range}");
    }
    let r = get(&gw, "cdn.test", path, &[("range", "bytes=0-3")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), full[..4]);
    let r = get(&gw, "cdn.test", path, &[("range", "bytes=99999-")]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn hosts_are_checked_and_the_absolute_form_wins() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    for host in [":", ":80", "cdn.test:x"] {
        let answer = raw_request(
            gw.addr,
            format!("GET /a/headers HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(head_of(&answer).0, 400, "Host: {host}: {answer}");
    }
    assert_eq!(origin.hits(), 0);
    // RFC 9112 §3.2.2: an absolute-form target names the host itself.
    let answer = raw_request(
        gw.addr,
        b"GET http://cdn.test/a/headers HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head_of(&answer).0, 200, "{answer}");
    assert!(answer.contains("host: cdn.test\n"), "{answer}");
    // A Host that disagrees with it is refused (Pingora's choice, stricter than the RFC's
    // "the target wins"): neither host's answer is given.
    let answer = raw_request(
        gw.addr,
        b"GET http://cdn.test/a/headers HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head_of(&answer).0, 400, "{answer}");
}

#[tokio::test]
async fn compression_keeps_validators_and_the_stored_copy_right() {
    let origin = origin::start();
    let gw = gateway(&origin, r#""cdn.test""#, "");
    let path = "/z/with-headers?cache-control=max-age%3D60&etag=%22v1%22&_pad=4000";
    let gzip = [("accept-encoding", "gzip")];
    let coded = get(&gw, "cdn.test", path, &gzip).await;
    assert_eq!(coded.headers()["content-encoding"], "gzip");
    // Another representation: its validator is weak, and caches after us are told it varies.
    assert_eq!(coded.headers()["etag"], "W/\"v1\"");
    assert!(coded.headers()["vary"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("accept-encoding"));
    let text = gunzip(&coded.bytes().await.unwrap());
    // The identity copy is the one stored: one origin fetch serves both codings.
    let plain = get(&gw, "cdn.test", path, &[]).await;
    assert!(!plain.headers().contains_key("content-encoding"));
    assert_eq!(plain.headers()["etag"], "\"v1\"");
    assert_eq!(plain.text().await.unwrap(), text);
    assert_eq!(origin.hits(), 1);
    // Either validator still names the stored response.
    for tag in ["W/\"v1\"", "\"v1\""] {
        let r = get(&gw, "cdn.test", path, &[("if-none-match", tag), gzip[0]]).await;
        assert_eq!(r.status(), 304, "{tag}");
    }
    let r = get(
        &gw,
        "cdn.test",
        path,
        &[("if-none-match", "\"v2\""), gzip[0]],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(origin.hits(), 1);
    // `no-transform`: sent exactly as the origin sent it (RFC 9110 §7.7).
    let fixed =
        "/z/with-headers?cache-control=max-age%3D60%2C%20no-transform&etag=%22v1%22&_pad=4000";
    let r = get(&gw, "cdn.test", fixed, &gzip).await;
    assert!(
        !r.headers().contains_key("content-encoding"),
        "{:?}",
        r.headers()
    );
    assert_eq!(r.headers()["etag"], "\"v1\"");
}
