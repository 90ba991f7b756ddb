//! The gateway under test: the real binary on free ports, `assetgate check`, and reading
//! its metrics and access log.

use super::*;

/// A running gateway process, killed on drop.
pub struct Gateway {
    child: Child,
    /// Proxy listener address.
    pub addr: SocketAddr,
    /// Admin listener address.
    pub admin: SocketAddr,
    /// Folder holding the config and the log.
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts the gateway with `body` (everything but listeners/admin/server, which the
    /// harness adds) and waits until `/readyz` answers 200.
    pub fn start(body: &str) -> Gateway {
        Self::start_with_listeners(body, &[])
    }

    /// Like [`Gateway::start`], with extra `[[listeners]]` TOML appended.
    pub fn start_with_listeners(body: &str, extra_listeners: &[String]) -> Gateway {
        Self::start_full("threads = 2", body, extra_listeners, "")
    }

    /// Like [`Gateway::start`], with `server` lines (e.g. `threads = 1`) in `[server]`.
    pub fn start_with_server(server: &str, body: &str) -> Gateway {
        Self::start_full(server, body, &[], "")
    }

    /// Like [`Gateway::start`], with extra lines in `[admin]` (tokens, audit log).
    pub fn start_with_admin(admin: &str, body: &str) -> Gateway {
        Self::start_full("threads = 2", body, &[], admin)
    }

    /// Like [`Gateway::start`], but returns once the process runs, ready or not.
    pub fn start_unready(body: &str) -> Gateway {
        Self::spawn("threads = 2", body, &[], "")
    }

    /// Waits until `/readyz` answers 200 (panics after 30 s).
    pub fn wait_until_ready(&mut self) {
        self.wait_ready();
    }

    fn start_full(server: &str, body: &str, extra_listeners: &[String], admin: &str) -> Gateway {
        let mut gw = Self::spawn(server, body, extra_listeners, admin);
        gw.wait_ready();
        gw
    }

    fn spawn(server: &str, body: &str, extra_listeners: &[String], admin: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let admin_port = free_port();
        let config = format!(
            "[server]\n{server}\npid_file = \"{d}/gw.pid\"\nupgrade_sock = \"{d}/gw.sock\"\n\n\
             [[listeners]]\naddress = \"127.0.0.1:{port}\"\n{extra}\n\
             [admin]\naddress = \"127.0.0.1:{admin_port}\"\n{admin}\n\n{body}",
            d = dir.path().display(),
            extra = extra_listeners.join("\n"),
        );
        let config_path = dir.path().join("assetgate.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_assetgate"))
            .args(["run", "-c"])
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn assetgate");
        Gateway {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            dir,
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited with {status}; log:\n{}", self.log());
            }
            if let Ok(body) = blocking_get(self.admin, "/readyz") {
                if body.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway not ready in 30s; log:\n{}", self.log());
    }

    /// Runs `assetgate sign SCHEME -c <this gateway's config> ARGS...`.
    pub fn sign(&self, scheme: &str, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_assetgate"))
            .args(["sign", scheme, "-c"])
            .arg(self.dir.path().join("assetgate.toml"))
            .args(args)
            .output()
            .expect("run assetgate sign")
    }

    /// Like [`Gateway::sign`], for a call that must succeed: what it printed, trimmed.
    pub fn signed(&self, scheme: &str, args: &[&str]) -> String {
        let out = self.sign(scheme, args);
        assert!(
            out.status.success(),
            "sign {scheme} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_string()
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT{path}` for the proxy listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `http://127.0.0.1:PORT{path}` for the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// Process id (for RSS measurement).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `assetgate check` on `config`: whether it passed, and everything it printed.
pub fn check_config(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("checked.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_assetgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run assetgate check");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Polls the gateway's `/metrics` until `pred` holds; returns that text.
pub async fn metrics_when(gw: &Gateway, what: &str, pred: impl Fn(&str) -> bool) -> String {
    eventually(what, Duration::from_secs(10), || async {
        let text = gw.metrics().await;
        pred(&text).then_some(text)
    })
    .await
}

/// The JSON access-log events in the gateway's log, once there are at least `count`.
pub async fn access_events(gw: &Gateway, count: usize) -> Vec<serde_json::Value> {
    eventually("access log events", Duration::from_secs(10), || async {
        let events: Vec<serde_json::Value> = gw
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "assetgate::access")
            .collect();
        (events.len() >= count).then_some(events)
    })
    .await
}
