//! Non-blocking name resolution for upstream endpoints, cached for a short time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a resolved address is reused.
const TTL: Duration = Duration::from_secs(30);

/// Resolves one `host:port`, caching the first address for [`TTL`].
pub struct CachedResolver {
    host: String,
    port: u16,
    /// Set when `host` is an IP literal: no DNS at all.
    literal: Option<SocketAddr>,
    cached: Mutex<Option<(Instant, SocketAddr)>>,
}

impl CachedResolver {
    /// A resolver for `host:port`; IP literals never touch DNS.
    pub fn new(host: String, port: u16) -> CachedResolver {
        let literal = host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
        CachedResolver {
            host,
            port,
            literal,
            cached: Mutex::new(None),
        }
    }

    /// The current address, or `None` when the name does not resolve.
    pub async fn resolve(&self) -> Option<SocketAddr> {
        if self.literal.is_some() {
            return self.literal;
        }
        let mut cached = self.cached.lock().await;
        if let Some((at, addr)) = *cached {
            if at.elapsed() < TTL {
                return Some(addr);
            }
        }
        let addr = lookup_once(&self.host, self.port).await?;
        *cached = Some((Instant::now(), addr));
        Some(addr)
    }
}

/// Resolves `host:port` once through the system resolver without blocking the runtime.
async fn lookup_once(host: &str, port: u16) -> Option<SocketAddr> {
    tokio::net::lookup_host((host, port)).await.ok()?.next()
}
