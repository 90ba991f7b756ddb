//! Name resolution for upstream endpoints, off the request path.
//!
//! A [`Resolver`] keeps every address a name resolved to. [`RefreshService`] re-resolves each
//! name in the background every [`TTL`] (sooner, every [`RETRY`], while lookups fail); a failed
//! lookup keeps the last good set, so a DNS outage does not take a working bucket down. Requests
//! only read the current set; the very first request before any lookup has finished resolves
//! once inline. IP literals never touch DNS, and names under `localhost` are loopback without a
//! lookup (RFC 6761 §6.3), as curl and systemd-resolved treat them.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long a resolved set is used before it is looked up again.
pub const TTL: Duration = Duration::from_secs(30);
/// How soon a failed lookup is tried again.
pub const RETRY: Duration = Duration::from_secs(5);

/// The addresses of one `host:port`.
pub struct Resolver {
    host: String,
    port: u16,
    /// Set when no lookup is needed (IP literal, `*.localhost`).
    fixed: Option<Arc<[SocketAddr]>>,
    /// The last set a lookup returned (empty until the first success).
    current: RwLock<Arc<[SocketAddr]>>,
}

impl Resolver {
    /// A resolver for `host:port`; nothing is looked up until [`Resolver::refresh`] or the first
    /// [`Resolver::addresses`].
    pub fn new(host: &str, port: u16) -> Resolver {
        Resolver {
            fixed: fixed_addresses(host, port),
            host: host.to_string(),
            port,
            current: RwLock::new(Arc::from(Vec::new())),
        }
    }

    /// Whether this name needs DNS at all.
    pub fn needs_lookup(&self) -> bool {
        self.fixed.is_none()
    }

    /// The current addresses, in the order to try them; resolves inline only when no lookup
    /// has succeeded yet. Empty when the name has never resolved.
    pub async fn addresses(&self) -> Arc<[SocketAddr]> {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        let current = self.current();
        if !current.is_empty() {
            return current;
        }
        let _ = self.refresh().await;
        self.current()
    }

    /// How many addresses are known right now (without resolving).
    pub fn known(&self) -> usize {
        match &self.fixed {
            Some(fixed) => fixed.len(),
            None => self.current().len(),
        }
    }

    fn current(&self) -> Arc<[SocketAddr]> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Looks the name up once; on failure the last good set stays in use.
    pub async fn refresh(&self) -> std::io::Result<usize> {
        let looked_up = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map(|addrs| addrs.collect::<Vec<_>>());
        self.accept(looked_up)
    }

    /// Takes a lookup's outcome: a non-empty answer replaces the set, anything else keeps it.
    fn accept(&self, looked_up: std::io::Result<Vec<SocketAddr>>) -> std::io::Result<usize> {
        let addrs = looked_up?;
        if addrs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name resolved to no address",
            ));
        }
        let n = addrs.len();
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::from(addrs);
        Ok(n)
    }
}

/// Addresses known without DNS: an IP literal, or loopback for `localhost` names, IPv6 first
/// as RFC 6724's default policy orders them (and a refused one falls through to the next).
fn fixed_addresses(host: &str, port: u16) -> Option<Arc<[SocketAddr]>> {
    let bare = host.trim_matches(['[', ']']);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(Arc::from(vec![SocketAddr::new(ip, port)]));
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    name.ends_with(".localhost").then(|| {
        Arc::from(vec![
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
        ])
    })
}

/// Keeps every resolver that needs DNS fresh, until shutdown.
pub struct RefreshService {
    resolvers: Vec<Arc<Resolver>>,
}

impl RefreshService {
    /// A service for these resolvers (those that need no lookup are skipped).
    pub fn new(resolvers: impl IntoIterator<Item = Arc<Resolver>>) -> RefreshService {
        RefreshService {
            resolvers: resolvers.into_iter().filter(|r| r.needs_lookup()).collect(),
        }
    }

    /// Whether there is anything to refresh.
    pub fn is_empty(&self) -> bool {
        self.resolvers.is_empty()
    }
}

#[async_trait]
impl BackgroundService for RefreshService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let mut next = TTL;
            for r in &self.resolvers {
                if let Err(e) = r.refresh().await {
                    let kept = r.current().len();
                    tracing::warn!(host = %r.host, error = %e, kept, "endpoint lookup failed; keeping the last good addresses");
                    next = RETRY;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn literals_and_localhost_names_need_no_lookup() {
        assert!(!Resolver::new("127.0.0.1", 9000).needs_lookup());
        assert!(!Resolver::new("[::1]", 9000).needs_lookup());
        let r = Resolver::new("assets.s3.garage.localhost", 9000);
        assert!(!r.needs_lookup());
        assert_eq!(
            r.fixed.as_deref().unwrap(),
            &[addr("[::1]:9000"), addr("127.0.0.1:9000")]
        );
        assert!(Resolver::new("s3.example.com", 443).needs_lookup());
        assert!(Resolver::new("localhost", 443).needs_lookup());
    }

    #[test]
    fn a_failed_lookup_keeps_the_last_good_set() {
        let r = Resolver::new("s3.example.com", 443);
        let good = vec![addr("192.0.2.1:443"), addr("192.0.2.2:443")];
        assert_eq!(r.accept(Ok(good.clone())).unwrap(), 2);
        assert!(r.accept(Err(std::io::Error::other("SERVFAIL"))).is_err());
        assert_eq!(&*r.current(), &good[..]);
        assert!(r.accept(Ok(Vec::new())).is_err());
        assert_eq!(&*r.current(), &good[..]);
        let moved = vec![addr("192.0.2.9:443")];
        r.accept(Ok(moved.clone())).unwrap();
        assert_eq!(&*r.current(), &moved[..]);
    }

    #[tokio::test]
    async fn localhost_resolves_through_the_system_to_every_address() {
        let r = Resolver::new("localhost", 9);
        let addrs = r.addresses().await;
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }
}
