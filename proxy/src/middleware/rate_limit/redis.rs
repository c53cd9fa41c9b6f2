//! `rateLimit.redis`: the token buckets kept in Redis, so that every proxy
//! using that Redis shares one limit per source. Traefik 3.7's semantics
//! (`pkg/middlewares/ratelimiter/redis_limiter.go`), our own script:
//! - a bucket is a hash at `rate:<middleware>@file:<source>` with the
//!   instant it was last updated (`last`, µs since the Unix epoch) and the
//!   tokens it held then (`tokens`, fractional), the key and fields
//!   Traefik uses, so proxies and Traefik instances of one fleet share
//!   their limits while one replaces the other;
//! - one script call per request refills the bucket for the time passed
//!   (up to `burst`), takes a token, and gives back how long the request
//!   must wait for it; a wait above `maxDelay` gives the token back (the
//!   request is refused 429 by the caller), and the key expires after
//!   Traefik's ttl of idleness;
//! - Redis unreachable, or answering an error: `500 Could not
//!   insert/update bucket`, as Traefik answers (no request passes
//!   unlimited, none waits longer than the client's timeouts).
//!
//! The clock is the proxies' wall clock (as Traefik's): proxies sharing a
//! limit need synchronised clocks.
//!
//! Per request: one `EVALSHA` over the worker's multiplexed connection
//! (the script is loaded by the first call and after a Redis restart).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::RateLimit as Config;
use crate::redis_client::{Client, Settings};

/// Refills, takes a token, answers the wait in µs (a float as text).
/// KEYS[1]: the bucket. ARGV: tokens per µs, burst, ttl (s), now (µs),
/// the longest wait a request may be held (µs).
const TAKE: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local hold = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'last', 'tokens')
local last = tonumber(state[1])
local held = tonumber(state[2])
if last == nil or held == nil then
  last = now
  held = burst
end
if now < last then
  last = now
end
local left = math.min(burst, held + (now - last) * rate) - 1
local wait = 0
if left < 0 then
  wait = -left / rate
  if wait > hold then
    left = left + 1
  end
end
redis.call('HSET', KEYS[1], 'last', now, 'tokens', left)
redis.call('EXPIRE', KEYS[1], ttl)
return tostring(wait)
";

/// A `rateLimit`'s buckets in Redis.
#[derive(Debug)]
pub(super) struct Shared {
    client: Client,
    script: redis::Script,
    /// `rate:<name>@file:`.
    prefix: String,
    /// Tokens per microsecond.
    rate: f64,
    burst: u64,
    ttl_secs: u64,
    max_delay_us: u64,
}

/// What Redis said of a request.
#[derive(Debug, PartialEq)]
pub(super) enum Taken {
    /// Go on after this wait (possibly zero).
    Wait(Duration),
    /// Refused: a token comes back this much later.
    Refuse(Duration),
}

impl Shared {
    /// The Redis buckets of middleware `name` (`c.redis` is set).
    pub(super) fn new(name: &str, c: &Config, settings: &Settings) -> Result<Shared, String> {
        Ok(Shared {
            client: Client::new(settings)?,
            script: redis::Script::new(TAKE),
            prefix: format!("rate:{}:", crate::config::qualified(name)),
            rate: c.average as f64 / c.period.as_secs_f64() / 1e6,
            burst: c.burst,
            ttl_secs: c.ttl.as_secs().max(1),
            max_delay_us: u64::try_from(c.max_delay.as_micros()).unwrap_or(u64::MAX),
        })
    }

    /// Takes a token for `source` (its text form).
    pub(super) async fn take(&self, source: &str) -> Result<Taken, redis::RedisError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut key = String::with_capacity(self.prefix.len() + source.len());
        key.push_str(&self.prefix);
        key.push_str(source);
        let mut conn = self.client.connection().await?;
        let wait: String = self
            .script
            .key(key)
            .arg(self.rate)
            .arg(self.burst)
            .arg(self.ttl_secs)
            .arg(now)
            .arg(self.max_delay_us)
            .invoke_async(&mut conn)
            .await?;
        let wait_us: f64 = wait.parse().map_err(|_| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "rate limit script",
                format!("not a number: {wait:?}"),
            ))
        })?;
        let wait = Duration::from_secs_f64((wait_us / 1e6).max(0.0));
        Ok(if wait_us > self.max_delay_us as f64 {
            Taken::Refuse(wait)
        } else {
            Taken::Wait(wait)
        })
    }
}
