//! The fleet's Redis (`[cache.redis]`) as the store of the shared rate limits' token buckets:
//! the limits decide what a bucket is ([`limits::shared`]), the cache's Redis connection
//! brings its key prefix, its timeout and its skipping after a failure.

use async_trait::async_trait;
use cache::redis::RedisTier;
use limits::shared::{SharedBuckets, TAKE_SCRIPT};
use limits::Rate;
use std::sync::Arc;

/// Token buckets kept in the Redis the cache tier uses.
pub struct RedisBuckets(pub Arc<RedisTier>);

#[async_trait]
impl SharedBuckets for RedisBuckets {
    async fn take(&self, key: &str, rate: Rate) -> Result<u64, String> {
        let key = format!("{}{key}", self.0.key_prefix());
        let mut cmd = redis::pipe();
        cmd.cmd("EVAL")
            .arg(TAKE_SCRIPT)
            .arg(1)
            .arg(&key)
            .arg(rate.per_second)
            .arg(rate.burst);
        match self.0.run::<(u64,)>("rate limit", &cmd).await {
            Ok((wait_ms,)) => Ok(wait_ms),
            Err(e) => Err(e.to_string()),
        }
    }
}
