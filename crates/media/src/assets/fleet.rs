//! What a change in the asset store must make every gateway do, as the store's side sees it:
//! forget what they remember of a hash's access, and drop every cached entry of an original.
//! The application implements it over its purger and fleet feed; the admin API and the job
//! runner (retention, deletions) share that one implementation.

use async_trait::async_trait;

/// Tells the fleet about changed assets.
#[async_trait]
pub trait Fleet: Send + Sync {
    /// Every gateway forgets its remembered lookup of `hash` (here at once, elsewhere through
    /// the feed). `Some` says who could not be told.
    async fn forget(&self, hash: &str) -> Option<String>;

    /// Every cached entry tagged `tag` is purged from every tier of every gateway. The answer
    /// is the purge's report, as `POST /v1/purge` gives it (with an `error` when not every
    /// tier or gateway could be reached).
    async fn purge_tag(&self, tag: &str) -> serde_json::Value;
}
