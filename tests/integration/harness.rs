//! Test harness: the real `assetgate` binary on free loopback ports, one Garage S3 server per
//! test binary, and a real HTTP origin (hyper) that records what it receives.

#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released), never the same twice in this process.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind port 0")
            .local_addr()
            .expect("local addr")
            .port();
        let mut seen = HANDED_OUT.lock().expect("port list");
        if !seen.contains(&port) {
            seen.push(port);
            return port;
        }
    }
}

/// Finds a program on PATH or in ~/.cargo/bin; panics naming how to install it.
pub fn require_binary(name: &str, install_hint: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is required by this test but was not found on PATH or in ~/.cargo/bin; install it with: {install_hint} (.ci/run does this)");
}

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

/// A minimal blocking GET used before the async client is useful (readiness).
pub fn blocking_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Sends raw request bytes and returns the raw response (for paths no client library would send).
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

pub fn raw_request(addr: SocketAddr, request: &[u8]) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Status code of a raw HTTP/1.1 response.
pub fn raw_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Resident set size of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Decodes a gzip body (panics on invalid gzip, which is a test failure).
pub fn gunzip(body: &[u8]) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body), &mut text)
        .expect("valid gzip");
    text
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`; panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// An HTTP client that never follows redirects nor decompresses.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

// ------------------------------------------------------------------------------ Garage

/// Access key and secret of the Garage test server.
pub const GARAGE_KEY_ID: &str = "GK0123456789abcdef01234567";
/// Secret of [`GARAGE_KEY_ID`].
pub const GARAGE_SECRET: &str = "5f6e7d8c9b0a1f2e3d4c5b6a7988776655443322110ffeeddccbbaa998877665";
/// The bucket Garage creates at start.
pub const GARAGE_BUCKET: &str = "assets";

/// A Garage server shared by the tests of this binary; it exits when the test binary does.
pub struct Garage {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    dir: PathBuf,
    bin: PathBuf,
    /// The watchdog shell; it outlives the test process only long enough to stop Garage.
    _watchdog: Child,
}

/// The shared Garage server (started on first use).
pub async fn garage() -> &'static Garage {
    static GARAGE: OnceLock<Garage> = OnceLock::new();
    static START: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    START
        .get_or_init(|| async {
            let g = tokio::task::spawn_blocking(start_garage)
                .await
                .expect("start garage");
            wait_for_bucket(&g.client()).await;
            let _ = GARAGE.set(g);
        })
        .await;
    GARAGE.get().expect("garage started")
}

fn start_garage() -> Garage {
    let bin = require_binary(
        "garage",
        "cargo install garage --locked --no-default-features --features bundled-libs,sqlite",
    );
    let dir = std::env::temp_dir().join(format!("assetgate-garage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("garage dir");
    let rpc = free_port();
    let s3 = free_port();
    let conf = dir.join("garage.toml");
    std::fs::write(
        &conf,
        format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
            d = dir.display()
        ),
    )
    .expect("garage config");
    let log = std::fs::File::create(dir.join("garage.log")).expect("garage log");
    // A watchdog shell stops Garage when this test process exits, however it exits, and
    // removes its data (the suite stores a 256 MiB object).
    let script = format!(
        "\"$0\" -c \"$1\" server --single-node --default-bucket & g=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 0.5; done; \
         kill $g 2>/dev/null; wait $g; rm -rf \"$2\"",
        me = std::process::id()
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .arg(&conf)
        .arg(&dir)
        .env("GARAGE_DEFAULT_ACCESS_KEY", GARAGE_KEY_ID)
        .env("GARAGE_DEFAULT_SECRET_KEY", GARAGE_SECRET)
        .env("GARAGE_DEFAULT_BUCKET", GARAGE_BUCKET)
        .env("RUST_LOG", "garage=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn garage");
    let endpoint = format!("http://127.0.0.1:{s3}");
    Garage {
        endpoint,
        dir,
        bin,
        _watchdog: watchdog,
    }
}

/// An SDK client for Garage.
pub fn s3_client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("garage"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            key, secret, None, None, "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn wait_for_bucket(client: &aws_sdk_s3::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.head_bucket().bucket(GARAGE_BUCKET).send().await {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("garage did not become ready: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

impl Garage {
    /// An SDK client with full access, for seeding objects. A new one per use: a client's
    /// pooled connections belong to the runtime of the test that opened them, and each
    /// `#[tokio::test]` drops its runtime when it ends.
    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, GARAGE_KEY_ID, GARAGE_SECRET)
    }

    /// Stores `body` at `key`.
    pub async fn put(&self, key: &str, body: impl Into<Vec<u8>>, content_type: &str) {
        self.client()
            .put_object()
            .bucket(GARAGE_BUCKET)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Creates an access key with no permission on any bucket (idempotent).
    pub fn import_key(&self, key_id: &str, secret: &str) {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.join("garage.toml"))
            .args(["key", "import", "--yes", "-n", key_id, key_id, secret])
            .output()
            .expect("run garage key import");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("already exists"),
            "garage key import failed: {stderr}"
        );
    }

    /// A `[backends.NAME]` table pointing at this Garage with the harness's key and `secret`.
    pub fn backend_toml(&self, name: &str, key_prefix: &str, secret: &str) -> String {
        self.backend_toml_with_key(name, key_prefix, GARAGE_KEY_ID, secret)
    }

    /// A `[backends.NAME]` table pointing at this Garage with the given key id and secret, both
    /// read from files as an operator would.
    pub fn backend_toml_with_key(
        &self,
        name: &str,
        key_prefix: &str,
        key_id: &str,
        secret: &str,
    ) -> String {
        format!(
            r#"
[backends.{name}]
kind = "s3"
bucket = "{GARAGE_BUCKET}"
region = "garage"
endpoint = "{endpoint}"
path_style = true
key_prefix = "{key_prefix}"
read_timeout = "5s"
[backends.{name}.credentials]
from = "static"
access_key_id = {{ file = "{key_file}" }}
secret_access_key = {{ file = "{secret_file}" }}
"#,
            endpoint = self.endpoint,
            key_file = secret_file(key_id).display(),
            secret_file = secret_file(secret).display(),
        )
    }
}

/// Now, in Unix seconds (for minting credentials).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Writes `secret` to a new file and returns its path (secrets come from files or env, never TOML).
pub fn secret_file(secret: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("assetgate-secret-{}-{n}", std::process::id()));
    std::fs::write(&path, secret).expect("secret file");
    path
}

// ------------------------------------------------------------------------------ Redis

/// A `redis-server` of this test's own on a free port (nothing kept on disk), stopped on drop.
pub struct Redis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts one and waits until it answers.
    pub fn start() -> Redis {
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its port refuses connections from now on).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was saved).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis is running");
        let bin = require_binary("redis-server", "apt-get install redis-server");
        let child = Command::new(bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `redis-cli` against it and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let bin = require_binary("redis-cli", "apt-get install redis-tools");
        let out = Command::new(bin)
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A TCP relay to `target` that a test can cut (every connection closed, new ones refused)
/// and restore: a network partition between a gateway and a server, without stopping the
/// server for everyone else.
pub struct Relay {
    /// The port to point a client at instead of the target's.
    pub port: u16,
    state: std::sync::Arc<RelayState>,
}

#[derive(Default)]
struct RelayState {
    cut: std::sync::atomic::AtomicBool,
    open: std::sync::Mutex<Vec<std::net::TcpStream>>,
    /// Milliseconds each new connection waits before it reaches the target.
    delay_ms: std::sync::atomic::AtomicU64,
}

impl Relay {
    /// Starts relaying connections on a free port to `target`.
    pub fn start(target: SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let state = std::sync::Arc::new(RelayState::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if shared.cut.load(Ordering::SeqCst) {
                    continue;
                }
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let delay = shared.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        std::thread::sleep(Duration::from_millis(delay));
                    }
                    let Ok(server) = std::net::TcpStream::connect(target) else {
                        return;
                    };
                    let pipes = [
                        (client.try_clone(), server.try_clone()),
                        (server.try_clone(), client.try_clone()),
                    ];
                    {
                        let mut open = shared.open.lock().unwrap();
                        open.extend(client.try_clone());
                        open.extend(server.try_clone());
                    }
                    for pipe in pipes {
                        if let (Ok(mut from), Ok(mut to)) = pipe {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                });
            }
        });
        Relay { port, state }
    }

    /// Makes every new connection wait `delay` before it reaches the target (a slow origin).
    pub fn set_delay(&self, delay: Duration) {
        self.state.delay_ms.store(
            delay.as_millis() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Closes every relayed connection and refuses new ones until [`Relay::restore`].
    pub fn cut(&self) {
        self.state
            .cut
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.state.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.state
            .cut
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------------------ HTTP origin

pub mod origin {
    //! A real HTTP/1.1 origin on a free port. It answers:
    //! - any path containing `/status/NNN` with status NNN;
    //! - `/slow` after 3 s;
    //! - `/big` with [`BIG_BODY`] bytes of `x`;
    //! - any path ending in `/encoded` with a body it says is already gzip-encoded;
    //! - any path ending in `/with-headers` with each query pair `name=value` (`%20`-style
    //!   escapes decoded) added as a response header, and a body naming the request's serial
    //!   number (`serial=N`: the origin's N-th request), so a stored copy is told from a new one,
    //!   then `_pad=N` bytes of `x` (that pair is not a header);
    //! - any path containing `/delay-MS/` after MS milliseconds (then as any other path);
    //! - any path containing `/fail-on-NAME` with 503 when NAME is this origin's name;
    //! - any path containing `/slow-on-NAME` after 3 s when NAME is this origin's name;
    //! - any path containing `/hangup` by closing the connection without an answer;
    //! - a path ending in `/headers` with every request header it received and the length of
    //!   the body, fresh for 300 s;
    //! - anything else with an echo of the request: method, path, query, Host,
    //!   X-Forwarded-For and the body.
    //!
    //! Every answer carries `x-origin-name` with the origin's name. [`Origin::stop`] closes the
    //! listener and every connection; [`Origin::restart`] listens on the same port again.
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Size of the `/big` body: far more than socket buffers hold.
    pub const BIG_BODY: usize = 64 << 20;

    /// A running origin.
    pub struct Origin {
        /// Listening address.
        pub addr: SocketAddr,
        hits: Arc<AtomicUsize>,
        name: Arc<str>,
        running: Option<Running>,
    }

    impl Origin {
        /// Requests received so far.
        pub fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        /// Stops listening and closes every connection (the port is refused from now on).
        pub fn stop(&mut self) {
            if let Some((stop, thread)) = self.running.take() {
                let _ = stop.send(());
                let _ = thread.join();
            }
        }

        /// Listens on the same port again after [`Origin::stop`].
        pub fn restart(&mut self) {
            assert!(self.running.is_none(), "origin is running");
            let (addr, running) = spawn(self.addr, self.hits.clone(), self.name.clone());
            assert_eq!(addr, self.addr);
            self.running = Some(running);
        }
    }

    impl Drop for Origin {
        fn drop(&mut self) {
            self.stop();
        }
    }

    /// Starts an origin named `origin` on its own thread and runtime.
    pub fn start() -> Origin {
        start_named("origin")
    }

    /// Starts an origin with this name (sent in `x-origin-name`, matched by `/fail-on-NAME`).
    pub fn start_named(name: &str) -> Origin {
        let hits = Arc::new(AtomicUsize::new(0));
        let name: Arc<str> = Arc::from(name);
        let (addr, running) = spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            hits.clone(),
            name.clone(),
        );
        Origin {
            addr,
            hits,
            name,
            running: Some(running),
        }
    }

    type Running = (
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    );

    fn spawn(addr: SocketAddr, hits: Arc<AtomicUsize>, name: Arc<str>) -> (SocketAddr, Running) {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.set_reuseaddr(true).expect("SO_REUSEADDR");
                socket.bind(addr).expect("bind origin");
                let listener = socket.listen(1024).expect("listen");
                bound_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("report address");
                let serve = async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let counter = hits.clone();
                        let name = name.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req| {
                                let serial = counter.fetch_add(1, Ordering::SeqCst) + 1;
                                handle(req, name.clone(), serial)
                            });
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, svc)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection task: their sockets close here.
        });
        let bound = bound_rx.recv().expect("origin bound");
        (bound, (stop_tx, thread))
    }

    /// The whole body of `req`.
    async fn read_body(req: Request<hyper::body::Incoming>) -> Result<Bytes, std::io::Error> {
        Ok(req
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes())
    }

    /// The origin's answer, tagged with its name.
    async fn handle(
        req: Request<hyper::body::Incoming>,
        name: Arc<str>,
        serial: usize,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let mut resp = answer(req, &name, serial).await?;
        if let Ok(v) = hyper::header::HeaderValue::from_str(&name) {
            resp.headers_mut().insert("x-origin-name", v);
        }
        Ok(resp)
    }

    async fn answer(
        req: Request<hyper::body::Incoming>,
        name: &str,
        serial: usize,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let path = req.uri().path().to_string();
        if let Some(ms) = path
            .split_once("/delay-")
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if path.contains("/hangup") {
            return Err(std::io::Error::other("hanging up without an answer"));
        }
        if path.contains(&format!("/fail-on-{name}")) {
            return Ok(Response::builder()
                .status(503)
                .body(Full::new(Bytes::from(format!("{name} is failing\n"))))
                .expect("response"));
        }
        if path.contains(&format!("/slow-on-{name}")) {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        if let Some((_, code)) = path.split_once("/status/") {
            let code: u16 = code.parse().unwrap_or(500);
            return Ok(Response::builder()
                .status(code)
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(format!("origin status {code}\n"))))
                .expect("response"));
        }
        if path.ends_with("/encoded") {
            return Ok(Response::builder()
                .header("content-type", "text/css")
                .header("content-encoding", "gzip")
                .body(Full::new(Bytes::from_static(
                    b"\x1f\x8bpretend-gzip-bytes-from-the-origin",
                )))
                .expect("response"));
        }
        if path.ends_with("/with-headers") {
            let mut resp = Response::builder().header("content-type", "text/plain");
            let mut pad = 0;
            for pair in req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
            {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if name == "_pad" {
                    pad = value.parse().unwrap_or(0);
                    continue;
                }
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                resp = resp.header(name, value.as_ref());
            }
            let body = format!("with headers\nserial={serial}\n{}", "x".repeat(pad));
            return Ok(resp.body(Full::new(Bytes::from(body))).expect("response"));
        }
        if path.ends_with("/headers") {
            // Every request header as received, one `name: value` line each, and the body's
            // length.
            let mut lines = String::new();
            for (n, v) in req.headers() {
                lines.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())));
            }
            lines.push_str(&format!("body-length: {}\n", read_body(req).await?.len()));
            return Ok(Response::builder()
                .header("content-type", "text/plain")
                .header("cache-control", "max-age=300")
                .body(Full::new(Bytes::from(lines)))
                .expect("response"));
        }
        if path == "/big" {
            return Ok(Response::builder()
                .header("content-type", "application/octet-stream")
                .body(Full::new(Bytes::from(vec![b'x'; BIG_BODY])))
                .expect("response"));
        }
        if path == "/slow" {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        let method = req.method().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let host = header("host");
        let xff = header("x-forwarded-for");
        let body = read_body(req).await?;
        let echo = format!(
            "method={method}\npath={path}\nquery={query}\nhost={host}\nxff={xff}\nbody={}\n",
            String::from_utf8_lossy(&body)
        );
        Ok(Response::builder()
            .header("content-type", "text/plain; charset=utf-8")
            .header("x-origin", "yes")
            .body(Full::new(Bytes::from(echo)))
            .expect("response"))
    }
}

// ------------------------------------------------------------------------------ PostgreSQL

/// Where Debian keeps PostgreSQL's server programs.
const PG_BIN_DIRS: &[&str] = &[
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
];

fn pg_binary(name: &str) -> PathBuf {
    for dir in PG_BIN_DIRS {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    require_binary(name, "apt-get install postgresql")
}

/// A PostgreSQL cluster of this test binary's own (`initdb` + `pg_ctl` on a free port, trust
/// auth on loopback), stopped and removed by a watchdog when the test process exits. As
/// root, the cluster runs as the `postgres` user (the server refuses to run as root).
pub struct Postgres {
    /// Its port.
    pub port: u16,
    _watchdog: Child,
}

fn as_postgres_user(cmd: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

/// The shared PostgreSQL cluster (started on first use).
pub fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(start_postgres)
}

fn start_postgres() -> Postgres {
    let initdb = pg_binary("initdb");
    let pg_ctl = pg_binary("pg_ctl");
    let dir = std::env::temp_dir().join(format!("assetgate-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("pg dir");
    if is_root() {
        let chown = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(chown.success(), "cannot hand {} to postgres", dir.display());
    }
    let data = dir.join("data");
    let out = as_postgres_user(&initdb)
        .args(["-D"])
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let options = format!(
        "-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        d = dir.display()
    );
    let out = as_postgres_user(&pg_ctl)
        .args(["-D"])
        .arg(&data)
        .args(["-o", &options, "-l"])
        .arg(dir.join("pg.log"))
        .args(["-w", "start"])
        .output()
        .expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("pg.log")).unwrap_or_default()
    );
    // Stops the cluster and removes it when this test process exits, however it exits.
    let stop = if is_root() {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {d}",
        me = std::process::id(),
        d = dir.display()
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pg watchdog");
    Postgres {
        port,
        _watchdog: watchdog,
    }
}

impl Postgres {
    /// Runs SQL with `psql` in database `db`; returns what it printed (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let psql = require_binary("psql", "apt-get install postgresql-client");
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new empty database; returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}
