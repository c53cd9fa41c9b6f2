//! Passive health checks (`loadBalancer.passiveHealthCheck`), as Traefik
//! 3.7 runs them: a request whose server answered below 500 clears the
//! server's failures; a 5xx, or a server that could not be reached or
//! broke off, is a failure; `maxFailedAttempts` failures within
//! `failureWindow` take the server out of the rotation. Without an active
//! `healthCheck` it comes back after `failureWindow`; with one, when the
//! active check finds it healthy.
//!
//! Runs per request on the worker: atomics only, no lock. A success reads
//! one atomic and writes only when failures are pending; a failure writes
//! its time into a ring of the last `maxFailedAttempts` failure times
//! (one per server, in the compiled load balancer: a reload starts the
//! window afresh, the up/down state lives on in
//! [`ServerState`](super::ServerState)). Taking a server out updates
//! `proxy_service_server_up` and, without an active check, arms a timer
//! task; both happen once per ejection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::state::ServerState;
use crate::config::PassiveHealthCheckConfig;
use crate::observe::names;

/// The passive check of one load balancer's servers.
#[derive(Debug)]
pub struct PassiveCheck {
    window: Duration,
    /// The service's active check will bring servers back.
    active: bool,
    service: Arc<str>,
    servers: Box<[Failures]>,
}

/// One server's recent failures: times in nanoseconds since [`epoch`],
/// 0 for an empty slot.
#[derive(Debug)]
struct Failures {
    ring: Box<[AtomicU64]>,
    next: AtomicUsize,
    last_failure: AtomicU64,
    /// Failures up to this time were cleared by a success.
    cleared: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    // Never 0, which marks an empty slot.
    (epoch().elapsed().as_nanos() as u64).max(1)
}

impl PassiveCheck {
    /// The check of `n` servers of `service` configured by `cfg`; `active`
    /// when the service has an active `healthCheck` too.
    pub fn new(cfg: &PassiveHealthCheckConfig, service: Arc<str>, n: usize, active: bool) -> Self {
        let slots = cfg.max_failed_attempts.max(1) as usize;
        epoch();
        Self {
            window: cfg.failure_window,
            active,
            service,
            servers: (0..n)
                .map(|_| Failures {
                    ring: (0..slots).map(|_| AtomicU64::new(0)).collect(),
                    next: AtomicUsize::new(0),
                    last_failure: AtomicU64::new(0),
                    cleared: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Server `i` answered below 500: its failures are cleared.
    #[inline]
    pub fn success(&self, i: usize) {
        let f = &self.servers[i];
        if f.last_failure.load(Ordering::Relaxed) > f.cleared.load(Ordering::Relaxed) {
            f.cleared.store(now_nanos(), Ordering::Relaxed);
        }
    }

    /// Server `i` (`url`, state `state`) failed a request: taken out when
    /// that makes `maxFailedAttempts` within the window.
    pub fn failure(&self, i: usize, url: &Arc<str>, state: &Arc<ServerState>) {
        let f = &self.servers[i];
        let now = now_nanos();
        let slot = f.next.fetch_add(1, Ordering::Relaxed) % f.ring.len();
        f.ring[slot].store(now, Ordering::Relaxed);
        f.last_failure.store(now, Ordering::Relaxed);
        let since = now
            .saturating_sub(self.window.as_nanos() as u64)
            .max(f.cleared.load(Ordering::Relaxed));
        let recent = f
            .ring
            .iter()
            .filter(|t| {
                let t = t.load(Ordering::Relaxed);
                t != 0 && t > since
            })
            .count();
        if recent < f.ring.len() || !state.set_up(false) {
            return;
        }
        tracing::warn!(service = %self.service, url = %url, failures = recent, window = ?self.window, "passive health check: server taken out of rotation");
        set_gauge(&self.service, url, false);
        if self.active {
            return;
        }
        let (window, service, url, state) = (
            self.window,
            Arc::clone(&self.service),
            Arc::clone(url),
            Arc::clone(state),
        );
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            if state.set_up(true) {
                tracing::info!(service = %service, url = %url, "passive health check: server back in rotation");
                set_gauge(&service, &url, true);
            }
        });
    }
}

fn set_gauge(service: &str, url: &str, up: bool) {
    metrics::gauge!(names::SERVICE_SERVER_UP, "service" => service.to_owned(), "url" => url.to_owned())
        .set(if up { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(max: u32, window_ms: u64) -> PassiveCheck {
        let cfg = PassiveHealthCheckConfig {
            failure_window: Duration::from_millis(window_ms),
            max_failed_attempts: max,
        };
        PassiveCheck::new(&cfg, Arc::from("s@file"), 1, true)
    }

    #[test]
    fn max_failures_within_the_window_take_a_server_out_and_a_success_clears_them() {
        let url: Arc<str> = Arc::from("http://a");
        let state = Arc::new(ServerState::default());
        let p = check(3, 60_000);
        p.failure(0, &url, &state);
        p.failure(0, &url, &state);
        p.success(0);
        p.failure(0, &url, &state);
        p.failure(0, &url, &state);
        assert!(state.is_up(), "the success cleared the first two");
        p.failure(0, &url, &state);
        assert!(!state.is_up(), "three since the success");

        // Failures older than the window do not count.
        let state = Arc::new(ServerState::default());
        let p = check(2, 20);
        p.failure(0, &url, &state);
        std::thread::sleep(Duration::from_millis(60));
        p.failure(0, &url, &state);
        assert!(state.is_up());
        p.failure(0, &url, &state);
        assert!(!state.is_up());
    }
}
