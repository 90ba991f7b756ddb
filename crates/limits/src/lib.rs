//! Limits on what one client may ask of the gateway: the size of a request's head (a `431`
//! past it) and request rates (a `429` with `Retry-After` past them), per client address over
//! every route and per route (each client apart, or all of them together).
//!
//! Rates are token buckets (in this process, or in Redis for the whole fleet when the limit
//! is `shared`: [`shared`]): a bucket holds up to `burst` requests and refills at `rate` per
//! second. Buckets live in a sharded map bounded in entries; a bucket that has refilled to
//! `burst` knows nothing a new one would not, so those are the ones dropped when a shard is
//! full (if every one is in use the shard starts afresh: the limit fails open rather than
//! refusing everyone).

pub mod config;
pub mod metrics;
pub mod shared;

use http::HeaderMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default `limits.header_bytes`: nginx's default buffers hold 32 KiB of header.
pub const DEFAULT_HEADER_BYTES: usize = 32 << 10;
/// Default `limits.header_count`.
pub const DEFAULT_HEADER_COUNT: usize = 100;

/// Default `limits.header_timeout`: half of nginx's `client_header_timeout`, still ample for
/// a head of `header_bytes` on the slowest link a person browses with.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Default `limits.connections_per_client`: far above a browser's six per host, low enough
/// that one address cannot hold the process's file descriptors.
pub const DEFAULT_CONNECTIONS_PER_CLIENT: usize = 1024;

/// Buckets kept per limit (over all shards) before full ones are dropped.
const MAX_BUCKETS: usize = 1 << 18;
const SHARDS: usize = 64;

/// A request rate: `rate` per second, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: f64,
}

/// Whom one bucket of a route's limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every client address on its own.
    Client,
    /// The route's requests, all clients together.
    Route,
}

/// A route's `rate_limit`: its rate, and whom one bucket counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// The rate each bucket allows.
    pub rate: Rate,
    /// Each client apart, or the whole route.
    pub scope: Scope,
    /// Buckets kept in Redis (`[cache.redis]`) for every gateway of the fleet, instead of
    /// one set per process.
    pub shared: bool,
}

/// What `[limits]` sets for every request.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Largest request head (target and header fields), in bytes.
    pub header_bytes: usize,
    /// Most header fields in a request.
    pub header_count: usize,
    /// Longest time to receive a request's head (zero: no deadline of the gateway's own).
    pub header_timeout: Duration,
    /// Each client address's rate over every route (`None`: unlimited; its scope is always
    /// [`Scope::Client`]).
    pub client: Option<RateLimit>,
    /// Most connections open at once from one peer address (0: unlimited).
    pub connections_per_client: usize,
    /// Most client connections open at once in all (0: unlimited).
    pub connections: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            header_bytes: DEFAULT_HEADER_BYTES,
            header_count: DEFAULT_HEADER_COUNT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            client: None,
            connections_per_client: DEFAULT_CONNECTIONS_PER_CLIENT,
            connections: 0,
        }
    }
}

/// A rate limit at run time (`limits.client`, or a route's `rate_limit`): its buckets in
/// this process, and the name its buckets have in Redis when the fleet shares them.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    local: Limiter,
    name: String,
}

impl RateLimiter {
    /// Empty buckets for `limit`; `name` tells its buckets apart from other limits' in Redis
    /// (`client`, `route:{host}:{route name}`).
    pub fn new(name: String, limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            local: Limiter::new(limit.rate),
            name,
        }
    }

    /// The limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Whose bucket `client`'s request draws on: the client's, or (a whole route) none.
    fn scoped(&self, client: Option<IpAddr>) -> Option<IpAddr> {
        match self.limit.scope {
            Scope::Client => client,
            Scope::Route => None,
        }
    }

    /// Takes one request of `client` at `now` from this process's buckets: `Err(seconds)` to
    /// wait.
    pub fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), u32> {
        self.local.take(self.scoped(client), now)
    }

    /// The Redis key (after the tier's prefix) of `client`'s shared bucket (IPv6 by /64, as
    /// locally).
    pub fn shared_key(&self, client: Option<IpAddr>) -> String {
        match self.scoped(client).map(bucket_address) {
            Some(addr) => format!("rl:{}:{addr}", self.name),
            None => format!("rl:{}:*", self.name),
        }
    }
}

/// Open client connections, in all and per peer address, against their limits.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    per_client: usize,
    total: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection: counted until dropped.
#[derive(Debug)]
pub struct OpenConnection<'a> {
    counts: &'a ConnectionCounts,
    peer: Option<IpAddr>,
}

impl ConnectionCounts {
    /// Counts against `per_client` and `total` (0: unlimited).
    pub fn new(per_client: usize, total: usize) -> ConnectionCounts {
        ConnectionCounts {
            per_client,
            total,
            open: Mutex::default(),
        }
    }

    /// Admits a connection from `peer` (`None`: a Unix socket, counted in the total only);
    /// `None` when a limit is reached.
    pub fn admit(&self, peer: Option<IpAddr>) -> Option<OpenConnection<'_>> {
        let peer = peer.map(bucket_address);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if self.total > 0 && open.0 >= self.total {
            return None;
        }
        if let Some(addr) = peer {
            let n = open.1.entry(addr).or_insert(0);
            if self.per_client > 0 && *n >= self.per_client {
                return None;
            }
            *n += 1;
        }
        open.0 += 1;
        Some(OpenConnection { counts: self, peer })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(addr) = self.peer {
            if let Some(n) = open.1.get_mut(&addr) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(&addr);
                }
            }
        }
    }
}

/// A bucket's state.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Refills to `now`, then takes one request: `Err(wait)` until one is there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.tokens = self.refilled(rate, now);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.per_second,
            ))
        }
    }

    /// The tokens it holds at `now`.
    fn refilled(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(rate.burst)
    }

    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        self.refilled(rate, now) >= rate.burst
    }
}

/// One rate limit and its buckets, keyed by client address (`None`: one bucket).
pub struct Limiter {
    rate: Rate,
    shards: Vec<Mutex<HashMap<Option<IpAddr>, Bucket>>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("rate", &self.rate).finish()
    }
}

impl Limiter {
    /// A limit of `rate` with no bucket yet.
    pub fn new(rate: Rate) -> Limiter {
        Limiter {
            rate,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes one request from `client`'s bucket (`None`: the one shared bucket) at `now`:
    /// `Err(seconds)` to wait before asking again (at least 1).
    pub fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), u32> {
        let key = client.map(bucket_address);
        let shard = &self.shards[shard_of(&key)];
        let mut buckets = shard.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS / SHARDS && !buckets.contains_key(&key) {
            let rate = self.rate;
            buckets.retain(|_, b| !b.is_full(rate, now));
            if buckets.len() >= MAX_BUCKETS / SHARDS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.rate.burst,
            at: now,
        });
        bucket.take(self.rate, now).map_err(retry_after)
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after(wait: Duration) -> u32 {
    wait.as_secs_f64().ceil().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// The address a client's bucket is kept under: IPv4 as it is, IPv6 by its /64 (one host is
/// usually given a whole /64, and could otherwise take a fresh bucket per address).
fn bucket_address(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn shard_of(key: &Option<IpAddr>) -> usize {
    use std::hash::BuildHasher;
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    (STATE.get_or_init(Default::default).hash_one(key) as usize) % SHARDS
}

/// The size of a request's head as limits count it: bytes of the request target and of every
/// header field (`name: value\r\n`), and the number of fields.
pub fn head_size(target: &[u8], headers: &HeaderMap) -> (usize, usize) {
    let fields = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>();
    (target.len() + fields, headers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 2.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let l = Limiter::new(RATE);
        let t0 = Instant::now();
        let ip: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        for _ in 0..3 {
            assert!(l.take(ip, t0).is_ok());
        }
        assert_eq!(l.take(ip, t0), Err(1));
        // Half a second refills one request at 2/s.
        assert!(l.take(ip, t0 + Duration::from_millis(500)).is_ok());
        assert!(l.take(ip, t0 + Duration::from_millis(500)).is_err());
        // Others have buckets of their own.
        assert!(l.take(Some("192.0.2.2".parse().unwrap()), t0).is_ok());
    }

    #[test]
    fn waits_are_rounded_up_to_whole_seconds() {
        let slow = Limiter::new(Rate {
            per_second: 0.1,
            burst: 1.0,
        });
        let t0 = Instant::now();
        assert!(slow.take(None, t0).is_ok());
        assert_eq!(slow.take(None, t0), Err(10));
        assert_eq!(slow.take(None, t0 + Duration::from_millis(2500)), Err(8));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let l = Limiter::new(RATE);
        let t0 = Instant::now();
        for i in 0..3u16 {
            let a = std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i);
            assert!(l.take(Some(IpAddr::V6(a)), t0).is_ok());
        }
        let next = std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9);
        assert!(l.take(Some(IpAddr::V6(next)), t0).is_err());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            bucket_address(mapped),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_map_stays_bounded() {
        let l = Limiter::new(RATE);
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 * 2) {
            let _ = l.take(Some(IpAddr::V4(i.into())), t0);
        }
        let held: usize = l.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= MAX_BUCKETS, "{held}");
    }

    #[test]
    fn connections_are_counted_until_dropped() {
        let counts = ConnectionCounts::new(2, 3);
        let a: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let b: Option<IpAddr> = Some("192.0.2.2".parse().unwrap());
        let a1 = counts.admit(a).unwrap();
        let _a2 = counts.admit(a).unwrap();
        assert!(counts.admit(a).is_none(), "per client");
        let _b1 = counts.admit(b).unwrap();
        assert!(counts.admit(b).is_none(), "in total");
        drop(a1);
        let b2 = counts.admit(b);
        assert!(b2.is_some());
        assert_eq!(counts.open(), 3);
        let unlimited = ConnectionCounts::new(0, 0);
        let held: Vec<_> = (0..100).map(|_| unlimited.admit(a).unwrap()).collect();
        assert_eq!(unlimited.open(), 100);
        drop(held);
        assert_eq!(unlimited.open(), 0);
    }

    #[test]
    fn head_sizes() {
        let mut h = HeaderMap::new();
        h.insert("host", "a.test".parse().unwrap());
        h.append("x-a", "1".parse().unwrap());
        assert_eq!(head_size(b"/p?q", &h), (4 + (4 + 6 + 4) + (3 + 1 + 4), 2));
    }
}
