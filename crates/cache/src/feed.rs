//! The fleet feed: purges and revocations made on one gateway reach every gateway sharing its
//! Redis, within a second, including gateways that were disconnected when they were made.
//!
//! - The feed is a Redis stream, `{prefix}feed`, capped at about [`MAX_LEN`] messages. A
//!   message says which gateway sent it and what to do: `purge` (a [`Selector`], JSON) or
//!   `revoke` (a revocation-list line, `token ID`, `key ID` or `user ID`).
//! - Every gateway follows the stream with a blocking `XREAD` on a connection of its own
//!   ([`FeedService`], a background service): a message is applied as soon as Redis has it,
//!   nobody polls. A purge removes entries from this gateway's memory and disk tiers (the
//!   sender already removed them from Redis); a revocation is refused from then on.
//! - Revocations are also kept in the set `{prefix}revoked`, read whole at every (re)connect,
//!   so a gateway started later refuses them too. They last as long as Redis keeps them;
//!   the revocation file stays the durable list.
//! - Each gateway remembers the last message it applied (in the disk tier's folder,
//!   [`CURSOR_FILE`], when there is one, so a restart resumes there). On reconnecting it
//!   replays what it missed. When it cannot know what it missed (Redis lost its data, which
//!   the key `{prefix}feed:epoch` tells; or the stream was trimmed past its position) it drops
//!   its memory and disk tiers whole rather than serve an entry that was purged meanwhile.

use super::metrics::CacheMetrics;
use super::purge::{Purger, Selector};
use super::redis::RedisTier;
use access::revocation::Revocations;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The file, in the disk tier's folder, holding the last message applied.
pub const CURSOR_FILE: &str = "feed-cursor";
/// About how many messages the stream keeps (`XADD MAXLEN ~`).
pub const MAX_LEN: usize = 10_000;
/// How long one `XREAD` blocks before it is issued again.
const BLOCK: Duration = Duration::from_secs(2);
/// Pause before reconnecting after the feed's connection failed.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// What a message asks of every gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Remove these entries from the node-local tiers.
    Purge(Selector),
    /// Refuse credentials matching this revocation-list line.
    Revoke(String),
    /// Forget what the gateway remembers of this key outside the cache tiers (the asset
    /// store's lookup of a content hash), so the next request asks the source again.
    Forget(String),
}

/// What a gateway remembers outside its cache tiers and forgets when the fleet says so
/// ([`Message::Forget`]); the application hands it in.
pub trait Forgetful: Send + Sync {
    /// Drops what is remembered of `key`.
    fn forget(&self, key: &str);
}

/// A stream entry id, `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct StreamId(u64, u64);

impl StreamId {
    fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Where this gateway is in the feed: the epoch of the Redis data and the last id applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    epoch: String,
    id: StreamId,
}

impl Cursor {
    fn parse(text: &str) -> Option<Cursor> {
        let (epoch, id) = text.trim().split_once(' ')?;
        Some(Cursor {
            epoch: epoch.to_string(),
            id: StreamId::parse(id)?,
        })
    }
}

/// Sends messages to the fleet and knows where this gateway is in the feed.
pub struct Feed {
    redis: Arc<RedisTier>,
    /// This gateway's id in messages (its own are not applied twice).
    node: String,
    cursor_file: Option<PathBuf>,
    cursor: Mutex<Option<Cursor>>,
    metrics: CacheMetrics,
}

impl Feed {
    /// The feed on `redis`; the position is kept in `cursor_file` when given; purges
    /// applied and the connection's state are counted in `metrics`.
    pub fn new(redis: Arc<RedisTier>, cursor_file: Option<PathBuf>, metrics: CacheMetrics) -> Feed {
        let cursor = cursor_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| Cursor::parse(&t));
        Feed {
            redis,
            node: format!("{:016x}", kit::ids::random_u64()),
            cursor_file,
            cursor: Mutex::new(cursor),
            metrics,
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.redis.key_prefix())
    }

    fn cursor(&self) -> Option<Cursor> {
        self.cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Moves the position on, and keeps it on disk when there is a place for it.
    fn advance(&self, cursor: Cursor) {
        if let Some(file) = &self.cursor_file {
            let tmp = file.with_extension("tmp");
            let text = format!("{} {}\n", cursor.epoch, cursor.id);
            let written = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, file));
            if let Err(e) = written {
                tracing::warn!(error = %e, file = %file.display(), "fleet feed position not saved");
            }
        }
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = Some(cursor);
    }

    /// Sends `message` to every gateway sharing the Redis (a revocation is also added to the
    /// revoked set).
    pub async fn publish(&self, message: &Message) -> Result<(), String> {
        let (field, value) = match message {
            Message::Purge(selector) => (
                "purge",
                serde_json::to_string(selector).map_err(|e| e.to_string())?,
            ),
            Message::Revoke(line) => ("revoke", line.clone()),
            Message::Forget(key) => ("forget", key.clone()),
        };
        let mut cmd = redis::pipe();
        cmd.atomic();
        if let Message::Revoke(line) = message {
            cmd.cmd("SADD").arg(self.key("revoked")).arg(line).ignore();
        }
        cmd.cmd("XADD")
            .arg(self.key("feed"))
            .arg("MAXLEN")
            .arg("~")
            .arg(MAX_LEN)
            .arg("*")
            .arg("from")
            .arg(&self.node)
            .arg(field)
            .arg(value)
            .ignore();
        self.redis
            .run::<()>("send to the fleet", &cmd)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Follows the feed for this gateway (a background service).
pub struct FeedService {
    feed: Arc<Feed>,
    purger: Arc<Purger>,
    revocations: Arc<Revocations>,
    forgetful: Option<Arc<dyn Forgetful>>,
}

impl FeedService {
    /// The service applying `feed`'s messages with `purger` and `revocations`, and
    /// `forget` messages with `forgetful` when there is one.
    pub fn new(
        feed: Arc<Feed>,
        purger: Arc<Purger>,
        revocations: Arc<Revocations>,
        forgetful: Option<Arc<dyn Forgetful>>,
    ) -> Self {
        FeedService {
            feed,
            purger,
            revocations,
            forgetful,
        }
    }

    /// Connects, catches up, then applies messages as they come until the connection fails.
    async fn follow(&self) -> redis::RedisResult<()> {
        let feed = &self.feed;
        let timeout = BLOCK + Duration::from_secs(2);
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(timeout);
        let mut conn = feed
            .redis
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let stream = feed.key("feed");
        let epoch_key = feed.key("feed:epoch");
        let (epoch,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(&epoch_key)
            .arg(format!("{:016x}", kit::ids::random_u64()))
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&epoch_key)
            .query_async(&mut conn)
            .await?;
        let revoked: Vec<String> = redis::cmd("SMEMBERS")
            .arg(feed.key("revoked"))
            .query_async(&mut conn)
            .await?;
        self.revocations.set_shared(&revoked);
        let (last, max_deleted) = stream_info(&mut conn, &stream).await?;
        let start = match feed.cursor() {
            None => last,
            Some(c) if c.epoch == epoch && max_deleted <= c.id && c.id <= last => c.id,
            Some(c) => {
                let dropped = self.purger.drop_local().await;
                tracing::warn!(
                    from = %c.id, dropped,
                    "fleet feed: purges may have been missed while disconnected; node-local cache tiers dropped"
                );
                feed.metrics
                    .feed_resyncs
                    .with_label_values(&["dropped"])
                    .inc();
                last
            }
        };
        feed.advance(Cursor {
            epoch: epoch.clone(),
            id: start,
        });
        feed.metrics.feed_connected.set(1);
        let mut position = start;
        loop {
            type Entries = Vec<(String, Vec<(String, Vec<String>)>)>;
            let read: Option<Entries> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&stream)
                .arg(position.to_string())
                .query_async(&mut conn)
                .await?;
            let entries = read.into_iter().flatten().flat_map(|(_, entries)| entries);
            let mut moved = false;
            for (id, fields) in entries {
                if let Some(id) = StreamId::parse(&id) {
                    self.apply(&fields).await;
                    position = id;
                    moved = true;
                }
            }
            if moved {
                feed.advance(Cursor {
                    epoch: epoch.clone(),
                    id: position,
                });
            }
        }
    }

    /// Applies one message's fields (`from`, then `purge`, `revoke` or `forget`); this gateway's own
    /// messages were applied when they were sent.
    async fn apply(&self, fields: &[String]) {
        let pairs: Vec<(&str, &str)> = fields
            .chunks(2)
            .filter_map(|p| Some((p.first()?.as_str(), p.get(1)?.as_str())))
            .collect();
        if pairs
            .iter()
            .any(|(k, v)| *k == "from" && *v == self.feed.node)
        {
            return;
        }
        for (field, value) in pairs {
            match field {
                "purge" => match serde_json::from_str::<Selector>(value) {
                    Ok(selector) => {
                        let removed = self.purger.local(&selector).await;
                        self.feed
                            .metrics
                            .purges
                            .with_label_values(&[selector.kind(), "fleet"])
                            .inc();
                        tracing::info!(?selector, ?removed, "purge from the fleet applied");
                    }
                    Err(e) => tracing::warn!(error = %e, "fleet feed: unreadable purge ignored"),
                },
                "revoke" => {
                    if let Err(e) = self.revocations.revoke_line(value) {
                        tracing::warn!(error = %e, "fleet feed: unreadable revocation ignored");
                    }
                }
                "forget" => {
                    if let Some(f) = &self.forgetful {
                        f.forget(value);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The stream's last generated id and the largest id it ever trimmed or deleted (both
/// zero when the stream does not exist yet).
async fn stream_info(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> redis::RedisResult<(StreamId, StreamId)> {
    let exists: bool = redis::cmd("EXISTS").arg(stream).query_async(conn).await?;
    if !exists {
        return Ok((StreamId::default(), StreamId::default()));
    }
    let info: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(conn)
        .await?;
    let field = |name: &str| -> StreamId {
        info.chunks(2)
            .find_map(|pair| match pair {
                [redis::Value::BulkString(k), v] if k == name.as_bytes() => {
                    redis::from_redis_value::<String>(v).ok()
                }
                [redis::Value::SimpleString(k), v] if k == name => {
                    redis::from_redis_value::<String>(v).ok()
                }
                _ => None,
            })
            .and_then(|t| StreamId::parse(&t))
            .unwrap_or_default()
    };
    Ok((field("last-generated-id"), field("max-deleted-entry-id")))
}

#[async_trait]
impl BackgroundService for FeedService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                result = self.follow() => {
                    self.feed.metrics.feed_connected.set(0);
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "fleet feed: reconnecting");
                    }
                    tokio::time::sleep(RECONNECT_AFTER).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_cursors_parse_and_order() {
        assert_eq!(StreamId::parse("17-3"), Some(StreamId(17, 3)));
        assert!(StreamId::parse("17").is_none());
        assert!(StreamId(17, 3) < StreamId(18, 0));
        assert!(StreamId(17, 3) > StreamId(17, 2));
        let c = Cursor::parse("abc 5-1\n").unwrap();
        assert_eq!(c.epoch, "abc");
        assert_eq!(c.id.to_string(), "5-1");
        assert!(Cursor::parse("garbage").is_none());
    }
}
