//! The load drivers. Closed loop with goose (each request timed inside the
//! goose transaction into a µs hdrhistogram, since goose's own metrics are
//! whole milliseconds); open loop at a fixed rate and HTTP/2 multiplexed
//! load on hyper (goose does neither).
//!
//! Every driver is bounded by a [`Window`]: it sends from its start (warm-up
//! included) until `window.end`, records only requests inside the measured
//! window, and keeps its state per task (one histogram each, merged at the
//! end): no locks while load runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use hdrhistogram::Histogram;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::scenario::RequestSpec;
use crate::stats::{merge, new_histogram, record_us};

/// The measured part of a run. Load starts before `start` (warm-up) and
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

    fn contains(&self, from: Instant, to: Instant) -> bool {
        from >= self.start && to <= self.end
    }

    /// Measured length in seconds.
    pub(crate) fn secs(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

/// What a driver measured inside the window.
#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    /// Latency of correct answers, µs.
    pub(crate) hist: Histogram<u64>,
    /// Wrong or failed requests inside the window.
    pub(crate) errors: u64,
    /// The first error seen, for the report.
    pub(crate) first_error: Option<String>,
}

impl LoadResult {
    fn empty() -> Self {
        Self {
            hist: new_histogram(),
            errors: 0,
            first_error: None,
        }
    }

    fn absorb(&mut self, other: LoadResult) {
        merge(&mut self.hist, &other.hist);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn error(&mut self, counted: bool, e: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(e());
            }
        }
    }
}

/// Checks one answer: status 200, from the `main` backend, body length.
fn check(
    status: StatusCode,
    backend: Option<&[u8]>,
    len: usize,
    spec: &RequestSpec,
) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("status {status}"));
    }
    if backend != Some(b"main") {
        return Err(format!(
            "answered by backend {:?}, not main (routing went elsewhere)",
            backend.map(String::from_utf8_lossy)
        ));
    }
    if len != spec.expect_len {
        return Err(format!("body {len} bytes, want {}", spec.expect_len));
    }
    Ok(())
}

// === closed loop: goose ===

/// Per-user state, kept in goose's session data.
#[derive(Clone)]
struct UserStats(LoadResult);

/// Runs goose users against `base` (`http://127.0.0.1:PORT`).
pub(crate) async fn closed(
    base: &str,
    spec: &RequestSpec,
    users: usize,
    new_conn: bool,
    window: Window,
) -> Result<LoadResult, String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LoadResult>();
    let spec = Arc::new(spec.clone());
    let upload = spec.upload.map(|n| Bytes::from(vec![b'x'; n]));

    let on_start: TransactionFunction = Arc::new(move |user| {
        Box::pin(async move {
            user.set_session_data(UserStats(LoadResult::empty()));
            if new_conn {
                user.set_client_builder(
                    reqwest::Client::builder()
                        .pool_max_idle_per_host(0)
                        .tcp_nodelay(true),
                )
                .await?;
            }
            Ok(())
        })
    });
    let spec2 = spec.clone();
    let request: TransactionFunction = Arc::new(move |user| {
        let spec = spec2.clone();
        let upload = upload.clone();
        Box::pin(async move {
            let now = Instant::now();
            if now >= window.end {
                // Past the window: stay idle until goose stops.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Ok(());
            }
            let method = if upload.is_some() {
                GooseMethod::Post
            } else {
                GooseMethod::Get
            };
            let mut rb = user.get_request_builder(&method, &spec.path)?;
            if let Some(h) = &spec.host {
                rb = rb.header(http::header::HOST, h.as_str());
            }
            if let Some(b) = upload {
                rb = rb.body(b);
            }
            let greq = GooseRequest::builder().set_request_builder(rb).build();
            let t0 = Instant::now();
            let outcome = match user.request(greq).await {
                Ok(g) => match g.response {
                    Ok(resp) => {
                        let status = resp.status();
                        let backend = resp.headers().get("x-backend").cloned();
                        match resp.bytes().await {
                            Ok(b) => check(
                                status,
                                backend.as_ref().map(|v| v.as_bytes()),
                                b.len(),
                                &spec,
                            ),
                            Err(e) => Err(format!("reading body: {e}")),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(format!("{e:?}")),
            };
            let t1 = Instant::now();
            let counted = window.contains(t0, t1);
            if let Some(UserStats(st)) = user.get_session_data_mut::<UserStats>() {
                match outcome {
                    Ok(()) if counted => record_us(&mut st.hist, (t1 - t0).as_micros() as u64),
                    Ok(()) => {}
                    Err(e) => st.error(counted, || e),
                }
            }
            Ok(())
        })
    });
    let on_stop: TransactionFunction = Arc::new(move |user| {
        let tx = tx.clone();
        Box::pin(async move {
            if let Some(UserStats(st)) = user.get_session_data_mut::<UserStats>() {
                let _ = tx.send(std::mem::replace(st, LoadResult::empty()));
            }
            Ok(())
        })
    });

    let run_time = ((window.end - Instant::now()).as_secs_f64().ceil() as u64).max(1);
    let args: Vec<String> = [
        "--host",
        base,
        "--users",
        &users.to_string(),
        "--increase-rate",
        "1000",
        "--run-time",
        &run_time.to_string(),
        "--no-metrics",
        "--no-print-metrics",
        "--no-error-summary",
        "--no-telnet",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let config =
        GooseConfiguration::parse_args_default(&args).map_err(|e| format!("goose config: {e}"))?;
    let scenario = scenario!("Load")
        .register_transaction(Transaction::new(on_start).set_on_start())
        .register_transaction(Transaction::new(request))
        .register_transaction(Transaction::new(on_stop).set_on_stop());
    let started = tokio::time::timeout(
        window.end - Instant::now() + Duration::from_secs(30),
        async {
            GooseAttack::initialize_with_config(config)
                .map_err(|e| e.to_string())?
                .register_scenario(scenario)
                .execute()
                .await
                .map_err(|e| format!("goose: {e}"))
        },
    )
    .await;
    match started {
        Ok(r) => {
            r?;
        }
        Err(_) => return Err("goose did not stop 30 s after its run time".into()),
    }
    let mut total = LoadResult::empty();
    rx.close();
    while let Some(r) = rx.recv().await {
        total.absorb(r);
    }
    Ok(total)
}

// === hyper helpers ===

fn build_request(
    spec: &RequestSpec,
    authority: &str,
    absolute: bool,
    upload: &Option<Bytes>,
) -> Request<Full<Bytes>> {
    let uri = if absolute {
        format!(
            "http://{}{}",
            spec.host.as_deref().unwrap_or(authority),
            spec.path
        )
    } else {
        spec.path.clone()
    };
    let mut b = Request::builder()
        .method(if upload.is_some() {
            Method::POST
        } else {
            Method::GET
        })
        .uri(uri);
    if !absolute {
        b = b.header(
            http::header::HOST,
            spec.host.as_deref().unwrap_or(authority),
        );
    }
    b.body(Full::new(upload.clone().unwrap_or_default()))
        .expect("valid request")
}

async fn read_answer(resp: hyper::Response<Incoming>, spec: &RequestSpec) -> Result<(), String> {
    let status = resp.status();
    let backend = resp.headers().get("x-backend").cloned();
    let mut body = resp.into_body();
    let mut len = 0usize;
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| format!("reading body: {e}"))?;
        len += f.data_ref().map_or(0, |d| d.len());
    }
    check(status, backend.as_ref().map(|v| v.as_bytes()), len, spec)
}

type H1Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn h1_connect(addr: std::net::SocketAddr) -> Result<H1Sender, String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(send)
}

/// One HTTP/1.1 request on a fresh connection: (status, `x-backend`).
/// For readiness probes and route-live checks, not for load.
pub(crate) async fn probe(
    addr: std::net::SocketAddr,
    host: Option<&str>,
    path: &str,
) -> Result<(StatusCode, Option<String>), String> {
    let fut = async {
        let mut send = h1_connect(addr).await?;
        let req = Request::builder()
            .uri(path)
            .header(
                http::header::HOST,
                host.map_or_else(|| addr.to_string(), str::to_owned),
            )
            .header(http::header::CONNECTION, "close")
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let backend = resp
            .headers()
            .get("x-backend")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = resp.into_body().collect().await;
        Ok((status, backend))
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .unwrap_or_else(|_| Err("probe timed out".into()))
}

// === open loop: fixed rate ===

/// The open-loop schedule: request `k` overall is due at `k / rate`;
/// connection `c` of `conns` sends requests `c, c + conns, c + 2·conns, …`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timetable {
    /// Requests per second overall.
    pub(crate) rate: f64,
    /// Connections sharing the rate.
    pub(crate) conns: usize,
}

impl Timetable {
    /// When connection `conn` is due to send its `i`-th request, from the
    /// start of the schedule.
    pub(crate) fn due(&self, conn: usize, i: u64) -> Duration {
        let k = i as f64 * self.conns as f64 + conn as f64;
        Duration::from_secs_f64(k / self.rate)
    }
}

/// Drives `rate` req/s over `conns` keep-alive connections to `addr`.
/// Latency is measured from each request's intended send time when the
/// connection was still busy then (coordinated omission free), and from the
/// actual send when the connection was idle (so our own timer's lateness is
/// not charged to the target).
pub(crate) async fn open(
    addr: std::net::SocketAddr,
    spec: &RequestSpec,
    rate: u64,
    conns: usize,
    window: Window,
) -> Result<LoadResult, String> {
    let tt = Timetable {
        rate: rate as f64,
        conns,
    };
    let upload = spec.upload.map(|n| Bytes::from(vec![b'x'; n]));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let spec = spec.clone();
        let upload = upload.clone();
        tasks.push(tokio::spawn(async move {
            let mut st = LoadResult::empty();
            let authority = addr.to_string();
            let mut send: Option<H1Sender> = None;
            let mut prev_done = window.load_start;
            for i in 0u64.. {
                let due = window.load_start + tt.due(c, i);
                if due >= window.end {
                    break;
                }
                let counted = due >= window.start;
                tokio::time::sleep_until(due.into()).await;
                let sent_at = Instant::now();
                let from = if prev_done <= due { sent_at } else { due };
                if send.as_ref().is_none_or(|s| s.is_closed()) {
                    match h1_connect(addr).await {
                        Ok(s) => send = Some(s),
                        Err(e) => {
                            st.error(counted, || e);
                            prev_done = Instant::now();
                            continue;
                        }
                    }
                }
                let s = send.as_mut().expect("connected above");
                let out = match s.ready().await {
                    Ok(()) => match s
                        .send_request(build_request(&spec, &authority, false, &upload))
                        .await
                    {
                        Ok(resp) => read_answer(resp, &spec).await,
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                };
                let done = Instant::now();
                prev_done = done;
                match out {
                    Ok(()) if counted => record_us(&mut st.hist, (done - from).as_micros() as u64),
                    Ok(()) => {}
                    Err(e) => {
                        send = None;
                        st.error(counted, || e);
                    }
                }
            }
            st
        }));
    }
    let mut total = LoadResult::empty();
    for t in tasks {
        total.absorb(t.await.map_err(|e| e.to_string())?);
    }
    Ok(total)
}

// === HTTP/2 multiplexed (h2c prior knowledge) ===

/// `streams` closed-loop streams on each of `conns` h2c connections.
pub(crate) async fn h2(
    addr: std::net::SocketAddr,
    spec: &RequestSpec,
    conns: usize,
    streams: usize,
    window: Window,
) -> Result<LoadResult, String> {
    tokio::time::sleep_until(window.load_start.into()).await;
    let upload = spec.upload.map(|n| Bytes::from(vec![b'x'; n]));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = s.set_nodelay(true);
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                .await
                .map_err(|e| format!("h2c handshake with {addr}: {e}"))?;
        tokio::spawn(conn);
        for _ in 0..streams {
            let mut send = send.clone();
            let spec = spec.clone();
            let upload = upload.clone();
            tasks.push(tokio::spawn(async move {
                let mut st = LoadResult::empty();
                let authority = addr.to_string();
                while Instant::now() < window.end {
                    let t0 = Instant::now();
                    let out = match send.ready().await {
                        Ok(()) => match send
                            .send_request(build_request(&spec, &authority, true, &upload))
                            .await
                        {
                            Ok(resp) => read_answer(resp, &spec).await,
                            Err(e) => Err(e.to_string()),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    let t1 = Instant::now();
                    let counted = window.contains(t0, t1);
                    match out {
                        Ok(()) if counted => record_us(&mut st.hist, (t1 - t0).as_micros() as u64),
                        Ok(()) => {}
                        Err(e) => {
                            let closed = send.is_closed();
                            st.error(counted, || e);
                            if closed {
                                st.error(true, || "h2c connection closed".into());
                                break;
                            }
                        }
                    }
                }
                st
            }));
        }
    }
    let mut total = LoadResult::empty();
    for t in tasks {
        total.absorb(t.await.map_err(|e| e.to_string())?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timetable_spreads_the_rate_over_connections() {
        let tt = Timetable {
            rate: 5000.0,
            conns: 50,
        };
        // Each connection sends every conns/rate = 10 ms.
        assert_eq!(tt.due(0, 1) - tt.due(0, 0), Duration::from_millis(10));
        assert_eq!(tt.due(7, 3) - tt.due(7, 2), Duration::from_millis(10));
        // Together they cover k/rate for every k exactly once.
        let mut all: Vec<Duration> = (0..50)
            .flat_map(|c| (0..20).map(move |i| tt.due(c, i)))
            .collect();
        all.sort();
        for (k, d) in all.iter().enumerate() {
            let want = Duration::from_secs_f64(k as f64 / 5000.0);
            assert!(d.abs_diff(want) < Duration::from_nanos(10), "{k}: {d:?}");
        }
        // One second of schedule holds exactly `rate` requests.
        let n = all
            .iter()
            .filter(|d| **d < Duration::from_secs(1) / 5)
            .count();
        assert_eq!(n, 1000);
    }

    #[test]
    fn check_rejects_wrong_backend_and_length() {
        let spec = RequestSpec {
            path: "/".into(),
            host: None,
            upload: None,
            expect_len: 12,
        };
        assert!(check(StatusCode::OK, Some(b"main"), 12, &spec).is_ok());
        assert!(check(StatusCode::OK, Some(b"fallback"), 12, &spec).is_err());
        assert!(check(StatusCode::OK, Some(b"main"), 11, &spec).is_err());
        assert!(check(StatusCode::NOT_FOUND, Some(b"main"), 12, &spec).is_err());
    }
}
