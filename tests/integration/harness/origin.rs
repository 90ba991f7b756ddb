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
