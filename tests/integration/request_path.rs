//! The request path's edges against the real binary: malformed Host values, hostile headers,
//! clients that go away, who the client is behind proxies, key joining, strong If-Match.

use crate::harness::*;
use std::io::{Read, Write};
use std::time::Duration;

fn files_config(root: &std::path::Path, extra: &str) -> String {
    format!(
        "{extra}\n[backends.files]\nkind = \"dir\"\nroot = \"{}\"\n\
         [[hosts]]\nnames = [\"cdn.test\", \"*\"]\n[[hosts.routes]]\nname = \"files\"\npath = \"/\"\n\
         backend = \"files\"\n[hosts.routes.cors]\nallow_origins = [\"https://app.test\"]\n",
        root.display()
    )
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "hello, world\n").unwrap();
    dir
}

fn get_with_host(host: &str) -> Vec<u8> {
    format!("GET /a.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn unclosed_ipv6_host_is_400_with_log_and_metric() {
    let root = tree();
    let gw = Gateway::start(&files_config(root.path(), "[log]\nformat = \"json\""));
    for host in ["[", "[::1", "[::1]x", "a b", "host:port"] {
        let resp = raw_request(gw.addr, &get_with_host(host));
        assert_eq!(
            raw_status(&resp),
            400,
            "Host {host:?}: {resp}\n{}",
            gw.log()
        );
        assert!(resp.contains("malformed Host header"), "{resp}");
    }
    let events = access_events(&gw, 5).await;
    assert!(events
        .iter()
        .all(|e| e["status"] == 400 && e["error"] == "bad_host"));
    let m = metrics_when(&gw, "bad_host counted", |m| {
        m.contains("assetgate_rejected_requests_total{reason=\"bad_host\"} 5")
    })
    .await;
    assert!(m.contains("route=\"_unmatched\",status=\"400\"} 5"), "{m}");
    // The gateway is still serving.
    let r = client().get(gw.url("/a.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn missing_or_repeated_host_is_400() {
    let root = tree();
    let gw = Gateway::start(&files_config(root.path(), ""));
    let missing = raw_request(gw.addr, b"GET /a.txt HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&missing), 400, "{missing}");
    let twice = raw_request(
        gw.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: cdn.test\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&twice), 400, "{twice}");
    // HTTP/1.0 may omit Host: the catch-all host answers.
    let old = raw_request(gw.addr, b"GET /a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(raw_status(&old), 200, "{old}");
}

/// Header values a fuzzer would try; each request must get a status line back.
const HOSTILE: &[(&str, &str)] = &[
    ("Range", "bytes=-"),
    ("Range", "bytes=99999999999999999999999-"),
    ("Range", "bytes=5-1"),
    ("Range", "bytes=-0,-0,-0"),
    ("Range", "bytes=\u{7f}"),
    ("Range", "bytes=0-18446744073709551615"),
    ("If-Match", "W/"),
    ("If-Match", "\""),
    ("If-None-Match", ",,,,*"),
    ("If-Modified-Since", "Tue, 99 Nov 2023 99:99:99 GMT"),
    ("If-Unmodified-Since", "0"),
    ("If-Range", "W/\"x"),
    ("Origin", "null"),
    ("Origin", "https://app.test:99999"),
    ("Origin", "\u{ff}"),
    ("Accept-Encoding", "gzip;q=nan, br;q=-1, *;q=2"),
    ("Accept-Encoding", ";;;,,,q="),
    ("Accept-Encoding", "zstd;q=0.5;q=0.1"),
    ("X-Forwarded-For", "[, ::1]:x, 999.1.1.1"),
    ("Cookie", "=;=;;a=\u{ff}"),
];

#[tokio::test]
async fn hostile_header_values_always_get_an_answer() {
    let root = tree();
    let gw = Gateway::start(&files_config(root.path(), ""));
    for (name, value) in HOSTILE {
        for method in ["GET", "HEAD", "OPTIONS"] {
            let mut req = format!("{method} /a.txt HTTP/1.1\r\nHost: cdn.test\r\n").into_bytes();
            req.extend_from_slice(name.as_bytes());
            req.extend_from_slice(b": ");
            // Latin-1 bytes on the wire, as a hostile client would send them.
            req.extend(value.chars().map(|c| c as u32 as u8));
            req.extend_from_slice(
                b"\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n",
            );
            let resp = raw_request(gw.addr, &req);
            let status = raw_status(&resp);
            assert!(
                (200..600).contains(&status),
                "{method} with {name}: {value:?} got no answer: {resp:?}\n{}",
                gw.log()
            );
        }
    }
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

/// Starts a download of `path` (at least 64 MiB), reads 4 KiB and hangs up; then checks the
/// request was recorded as 499 on route `route` and nothing was counted against `backend`.
async fn assert_abort_is_499(gw: &Gateway, path: &str, route: &str, backend: &str) {
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: cdn.test\r\n\r\n").unwrap();
    let mut first = [0u8; 4096];
    s.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    drop(s);
    let events = access_events(gw, 1).await;
    assert_eq!(events[0]["status"], 499, "{}", gw.log());
    assert_eq!(events[0]["error"], "client_aborted");
    assert!(events[0]["bytes"].as_u64().unwrap() < origin::BIG_BODY as u64);
    let counted = format!("route=\"{route}\",status=\"499\"}} 1");
    let m = metrics_when(gw, "the abort counted", |m| m.contains(&counted)).await;
    assert!(
        !m.contains(&format!(
            "assetgate_backend_errors_total{{backend=\"{backend}\""
        )),
        "a client abort was counted against the backend:\n{m}"
    );
}

#[tokio::test]
async fn client_abort_from_an_origin_is_499_not_a_backend_failure() {
    let origin = origin::start();
    let gw = Gateway::start(&format!(
        "[log]\nformat = \"json\"\n[backends.api]\nkind = \"http\"\naddresses = [\"{}\"]\n\
         health_check_interval = \"0s\"\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\nname = \"api\"\npath = \"/\"\nbackend = \"api\"\n",
        origin.addr
    ));
    assert_abort_is_499(&gw, "/big", "api", "api").await;
}

#[tokio::test]
async fn client_abort_from_a_directory_is_499_not_a_backend_failure() {
    let root = tree();
    std::fs::write(root.path().join("big.bin"), vec![b'x'; origin::BIG_BODY]).unwrap();
    let gw = Gateway::start(&files_config(root.path(), "[log]\nformat = \"json\""));
    assert_abort_is_499(&gw, "/big.bin", "files", "files").await;
}

fn echo_config(origin: std::net::SocketAddr) -> String {
    format!(
        "[log]\nformat = \"json\"\n\
         [backends.api]\nkind = \"http\"\naddresses = [\"{origin}\"]\nhealth_check_interval = \"0s\"\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/\"\nbackend = \"api\"\n"
    )
}

/// The origin's echo of a request that claims `X-Forwarded-For: xff`.
async fn echo_with_forwarded_for(gw: &Gateway, xff: &str) -> String {
    let r = client()
        .get(gw.url("/who"))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap();
    r.text().await.unwrap()
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_client_is_replaced() {
    let origin = origin::start();
    let gw = Gateway::start(&echo_config(origin.addr));
    let text = echo_with_forwarded_for(&gw, "203.0.113.9").await;
    assert!(text.contains("xff=127.0.0.1\n"), "{text}");
    let events = access_events(&gw, 1).await;
    assert_eq!(events[0]["client"], "127.0.0.1");
}

#[tokio::test]
async fn forwarded_for_behind_a_trusted_proxy_is_appended_and_names_the_client() {
    let origin = origin::start();
    let gw = Gateway::start_with_server(
        "threads = 2\ntrusted_proxies = [\"127.0.0.0/8\", \"10.0.0.0/8\"]",
        &echo_config(origin.addr),
    );
    let text = echo_with_forwarded_for(&gw, "203.0.113.9, 10.1.1.1").await;
    assert!(
        text.contains("xff=203.0.113.9, 10.1.1.1, 127.0.0.1\n"),
        "{text}"
    );
    let events = access_events(&gw, 1).await;
    assert_eq!(events[0]["client"], "203.0.113.9");
}

#[tokio::test]
async fn key_prefix_and_add_prefix_join_segment_wise() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("tenant/pub")).unwrap();
    std::fs::write(root.path().join("tenant/pub/a.txt"), "joined").unwrap();
    std::fs::create_dir_all(root.path().join("tenantpub")).unwrap();
    std::fs::write(root.path().join("tenantpub/a.txt"), "glued").unwrap();
    let gw = Gateway::start(&format!(
        "[backends.files]\nkind = \"dir\"\nroot = \"{}\"\nkey_prefix = \"tenant\"\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/static\"\nbackend = \"files\"\n\
         strip_prefix = \"/static\"\nadd_prefix = \"pub\"\n",
        root.path().display()
    ));
    let r = client().get(gw.url("/static/a.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "joined");
}

async fn get_a_txt(gw: &Gateway, header: Option<(&str, String)>) -> reqwest::Response {
    let mut req = client().get(gw.url("/a.txt"));
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn if_match_compares_strongly() {
    let root = tree();
    let gw = Gateway::start(&files_config(root.path(), ""));
    let r = get_a_txt(&gw, None).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = get_a_txt(&gw, Some(("if-match", etag.clone()))).await;
    assert_eq!(r.status(), 200);
    let r = get_a_txt(&gw, Some(("if-match", format!("W/{etag}")))).await;
    assert_eq!(r.status(), 412);
    // If-None-Match still compares weakly.
    let r = get_a_txt(&gw, Some(("if-none-match", format!("W/{etag}")))).await;
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn a_fifo_in_the_tree_is_not_found_and_does_not_stall() {
    let root = tree();
    let fifo = root.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let gw = Gateway::start_with_server("threads = 1", &files_config(root.path(), ""));
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = c.get(gw.url("/pipe")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(gw.url("/a.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn replaced_and_removed_files_are_seen_within_the_open_file_window() {
    let root = tree();
    let gw = Gateway::start(&files_config(root.path(), ""));
    let body = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    assert_eq!(
        body(get_a_txt(&gw, None).await).await,
        (200, "hello, world\n".into())
    );
    // Replaced under the same name (a new inode, as deploy tools do): the new bytes within 1 s.
    let staged = root.path().join("a.txt.new");
    std::fs::write(&staged, "second version\n").unwrap();
    std::fs::rename(&staged, root.path().join("a.txt")).unwrap();
    eventually("the replaced file", Duration::from_secs(3), || async {
        let (status, text) = body(get_a_txt(&gw, None).await).await;
        (status == 200 && text == "second version\n").then_some(())
    })
    .await;
    std::fs::remove_file(root.path().join("a.txt")).unwrap();
    eventually(
        "the removed file to be 404",
        Duration::from_secs(3),
        || async { (get_a_txt(&gw, None).await.status() == 404).then_some(()) },
    )
    .await;
}

/// Sends a GET for `path` with `range` on a new connection, without reading the answer.
fn send_range(gw: &Gateway, path: &str, range: &str) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: cdn.test\r\nRange: {range}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

/// Reads a whole response; returns the status line and the body.
fn read_response(mut s: std::net::TcpStream) -> (String, Vec<u8>) {
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, all[split + 4..].to_vec())
}

#[tokio::test]
async fn interleaved_ranges_of_one_open_file_do_not_share_a_position() {
    const MIB: usize = 1 << 20;
    let root = tempfile::tempdir().unwrap();
    // Not periodic at MiB offsets, so bytes read from the wrong place never match.
    let data: Vec<u8> = (0..32 * MIB as u32)
        .map(|i| ((i % 251) ^ (i >> 16)) as u8)
        .collect();
    std::fs::write(root.path().join("big.bin"), &data).unwrap();
    // One worker thread: both requests share its cached descriptor for big.bin.
    let gw = Gateway::start_with_server("threads = 1", &files_config(root.path(), ""));
    // A asks for 24 MiB, more than loopback socket buffers hold, and does not read yet: the
    // worker has to leave A's body part-way through. Meanwhile B is served in full.
    let a = send_range(&gw, "/big.bin", &format!("bytes=0-{}", 24 * MIB - 1));
    let b = send_range(
        &gw,
        "/big.bin",
        &format!("bytes={}-{}", 28 * MIB, 29 * MIB - 1),
    );
    let (status_b, body_b) = read_response(b);
    assert!(status_b.contains(" 206 "), "{status_b}");
    assert!(body_b[..] == data[28 * MIB..29 * MIB], "B got wrong bytes");
    let (status_a, body_a) = read_response(a);
    assert!(status_a.contains(" 206 "), "{status_a}");
    assert_eq!(body_a.len(), 24 * MIB);
    assert!(
        body_a[..] == data[..24 * MIB],
        "A's body continued from where B left the file position"
    );
}
