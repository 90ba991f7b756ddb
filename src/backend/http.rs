//! HTTP origin pools: round-robin over members, TCP health checks, per-backend timeouts.

use crate::config::HttpSpec;
use http::header;
use pingora::http::RequestHeader;
use pingora::lb::{health_check::TcpHealthCheck, selection::RoundRobin, LoadBalancer};
use pingora::services::background::background_service;
use pingora::upstreams::peer::HttpPeer;
use std::sync::Arc;

/// An origin pool, shared by all requests.
pub struct HttpBackend {
    /// Config name.
    pub name: String,
    spec: HttpSpec,
    pool: Arc<LoadBalancer<RoundRobin>>,
}

impl HttpBackend {
    /// Builds the pool; the returned service runs its health checks (when enabled).
    pub fn new(
        name: &str,
        spec: &HttpSpec,
    ) -> Result<(HttpBackend, Option<super::HealthCheckService>), String> {
        let mut pool =
            LoadBalancer::<RoundRobin>::try_from_iter(spec.addresses.iter().map(String::as_str))
                .map_err(|e| format!("backends.{name}.addresses: {e}"))?;
        let (pool, service) = match spec.health_check_interval {
            Some(interval) => {
                let mut check = if spec.tls {
                    TcpHealthCheck::new_tls(&spec.sni)
                } else {
                    TcpHealthCheck::new()
                };
                check.peer_template.options.connection_timeout = Some(spec.connect_timeout);
                pool.set_health_check(check);
                pool.health_check_frequency = Some(interval);
                let service = background_service(&format!("health check {name}"), pool);
                (service.task(), Some(service))
            }
            None => (Arc::new(pool), None),
        };
        Ok((
            HttpBackend {
                name: name.to_string(),
                spec: spec.clone(),
                pool,
            },
            service,
        ))
    }

    /// Response headers removed before responses reach clients.
    pub fn strip_headers(&self) -> &[String] {
        &self.spec.strip_response_headers
    }

    /// A healthy member to send the next request to, or `None` when every member is down.
    pub fn peer(&self) -> Option<HttpPeer> {
        let member = self.pool.select(b"", 256)?;
        let addr = *member.addr.as_inet()?;
        let mut peer = HttpPeer::new(addr, self.spec.tls, self.spec.sni.clone());
        peer.options.connection_timeout = Some(self.spec.connect_timeout);
        peer.options.total_connection_timeout = Some(self.spec.connect_timeout * 2);
        peer.options.read_timeout = Some(self.spec.read_timeout);
        peer.options.write_timeout = Some(self.spec.read_timeout);
        peer.options.verify_cert = self.spec.verify_cert;
        peer.options.verify_hostname = self.spec.verify_cert;
        Some(peer)
    }

    /// Rewrites the client's request for the origin: path, Host and X-Forwarded-* headers.
    pub fn prepare_request(
        &self,
        req: &mut RequestHeader,
        path_and_query: &str,
        client_ip: Option<String>,
        tls: bool,
    ) -> pingora::Result<()> {
        let original_host = req.headers.get(header::HOST).cloned().or_else(|| {
            req.uri
                .authority()
                .and_then(|a| header::HeaderValue::from_str(a.as_str()).ok())
        });
        let uri = path_and_query.parse::<http::Uri>().map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "origin uri", e)
        })?;
        req.set_uri(uri);
        if let Some(host) = &self.spec.host_header {
            req.insert_header(header::HOST, host.as_str())?;
        } else if let Some(h) = &original_host {
            req.insert_header(header::HOST, h.clone())?;
        }
        if let Some(h) = original_host {
            req.insert_header("x-forwarded-host", h)?;
        }
        if let Some(ip) = client_ip {
            let value = match req
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip,
            };
            req.insert_header("x-forwarded-for", value)?;
        }
        req.insert_header("x-forwarded-proto", if tls { "https" } else { "http" })?;
        Ok(())
    }

    /// Number of configured members.
    pub fn member_count(&self) -> usize {
        self.spec.addresses.len()
    }

    /// Each member and whether it currently passes health checks.
    pub fn member_health(&self) -> Vec<(String, bool)> {
        let backends = self.pool.backends();
        backends
            .get_backend()
            .iter()
            .map(|b| (b.addr.to_string(), backends.ready(b)))
            .collect()
    }
}
