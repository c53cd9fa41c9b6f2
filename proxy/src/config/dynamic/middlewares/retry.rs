//! `retry`'s options (`attempts`, `initialInterval`, `timeout`, `status`,
//! `disableRetryOnNetworkError`, `retryNonIdempotentMethod`,
//! `maxRequestBodyBytes`), with Traefik 3.7's defaults and build-time
//! checks (`pkg/middlewares/retry`), and the status ranges (`500`,
//! `500-599`, [`StatusRanges`]) read for it and for `errors`.
//! The request-time part is `crate::middleware::retry`.

use std::time::Duration;

use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::super::status::StatusRanges;
use super::MiddlewareConfig;

/// The status ranges of `items` (Traefik's `"404"` or `"500-599"` per
/// item, [`StatusRanges`]), each bad one reported at its key.
pub(super) fn statuses(ctx: &mut Ctx, items: &[At<String>]) -> Option<StatusRanges> {
    let mut ok = true;
    for item in items {
        if let Err(msg) = StatusRanges::parse([item.value.trim()]) {
            ctx.error(&item.path, item.pos, msg);
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    StatusRanges::parse(items.iter().map(|i| i.value.trim())).ok()
}

/// Traefik's `RetryDefaultMaxRequestBodyBytes`: 2 MiB.
pub(super) const DEFAULT_MAX_BODY: i64 = 2 * 1024 * 1024;

/// A validated `retry`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// `attempts` (at least 1; 1 sends once).
    pub attempts: u32,
    /// `initialInterval`: the first wait of the exponential backoff (zero:
    /// retried at once).
    pub initial_interval: Duration,
    /// `timeout`: past this since the first attempt, no new one (zero:
    /// none).
    pub timeout: Duration,
    /// `status`: the answers retried as failures.
    pub status: StatusRanges,
    /// `disableRetryOnNetworkError`.
    pub disable_on_network_error: bool,
    /// `retryNonIdempotentMethod`: POST, PATCH and LOCK are retried on a
    /// status too.
    pub non_idempotent: bool,
    /// `maxRequestBodyBytes`: a body up to this is kept to be sent again
    /// (negative: no limit; default 2 MiB).
    pub max_body: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct RetryFile {
    attempts: Option<At<i64>>,
    initial_interval: Option<Duration>,
    timeout: Option<Duration>,
    status: Vec<At<String>>,
    disable_retry_on_network_error: bool,
    retry_non_idempotent_method: bool,
    max_request_body_bytes: Option<i64>,
}

impl RetryFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        if self.status.is_empty() && self.disable_retry_on_network_error {
            ctx.error(
                path,
                pos,
                "retry requires at least HTTP status codes or retry on network errors",
            );
            return None;
        }
        let attempts = match &self.attempts {
            Some(a) if a.value > 0 => u32::try_from(a.value).unwrap_or(u32::MAX),
            Some(a) => {
                ctx.error(
                    &a.path,
                    a.pos,
                    format!("incorrect value for attempts ({}): at least 1", a.value),
                );
                return None;
            }
            None => {
                ctx.error(path, pos, "retry needs attempts (at least 1)");
                return None;
            }
        };
        let status = statuses(ctx, &self.status)?;
        Some(MiddlewareConfig::Retry(Retry {
            attempts,
            initial_interval: self.initial_interval.unwrap_or_default(),
            timeout: self.timeout.unwrap_or_default(),
            status,
            disable_on_network_error: self.disable_retry_on_network_error,
            non_idempotent: self.retry_non_idempotent_method,
            max_body: self.max_request_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
        }))
    }
}
