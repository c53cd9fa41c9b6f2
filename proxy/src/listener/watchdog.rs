//! The per-connection watchdog: `readTimeout` (of a request head) and
//! `idleTimeout` checked once per tick from the connection's activity
//! counters, instead of a timer armed per request; the tick also checks
//! `writeTimeout` (`ConnCtx::write_overdue`).
//!
//! Runs once per tick per connection (a quarter of the shorter limit, at
//! least 50 ms), never per request; plain arithmetic, no allocation.

use std::time::Duration;

use super::ConnTimeouts;

/// The per-connection timeout state, checked once per tick (not per
/// request). A connection with no request in flight is closed gracefully
/// when
/// - nothing arrived for `idleTimeout` (Traefik's keep-alive idle
///   timeout), or
/// - bytes arrived but no request started within `readTimeout` of the
///   first of them (a request head trickling in: slowloris).
///
/// Precision is one tick: a limit `T` closes after between `T` and
/// `T + tick`.
#[derive(Debug)]
pub(super) struct Watchdog {
    pub(super) tick: Duration,
    read: Option<Duration>,
    idle: Option<Duration>,
    last_reads: u64,
    last_requests: u64,
    quiet_for: Duration,
    partial_for: Duration,
}

impl Watchdog {
    pub(super) fn new(t: &ConnTimeouts) -> Option<Self> {
        let tick = [t.read, t.idle, t.write].into_iter().flatten().min()?;
        // Finer ticks for long limits keep the overshoot small.
        let tick = (tick / 4).max(Duration::from_millis(50));
        Some(Self {
            tick,
            read: t.read,
            idle: t.idle,
            last_reads: 0,
            last_requests: 0,
            quiet_for: Duration::ZERO,
            partial_for: Duration::ZERO,
        })
    }

    /// One tick: whether the connection should be closed.
    #[cfg(test)]
    fn expired(&mut self, reads: u64, requests: u64, in_flight: u32) -> bool {
        self.expired_after(self.tick, reads, requests, in_flight)
    }

    /// A check `elapsed` after the previous one (a tick, or the shorter
    /// period of a connection that may be parked): whether the connection
    /// should be closed.
    pub(super) fn expired_after(
        &mut self,
        elapsed: Duration,
        reads: u64,
        requests: u64,
        in_flight: u32,
    ) -> bool {
        let new_request = requests != self.last_requests;
        let new_bytes = reads != self.last_reads;
        self.last_requests = requests;
        self.last_reads = reads;
        if in_flight > 0 || new_request {
            self.quiet_for = Duration::ZERO;
            self.partial_for = Duration::ZERO;
            return false;
        }
        // Bytes that started no request: a head arriving (slowloris when
        // it drags on) or HTTP/2 control frames. From the first of them the
        // read deadline runs, as Go's does; silence counts towards idle.
        if new_bytes || !self.partial_for.is_zero() {
            self.partial_for += elapsed;
        }
        if new_bytes {
            self.quiet_for = Duration::ZERO;
        } else {
            self.quiet_for += elapsed;
        }
        self.read.is_some_and(|r| self.partial_for >= r)
            || self.idle.is_some_and(|i| self.quiet_for >= i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dog(read: u64, idle: u64) -> Watchdog {
        Watchdog::new(&ConnTimeouts {
            read: (read > 0).then(|| Duration::from_secs(read)),
            idle: (idle > 0).then(|| Duration::from_secs(idle)),
            write: None,
        })
        .unwrap()
    }

    #[test]
    fn idle_connection_closes_after_idle_timeout() {
        let mut w = dog(60, 180);
        assert_eq!(w.tick, Duration::from_secs(15));
        // 180 s of nothing: 12 ticks.
        for i in 0..11 {
            assert!(!w.expired(0, 0, 0), "tick {i}");
        }
        assert!(w.expired(0, 0, 0));
    }

    #[test]
    fn trickled_request_head_closes_after_read_timeout() {
        let mut w = dog(60, 180);
        let mut reads = 0;
        for i in 0..3 {
            reads += 1;
            assert!(!w.expired(reads, 0, 0), "tick {i}");
        }
        reads += 1;
        assert!(w.expired(reads, 0, 0), "60 s of bytes without a request");
    }

    #[test]
    fn a_lone_frame_then_silence_closes() {
        // An HTTP/2 RST_STREAM or PING: bytes, then nothing. The read
        // deadline runs from the frame (60 s: 4 ticks of 15 s)...
        let mut w = dog(60, 180);
        for i in 0..3 {
            assert!(!w.expired(1, 0, 0), "tick {i}");
        }
        assert!(w.expired(1, 0, 0));
        // ...and without a read timeout, silence idles it out (2 s: 4
        // ticks of 500 ms after the frame's tick).
        let mut w = dog(0, 2);
        assert!(!w.expired(1, 0, 0));
        for i in 0..3 {
            assert!(!w.expired(1, 0, 0), "tick {i}");
        }
        assert!(w.expired(1, 0, 0));
    }

    #[test]
    fn activity_resets_the_clocks() {
        let mut w = dog(60, 180);
        for i in 0..100u64 {
            // A request every tick, or one in flight.
            assert!(!w.expired(i, i, 0));
            assert!(!w.expired(i, i, 1));
        }
        assert!(Watchdog::new(&ConnTimeouts::default()).is_none());
    }
}
