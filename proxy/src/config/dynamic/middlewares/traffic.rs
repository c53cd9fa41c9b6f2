//! The traffic-control middlewares' options: `inFlightReq` (`amount`,
//! `sourceCriterion`, by default the request host) and `rateLimit`
//! (`average`, `period`, `burst`, `sourceCriterion`, by default the peer),
//! with Traefik 3.7's defaults and build-time checks
//! (`pkg/middlewares/{inflightreq,ratelimiter}`, `pkg/middlewares/
//! extractor.go`); `rateLimit.redis`'s connection settings are decoded by
//! `config::redis`. The request-time parts are
//! `crate::middleware::{in_flight,rate_limit}`.

use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::super::super::redis::RedisFile;
use super::MiddlewareConfig;
use super::ip_allow::{IpStrategyFile, strategy};
use crate::config::IpStrategy;

/// What groups requests as coming from one source.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceCriterion {
    /// `ipStrategy`: the client IP it reads.
    Ip(IpStrategy),
    /// `requestHeaderName`: the value of this header (an absent header is
    /// the empty value, one source).
    Header(HeaderName),
    /// `requestHost`: the request's host, port included when sent.
    Host,
}

/// A validated `inFlightReq`.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlightReq {
    /// `amount`: the requests one source may have in flight (0 refuses
    /// every request, as in Traefik).
    pub amount: u64,
    /// `sourceCriterion` (the request host unless set).
    pub source: SourceCriterion,
}

/// A validated `rateLimit`: a token bucket per source.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// `average` as written (0: no limit).
    pub average: u64,
    /// `period` (1 s unless set).
    pub period: Duration,
    /// The time one token takes to come back (`period / average`); `None`
    /// when `average` is 0: no limit.
    pub interval: Option<Duration>,
    /// `burst` (at least 1).
    pub burst: u64,
    /// How long a request may be held to fit the rate rather than refused
    /// (Traefik's `maxDelay`: half a token's time at 1/s or more, else
    /// 500 ms).
    pub max_delay: Duration,
    /// How long an idle source's bucket is kept (Traefik's ttl, seconds).
    pub ttl: Duration,
    /// `sourceCriterion` (the peer's IP unless set).
    pub source: SourceCriterion,
    /// `redis`: the buckets live in this Redis, shared by every proxy
    /// (and Traefik) using it; `None`: in memory, per proxy.
    pub redis: Option<Box<crate::redis_client::Settings>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct SourceCriterionFile {
    ip_strategy: Option<IpStrategyFile>,
    request_header_name: Option<At<String>>,
    request_host: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct InFlightReqFile {
    amount: Option<At<i64>>,
    source_criterion: Option<At<SourceCriterionFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct RateLimitFile {
    average: Option<At<i64>>,
    period: Option<Duration>,
    burst: Option<At<i64>>,
    source_criterion: Option<At<SourceCriterionFile>>,
    // Boxed: the largest of the middlewares' file forms otherwise.
    redis: Option<Box<At<RedisFile>>>,
}

/// The default criterion when none of the three is set.
#[derive(Clone, Copy)]
enum Fallback {
    Peer,
    Host,
}

/// The criterion `file` sets (`default` when none), refusing two at once
/// as Traefik does.
fn source(
    ctx: &mut Ctx,
    path: &str,
    file: Option<At<SourceCriterionFile>>,
    default: Fallback,
) -> Option<SourceCriterion> {
    let fallback = match default {
        Fallback::Peer => SourceCriterion::Ip(IpStrategy::Peer { ipv6_subnet: None }),
        Fallback::Host => SourceCriterion::Host,
    };
    let Some(at) = file else {
        return Some(fallback);
    };
    let f = at.value;
    let header = f.request_header_name.filter(|h| !h.value.is_empty());
    let at_path = if at.path.is_empty() { path } else { &at.path };
    let exclusive =
        |a: &str, b: &str| format!("sourceCriterion: {a} and {b} are mutually exclusive");
    match (&f.ip_strategy, &header, f.request_host) {
        (Some(_), Some(_), _) => {
            ctx.error(
                at_path,
                at.pos,
                exclusive("ipStrategy", "requestHeaderName"),
            );
            None
        }
        (Some(_), _, true) => {
            ctx.error(at_path, at.pos, exclusive("ipStrategy", "requestHost"));
            None
        }
        (_, Some(_), true) => {
            ctx.error(
                at_path,
                at.pos,
                exclusive("requestHost", "requestHeaderName"),
            );
            None
        }
        (Some(_), None, false) => strategy(ctx, f.ip_strategy).map(SourceCriterion::Ip),
        (None, Some(h), false) => match HeaderName::try_from(h.value.as_str()) {
            Ok(name) => Some(SourceCriterion::Header(name)),
            Err(_) => {
                ctx.error(
                    &h.path,
                    h.pos,
                    format!("requestHeaderName: {:?} is not a header name", h.value),
                );
                None
            }
        },
        (None, None, true) => Some(SourceCriterion::Host),
        (None, None, false) => Some(fallback),
    }
}

impl InFlightReqFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        let amount = match self.amount {
            None => 0,
            Some(a) if a.value < 0 => {
                ctx.error(
                    &a.path,
                    a.pos,
                    format!("amount must not be negative, found {}", a.value),
                );
                return None;
            }
            Some(a) => a.value.unsigned_abs(),
        };
        if amount == 0 {
            ctx.warn(
                path,
                pos,
                "inFlightReq amount is 0: every request is answered 429, as in Traefik",
            );
        }
        let source = source(ctx, path, self.source_criterion, Fallback::Host)?;
        Some(MiddlewareConfig::InFlightReq(InFlightReq {
            amount,
            source,
        }))
    }
}

impl RateLimitFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str) -> Option<MiddlewareConfig> {
        let mut ok = true;
        let mut non_negative = |ctx: &mut Ctx, v: Option<At<i64>>, what: &str| match v {
            Some(a) if a.value < 0 => {
                ctx.error(
                    &a.path,
                    a.pos,
                    format!("{what} must not be negative, found {}", a.value),
                );
                ok = false;
                0
            }
            Some(a) => a.value.unsigned_abs(),
            None => 0,
        };
        let average = non_negative(ctx, self.average, "average");
        // Traefik: burst defaults to 1, and less than 1 counts as 1.
        let burst = non_negative(ctx, self.burst, "burst").max(1);
        let source = source(ctx, path, self.source_criterion, Fallback::Peer);
        let redis = match self.redis {
            None => None,
            Some(r) => {
                let r = *r;
                let settings = r.value.check(ctx, "rateLimit", &r.path, r.key_pos);
                ok &= settings.is_some();
                settings.map(Box::new)
            }
        };
        if !ok {
            return None;
        }
        let period = self
            .period
            .filter(|p| !p.is_zero())
            .unwrap_or(Duration::from_secs(1));
        let (interval, max_delay, ttl) = if average == 0 {
            (None, Duration::ZERO, Duration::from_secs(1))
        } else {
            // Requests per second, as Traefik computes it.
            let rate = average as f64 / period.as_secs_f64();
            let nanos = period.as_nanos() / u128::from(average);
            let interval = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX).max(1));
            let (max_delay, ttl) = if rate < 1.0 {
                (
                    Duration::from_millis(500),
                    Duration::from_secs(1 + (1.0 / rate) as u64),
                )
            } else {
                // Go: time.Second / (time.Duration(rtl) * 2), rtl truncated.
                let whole = (rate as u64).max(1);
                (
                    Duration::from_nanos(1_000_000_000 / (whole * 2)),
                    Duration::from_secs(2),
                )
            };
            (Some(interval), max_delay, ttl)
        };
        Some(MiddlewareConfig::RateLimit(RateLimit {
            average,
            period,
            interval,
            burst,
            max_delay,
            ttl,
            source: source?,
            redis,
        }))
    }
}
