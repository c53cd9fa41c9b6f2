//! `rateLimit` at request time (in memory, or in Redis: `redis`), as Traefik 3.7 does it: a
//! token bucket per source (`average` tokens per `period`, `burst` at
//! most); a request takes a token; one that would have to wait up to
//! `maxDelay` for it is held that long and goes on; one that would wait
//! longer is answered `429 Too Many Requests` with `Retry-After` (whole
//! seconds, rounded up) and `X-Retry-In` (Go's duration text), its token
//! not taken. A bucket idle longer than Traefik's ttl starts full again.
//!
//! The bucket is a GCRA cell, equivalent to Go's `rate.Limiter`
//! reservation: one atomic "empty at" instant per source, moved on by a
//! compare-and-swap, plus the instant it was last used (for the ttl).
//! No lock of ours and no global one (the table is sharded); no
//! allocation but a source's first entry and, for a held request, its
//! timer. The buckets live with the compiled middleware: a reload starts
//! them full, as Traefik's rebuilt handlers do.
//!
//! With `redis` the buckets are in Redis instead, shared by every proxy
//! using it (`redis`).

mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};

use self::redis::{Shared, Taken};

use super::in_flight::MAX_SOURCES;
use super::path::{Step, plain};
use super::source::{self, Key, Sources};
use crate::config::RateLimit as Config;
use crate::forward::ProxyBody;
use crate::listener::ConnCtx;
use crate::upstream::RequestBody;

/// Instants are nanoseconds since the limiter's epoch plus this offset,
/// so a bucket's "empty at" (up to `burst` tokens earlier) never goes
/// below zero.
const OFFSET: u64 = 1 << 62;

const X_RETRY_IN: HeaderName = HeaderName::from_static("x-retry-in");

/// A compiled `rateLimit`.
#[derive(Debug)]
pub struct RateLimit {
    c: Config,
    epoch: Instant,
    /// One token's time, in nanoseconds (0: no limit).
    interval: u64,
    /// `burst` tokens' time.
    depth: u64,
    buckets: Sources<Bucket>,
    /// `redis`: the buckets in Redis (or why its client could not be
    /// made: every request is answered 500, as Traefik answers a Redis
    /// error).
    redis: Option<Result<Shared, String>>,
}

#[derive(Debug)]
struct Bucket {
    /// When the bucket is (or was) empty: it holds
    /// `min(burst, (now - empty_at) / interval)` tokens.
    empty_at: AtomicU64,
    /// When a request last took a token.
    seen: AtomicU64,
}

/// What a request gets from its bucket.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Go on after this wait (zero when a token was there).
    Wait(Duration),
    /// Refused: a token comes back this much later.
    Refuse(Duration),
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimit {
    pub(super) fn new(c: &Config, name: &str) -> Self {
        let interval = c.interval.map_or(0, nanos);
        Self {
            redis: c.redis.as_ref().map(|s| Shared::new(name, c, s)),
            c: c.clone(),
            epoch: Instant::now(),
            interval,
            depth: interval.saturating_mul(c.burst),
            buckets: Sources::new(MAX_SOURCES),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed()).saturating_add(OFFSET)
    }

    pub(super) async fn apply(&self, req: Request<RequestBody>, conn: &ConnCtx) -> Step {
        if self.interval == 0 {
            return Ok(req);
        }
        if let Some(shared) = &self.redis {
            // Boxed: the Redis exchange would make every chain's future
            // as large; the round trip dwarfs the allocation.
            return Box::pin(self.apply_shared(shared, req, conn)).await;
        }
        let verdict = {
            let key = source::key(&self.c.source, &req, conn);
            self.take(key.bytes(), self.now())
        };
        match verdict {
            Verdict::Wait(d) if d.is_zero() => Ok(req),
            // Boxed: the timer would make every chain's future larger.
            Verdict::Wait(d) => {
                Box::pin(tokio::time::sleep(d)).await;
                Ok(req)
            }
            Verdict::Refuse(d) => Err(Box::new(too_many(d))),
        }
    }

    /// [`RateLimit::apply`] with the buckets in Redis.
    async fn apply_shared(
        &self,
        shared: &Result<Shared, String>,
        req: Request<RequestBody>,
        conn: &ConnCtx,
    ) -> Step {
        let taken = match shared {
            Ok(shared) => {
                let source = source_text(&source::key(&self.c.source, &req, conn));
                shared.take(&source).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.clone()),
        };
        match taken {
            Ok(Taken::Wait(d)) => {
                if !d.is_zero() {
                    tokio::time::sleep(d).await;
                }
                Ok(req)
            }
            Ok(Taken::Refuse(d)) => Err(Box::new(too_many(d))),
            Err(error) => {
                tracing::error!(%error, "rateLimit: could not insert/update bucket in Redis");
                Err(Box::new(plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Could not insert/update bucket".to_owned(),
                )))
            }
        }
    }

    /// Takes a token from `key`'s bucket at `now`.
    fn take(&self, key: &[u8], now: u64) -> Verdict {
        let ttl = nanos(self.c.ttl);
        let bucket = self.buckets.get_or_insert(
            key,
            || Bucket {
                empty_at: AtomicU64::new(0),
                seen: AtomicU64::new(now),
            },
            |b| now.saturating_sub(b.seen.load(Ordering::Relaxed)) > ttl,
        );
        let b = bucket.value();
        let mut expired = now.saturating_sub(b.seen.load(Ordering::Relaxed)) > ttl;
        // Every request keeps its bucket alive, refused or not, as
        // Traefik's ttl map is set before the token is asked for.
        b.seen.store(now, Ordering::Relaxed);
        let full = now.saturating_sub(self.depth);
        let max_delay = nanos(self.c.max_delay);
        let mut current = b.empty_at.load(Ordering::Acquire);
        loop {
            let base = if expired { full } else { current.max(full) };
            let next = base.saturating_add(self.interval);
            let delay = next.saturating_sub(now);
            if delay > max_delay {
                return Verdict::Refuse(Duration::from_nanos(delay));
            }
            match b.empty_at.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Verdict::Wait(Duration::from_nanos(delay)),
                Err(actual) => {
                    // Another request restarted or took from the bucket
                    // meanwhile: take after it.
                    current = actual;
                    expired = false;
                }
            }
        }
    }
}

/// A source as Traefik writes it in a Redis key: an IP as text (IPv4
/// dotted), else the header's or host's value.
fn source_text(key: &Key<'_>) -> String {
    match key {
        Key::Ip(octets) => std::net::Ipv6Addr::from(*octets).to_canonical().to_string(),
        Key::Text(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

/// Traefik's refusal: 429 with when to come back.
fn too_many(delay: Duration) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full("Too Many Requests"));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    if let Ok(v) = HeaderValue::try_from(crate::admin::json::go_duration(delay)) {
        h.insert(X_RETRY_IN, v);
    }
    // No Content-Type: Traefik writes the status before the body, so Go
    // sends none.
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{IpStrategy, SourceCriterion};

    fn limiter(interval_ms: u64, burst: u64, max_delay_ms: u64) -> RateLimit {
        RateLimit::new(
            &Config {
                average: 1000 / interval_ms,
                period: Duration::from_secs(1),
                interval: Some(Duration::from_millis(interval_ms)),
                burst,
                max_delay: Duration::from_millis(max_delay_ms),
                ttl: Duration::from_secs(2),
                source: SourceCriterion::Ip(IpStrategy::Peer { ipv6_subnet: None }),
                redis: None,
            },
            "limit",
        )
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn the_burst_passes_then_requests_wait_or_are_refused_at_the_rate() {
        // 10/s, burst 3, held up to 50 ms.
        let l = limiter(100, 3, 50);
        let t = OFFSET + 10_000 * MS;
        for _ in 0..3 {
            assert_eq!(l.take(b"a", t), Verdict::Wait(Duration::ZERO));
        }
        assert_eq!(l.take(b"a", t), Verdict::Refuse(Duration::from_millis(100)));
        // A refusal takes no token: 60 ms later one is 40 ms away: held.
        assert_eq!(
            l.take(b"a", t + 60 * MS),
            Verdict::Wait(Duration::from_millis(40))
        );
        // Another source has its own bucket.
        assert_eq!(l.take(b"b", t), Verdict::Wait(Duration::ZERO));
        // Exactly one token per interval comes back.
        let later = t + 100 * MS + 300 * MS;
        let passed = (0..10)
            .filter(|_| l.take(b"a", later) == Verdict::Wait(Duration::ZERO))
            .count();
        assert_eq!(passed, 3, "three intervals, three tokens");
    }

    #[test]
    fn an_idle_bucket_expires_full_and_the_table_stays_bounded() {
        let l = limiter(1000, 2, 0);
        let t = OFFSET + 10_000 * MS;
        assert_eq!(l.take(b"a", t), Verdict::Wait(Duration::ZERO));
        assert_eq!(l.take(b"a", t), Verdict::Wait(Duration::ZERO));
        assert!(matches!(l.take(b"a", t), Verdict::Refuse(_)));
        // A token a second comes back; the refusal at 2.1 s keeps the
        // bucket alive (it is not idle from 0 s on).
        assert!(matches!(l.take(b"a", t + 1_000 * MS), Verdict::Wait(_)));
        assert!(matches!(l.take(b"a", t + 2_000 * MS), Verdict::Wait(_)));
        assert!(matches!(l.take(b"a", t + 2_100 * MS), Verdict::Refuse(_)));
        // Past the 2 s ttl of idleness the bucket starts over, full.
        let t2 = t + 4_200 * MS;
        assert_eq!(l.take(b"a", t2), Verdict::Wait(Duration::ZERO));
        assert_eq!(l.take(b"a", t2), Verdict::Wait(Duration::ZERO));
        for i in 0..(MAX_SOURCES as u32 + 10) {
            l.take(&i.to_be_bytes(), t2);
        }
        assert!(l.buckets.len() <= MAX_SOURCES);
    }

    #[test]
    fn the_refusal_says_when_to_come_back() {
        let r = too_many(Duration::from_millis(1500));
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "2");
        assert_eq!(r.headers()["x-retry-in"], "1.5s");
    }
}
