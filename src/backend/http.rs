//! HTTP origin pools: round-robin over members, TCP health checks, per-backend timeouts.

use crate::client::ClientInfo;
use crate::config::HttpSpec;
use crate::routing::path::encode;
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

    /// The header by which this origin marks degraded answers.
    pub fn degraded_marker(&self) -> Option<&crate::cache::policy::DegradedMarker> {
        self.spec.degraded.as_ref()
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

    /// Rewrites the client's request for the origin: the (decoded) `path` re-encoded, `query`
    /// as given, Host, and X-Forwarded-For/-Host/-Proto from what the gateway knows of the
    /// client (a client's own X-Forwarded-For is only kept behind a trusted proxy).
    pub fn prepare_request(
        &self,
        req: &mut RequestHeader,
        path: &str,
        query: Option<&str>,
        client: &ClientInfo,
    ) -> pingora::Result<()> {
        let original_host = req.headers.get(header::HOST).cloned().or_else(|| {
            req.uri
                .authority()
                .and_then(|a| header::HeaderValue::from_str(a.as_str()).ok())
        });
        let mut target = encode(path).to_string();
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        let uri = target.parse::<http::Uri>().map_err(|e| {
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
        match client.forwarded_for() {
            Some(value) => {
                req.insert_header("x-forwarded-for", value)?;
            }
            None => {
                req.remove_header("x-forwarded-for");
            }
        }
        let proto = if client.tls { "https" } else { "http" };
        req.insert_header("x-forwarded-proto", proto)?;
        Ok(())
    }

    /// Whether another member may be tried after `attempts` failed connections (each member
    /// at most once per request).
    pub fn may_retry_connect(&self, attempts: usize) -> bool {
        attempts < self.spec.addresses.len()
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
