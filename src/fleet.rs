//! Purging and forgetting on every gateway: this gateway's tiers, the shared tiers (Redis,
//! object store), then the fleet feed to the others. The admin API's `POST /v1/purge`, its
//! asset calls and the job runner (retention) all go through [`FleetControl`], so a purge
//! means the same wherever it comes from.

use cache::feed::{Feed, Message};
use cache::purge::{Purger, Selector};
use media::assets::lookup::AccessCache;
use std::sync::Arc;

/// This gateway's purger and lookups, and the feed reaching the rest of the fleet.
pub struct FleetControl {
    /// This gateway's tiers and the shared ones.
    pub purger: Arc<Purger>,
    /// The fleet feed, when the gateway shares a Redis.
    pub feed: Option<Arc<Feed>>,
    /// The asset store's remembered lookups, when `[assets]` is configured.
    pub lookups: Option<Arc<AccessCache>>,
    /// The cache metrics (`assetgate_cache_purges_total`).
    pub metrics: cache::metrics::CacheMetrics,
}

/// What a purge removed, and what it could not reach.
#[derive(Debug)]
pub struct Purged {
    /// `{"removed": {"memory", "disk", "redis", "object"}, "fleet"}`, plus `"error"` when
    /// some tier or the fleet could not be reached.
    pub report: serde_json::Value,
    /// Every tier and the fleet were reached.
    pub complete: bool,
}

impl FleetControl {
    /// Purges `selector` here, in the shared tiers and, through the feed, on every other
    /// gateway; `origin` labels the purge in the metrics (`admin`, `jobs`).
    pub async fn purge(&self, selector: &Selector, origin: &str) -> Purged {
        let local = self.purger.local(selector).await;
        self.metrics
            .purges
            .with_label_values(&[selector.kind(), origin])
            .inc();
        let shared = self.purger.shared(selector).await;
        let fleet = match &self.feed {
            Some(feed) => feed
                .publish(&Message::Purge(selector.clone()))
                .await
                .map(|_| "sent"),
            None => Ok("none"),
        };
        let mut report = serde_json::json!({
            "removed": {
                "memory": local.memory,
                "disk": local.disk,
                "redis": shared.redis.as_ref().copied().unwrap_or(0),
                "object": shared.object.as_ref().copied().unwrap_or(0),
            },
            "fleet": fleet.as_ref().copied().unwrap_or("not sent"),
        });
        let problems: Vec<String> = [
            shared.redis.err().map(|e| format!("redis tier: {e}")),
            shared.object.err().map(|e| format!("object tier: {e}")),
            fleet.err().map(|e| format!("fleet: {e}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let complete = problems.is_empty();
        if !complete {
            report["error"] = format!(
                "purged on this gateway, but not everywhere: {}; repeat the purge",
                problems.join("; ")
            )
            .into();
        }
        Purged { report, complete }
    }
}

#[async_trait::async_trait]
impl media::assets::fleet::Fleet for FleetControl {
    async fn forget(&self, hash: &str) -> Option<String> {
        if let Some(lookups) = &self.lookups {
            lookups.forget(hash);
        }
        let feed = self.feed.as_ref()?;
        let e = feed
            .publish(&Message::Forget(hash.to_string()))
            .await
            .err()?;
        tracing::warn!(error = %e, %hash, "the fleet was not told to forget an asset lookup");
        Some(format!("not told: {e}"))
    }

    async fn purge_tag(&self, tag: &str) -> serde_json::Value {
        self.purge(&Selector::Tag(tag.to_string()), "jobs")
            .await
            .report
    }
}
