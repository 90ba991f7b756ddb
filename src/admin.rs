//! The admin listener: `/metrics` (Prometheus text), `/healthz` (alive), `/readyz` (config
//! loaded and every listener accepting connections).

use crate::backend::Backend;
use crate::metrics::Metrics;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The admin HTTP application.
pub struct AdminApp {
    backends: HashMap<String, Arc<Backend>>,
    listeners: Vec<SocketAddr>,
    metrics: &'static Metrics,
}

impl AdminApp {
    /// An admin app reporting on these backends and listeners.
    pub fn new(backends: HashMap<String, Arc<Backend>>, listeners: Vec<SocketAddr>) -> AdminApp {
        AdminApp {
            backends,
            listeners,
            metrics: Metrics::global(),
        }
    }

    /// Sets `assetgate_backend_up` from the backends' current state.
    fn refresh_backend_health(&self) {
        for (name, backend) in &self.backends {
            for (member, up) in backend.member_health() {
                self.metrics
                    .backend_up
                    .with_label_values(&[name, &member])
                    .set(i64::from(up));
            }
        }
    }

    async fn listeners_up(&self) -> bool {
        for addr in &self.listeners {
            let mut target = *addr;
            if target.ip().is_unspecified() {
                target.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            let connect = tokio::net::TcpStream::connect(target);
            if !matches!(
                tokio::time::timeout(Duration::from_millis(500), connect).await,
                Ok(Ok(_))
            ) {
                return false;
            }
        }
        true
    }
}

fn answer(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .expect("valid admin response")
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let text = "text/plain; charset=utf-8";
        match session.req_header().uri.path() {
            "/metrics" => {
                self.refresh_backend_health();
                answer(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(),
                )
            }
            "/healthz" => answer(StatusCode::OK, text, b"ok\n".to_vec()),
            "/readyz" => {
                if self.listeners_up().await {
                    answer(StatusCode::OK, text, b"ready\n".to_vec())
                } else {
                    answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        text,
                        b"listeners not accepting yet\n".to_vec(),
                    )
                }
            }
            _ => answer(StatusCode::NOT_FOUND, text, b"not found\n".to_vec()),
        }
    }
}
