//! The fill lock across gateways sharing a Redis: when a key misses in every tier, one
//! gateway fetches it while the others wait, woken by a Redis notification, then read it from
//! the shared tier.
//!
//! - The lock is `{prefix}lock:{hex}`, set with `NX` and an expiry (the lease) to a token only
//!   its owner knows; the owner renews it while its fill runs. Renewal and release are
//!   compare-and-set scripts, so a gateway never extends or frees a lock it lost.
//! - Release publishes `done` or `failed` on `{prefix}fill:{hex}`; every gateway subscribes to
//!   `{prefix}fill:*` once ([`Notifications`], a background service) and wakes its waiters for
//!   that key. Nobody polls: a waiter sleeps until a notification or until the lock's own
//!   expiry (an owner that died never publishes; then one waiter takes the lock over).
//! - A waiter that waited longer than the route's `lock_timeout` goes to the backend itself.
//! - Redis down or slow: no lock is taken and the gateway collapses its own requests only
//!   (pingora-cache's lock), serving on.

use super::key::EntryKey;
use super::redis::RedisTier;
use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Renews the lock when the caller still owns it.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Frees the lock and announces the outcome when the caller still owns it.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[2], ARGV[2])
  return 1
end
return 0
"#;

/// One key's waiters: a generation bumped by every notification, and the wake-up.
#[derive(Default)]
struct Waiters {
    generation: AtomicU64,
    notify: Notify,
}

/// The fleet's fill lock, over the Redis tier's connection.
pub struct FleetLock {
    redis: Arc<RedisTier>,
    lease: Duration,
    waiters: Mutex<HashMap<EntryKey, Arc<Waiters>>>,
}

/// What a gateway does about a key nobody holds.
pub enum Turn {
    /// This gateway fills it; the lease is freed when the fill ends.
    Lead(Lease),
    /// Another gateway is filling it: wait with [`FleetLock::wait`].
    Follow(Ticket),
    /// No fleet lock (Redis unavailable): fill as if alone.
    Alone,
}

/// A waiter's place: the notification generation seen before the lock was found held.
pub struct Ticket {
    waiters: Arc<Waiters>,
    generation: u64,
    /// Milliseconds the lock has left, as Redis said.
    expires_in: Duration,
}

impl FleetLock {
    /// A lock on `redis`, leased for `lease` at a time.
    pub fn new(redis: Arc<RedisTier>, lease: Duration) -> Arc<FleetLock> {
        Arc::new(FleetLock {
            redis,
            lease,
            waiters: Mutex::new(HashMap::new()),
        })
    }

    fn waiters(&self, key: &EntryKey) -> Arc<Waiters> {
        let mut map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(*key).or_default().clone()
    }

    /// Wakes the waiters of the key whose channel is `hex`.
    fn notified(&self, key: &EntryKey) {
        let waiters = {
            let mut map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            // Nobody waits once woken: the entry goes, and is made again by the next waiter.
            map.remove(key)
        };
        if let Some(w) = waiters {
            w.generation.fetch_add(1, Ordering::AcqRel);
            w.notify.notify_waiters();
        }
    }

    fn lock_key(&self, key: &EntryKey) -> String {
        format!("{}lock:{}", self.redis.key_prefix(), key.hex())
    }

    fn channel(&self, key: &EntryKey) -> String {
        format!("{}fill:{}", self.redis.key_prefix(), key.hex())
    }

    /// Takes the lock for `key`, or learns who has it.
    pub async fn take_turn(self: &Arc<Self>, key: &EntryKey) -> Turn {
        let waiters = self.waiters(key);
        let generation = waiters.generation.load(Ordering::Acquire);
        let token = format!("{:016x}{:08x}", kit::ids::random_u64(), std::process::id());
        let lock = self.lock_key(key);
        let mut cmd = redis::pipe();
        cmd.cmd("SET")
            .arg(&lock)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(self.lease.as_millis() as u64)
            .cmd("PTTL")
            .arg(&lock);
        let (taken, ttl): (Option<String>, i64) =
            match self.redis.run("take the fill lock", &cmd).await {
                Ok(v) => v,
                Err(_) => return Turn::Alone,
            };
        if taken.is_some() {
            return Turn::Lead(Lease::start(self.clone(), *key, token));
        }
        Turn::Follow(Ticket {
            waiters,
            generation,
            expires_in: Duration::from_millis(ttl.max(0) as u64),
        })
    }

    /// Sleeps until the key's fill is announced, the lock expires, or `deadline`; true when
    /// the deadline passed.
    pub async fn wait(&self, ticket: Ticket, deadline: Instant) -> bool {
        let notified = ticket.waiters.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ticket.waiters.generation.load(Ordering::Acquire) != ticket.generation {
            return Instant::now() >= deadline;
        }
        // A little past the lock's expiry, so a dead owner's lock is gone when we look again.
        let until = (Instant::now() + ticket.expires_in + Duration::from_millis(20)).min(deadline);
        let _ = tokio::time::timeout_at(until.into(), notified).await;
        Instant::now() >= deadline
    }
}

/// A held fill lock: renewed while it lives, released (announcing `failed`) if dropped
/// without [`Lease::release`].
pub struct Lease {
    fleet: Arc<FleetLock>,
    key: EntryKey,
    token: String,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    fn start(fleet: Arc<FleetLock>, key: EntryKey, token: String) -> Lease {
        let renewal = {
            let (fleet, token) = (fleet.clone(), token.clone());
            tokio::spawn(async move {
                let every = fleet.lease / 3;
                loop {
                    tokio::time::sleep(every).await;
                    let mut cmd = redis::pipe();
                    cmd.cmd("EVAL")
                        .arg(RENEW)
                        .arg(1)
                        .arg(fleet.lock_key(&key))
                        .arg(&token)
                        .arg(fleet.lease.as_millis() as u64);
                    match fleet.redis.run::<(i64,)>("renew the fill lock", &cmd).await {
                        Ok((1,)) => {}
                        // Lost (expired and taken by another) or Redis gone: stop renewing.
                        _ => return,
                    }
                }
            })
        };
        Lease {
            fleet,
            key,
            token,
            renewal: Some(renewal),
        }
    }

    /// Frees the lock, announcing whether the entry is now in the shared tier.
    pub async fn release(mut self, stored: bool) {
        self.stop_renewing();
        release(&self.fleet, &self.key, &self.token, stored).await;
        self.token.clear();
    }

    fn stop_renewing(&mut self) {
        if let Some(r) = self.renewal.take() {
            r.abort();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop_renewing();
        if self.token.is_empty() {
            return;
        }
        let (fleet, key, token) = (
            self.fleet.clone(),
            self.key,
            std::mem::take(&mut self.token),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { release(&fleet, &key, &token, false).await });
        }
    }
}

async fn release(fleet: &FleetLock, key: &EntryKey, token: &str, stored: bool) {
    let mut cmd = redis::pipe();
    cmd.cmd("EVAL")
        .arg(RELEASE)
        .arg(2)
        .arg(fleet.lock_key(key))
        .arg(fleet.channel(key))
        .arg(token)
        .arg(if stored { "done" } else { "failed" });
    let _ = fleet
        .redis
        .run::<(i64,)>("release the fill lock", &cmd)
        .await;
}

/// The subscription that wakes this gateway's waiters: `PSUBSCRIBE {prefix}fill:*`, held
/// for the process's life and opened again whenever Redis drops it.
pub struct Notifications {
    fleet: Arc<FleetLock>,
}

impl Notifications {
    /// The service for `fleet`.
    pub fn new(fleet: Arc<FleetLock>) -> Notifications {
        Notifications { fleet }
    }

    async fn listen(&self) -> redis::RedisResult<()> {
        let pattern = format!("{}fill:*", self.fleet.redis.key_prefix());
        let prefix_len = pattern.len() - 1;
        let mut pubsub = self.fleet.redis.client().get_async_pubsub().await?;
        pubsub.psubscribe(&pattern).await?;
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let hex = msg.get_channel_name().get(prefix_len..).unwrap_or_default();
            if let Some(key) = EntryKey::from_hex(hex) {
                self.fleet.notified(&key);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for Notifications {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                result = self.listen() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "cache fill notifications: reconnecting");
                    }
                    // Waiters are woken by lock expiry meanwhile.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
