//! The load side: what every driver shares (the measured [`Window`], the
//! [`LoadResult`] it returns, the check every answer must pass) and the
//! drivers themselves:
//!
//! - [`driver`]: the harness's own closed-loop / open-loop HTTP/1.1 and h2c
//!   driver on raw sockets, one current-thread runtime per load core, with
//!   optional pinned TLS ([`tls`]); it drives every per-request scenario;
//! - [`idle`]: many keep-alive connections that answer once, then sit idle;
//! - [`goose`]: goose users (one run per report, beside the driver's);
//! - [`wrk`]: wrk itself, to show the driver keeps up with it.
//!
//! Every driver is bounded by a [`Window`]: it sends from its start (warm-up
//! included) until `window.end` and records only requests inside the
//! measured window. State is per connection task (one histogram each,
//! merged at the end): no locks while load runs.

pub(crate) mod driver;
pub(crate) mod goose;
pub(crate) mod h1;
pub(crate) mod h2;
pub(crate) mod idle;
pub(crate) mod tls;
pub(crate) mod wrk;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::scenario::RequestSpec;
use crate::stats::{Percentiles, merge, new_histogram, record_us};

/// The measured part of a run. Load starts at `load_start` (warm-up) and
/// stops at `end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// When load begins (warm-up starts).
    pub(crate) load_start: Instant,
    /// When measuring begins.
    pub(crate) start: Instant,
    /// When measuring and load end.
    pub(crate) end: Instant,
}

impl Window {
    /// A window starting `lead` from now, after `warmup`, lasting `secs`.
    pub(crate) fn new(lead: Duration, warmup: Duration, secs: f64) -> Self {
        let load_start = Instant::now() + lead;
        let start = load_start + warmup;
        Self {
            load_start,
            start,
            end: start + Duration::from_secs_f64(secs),
        }
    }

    /// Whether a request sent at `from` and answered at `to` is measured.
    pub(crate) fn contains(&self, from: Instant, to: Instant) -> bool {
        from >= self.start && to <= self.end
    }

    /// Measured length in seconds.
    pub(crate) fn secs(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }

    /// Warm-up plus measured length in seconds.
    pub(crate) fn total_secs(&self) -> f64 {
        (self.end - self.load_start).as_secs_f64()
    }
}

/// The TLS parameters a connection negotiated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Negotiated {
    /// Protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Cipher suite, IANA name, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
    /// Key exchange group, e.g. `X25519`.
    pub group: String,
}

/// What a driver measured inside the window.
#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    /// Latency of correct answers, µs (empty for wrk, which keeps its own).
    pub(crate) hist: Histogram<u64>,
    /// Correct answers inside the window.
    pub(crate) requests: u64,
    /// Wrong or failed requests inside the window.
    pub(crate) errors: u64,
    /// The first error seen, for the report.
    pub(crate) first_error: Option<String>,
    /// Correct answers over the whole run, warm-up included (what an
    /// access log should have a line for).
    pub(crate) answered_total: u64,
    /// The TLS parameters every connection negotiated (TLS runs).
    pub(crate) tls: Option<Negotiated>,
    /// Latency percentiles reported by an external tool (wrk), when there
    /// is no histogram.
    pub(crate) external_latency: Option<Percentiles>,
    /// How long an external tool measured, when not exactly the window.
    pub(crate) measured_secs: Option<f64>,
    /// CPU time the load tool itself spent per correct answer, µs (the
    /// harness process for the driver, the child for wrk).
    pub(crate) load_cpu_us_per_req: Option<f64>,
    /// CPU seconds a load tool outside this process (wrk) used in the window.
    pub(crate) external_cpu_secs: Option<f64>,
    /// Requests sent again on a new connection because the target closed a
    /// kept-alive one before answering (see [`driver`]).
    pub(crate) retried: u64,
    /// Body bytes of the correct answers inside the window (the HTTP/1.1
    /// driver; what `compress` reports per answer).
    pub(crate) body_bytes: u64,
}

impl LoadResult {
    /// Nothing measured yet.
    pub(crate) fn empty() -> Self {
        Self {
            hist: new_histogram(),
            requests: 0,
            errors: 0,
            first_error: None,
            answered_total: 0,
            tls: None,
            external_latency: None,
            measured_secs: None,
            load_cpu_us_per_req: None,
            external_cpu_secs: None,
            retried: 0,
            body_bytes: 0,
        }
    }

    /// Adds another task's result.
    pub(crate) fn absorb(&mut self, other: LoadResult) {
        merge(&mut self.hist, &other.hist);
        self.requests += other.requests;
        self.errors += other.errors;
        self.answered_total += other.answered_total;
        self.retried += other.retried;
        self.body_bytes += other.body_bytes;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        if self.tls.is_none() {
            self.tls = other.tls;
        }
    }

    /// Counts a failed request (when inside the window) and keeps the first
    /// error's text.
    pub(crate) fn error(&mut self, counted: bool, e: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(e());
            }
        }
    }

    /// Counts a correct answer of `us` microseconds.
    pub(crate) fn answered(&mut self, counted: bool, us: u64) {
        self.answered_total += 1;
        if counted {
            self.requests += 1;
            record_us(&mut self.hist, us);
        }
    }

    /// Records the latency of a request due inside the window but answered
    /// after it (open loop): its latency counts, its answer does not count
    /// toward the window's throughput.
    pub(crate) fn late(&mut self, us: u64) {
        record_us(&mut self.hist, us);
    }

    /// The latency percentiles: from the histogram, else the external tool's.
    pub(crate) fn percentiles(&self) -> Percentiles {
        match &self.external_latency {
            Some(p) if self.hist.is_empty() => *p,
            _ => Percentiles::of(&self.hist),
        }
    }
}

/// Checks one answer: status 200, from the `main` backend, body length.
pub(crate) fn check(
    status: u16,
    backend: Option<&[u8]>,
    len: usize,
    spec: &RequestSpec,
) -> Result<(), String> {
    if status != 200 {
        return Err(format!("status {status}"));
    }
    if backend != Some(b"main") {
        return Err(format!(
            "answered by backend {:?}, not main (routing went elsewhere)",
            backend.map(String::from_utf8_lossy)
        ));
    }
    if spec.compressed {
        if len == 0 || len >= spec.expect_len {
            return Err(format!(
                "body {len} bytes, want a compressed answer (under {} bytes)",
                spec.expect_len
            ));
        }
    } else if len != spec.expect_len {
        return Err(format!("body {len} bytes, want {}", spec.expect_len));
    }
    Ok(())
}

/// One HTTP/1.1 request like `spec`'s on a fresh connection (TLS when
/// `tls` is given), answered correctly or an error. For readiness probes
/// and route-live checks, not for load; bounded by 2 s.
pub(crate) async fn probe(
    addr: SocketAddr,
    spec: &RequestSpec,
    tls: Option<&tls::TlsClient>,
) -> Result<(), String> {
    let fut = async {
        let mut conn = h1::Conn::connect(addr, tls).await?;
        let close = RequestSpec {
            close: true,
            ..spec.clone()
        };
        let req = h1::request_bytes(&close, addr);
        let mut rd = h1::Reader::with_capacity(16 * 1024);
        h1::exchange(&mut conn, &req, &mut rd).await?.check(spec)
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .unwrap_or_else(|_| Err("probe timed out".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_rejects_wrong_status_backend_and_length() {
        let spec = RequestSpec::get("/", None, 12);
        assert!(check(200, Some(b"main"), 12, &spec).is_ok());
        assert!(check(200, Some(b"fallback"), 12, &spec).is_err());
        assert!(check(200, None, 12, &spec).is_err());
        assert!(check(200, Some(b"main"), 11, &spec).is_err());
        assert!(check(404, Some(b"main"), 12, &spec).is_err());
        let gz = RequestSpec {
            compressed: true,
            ..RequestSpec::get("/", None, 16384)
        };
        assert!(check(200, Some(b"main"), 3000, &gz).is_ok());
        assert!(
            check(200, Some(b"main"), 16384, &gz).is_err(),
            "not compressed"
        );
        assert!(check(200, Some(b"main"), 0, &gz).is_err());
    }

    #[test]
    fn results_absorb_counts_and_keep_the_first_error() {
        let mut a = LoadResult::empty();
        a.answered(true, 10);
        a.answered(false, 10);
        let mut b = LoadResult::empty();
        b.error(true, || "first".into());
        b.error(true, || "second".into());
        b.error(false, || "outside".into());
        a.absorb(b);
        assert_eq!((a.requests, a.answered_total, a.errors), (1, 2, 2));
        assert_eq!(a.first_error.as_deref(), Some("first"));
        assert_eq!(a.hist.len(), 1);
    }
}
