//! The limits checks that span domains: a `shared` rate limit needs the Redis cache tier its
//! buckets live in. The rest of `[limits]` and a route's `rate_limit` is checked by the
//! limits crate (`limits::config`).

use super::*;
use ::cache::tier::TierName;
use ::limits::RateLimit;

impl Validator<'_> {
    /// A `shared` limit needs the Redis tier its buckets live in (checked once `[cache]` is
    /// known).
    pub(super) fn shared_limit_has_redis(&mut self, at: &str, limit: Option<&RateLimit>) {
        if limit.is_some_and(|l| l.shared) && !self.cache_tiers.contains(&TierName::Redis) {
            self.problems.add(
                format!("{at}.shared"),
                "needs [cache.redis]: the fleet's buckets live there",
            );
        }
    }
}
