//! Rate limits shared by the fleet (`shared = true`): every gateway that points at the same
//! Redis (`[cache.redis]`) draws on one token bucket per client (or per route), so a client
//! spread over ten edge VMs gets the rate once, not ten times.
//!
//! A bucket is a hash `{prefix}rl:{limit}:{client}` with its tokens and the time they were
//! counted, taken and refilled by one script on Redis's own clock (gateways' clocks never
//! meet), and expiring once it would be full again. A request costs one round trip. When
//! Redis is down, slow or skipped after a failure, the request is counted against this
//! gateway's own bucket of the same rate instead (counted in
//! `assetgate_rate_limit_fallbacks_total`): the limit loosens to once per gateway, it never
//! refuses everyone and never waits on Redis for more than the tier's `timeout`.

use super::{Rate, RateLimiter};
use async_trait::async_trait;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Refills `KEYS[1]` at `ARGV[1]` tokens per second up to `ARGV[2]`, takes one token if
/// there is one; returns 0, or the milliseconds until a token will be there. A
/// [`SharedBuckets`] on Redis runs this script, so every bucket is counted on Redis's clock.
pub const TAKE_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens, at = tonumber(held[1]), tonumber(held[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return wait
"#;

/// Where the fleet's token buckets are kept: the gateway gives its Redis connection
/// (`[cache.redis]`), which runs [`TAKE_SCRIPT`].
#[async_trait]
pub trait SharedBuckets: Send + Sync {
    /// Takes one token from the bucket named `key` (without the fleet's key prefix), refilled
    /// at `rate`: `Ok(0)` when taken, `Ok(ms)` when the next token comes in `ms`
    /// milliseconds, `Err` with a description when the store failed or was skipped.
    async fn take(&self, key: &str, rate: Rate) -> Result<u64, String>;
}

/// Takes one request of `client` from `limiter`'s bucket in the fleet's store (falling back
/// to this gateway's own bucket when the store fails, counted in `fallbacks`): `Err(seconds)`
/// to wait, as [`RateLimiter::take`].
pub async fn take(
    buckets: &dyn SharedBuckets,
    limiter: &RateLimiter,
    client: Option<IpAddr>,
    fallbacks: &prometheus::IntCounter,
) -> Result<(), u32> {
    match buckets
        .take(&limiter.shared_key(client), limiter.limit().rate)
        .await
    {
        Ok(0) => Ok(()),
        Ok(wait_ms) => Err(super::retry_after(Duration::from_millis(wait_ms))),
        Err(e) => {
            tracing::debug!(error = %e, "shared rate limit counted locally");
            fallbacks.inc();
            limiter.take(client, Instant::now())
        }
    }
}
