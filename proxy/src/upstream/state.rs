//! What is known about a server at run time, outside the immutable
//! configuration snapshot: whether it is up (active and passive health
//! checks write it), how many requests it has in flight (p2c, leasttime)
//! and its recent times to first byte (leasttime).
//!
//! One [`ServerState`] per [`ServerId`] for the life of the process, kept
//! in [`ServerStates`] (control plane, filled while a configuration is
//! compiled): a reload that keeps a server keeps its state. The data plane
//! reads and writes it through atomics only: no lock, no allocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use super::identity::ServerId;

/// How many times to first byte leasttime averages, as Traefik does.
const SAMPLES: usize = 100;

/// The run-time state of one server of one service.
#[derive(Debug)]
pub struct ServerState {
    up: AtomicBool,
    inflight: AtomicU32,
    ttfb: Ttfb,
}

impl Default for ServerState {
    fn default() -> Self {
        Self {
            // Servers are up until a check says otherwise, as in Traefik.
            up: AtomicBool::new(true),
            inflight: AtomicU32::new(0),
            ttfb: Ttfb::default(),
        }
    }
}

impl ServerState {
    /// Whether the server may be picked.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Marks the server up or down; returns whether that changed it.
    pub fn set_up(&self, up: bool) -> bool {
        self.up.swap(up, Ordering::Relaxed) != up
    }

    /// Requests sent to the server whose response head has not arrived.
    #[inline]
    pub fn inflight(&self) -> u32 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard is dropped.
    #[inline]
    pub fn start(&self) -> InFlight<'_> {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records one time to first byte.
    pub fn record_ttfb(&self, elapsed: Duration) {
        self.ttfb.record(elapsed);
    }

    /// The average of the last 100 times to first byte, in whole
    /// milliseconds as Traefik measures them; 0 before the first.
    #[inline]
    pub fn avg_ttfb_ms(&self) -> f64 {
        self.ttfb.average()
    }
}

/// A request counted in [`ServerState::inflight`].
#[derive(Debug)]
pub struct InFlight<'a>(&'a ServerState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A ring of the last [`SAMPLES`] times to first byte (ms) and their sum,
/// updated with atomics: a slot's swap tells exactly what to take off the
/// sum, so concurrent writers keep it consistent.
#[derive(Debug)]
struct Ttfb {
    slots: [AtomicU32; SAMPLES],
    next: AtomicUsize,
    sum: AtomicU64,
}

impl Default for Ttfb {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| AtomicU32::new(0)),
            next: AtomicUsize::new(0),
            sum: AtomicU64::new(0),
        }
    }
}

impl Ttfb {
    fn record(&self, elapsed: Duration) {
        let ms = u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX);
        let i = self.next.fetch_add(1, Ordering::Relaxed) % SAMPLES;
        // Added before the slot is published (and the swap acquires what
        // it takes out), so a value is always added before it is taken off
        // and the sum never wraps below zero.
        self.sum.fetch_add(u64::from(ms), Ordering::Relaxed);
        let old = self.slots[i].swap(ms, Ordering::AcqRel);
        self.sum.fetch_sub(u64::from(old), Ordering::Relaxed);
    }

    fn average(&self) -> f64 {
        let n = self.next.load(Ordering::Relaxed).min(SAMPLES);
        if n == 0 {
            return 0.0;
        }
        self.sum.load(Ordering::Relaxed) as f64 / n as f64
    }
}

/// Every server's state by its stable id, for the life of the process.
#[derive(Debug, Default)]
pub struct ServerStates(DashMap<ServerId, Arc<ServerState>>);

impl ServerStates {
    /// The state of server `id`, created up on first use.
    pub fn get(&self, id: ServerId) -> Arc<ServerState> {
        Arc::clone(&self.0.entry(id).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_kept_per_id_and_ttfb_averages_the_last_hundred() {
        let states = ServerStates::default();
        let a = states.get(ServerId(1));
        assert!(a.is_up());
        assert!(a.set_up(false));
        assert!(!a.set_up(false), "no change");
        assert!(!states.get(ServerId(1)).is_up(), "the same state");
        assert!(states.get(ServerId(2)).is_up());

        {
            let _one = a.start();
            let _two = a.start();
            assert_eq!(a.inflight(), 2);
        }
        assert_eq!(a.inflight(), 0);

        assert_eq!(a.avg_ttfb_ms(), 0.0);
        a.record_ttfb(Duration::from_millis(10));
        a.record_ttfb(Duration::from_millis(20));
        assert_eq!(a.avg_ttfb_ms(), 15.0);
        for _ in 0..SAMPLES {
            a.record_ttfb(Duration::from_micros(4_900));
        }
        assert_eq!(a.avg_ttfb_ms(), 4.0, "whole ms, last 100 only");
    }
}
