//! What a circuit breaker measures of the answers it lets through, as
//! oxy's `memmetrics.RTMetrics` (which Traefik 3.7's breaker uses)
//! measures it: counts over a rolling window of ten one-second buckets
//! (all answers, the 502s and 504s, the answers in each status range the
//! expression names), and the latencies in six HDR histograms of 2
//! significant digits (microseconds, 1 to one hour) of which the oldest is
//! cleared when one is recorded ten seconds or more after the last
//! rotation.
//!
//! Lock-free: every bucket is an atomic owned by its breaker. A count
//! bucket is one word, the second it counts (high half) and its count
//! (low half), so a new second's first answer restarts it with one
//! compare-and-swap. Only what the expression reads is kept: no latency
//! histograms without `LatencyAtQuantileMS`, one counter per
//! `ResponseCodeRatio` range. Reading (once per `checkPeriod`) walks the
//! buckets; recording is a few atomic additions.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Ten one-second buckets.
const BUCKETS: u64 = 10;

/// oxy's `RollingCounter` (10 buckets of 1 s).
#[derive(Debug, Default)]
pub(super) struct Rolling {
    /// `second << 32 | count`; second 0 is never a real one.
    slots: [AtomicU64; BUCKETS as usize],
}

impl Rolling {
    /// Counts one at second `sec` (from 1).
    pub(super) fn inc(&self, sec: u64) {
        let slot = &self.slots[(sec % BUCKETS) as usize];
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let stamp = cur >> 32;
            let next = if stamp >= sec {
                // This second's (or, for a late writer, a newer one's).
                cur + 1
            } else {
                (sec << 32) | 1
            };
            match slot.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }

    /// The count over the window ending at second `sec`.
    pub(super) fn count(&self, sec: u64) -> u64 {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|w| {
                let stamp = w >> 32;
                stamp != 0 && stamp <= sec && stamp + BUCKETS > sec
            })
            .map(|w| w & 0xffff_ffff)
            .sum()
    }

    fn reset(&self) {
        for s in &self.slots {
            s.store(0, Ordering::Relaxed);
        }
    }
}

// === latency ===

/// The HDR layout of `hdrhistogram.New(1, 3600000000, 2)`: 256
/// sub-buckets (128 per half), 25 buckets, 3,328 counts.
const HALF: usize = 128;
const COUNTS: usize = 26 * HALF;
const HISTOGRAMS: usize = 6;
/// A histogram's turn: ten seconds.
const ROLL_NS: u64 = 10_000_000_000;
/// `last_roll` before any: the next record rotates, as after Go's zero
/// time.
const NEVER: u64 = u64::MAX;

/// The count index of `v` microseconds (`None` past the last bucket).
fn index(v: u64) -> Option<usize> {
    let bits = 64 - (v | 255).leading_zeros() as usize;
    let bucket = bits - 8;
    let sub = (v >> bucket) as usize;
    let i = ((bucket + 1) << 7) + sub - HALF;
    (i < COUNTS).then_some(i)
}

/// The lowest value counted at index `i`, and the width of its range.
fn value_at(i: usize) -> (u64, u64) {
    let (bucket, sub) = if i < 2 * HALF {
        (0, i)
    } else {
        ((i - 2 * HALF) / HALF + 1, (i - 2 * HALF) % HALF + HALF)
    };
    ((sub as u64) << bucket, 1 << bucket)
}

/// oxy's `RollingHDRHistogram` of latencies.
#[derive(Debug)]
pub(super) struct Latency {
    /// `HISTOGRAMS` histograms of `COUNTS` counts, one after the other.
    counts: Box<[AtomicU32]>,
    /// The one recorded into.
    current: AtomicUsize,
    /// When it last rotated (ns on the breaker's clock).
    last_roll: AtomicU64,
}

impl Latency {
    fn new() -> Self {
        Self {
            counts: (0..HISTOGRAMS * COUNTS)
                .map(|_| AtomicU32::new(0))
                .collect(),
            current: AtomicUsize::new(0),
            last_roll: AtomicU64::new(NEVER),
        }
    }

    fn clear(&self, h: usize) {
        for c in &self.counts[h * COUNTS..(h + 1) * COUNTS] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn record(&self, micros: u64, now: u64) {
        let last = self.last_roll.load(Ordering::Relaxed);
        if (last == NEVER || now.saturating_sub(last) >= ROLL_NS)
            && self
                .last_roll
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let next = (self.current.load(Ordering::Relaxed) + 1) % HISTOGRAMS;
            self.clear(next);
            self.current.store(next, Ordering::Relaxed);
        }
        if let Some(i) = index(micros) {
            let h = self.current.load(Ordering::Relaxed);
            self.counts[h * COUNTS + i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The histograms merged: Go's `ValueAtQuantile` (v1.2.0) in
    /// microseconds.
    fn quantile(&self, q: f64) -> u64 {
        let at = |i: usize| -> u64 {
            (0..HISTOGRAMS)
                .map(|h| u64::from(self.counts[h * COUNTS + i].load(Ordering::Relaxed)))
                .sum()
        };
        // Two walks over the counts rather than a merged copy (no
        // allocation); a count recorded between them is at most one off.
        let total: u64 = self
            .counts
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        let q = q.min(100.0);
        // Go: int64((q/100)*total + 0.5), truncated toward zero.
        let wanted = ((q / 100.0) * total as f64 + 0.5) as i64;
        let mut seen = 0i64;
        let mut value_index = 0;
        for i in 0..COUNTS {
            if seen >= wanted {
                break;
            }
            seen += at(i) as i64;
            value_index = i;
        }
        let (low, width) = value_at(value_index);
        if wanted <= 0 {
            // Go walks no index: the value is 0's.
            return 0;
        }
        if q == 0.0 { low } else { low + width - 1 }
    }

    fn reset(&self, now: u64) {
        for h in 0..HISTOGRAMS {
            self.clear(h);
        }
        self.current.store(0, Ordering::Relaxed);
        self.last_roll.store(now, Ordering::Relaxed);
    }
}

// === the set ===

/// Everything one breaker measures.
#[derive(Debug)]
pub(super) struct Metrics {
    total: Rolling,
    network_errors: Rolling,
    /// The `[from, to)` status ranges the expression reads, each counted.
    ranges: Box<[((i64, i64), Rolling)]>,
    latency: Option<Box<Latency>>,
}

/// Seconds on the breaker's clock, from 1.
fn second(now: u64) -> u64 {
    now / 1_000_000_000 + 1
}

impl Metrics {
    /// Counters for `ranges`, and latencies when `latency`.
    pub(super) fn new(ranges: Vec<(i64, i64)>, latency: bool) -> Self {
        Self {
            total: Rolling::default(),
            network_errors: Rolling::default(),
            ranges: ranges
                .into_iter()
                .map(|r| (r, Rolling::default()))
                .collect(),
            latency: latency.then(|| Box::new(Latency::new())),
        }
    }

    /// Records an answer of `status` that took `micros`, at `now` (ns).
    pub(super) fn record(&self, status: u16, micros: u64, now: u64) {
        let sec = second(now);
        self.total.inc(sec);
        if status == 502 || status == 504 {
            self.network_errors.inc(sec);
        }
        let code = i64::from(status);
        for ((from, to), c) in self.ranges.iter() {
            if code >= *from && code < *to {
                c.inc(sec);
            }
        }
        if let Some(l) = &self.latency {
            l.record(micros, now);
        }
    }

    /// `NetworkErrorRatio()`.
    pub(super) fn network_error_ratio(&self, now: u64) -> f64 {
        let sec = second(now);
        let total = self.total.count(sec);
        if total == 0 {
            return 0.0;
        }
        self.network_errors.count(sec) as f64 / total as f64
    }

    /// `ResponseCodeRatio` of ranges `a` over `b` (indexes given by
    /// [`Metrics::new`]'s list).
    pub(super) fn code_ratio(&self, a: usize, b: usize, now: u64) -> f64 {
        let sec = second(now);
        let (a, b) = (self.ranges[a].1.count(sec), self.ranges[b].1.count(sec));
        if b == 0 { 0.0 } else { a as f64 / b as f64 }
    }

    /// `LatencyAtQuantileMS(q)`: whole milliseconds.
    pub(super) fn latency_ms(&self, q: f64) -> i64 {
        self.latency.as_ref().map_or(0, |l| {
            i64::try_from(l.quantile(q) / 1000).unwrap_or(i64::MAX)
        })
    }

    /// Forgets everything (the breaker trips).
    pub(super) fn reset(&self, now: u64) {
        self.total.reset();
        self.network_errors.reset();
        for (_, c) in self.ranges.iter() {
            c.reset();
        }
        if let Some(l) = &self.latency {
            l.reset(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_roll_over_ten_seconds() {
        let r = Rolling::default();
        r.inc(1);
        r.inc(1);
        r.inc(5);
        assert_eq!(r.count(5), 3);
        assert_eq!(r.count(10), 3);
        // Second 1 leaves the window at 11; its slot restarts at 11.
        assert_eq!(r.count(11), 1);
        r.inc(11);
        assert_eq!(r.count(11), 2);
        assert_eq!(r.count(30), 0);
        r.reset();
        assert_eq!(r.count(11), 0);
    }

    #[test]
    fn hdr_layout_matches_go_s() {
        // Unit resolution below 256, then halves of 128 per power of two.
        assert_eq!(index(0), Some(0));
        assert_eq!(index(255), Some(255));
        assert_eq!(index(256), Some(256));
        assert_eq!(index(257), Some(256));
        assert_eq!(index(511), Some(383));
        assert_eq!(index(512), Some(384));
        assert_eq!(value_at(256), (256, 2));
        assert_eq!(value_at(384), (512, 4));
        assert!(index(3_600_000_000).is_some());
        assert!(index(u64::MAX >> 8).is_none());
        for v in [0u64, 1, 200, 255, 256, 1000, 12_345, 999_999, 3_600_000_000] {
            let (low, width) = value_at(index(v).unwrap());
            assert!(low <= v && v < low + width, "{v}: {low}+{width}");
        }
    }

    #[test]
    fn quantiles_are_the_highest_equivalent_value() {
        let l = Latency::new();
        assert_eq!(l.quantile(50.0), 0, "empty");
        for us in [1_000u64, 2_000, 3_000, 150_000] {
            l.record(us, 0);
        }
        // 1000 µs is counted in [1000, 1004): highest equivalent 1003.
        assert_eq!(l.quantile(25.0), 1003);
        assert_eq!(l.quantile(50.0) / 1000, 2);
        assert_eq!(l.quantile(100.0) / 1000, 150);
        // Go v1.2.0 walks no index for q = 0: the value of index 0.
        assert_eq!(l.quantile(0.0), 0);
        let m = Metrics::new(vec![(500, 600), (0, 600)], true);
        for (s, us) in [(200, 5_000), (502, 5_000), (503, 300_000), (200, 5_000)] {
            m.record(s, us, 1);
        }
        assert_eq!(m.network_error_ratio(1), 0.25);
        assert_eq!(m.code_ratio(0, 1, 1), 0.5);
        assert_eq!(m.latency_ms(100.0), 301);
        m.reset(2);
        assert_eq!(m.network_error_ratio(2), 0.0);
        assert_eq!(m.code_ratio(0, 1, 2), 0.0);
        assert_eq!(m.latency_ms(100.0), 0);
    }
}
