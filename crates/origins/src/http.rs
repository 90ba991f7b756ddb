//! HTTP origin pools: members picked by round robin or consistent hashing, active HTTP or TCP
//! health checks through `pingora-load-balancing`, passive ejection of members that keep
//! failing, per-backend timeouts.
//!
//! A member is *usable* when the active checks pass and it is not ejected. Selection skips
//! unusable members and the members this request already tried; when none is usable, a member
//! not yet tried is asked anyway (health checks can be wrong; a refused connect moves on). A
//! member is ejected after `eject_after` consecutive failures (refused or broken connections,
//! timeouts, 5xx answers) for `eject_for`; after that it is tried again, and one more failure
//! ejects it again until a success resets its count.

use super::keys::origin_path;
use super::metrics::{MemberMetrics, OriginMetrics};
use super::origin::{Origin, RouteView};
use super::spec::{Balance, HttpSpec};
use super::{Ask, OriginError};
use async_trait::async_trait;
use http::{header, HeaderName};
use kit::affinity::AffinityKey;
use kit::client::ClientInfo;
use kit::path::encode;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::health_check::{HealthCheck, HealthObserve, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::{consistent::KetamaHashing, RoundRobin};
use pingora::lb::{Backend as PoolMember, LoadBalancer};
use pingora::protocols::l4::socket::SocketAddr;
use pingora::services::background::background_service;
use pingora::services::ServiceWithDependents;
use pingora::upstreams::peer::HttpPeer;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many ring positions consistent hashing looks at before giving up on a key.
const MAX_SELECT_STEPS: usize = 256;

/// The pool's selection algorithm.
enum Pool {
    RoundRobin(Arc<LoadBalancer<RoundRobin>>),
    Consistent(Arc<LoadBalancer<KetamaHashing>>),
}

impl Pool {
    fn select_with(
        &self,
        key: &[u8],
        accept: impl Fn(&PoolMember, bool) -> bool,
    ) -> Option<PoolMember> {
        match self {
            Pool::RoundRobin(lb) => lb.select_with(key, MAX_SELECT_STEPS, accept),
            Pool::Consistent(lb) => lb.select_with(key, MAX_SELECT_STEPS, accept),
        }
    }

    fn backends(&self) -> &pingora::lb::Backends {
        match self {
            Pool::RoundRobin(lb) => lb.backends(),
            Pool::Consistent(lb) => lb.backends(),
        }
    }
}

/// What happened to one request at one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOutcome {
    /// A response header arrived after this long, with this status.
    Answered {
        /// Upstream status.
        status: u16,
        /// Request sent to response header received.
        elapsed: Duration,
    },
    /// The connection could not be made.
    ConnectFailed,
    /// The exchange broke after the connection was made (`timeout` or `io`).
    Broke {
        /// Whether it was a timeout.
        timeout: bool,
    },
}

/// Passive state of one member.
struct Member {
    addr: SocketAddr,
    label: String,
    consecutive_failures: AtomicU32,
    /// Milliseconds since the pool's epoch until which the member is ejected (0: not ejected).
    ejected_until: AtomicU64,
    metrics: MemberMetrics,
}

/// A response header and value by which an origin marks a degraded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DegradedMarker {
    /// Header name.
    pub name: HeaderName,
    /// Value, compared case-insensitively after trimming.
    pub value: String,
}

impl DegradedMarker {
    /// Parses `name: value`.
    pub fn parse(text: &str) -> Result<DegradedMarker, String> {
        let (name, value) = text.split_once(':').ok_or_else(|| {
            format!("\"{text}\" is not `name: value`, e.g. `x-token-valid: false`")
        })?;
        let name = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("\"{}\" is not a header name", name.trim()))?;
        Ok(DegradedMarker {
            name,
            value: value.trim().to_string(),
        })
    }

    /// Whether a response with these headers carries the mark.
    pub fn marks(&self, headers: &http::HeaderMap) -> bool {
        headers
            .get_all(&self.name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.trim().eq_ignore_ascii_case(&self.value))
    }
}

/// An origin pool, shared by all requests.
pub struct HttpBackend {
    /// Config name.
    pub name: String,
    spec: HttpSpec,
    pool: Pool,
    members: Vec<Member>,
    epoch: Instant,
}

/// Logs health transitions as the active checks see them.
struct LogTransitions {
    backend: String,
}

#[async_trait]
impl HealthObserve for LogTransitions {
    async fn observe(&self, target: &PoolMember, healthy: bool) {
        if healthy {
            tracing::info!(backend = %self.backend, member = %target.addr, "member passes health checks again");
        } else {
            tracing::warn!(backend = %self.backend, member = %target.addr, "member fails health checks");
        }
    }
}

impl HttpBackend {
    /// Builds the pool; the returned service runs its health checks (when enabled).
    pub fn new(
        name: &str,
        spec: &HttpSpec,
        metrics: &OriginMetrics,
    ) -> Result<(HttpBackend, Option<Box<dyn ServiceWithDependents>>), String> {
        let addresses = spec.addresses.iter().map(String::as_str);
        let check = health_check(name, spec);
        let service_name = format!("health check {name}");
        let (pool, service): (Pool, Option<Box<dyn ServiceWithDependents>>) = match &spec.balance {
            Balance::RoundRobin => {
                let lb = LoadBalancer::<RoundRobin>::try_from_iter(addresses)
                    .map_err(|e| format!("backends.{name}.addresses: {e}"))?;
                let (lb, service) = with_checks(lb, check, spec, &service_name);
                (Pool::RoundRobin(lb), service)
            }
            Balance::Consistent(_) => {
                let lb = LoadBalancer::<KetamaHashing>::try_from_iter(addresses)
                    .map_err(|e| format!("backends.{name}.addresses: {e}"))?;
                let (lb, service) = with_checks(lb, check, spec, &service_name);
                (Pool::Consistent(lb), service)
            }
        };
        let members = pool
            .backends()
            .get_backend()
            .iter()
            .map(|b| Member {
                addr: b.addr.clone(),
                label: b.addr.to_string(),
                consecutive_failures: AtomicU32::new(0),
                ejected_until: AtomicU64::new(0),
                metrics: metrics.member(name, &b.addr.to_string()),
            })
            .collect();
        Ok((
            HttpBackend {
                name: name.to_string(),
                spec: spec.clone(),
                pool,
                members,
                epoch: Instant::now(),
            },
            service,
        ))
    }

    /// Response headers removed before responses reach clients.
    pub fn strip_headers(&self) -> &[String] {
        &self.spec.strip_response_headers
    }

    /// The header by which this origin marks degraded answers.
    pub fn degraded_marker(&self) -> Option<&DegradedMarker> {
        self.spec.degraded.as_ref()
    }

    /// What consistent hashing hashes (`None` for round robin).
    pub fn affinity(&self) -> Option<&AffinityKey> {
        match &self.spec.balance {
            Balance::Consistent(key) => Some(key),
            Balance::RoundRobin => None,
        }
    }

    /// Limit on the whole upstream exchange.
    pub fn total_timeout(&self) -> Option<Duration> {
        self.spec.total_timeout
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn index_of(&self, addr: &SocketAddr) -> Option<usize> {
        self.members.iter().position(|m| m.addr == *addr)
    }

    fn ejected(&self, i: usize, now: u64) -> bool {
        self.members[i].ejected_until.load(Ordering::Relaxed) > now
    }

    /// The member to connect to next: a usable one not in `tried` (by `hash` for consistent
    /// pools), else any not in `tried`; `None` when every member was tried.
    pub fn select(&self, hash: Option<u64>, tried: &[usize]) -> Option<usize> {
        let key = hash.unwrap_or_default().to_le_bytes();
        let now = self.now_ms();
        let fresh = |b: &PoolMember| self.index_of(&b.addr).filter(|i| !tried.contains(i));
        self.pool
            .select_with(&key, |b, healthy| {
                healthy && fresh(b).is_some_and(|i| !self.ejected(i, now))
            })
            .or_else(|| self.pool.select_with(&key, |b, _| fresh(b).is_some()))
            .and_then(|b| self.index_of(&b.addr))
    }

    /// Whether some member is usable now (passes health checks, not ejected).
    pub fn usable(&self) -> bool {
        let now = self.now_ms();
        let backends = self.pool.backends();
        backends.get_backend().iter().any(|b| {
            backends.ready(b)
                && self
                    .index_of(&b.addr)
                    .is_some_and(|i| !self.ejected(i, now))
        })
    }

    /// The peer for member `i` with this backend's timeouts and TLS settings.
    pub fn peer(&self, i: usize) -> Option<HttpPeer> {
        let addr = *self.members.get(i)?.addr.as_inet()?;
        let mut peer = HttpPeer::new(addr, self.spec.tls, self.spec.sni.clone());
        peer.options.connection_timeout = Some(self.spec.connect_timeout);
        peer.options.total_connection_timeout = Some(self.spec.connect_timeout * 2);
        peer.options.read_timeout = Some(self.spec.read_timeout);
        peer.options.write_timeout = Some(self.spec.read_timeout);
        peer.options.verify_cert = self.spec.verify_cert;
        peer.options.verify_hostname = self.spec.verify_cert;
        Some(peer)
    }

    /// Records what happened at member `i`: metrics, and the passive ejection count.
    pub fn record(&self, i: usize, outcome: MemberOutcome) {
        let Some(member) = self.members.get(i) else {
            return;
        };
        let reason = match outcome {
            MemberOutcome::Answered { status, elapsed } => {
                member.metrics.answered(elapsed);
                if status < 500 {
                    member.consecutive_failures.store(0, Ordering::Relaxed);
                    return;
                }
                "status_5xx"
            }
            MemberOutcome::ConnectFailed => "connect",
            MemberOutcome::Broke { timeout: true } => "timeout",
            MemberOutcome::Broke { timeout: false } => "io",
        };
        member.metrics.failed(reason);
        let failures = member.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let ejection = self.spec.ejection;
        let now = self.now_ms();
        if ejection.after > 0 && failures >= ejection.after && !self.ejected(i, now) {
            let cool_down = u64::try_from(ejection.cool_down.as_millis()).unwrap_or(u64::MAX);
            member
                .ejected_until
                .store(now.saturating_add(cool_down).max(1), Ordering::Relaxed);
            member.metrics.ejected();
            tracing::warn!(
                backend = %self.name, member = %member.label, failures, last = reason,
                cool_down_ms = cool_down, "member ejected after consecutive failures"
            );
        }
    }

    /// The label of member `i` (its address), for logs.
    pub fn member_label(&self, i: usize) -> &str {
        self.members.get(i).map_or("-", |m| m.label.as_str())
    }

    /// Rewrites the client's request for the origin: the (decoded) `path` re-encoded, `query`
    /// as given, `Host` (the backend's `host_header`, else `host`), `X-Forwarded-Host` (`host`,
    /// the canonical name the client asked for: never a port or a spelling the cache key does
    /// not hold) and X-Forwarded-For/-Proto from what the gateway knows of the client (a
    /// client's own X-Forwarded-For is only kept behind a trusted proxy).
    pub fn prepare_request(
        &self,
        req: &mut RequestHeader,
        path: &str,
        query: Option<&str>,
        host: &str,
        client: &ClientInfo,
    ) -> pingora::Result<()> {
        let mut target = encode(path).to_string();
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        let uri = target.parse::<http::Uri>().map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "origin uri", e)
        })?;
        req.set_uri(uri);
        let sent_host = self.spec.host_header.as_deref().unwrap_or(host);
        if sent_host.is_empty() {
            req.remove_header(&header::HOST);
        } else {
            req.insert_header(header::HOST, sent_host)?;
        }
        if host.is_empty() {
            req.remove_header("x-forwarded-host");
        } else {
            req.insert_header("x-forwarded-host", host)?;
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

    /// Whether a member not in `tried` is left to connect to.
    pub fn may_retry_connect(&self, tried: &[usize]) -> bool {
        (0..self.members.len()).any(|i| !tried.contains(&i))
    }

    /// Each member and whether it is usable now (passes health checks, not ejected).
    pub fn member_health(&self) -> Vec<(String, bool)> {
        let now = self.now_ms();
        let backends = self.pool.backends();
        backends
            .get_backend()
            .iter()
            .map(|b| {
                let ejected = self.index_of(&b.addr).is_some_and(|i| self.ejected(i, now));
                (b.addr.to_string(), backends.ready(b) && !ejected)
            })
            .collect()
    }
}

/// The active health check the spec asks for: HTTP when a path is set, else TCP (or TLS).
fn health_check(name: &str, spec: &HttpSpec) -> Box<dyn HealthCheck + Send + Sync> {
    let observer = Box::new(LogTransitions {
        backend: name.to_string(),
    });
    let health = &spec.health;
    match &health.path {
        Some(path) => {
            let host = spec.host_header.clone().unwrap_or_else(|| spec.sni.clone());
            let mut check = HttpHealthCheck::new(&host, spec.tls);
            if let Ok(mut req) = RequestHeader::build("GET", path.as_bytes(), None) {
                let _ = req.insert_header(header::HOST, host.as_str());
                let _ = req.insert_header(header::USER_AGENT, "assetgate-health-check");
                check.req = req;
            }
            check.peer_template.sni = if spec.tls {
                spec.sni.clone()
            } else {
                String::new()
            };
            check.peer_template.options.connection_timeout = Some(health.timeout);
            check.peer_template.options.read_timeout = Some(health.timeout);
            check.peer_template.options.verify_cert = spec.verify_cert;
            check.peer_template.options.verify_hostname = spec.verify_cert;
            check.consecutive_success = health.rise;
            check.consecutive_failure = health.fall;
            let expected = health.status;
            check.validator = Some(Box::new(move |resp| {
                if resp.status.as_u16() == expected {
                    Ok(())
                } else {
                    pingora::Error::e_explain(
                        pingora::ErrorType::CustomCode("unexpected status", resp.status.as_u16()),
                        "during the health check",
                    )
                }
            }));
            check.health_changed_callback = Some(observer);
            Box::new(check)
        }
        None => {
            let mut check = if spec.tls {
                TcpHealthCheck::new_tls(&spec.sni)
            } else {
                TcpHealthCheck::new()
            };
            check.peer_template.options.connection_timeout = Some(health.timeout);
            check.consecutive_success = health.rise;
            check.consecutive_failure = health.fall;
            check.health_changed_callback = Some(observer);
            check
        }
    }
}

/// Attaches the health check to the pool and wraps it in its background service (when the
/// spec has an interval).
fn with_checks<S>(
    mut lb: LoadBalancer<S>,
    check: Box<dyn HealthCheck + Send + Sync>,
    spec: &HttpSpec,
    service_name: &str,
) -> (Arc<LoadBalancer<S>>, Option<Box<dyn ServiceWithDependents>>)
where
    S: pingora::lb::selection::BackendSelection + Send + Sync + 'static,
    S::Iter: pingora::lb::selection::BackendIter,
{
    let Some(interval) = spec.health.interval else {
        return (Arc::new(lb), None);
    };
    lb.set_health_check(check);
    lb.health_check_frequency = Some(interval);
    lb.parallel_health_check = true;
    let service = background_service(service_name, lb);
    (service.task(), Some(Box::new(service)))
}

/// An origin pool as one backend kind: requests are proxied to a member chosen by the pool's
/// balance, with the client's headers; members are health-checked and ejected.
#[async_trait]
impl<R: RouteView + ?Sized> Origin<R> for HttpBackend {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn ask(
        &self,
        route: &R,
        host: &str,
        path: &str,
        query: Option<&str>,
        _accept: Option<&str>,
    ) -> Result<Ask, OriginError> {
        Ok(Ask::Origin {
            path: origin_path(route, path),
            query: route.origin_query(query),
            host: host.to_string(),
        })
    }

    async fn peer(
        &self,
        _attempt: usize,
        tried: &[usize],
        hash: Option<u64>,
    ) -> Result<(HttpPeer, Option<usize>), OriginError> {
        let member = self.select(hash, tried).ok_or(OriginError::Unreachable)?;
        let peer = HttpBackend::peer(self, member).ok_or(OriginError::Unreachable)?;
        Ok((peer, Some(member)))
    }

    async fn prepare(
        &self,
        _name: &str,
        req: &mut RequestHeader,
        ask: &Ask,
        client: &ClientInfo,
    ) -> Result<(), OriginError> {
        let Ask::Origin { path, query, host } = ask else {
            return Err(OriginError::Internal);
        };
        self.prepare_request(req, path, query.as_deref(), host, client)
            .map_err(|_| OriginError::Internal)
    }

    fn member_health(&self) -> Vec<(String, bool)> {
        HttpBackend::member_health(self)
    }

    fn may_retry_connect(&self, _attempts: usize, tried: &[usize]) -> bool {
        HttpBackend::may_retry_connect(self, tried)
    }

    fn has_untried_member(&self, tried: &[usize]) -> bool {
        HttpBackend::may_retry_connect(self, tried)
    }

    fn usable(&self) -> bool {
        HttpBackend::usable(self)
    }

    fn read_only(&self) -> bool {
        false
    }

    fn affinity(&self) -> Option<&AffinityKey> {
        HttpBackend::affinity(self)
    }

    fn total_timeout(&self) -> Option<Duration> {
        HttpBackend::total_timeout(self)
    }

    fn record(&self, member: usize, outcome: MemberOutcome) {
        HttpBackend::record(self, member, outcome)
    }

    fn member_label(&self, member: usize) -> &str {
        HttpBackend::member_label(self, member)
    }

    fn forwards_client_headers(&self) -> bool {
        true
    }

    fn marks_degraded(&self, resp: &ResponseHeader) -> bool {
        self.degraded_marker()
            .is_some_and(|m| m.marks(&resp.headers))
    }

    fn strip_headers(&self) -> &[String] {
        HttpBackend::strip_headers(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_markers() {
        let marker = DegradedMarker::parse("X-Token-Valid: false").unwrap();
        let mut h = http::HeaderMap::new();
        h.append("x-token-valid", " FALSE ".parse().unwrap());
        assert!(marker.marks(&h));
        h.insert("x-token-valid", "true".parse().unwrap());
        assert!(!marker.marks(&h));
        assert!(DegradedMarker::parse("no-colon").is_err());
        assert!(DegradedMarker::parse("bad name: x").is_err());
    }
}
