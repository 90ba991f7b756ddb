//! `/metrics`, `/healthz`, `/readyz` on the admin listener.

use crate::harness::*;

#[tokio::test]
async fn metrics_after_traffic_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let gw = Gateway::start(&format!(
        "[backends.files]\nkind = \"dir\"\nroot = \"{}\"\n\
         [[hosts]]\nnames = [\"cdn.test\"]\n[[hosts.routes]]\nname = \"files\"\npath = \"/\"\nbackend = \"files\"\n",
        dir.path().display()
    ));
    let c = client();
    for _ in 0..3 {
        let r = c
            .get(gw.url("/a.txt"))
            .header("host", "cdn.test")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = c
        .get(gw.url("/nope.txt"))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // An unknown host is labelled "_unmatched", never with the raw Host value.
    let r = c
        .get(gw.url("/a.txt"))
        .header("host", "attacker-controlled.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = raw_request(
        gw.addr,
        b"GET /%2e%2e/x HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&r), 400);

    assert_eq!(
        c.get(gw.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok\n"
    );
    let ready = c.get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let text = gw.metrics().await;
    for expected in [
        r#"assetgate_requests_total{host="cdn.test",route="files",status="200"} 3"#,
        r#"assetgate_requests_total{host="cdn.test",route="files",status="404"} 1"#,
        r#"assetgate_requests_total{host="_unmatched",route="_unmatched",status="404"} 1"#,
        r#"assetgate_requests_total{host="_unmatched",route="_unmatched",status="400"} 1"#,
        r#"assetgate_rejected_requests_total{reason="bad_path"} 1"#,
        r#"assetgate_rejected_requests_total{reason="no_route"} 1"#,
        r#"assetgate_request_duration_seconds_count{host="cdn.test",route="files"} 4"#,
        r#"assetgate_response_body_bytes_total{host="cdn.test",route="files"} 13"#,
        r#"assetgate_backend_up{backend="files","#,
        "assetgate_build_info{version=",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(!text.contains("attacker-controlled"));

    let promtool = require_binary("promtool", "apt-get install prometheus");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn json_access_log_has_one_event_per_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let gw = Gateway::start(&format!(
        "[log]\nformat = \"json\"\naccess_log = true\n\
         [backends.files]\nkind = \"dir\"\nroot = \"{}\"\n\
         [[hosts]]\nnames = [\"cdn.test\"]\n[[hosts.routes]]\nname = \"files\"\npath = \"/\"\nbackend = \"files\"\n",
        dir.path().display()
    ));
    let r = client()
        .get(gw.url("/a.txt?x=1"))
        .header("host", "cdn.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let access = access_events(&gw, 1).await;
    assert_eq!(access.len(), 1, "{}", gw.log());
    let event = &access[0];
    assert_eq!(event["status"], 200);
    assert_eq!(event["method"], "GET");
    assert_eq!(event["path"], "/a.txt");
    assert_eq!(event["route"], "files");
    assert_eq!(event["backend"], "files");
    assert_eq!(event["bytes"], 1);
    assert_eq!(event["client"], "127.0.0.1");
}
