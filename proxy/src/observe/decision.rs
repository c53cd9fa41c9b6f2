//! Router decision timing (decision 3): the time from "request received" to
//! "service chosen", recorded per request into `proxy_router_decision_seconds`
//! and into a windowed histogram whose p99 a watcher checks every period.
//!
//! Runs per request: [`DecisionTimer::record`] is two relaxed `fetch_add`s
//! on the worker's own shard plus the Prometheus histogram's two. No lock, no
//! allocation. The watcher (a std thread) reads the shards and keeps the
//! previous totals, so a window is the difference of two snapshots and
//! nothing is ever reset under the workers' feet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::names;

// Control plane only: a worker registers its shard once, the watcher lists
// the shards once per period.
#[allow(clippy::disallowed_types)]
type ControlMutex<T> = std::sync::Mutex<T>;

/// Sub-buckets per power of two (4 bits: a bucket is at most 1/16 = 6.25%
/// wide relative to its value).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Values from 2^30 ns (~1.07 s) up share the last bucket.
const MAX_EXP: u32 = 29;
/// Number of buckets (the last one holds everything from 2^30 ns up).
pub const WINDOW_BUCKETS: usize = (MAX_EXP as usize - SUB_BITS as usize + 2) * SUB + 1;

/// Bucket of a value in nanoseconds (log-linear, like HdrHistogram with 4
/// significant bits).
#[inline]
pub fn bucket_index(nanos: u64) -> usize {
    if nanos < SUB as u64 {
        return nanos as usize;
    }
    let exp = 63 - nanos.leading_zeros();
    if exp > MAX_EXP {
        return WINDOW_BUCKETS - 1;
    }
    let sub = ((nanos >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// Largest value (ns) that falls in bucket `idx`.
pub fn bucket_upper_nanos(idx: usize) -> u64 {
    if idx < SUB {
        return idx as u64;
    }
    if idx >= WINDOW_BUCKETS - 1 {
        return u64::MAX;
    }
    let exp = (idx / SUB) as u32 + SUB_BITS - 1;
    let sub = (idx % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    ((SUB as u64 + sub) << (exp - SUB_BITS)) + width - 1
}

/// The `q` quantile (0..=1) of the samples recorded between two cumulative
/// snapshots `prev` and `cur`, as the upper bound of its bucket in ns
/// (rounded up, so a reported p99 is never below the true one). `None` when
/// the window is empty.
pub fn window_quantile(prev: &[u64], cur: &[u64], q: f64) -> Option<(u64, u64)> {
    let delta = |i: usize| cur[i].saturating_sub(prev.get(i).copied().unwrap_or(0));
    let total: u64 = (0..cur.len()).map(delta).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for i in 0..cur.len() {
        seen += delta(i);
        if seen >= rank {
            return Some((bucket_upper_nanos(i), total));
        }
    }
    Some((bucket_upper_nanos(cur.len() - 1), total))
}

/// One worker's counts.
#[derive(Debug)]
struct Shard {
    counts: Box<[AtomicU64]>,
}

impl Shard {
    fn new() -> Self {
        Self {
            counts: (0..WINDOW_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// All workers' decision-time shards.
#[derive(Debug, Default)]
pub struct DecisionStats {
    shards: ControlMutex<Vec<Arc<Shard>>>,
}

static GLOBAL: LazyLock<Arc<DecisionStats>> = LazyLock::new(|| Arc::new(DecisionStats::default()));

impl DecisionStats {
    /// A new, empty set (tests; the process uses [`DecisionStats::global`]).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The process-wide set the proxy's workers and watcher share.
    pub fn global() -> &'static Arc<DecisionStats> {
        &GLOBAL
    }

    /// A timer for one worker: a new shard of this set, and the
    /// `proxy_router_decision_seconds` handle resolved from the current
    /// `metrics` recorder (a no-op handle when none is installed).
    pub fn timer(self: &Arc<Self>) -> DecisionTimer {
        let shard = Arc::new(Shard::new());
        self.shards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&shard));
        DecisionTimer {
            shard,
            histogram: metrics::histogram!(names::ROUTER_DECISION_SECONDS),
        }
    }

    /// Cumulative counts per bucket, summed over the shards.
    pub fn snapshot(&self) -> Vec<u64> {
        let shards: Vec<Arc<Shard>> = self
            .shards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = vec![0u64; WINDOW_BUCKETS];
        for s in &shards {
            for (o, c) in out.iter_mut().zip(s.counts.iter()) {
                *o += c.load(Ordering::Relaxed);
            }
        }
        out
    }
}

/// Records router decision times for one worker (keep one per worker thread).
#[derive(Debug)]
pub struct DecisionTimer {
    shard: Arc<Shard>,
    histogram: metrics::Histogram,
}

impl DecisionTimer {
    /// Records one decision that took `elapsed`.
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.shard.counts[bucket_index(nanos)].fetch_add(1, Ordering::Relaxed);
        self.histogram.record(nanos as f64 / 1e9);
    }

    /// Records one decision that started at `start` (request received).
    #[inline]
    pub fn record_since(&self, start: Instant) {
        self.record(start.elapsed());
    }
}

/// What one window looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowReport {
    /// Decisions recorded in the window.
    pub samples: u64,
    /// p99 of the window (upper bound of its bucket).
    pub p99: Duration,
    /// Whether `p99` exceeded the threshold (and a warning was logged).
    pub exceeded: bool,
}

/// The p99 check: keeps the previous snapshot, compares each new window with
/// the threshold.
#[derive(Debug)]
pub struct DecisionWatch {
    stats: Arc<DecisionStats>,
    threshold: Duration,
    prev: Vec<u64>,
}

impl DecisionWatch {
    /// Watches `stats`; windows start now.
    pub fn new(stats: Arc<DecisionStats>, threshold: Duration) -> Self {
        let prev = stats.snapshot();
        Self {
            stats,
            threshold,
            prev,
        }
    }

    /// Closes the current window: computes its p99 and logs a warning when
    /// it exceeds the threshold. `None` when no decision was recorded.
    pub fn tick(&mut self) -> Option<WindowReport> {
        let cur = self.stats.snapshot();
        let result = window_quantile(&self.prev, &cur, 0.99);
        self.prev = cur;
        let (p99_ns, samples) = result?;
        let p99 = Duration::from_nanos(p99_ns);
        let exceeded = p99 > self.threshold;
        if exceeded {
            tracing::warn!(
                p99_us = p99.as_secs_f64() * 1e6,
                threshold_us = self.threshold.as_secs_f64() * 1e6,
                samples,
                "router decision time p99 over the last window exceeds the threshold: sequential rule matching may be the bottleneck"
            );
        }
        Some(WindowReport {
            samples,
            p99,
            exceeded,
        })
    }
}

/// Guard of the watcher thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct WatcherThread {
    stop: Option<mpsc::Sender<()>>,
    join: Option<thread::JoinHandle<()>>,
}

impl Drop for WatcherThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Starts a std thread that closes a window every `period` (10 s in
/// production) and warns when its p99 exceeds `threshold` (50 µs). A thread,
/// not a task, so it never runs on (or waits for) a worker's runtime.
pub fn spawn_watcher(
    stats: Arc<DecisionStats>,
    period: Duration,
    threshold: Duration,
) -> std::io::Result<WatcherThread> {
    let (tx, rx) = mpsc::channel::<()>();
    let mut watch = DecisionWatch::new(stats, threshold);
    let join = thread::Builder::new()
        .name("decision-watch".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(period) {
                let _ = watch.tick();
            }
        })?;
    Ok(WatcherThread {
        stop: Some(tx),
        join: Some(join),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::prometheus::{MetricsOptions, build_recorder};

    #[test]
    fn buckets_cover_values_within_their_bounds() {
        let mut prev_upper = None;
        for idx in 0..WINDOW_BUCKETS - 1 {
            let upper = bucket_upper_nanos(idx);
            assert_eq!(bucket_index(upper), idx, "upper of {idx}");
            if let Some(p) = prev_upper {
                assert_eq!(bucket_index(p + 1), idx, "lower of {idx}");
            }
            prev_upper = Some(upper);
        }
        assert_eq!(bucket_index(u64::MAX), WINDOW_BUCKETS - 1);
        // Relative width stays within 1/16.
        let i = bucket_index(50_000);
        assert!(bucket_upper_nanos(i) - 50_000 <= 50_000 / 16);
    }

    #[test]
    fn window_p99_is_the_bucket_of_the_99th_percentile() {
        let mut cur = vec![0u64; WINDOW_BUCKETS];
        // 990 fast samples of 2 µs, 10 slow ones of 200 µs.
        cur[bucket_index(2_000)] += 990;
        cur[bucket_index(200_000)] += 10;
        let prev = vec![0u64; WINDOW_BUCKETS];
        let (p99, n) = window_quantile(&prev, &cur, 0.99).unwrap();
        assert_eq!(n, 1000);
        assert_eq!(p99, bucket_upper_nanos(bucket_index(2_000)));
        // One more slow sample tips the 99th percentile into the slow bucket.
        cur[bucket_index(200_000)] += 1;
        let (p99, _) = window_quantile(&prev, &cur, 0.99).unwrap();
        assert!((200_000..=200_000 + 200_000 / 16).contains(&p99), "{p99}");
        // The window is the difference: with `cur` as the previous snapshot
        // and only fast samples since, p99 is fast again.
        let mut next = cur.clone();
        next[bucket_index(3_000)] += 100;
        let (p99, n) = window_quantile(&cur, &next, 0.99).unwrap();
        assert_eq!(n, 100);
        assert!(p99 < 4_000);
        assert_eq!(window_quantile(&next, &next, 0.99), None);
    }

    #[test]
    fn watch_flags_slow_windows_and_feeds_prometheus() {
        let (recorder, handle) = build_recorder(&MetricsOptions::default()).unwrap();
        let stats = DecisionStats::new();
        let (t1, t2) = metrics::with_local_recorder(&recorder, || (stats.timer(), stats.timer()));
        let mut watch = DecisionWatch::new(Arc::clone(&stats), Duration::from_micros(50));
        assert_eq!(watch.tick(), None);
        for _ in 0..200 {
            t1.record(Duration::from_micros(3));
        }
        let r = watch.tick().unwrap();
        assert_eq!(r.samples, 200);
        assert!(!r.exceeded);
        for _ in 0..50 {
            t1.record(Duration::from_micros(3));
            t2.record(Duration::from_micros(120));
        }
        let r = watch.tick().unwrap();
        assert_eq!(r.samples, 100);
        assert!(r.exceeded && r.p99 >= Duration::from_micros(120), "{r:?}");

        let text = handle.render();
        assert!(
            text.contains("# TYPE proxy_router_decision_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("proxy_router_decision_seconds_bucket{le=\"0.000005\"} 250\n"),
            "{text}"
        );
        assert!(
            text.contains("proxy_router_decision_seconds_bucket{le=\"0.00025\"} 300\n"),
            "{text}"
        );
        assert!(
            text.contains("proxy_router_decision_seconds_count 300\n"),
            "{text}"
        );
    }

    #[test]
    fn watcher_thread_stops_on_drop() {
        let stats = DecisionStats::new();
        let w = spawn_watcher(stats, Duration::from_millis(5), Duration::from_micros(50)).unwrap();
        thread::sleep(Duration::from_millis(15));
        drop(w);
    }
}
