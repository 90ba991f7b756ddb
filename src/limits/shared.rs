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
use crate::cache::redis::RedisTier;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Refills `KEYS[1]` at `ARGV[1]` tokens per second up to `ARGV[2]`, takes one token if
/// there is one; returns 0, or the milliseconds until a token will be there.
const TAKE: &str = r#"
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

/// Takes one request of `client` from `limiter`'s bucket in Redis (falling back to this
/// gateway's own bucket when Redis fails, counted in `fallbacks`): `Err(seconds)` to wait,
/// as [`RateLimiter::take`].
pub async fn take(
    redis: &RedisTier,
    limiter: &RateLimiter,
    client: Option<IpAddr>,
    fallbacks: &prometheus::IntCounter,
) -> Result<(), u32> {
    let key = format!("{}{}", redis.key_prefix(), limiter.shared_key(client));
    let Rate { per_second, burst } = limiter.limit().rate;
    let mut cmd = redis::pipe();
    cmd.cmd("EVAL")
        .arg(TAKE)
        .arg(1)
        .arg(&key)
        .arg(per_second)
        .arg(burst);
    match redis.run::<(u64,)>("rate limit", &cmd).await {
        Ok((0,)) => Ok(()),
        Ok((wait_ms,)) => Err(super::retry_after(Duration::from_millis(wait_ms))),
        Err(e) => {
            tracing::debug!(error = %e, "shared rate limit counted locally");
            fallbacks.inc();
            limiter.take(client, Instant::now())
        }
    }
}
