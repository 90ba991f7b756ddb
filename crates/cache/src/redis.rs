//! The Redis tier: entries shared by every gateway that points at the same Redis, for
//! responses up to `max_entry` bytes, each kept for its freshness plus its stale windows.
//!
//! An entry is one hash, `{prefix}e:{sha256 hex}`, with field `m` (pingora's serialised
//! metadata, length-prefixed) and `b` (the body), written in one `MULTI` with its expiry,
//! together with its purge index: the entry's hex is added to the set `{prefix}u:{url label}`
//! and to `{prefix}t:{tag}` for each tag, and each set lives as long as its longest-lived
//! entry. A purge by URL or tag reads one set; by prefix, it `SCAN`s the URL sets (a walk of
//! the keyspace, fine for an operator's call, not for every request). A
//! Redis that is down, slow or refusing costs a request at most `timeout`: the failed call is
//! counted, the tier is skipped (no 5xx, no waiting on every request), and a background task
//! pings Redis every [`PROBE_EVERY`] until it answers, reconnecting on the way; the tier is
//! used again from that moment. Purges, which an operator waits for, are not skipped: they
//! try again for a moment over a connection that just dropped.

use super::key::EntryKey;
use super::labels::Labels;
use super::metrics::TierMetrics;
use super::purge::Selector;
use super::tier::{
    decode_meta, encode_meta, kept_until, Backoff, Found, Tier, TierName, TierWriter, WholeBody,
};
use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::cache::CacheMeta;
use pingora::{Error, ErrorType, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

/// How often a tier whose Redis failed asks it whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);

/// How many times an operator's purge is tried over a connection that dropped.
const PURGE_ATTEMPTS: usize = 5;

/// `[cache.redis]` as the tier uses it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user@]host:port/db`, or `rediss://` for TLS.
    pub url: String,
    /// AUTH password (kept out of the URL so it can come from a file or the environment).
    pub password: Option<kit::secret::Secret>,
    /// Largest body stored.
    pub max_entry: usize,
    /// Prefix of every key the gateway writes.
    pub key_prefix: String,
    /// Longest a call may take before the tier is skipped.
    pub timeout: Duration,
    /// Take the fleet-wide fill lock on misses ([`super::fleet`]).
    pub fill_lock: bool,
    /// How long a fill lock is held before it must be renewed (renewed every third of it).
    pub lease: Duration,
}

/// The Redis tier.
pub struct RedisTier(Arc<Shared>);

struct Shared {
    client: redis::Client,
    connection: ArcSwapOption<ConnectionManager>,
    /// Held while the connection is being opened: concurrent first requests wait for it.
    connecting: tokio::sync::Mutex<()>,
    /// Skips the tier for a second after a failed call (sooner used again once a probe
    /// finds Redis answering).
    backoff: Backoff,
    /// A background probe is watching for Redis to answer again.
    probing: AtomicBool,
    max_entry: usize,
    key_prefix: String,
    timeout: Duration,
    metrics: TierMetrics,
}

fn tier_error(what: &str, e: impl std::fmt::Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("redis tier: {what}: {e}"))
}

impl RedisTier {
    /// A tier for `settings`; nothing is connected until the first use.
    pub fn new(
        settings: &RedisSettings,
        metrics: TierMetrics,
    ) -> std::result::Result<RedisTier, String> {
        let mut info: redis::ConnectionInfo =
            settings.url.as_str().parse().map_err(|e| format!("{e}"))?;
        if let Some(p) = &settings.password {
            info.redis.password = Some(p.expose().to_string());
        }
        let client = redis::Client::open(info).map_err(|e| format!("{e}"))?;
        Ok(RedisTier(Arc::new(Shared {
            client,
            connection: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            backoff: Backoff::default(),
            probing: AtomicBool::new(false),
            max_entry: settings.max_entry,
            key_prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
            metrics,
        })))
    }
}

impl RedisTier {
    /// The prefix of every key this tier writes.
    pub fn key_prefix(&self) -> &str {
        &self.0.key_prefix
    }

    /// The client (for connections of their own, like the fill notifications').
    pub fn client(&self) -> &redis::Client {
        &self.0.client
    }

    /// Runs `cmd` on the shared connection with the tier's timeout (a failure skips the tier
    /// for a second, as for its own calls).
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Pipeline,
    ) -> Result<T> {
        if self.0.skipping() {
            return Err(tier_error(what, "skipped after a recent failure"));
        }
        self.0.run(what, cmd).await
    }
}

impl Shared {
    fn key(&self, key: &EntryKey) -> String {
        format!("{}e:{}", self.key_prefix, key.hex())
    }

    fn url_set(&self, url: &str) -> String {
        format!("{}u:{url}", self.key_prefix)
    }

    fn tag_set(&self, tag: &str) -> String {
        format!("{}t:{tag}", self.key_prefix)
    }

    fn skipping(&self) -> bool {
        self.backoff.skipping()
    }

    /// A call failed: skip the tier, and watch in the background for Redis to answer again.
    fn failed(self: &Arc<Self>, what: &str, e: impl std::fmt::Display) -> Box<Error> {
        self.backoff.failed();
        self.watch_for_recovery();
        tier_error(what, e)
    }

    /// Starts the probe that pings Redis every [`PROBE_EVERY`] (reconnecting as needed) and
    /// ends the skipping the moment it answers; one probe at a time.
    fn watch_for_recovery(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                let mut ping = redis::pipe();
                ping.cmd("PING");
                if shared.call::<(String,)>(&ping, true).await.is_ok() {
                    shared.backoff.clear();
                    shared.probing.store(false, Ordering::Release);
                    tracing::info!("redis tier: Redis answers again");
                    return;
                }
            }
        });
    }

    /// The shared connection, opened on first use (one attempt at a time; the others wait
    /// for it).
    /// A new connection is not tried while the tier is skipped, unless `despite_backoff` (the
    /// probe and operators' calls).
    async fn connection(&self, despite_backoff: bool) -> Result<ConnectionManager> {
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        let _connecting = tokio::time::timeout(self.timeout * 2, self.connecting.lock())
            .await
            .map_err(|_| tier_error("connect", "timed out waiting for the connection"))?;
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        if self.skipping() && !despite_backoff {
            return Err(tier_error("connect", "skipped after a recent failure"));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(2)
            .set_max_delay(1000);
        let made = tokio::time::timeout(
            self.timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(c)) => {
                self.connection.store(Some(Arc::new(c.clone())));
                Ok(c)
            }
            Ok(Err(e)) => Err(tier_error("connect", e)),
            Err(_) => Err(tier_error("connect", "timed out")),
        }
    }

    /// Runs `cmd` with the tier's timeout; a failure pauses the tier.
    async fn run<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        what: &str,
        cmd: &redis::Pipeline,
    ) -> Result<T> {
        self.call(cmd, false)
            .await
            .map_err(|e| self.failed(what, e))
    }

    /// Runs `cmd` with the tier's timeout, and nothing else: why it failed, if it did.
    async fn call<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Pipeline,
        despite_backoff: bool,
    ) -> std::result::Result<T, String> {
        let mut conn = self
            .connection(despite_backoff)
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Runs an operator's `cmd` (a purge): not skipped after a recent failure, and tried
    /// again for a moment when the connection had dropped (a restarted Redis), while the
    /// connection manager reconnects.
    async fn run_for_operator<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        what: &str,
        cmd: &redis::Pipeline,
    ) -> Result<T> {
        let mut last = String::new();
        for attempt in 0..PURGE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(PROBE_EVERY).await;
            }
            match self.call(cmd, true).await {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        Err(self.failed(what, last))
    }

    /// Milliseconds an entry is kept ([`kept_until`]), at least a second.
    fn keep_ms(meta: &CacheMeta) -> u64 {
        kept_until(meta)
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .as_millis()
            .max(1000) as u64
    }
}

/// Removes the entries listed in the sets `KEYS` (hex keys; `ARGV[1]` is the entry key
/// prefix) and the sets; the number of entries removed.
const PURGE_SETS: &str = r#"
local n = 0
for _, set in ipairs(KEYS) do
  for _, hex in ipairs(redis.call('SMEMBERS', set)) do
    n = n + redis.call('DEL', ARGV[1] .. hex)
  end
  redis.call('DEL', set)
end
return n
"#;

/// Sets removed by one `PURGE_SETS` call.
const SETS_PER_CALL: usize = 100;

/// `text` with Redis glob characters escaped, for a `MATCH` pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisTier {
    /// Removes what `selector` names from Redis, for every gateway sharing it; the number
    /// of entries removed.
    pub async fn purge(&self, selector: &Selector) -> Result<usize> {
        let s = &self.0;
        match selector {
            Selector::Url(url) => self.purge_sets(vec![s.url_set(url)]).await,
            Selector::Tag(tag) => self.purge_sets(vec![s.tag_set(tag)]).await,
            Selector::Prefix(prefix) => {
                let pattern = format!("{}*", glob_escape(&s.url_set(prefix)));
                let sets = self.scan(&pattern).await?;
                self.purge_sets(sets).await
            }
            Selector::All => {
                let mut removed = 0;
                for (kind, counted) in [("e", true), ("u", false), ("t", false)] {
                    let pattern = format!("{}{kind}:*", glob_escape(&s.key_prefix));
                    for chunk in self.scan(&pattern).await?.chunks(500) {
                        let mut cmd = redis::pipe();
                        cmd.cmd("DEL").arg(chunk);
                        let (n,): (usize,) = s.run_for_operator("purge", &cmd).await?;
                        if counted {
                            removed += n;
                        }
                    }
                }
                Ok(removed)
            }
        }
    }

    async fn purge_sets(&self, sets: Vec<String>) -> Result<usize> {
        let s = &self.0;
        let entry_prefix = format!("{}e:", s.key_prefix);
        let mut removed = 0;
        for chunk in sets.chunks(SETS_PER_CALL) {
            let mut cmd = redis::pipe();
            cmd.cmd("EVAL")
                .arg(PURGE_SETS)
                .arg(chunk.len())
                .arg(chunk)
                .arg(&entry_prefix);
            let (n,): (usize,) = s.run_for_operator("purge", &cmd).await?;
            removed += n;
        }
        Ok(removed)
    }

    /// Every key matching `pattern`.
    async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut cmd = redis::pipe();
            cmd.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            let ((next, keys),): ((u64, Vec<String>),) =
                self.0.run_for_operator("purge", &cmd).await?;
            found.extend(keys);
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }
}

/// Replaces the metadata and expiry of an entry that exists; 1 when it did.
const UPDATE_META: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'm', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

#[async_trait]
impl Tier for RedisTier {
    fn name(&self) -> TierName {
        TierName::Redis
    }

    fn metrics(&self) -> &TierMetrics {
        &self.0.metrics
    }

    async fn lookup(&self, key: &EntryKey) -> Result<Option<Found>> {
        let s = &self.0;
        if s.skipping() {
            return Ok(None);
        }
        let mut cmd = redis::pipe();
        cmd.cmd("HMGET").arg(s.key(key)).arg("m").arg("b");
        let (m, b): (Option<Vec<u8>>, Option<Vec<u8>>) = s
            .run::<(Vec<Option<Vec<u8>>>,)>("look up", &cmd)
            .await
            .map(|(mut v,)| {
                let b = v.pop().flatten();
                let m = v.pop().flatten();
                (m, b)
            })?;
        let found = match (m.as_deref().and_then(decode_meta), b) {
            (Some(meta), Some(body)) => Some(Found {
                meta,
                body: Box::new(WholeBody::new(Bytes::from(body))),
            }),
            (None, Some(_)) => {
                s.metrics.corrupt.inc();
                None
            }
            _ => None,
        };
        s.metrics.looked_up(found.is_some());
        Ok(found)
    }

    async fn writer(
        &self,
        key: EntryKey,
        meta: &CacheMeta,
        size: Option<usize>,
        labels: &Arc<Labels>,
    ) -> Result<Option<Box<dyn TierWriter>>> {
        let s = &self.0;
        if size.is_some_and(|n| n > s.max_entry) || s.skipping() {
            return Ok(None);
        }
        Ok(Some(Box::new(RedisWriter {
            shared: s.clone(),
            key,
            labels: labels.clone(),
            meta: encode_meta(meta)?,
            keep_ms: Shared::keep_ms(meta),
            body: BytesMut::with_capacity(size.unwrap_or(0)),
        })))
    }

    async fn update_meta(&self, key: &EntryKey, meta: &CacheMeta) -> Result<bool> {
        let s = &self.0;
        if s.skipping() {
            return Ok(false);
        }
        let mut cmd = redis::pipe();
        cmd.cmd("EVAL")
            .arg(UPDATE_META)
            .arg(1)
            .arg(s.key(key))
            .arg(encode_meta(meta)?)
            .arg(Shared::keep_ms(meta));
        let (updated,): (i64,) = s.run("update metadata", &cmd).await?;
        Ok(updated == 1)
    }

    async fn remove(&self, key: &EntryKey) -> Result<bool> {
        let s = &self.0;
        let mut cmd = redis::pipe();
        cmd.cmd("DEL").arg(s.key(key));
        let (removed,): (i64,) = s.run("remove", &cmd).await?;
        Ok(removed > 0)
    }
}

/// Collects a new entry's body; written in one transaction at commit.
struct RedisWriter {
    shared: Arc<Shared>,
    key: EntryKey,
    labels: Arc<Labels>,
    meta: Vec<u8>,
    keep_ms: u64,
    body: BytesMut,
}

#[async_trait]
impl TierWriter for RedisWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        if self.body.len() + data.len() > self.shared.max_entry {
            return Err(tier_error("write", "larger than max_entry"));
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<usize> {
        let s = &self.shared;
        let len = self.body.len();
        let key = s.key(&self.key);
        let mut cmd = redis::pipe();
        cmd.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("m")
            .arg(self.meta)
            .arg("b")
            .arg(&self.body[..])
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.keep_ms)
            .ignore();
        let hex = self.key.hex();
        let url = (!self.labels.url.is_empty()).then(|| s.url_set(&self.labels.url));
        let tags = self.labels.tags.iter().map(|t| s.tag_set(t));
        for set in url.into_iter().chain(tags) {
            // The set lives as long as its longest-lived entry: NX gives a new set a
            // lifetime, GT lengthens an existing one.
            cmd.cmd("SADD").arg(&set).arg(&hex).ignore();
            for when in ["NX", "GT"] {
                cmd.cmd("PEXPIRE")
                    .arg(&set)
                    .arg(self.keep_ms)
                    .arg(when)
                    .ignore();
            }
        }
        s.run::<()>("store", &cmd).await?;
        s.metrics.writes.inc();
        Ok(len)
    }
}
