//! A fixed-bucket histogram of durations made of atomics.
//!
//! Runs per request: `record_nanos` is one bucket search over a handful of
//! integer bounds and two relaxed `fetch_add`s. No lock, no allocation.
//! Rendering (control plane) reads the atomics; a scrape racing a record may
//! see the bucket and the sum of one sample disagree by that one sample, which
//! Prometheus tolerates.

use std::sync::atomic::{AtomicU64, Ordering};

/// Histogram of durations with fixed upper bounds given in seconds.
#[derive(Debug)]
pub(crate) struct SecondsHistogram {
    /// Upper bounds as given (seconds), for the `le` label.
    bounds: Box<[f64]>,
    /// The same bounds in nanoseconds, for the integer search.
    bounds_ns: Box<[u64]>,
    /// One counter per bound plus the `+Inf` bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    /// Sum of all samples in nanoseconds.
    sum_ns: AtomicU64,
}

/// A consistent-enough copy of a histogram for rendering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// `(upper bound, cumulative count)` per finite bucket.
    pub(crate) buckets: Vec<(f64, u64)>,
    /// Number of samples (the `+Inf` bucket).
    pub(crate) count: u64,
    /// Sum of samples in seconds.
    pub(crate) sum: f64,
}

/// Converts seconds to whole nanoseconds, clamping negatives and NaN to 0.
pub(crate) fn secs_to_nanos(secs: f64) -> u64 {
    if secs.is_nan() || secs <= 0.0 {
        0
    } else {
        // `as` saturates on overflow, which is what a histogram wants.
        (secs * 1e9).round() as u64
    }
}

impl SecondsHistogram {
    /// Builds a histogram; `bounds` are sorted and deduplicated first.
    pub(crate) fn new(bounds: &[f64]) -> Self {
        let mut b: Vec<f64> = bounds.iter().copied().filter(|v| v.is_finite()).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let bounds_ns = b.iter().map(|&s| secs_to_nanos(s)).collect();
        let counts = (0..=b.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            bounds: b.into_boxed_slice(),
            bounds_ns,
            counts,
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one sample of `nanos` nanoseconds.
    #[inline]
    pub(crate) fn record_nanos(&self, nanos: u64) {
        // Linear search: the bound lists are short (4 to 10) and the loop
        // predicts well; a binary search is not faster at this size.
        let idx = self
            .bounds_ns
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(self.bounds_ns.len());
        self.counts[idx].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Copies the current values.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (i, &le) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            buckets.push((le, cumulative));
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count: cumulative,
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

impl metrics::HistogramFn for SecondsHistogram {
    fn record(&self, value: f64) {
        self.record_nanos(secs_to_nanos(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = SecondsHistogram::new(&[0.3, 0.1, 1.2, 5.0]);
        h.record_nanos(100_000_000); // exactly 0.1 s: in le=0.1
        h.record_nanos(200_000_000);
        h.record_nanos(6_000_000_000); // +Inf only
        metrics::HistogramFn::record(&h, 1.0);
        let s = h.snapshot();
        assert_eq!(
            s.buckets,
            vec![(0.1, 1), (0.3, 2), (1.2, 3), (5.0, 3)],
            "{s:?}"
        );
        assert_eq!(s.count, 4);
        assert!((s.sum - 7.3).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn negative_and_nan_count_as_zero() {
        assert_eq!(secs_to_nanos(-1.0), 0);
        assert_eq!(secs_to_nanos(f64::NAN), 0);
        assert_eq!(secs_to_nanos(0.000_002_5), 2500);
    }
}
