//! The harness's own load driver: closed loop (each connection sends its
//! next request when the last answer ended, optionally on a new connection
//! each time), open loop at a fixed rate (wrk2-style timetable, latency
//! from the intended send time), and HTTP/2 multiplexed streams. One
//! current-thread tokio runtime per load thread (`threads`, one per load
//! core), connections spread over them, HTTP/1.1 on raw sockets ([`h1`]),
//! h2c on hyper's client ([`h2`]), optional pinned TLS.
//!
//! Per request: one write, usually one read, two clock reads, one histogram
//! record; no allocation, no lock, no timer (the window's end is checked
//! between requests; a target that stops answering is cut off by a
//! per-thread deadline 5 s after the window, not by per-request timeouts).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::h1::{self, Conn, Reader};
use super::tls::TlsClient;
use super::{LoadResult, Window, h2};
use crate::scenario::RequestSpec;

/// How long after the window's end requests still in flight are abandoned.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// How the driver sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// `conns` connections, each sending its next request when the last
    /// answer ended; with `new_conn`, every request on a new connection.
    Closed {
        /// Concurrent connections.
        conns: usize,
        /// A new connection (and TLS handshake) per request.
        new_conn: bool,
    },
    /// `rate` requests per second in total over `conns` keep-alive
    /// connections, each request due at a fixed time.
    Open {
        /// Requests per second, all connections together.
        rate: f64,
        /// Connections the rate is spread over.
        conns: usize,
    },
    /// HTTP/2 prior knowledge: `streams` closed-loop streams on each of
    /// `conns` connections.
    H2 {
        /// Connections.
        conns: usize,
        /// Concurrent streams per connection.
        streams: usize,
    },
}

impl Mode {
    fn conns(&self) -> usize {
        match *self {
            Self::Closed { conns, .. } | Self::Open { conns, .. } | Self::H2 { conns, .. } => conns,
        }
    }
}

/// One driver run.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Where to send.
    pub(crate) addr: SocketAddr,
    /// What to send and what a correct answer is.
    pub(crate) spec: RequestSpec,
    /// How.
    pub(crate) mode: Mode,
    /// TLS, pinned (None: cleartext).
    pub(crate) tls: Option<Arc<TlsClient>>,
    /// When.
    pub(crate) window: Window,
    /// Load threads (one current-thread runtime each).
    pub(crate) threads: usize,
}

/// Runs `job` on its own threads; returns when every thread is done.
pub(crate) async fn drive(job: Job) -> Result<LoadResult, String> {
    tokio::task::spawn_blocking(move || run(job))
        .await
        .map_err(|e| format!("driver: {e}"))?
}

/// The blocking form of [`drive`]; also measures the harness process's own
/// CPU time per answer (the load side's cost).
pub(crate) fn run(job: Job) -> Result<LoadResult, String> {
    let cpu0 = crate::procs::self_cpu_seconds().0;
    let threads = job.threads.clamp(1, job.mode.conns().max(1));
    let job = Arc::new(job);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let job = job.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("driver-{t}"))
                .spawn(move || thread_main(&job, t, threads))
                .map_err(|e| format!("driver thread: {e}"))?,
        );
    }
    let mut total = LoadResult::empty();
    for h in handles {
        total.absorb(h.join().map_err(|_| "driver thread panicked")??);
    }
    let cpu = crate::procs::self_cpu_seconds().0 - cpu0;
    if total.answered_total > 0 {
        total.load_cpu_us_per_req = Some(cpu * 1e6 / total.answered_total as f64);
    }
    Ok(total)
}

/// One connection task's shared state (the thread's deadline can abandon
/// the task and still read what it measured). Rc/RefCell: one thread.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) res: LoadResult,
    /// When the request in flight was sent (for abandoned requests).
    pub(crate) in_flight: Option<Instant>,
}

/// A connection task's slot.
pub(crate) type SlotRef = Rc<RefCell<Slot>>;

fn thread_main(job: &Arc<Job>, t: usize, threads: usize) -> Result<LoadResult, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("driver runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut slots: Vec<SlotRef> = Vec::new();
        let mut tasks = Vec::new();
        let mine = (t..job.mode.conns()).step_by(threads);
        let new_slot = |slots: &mut Vec<SlotRef>| {
            let s = Rc::new(RefCell::new(Slot {
                res: LoadResult::empty(),
                in_flight: None,
            }));
            slots.push(s.clone());
            s
        };
        match job.mode {
            Mode::Closed { new_conn, .. } => {
                for _ in mine {
                    let slot = new_slot(&mut slots);
                    tasks.push(tokio::task::spawn_local(closed(
                        job.clone(),
                        new_conn,
                        slot,
                    )));
                }
            }
            Mode::Open { rate, conns } => {
                let tt = Timetable { rate, conns };
                for c in mine {
                    let slot = new_slot(&mut slots);
                    tasks.push(tokio::task::spawn_local(open(job.clone(), tt, c, slot)));
                }
            }
            Mode::H2 { streams, .. } => {
                for _ in mine {
                    let conn_slots: Vec<SlotRef> =
                        (0..streams).map(|_| new_slot(&mut slots)).collect();
                    tasks.push(tokio::task::spawn_local(h2::connection(
                        job.clone(),
                        conn_slots,
                    )));
                }
            }
        }
        let deadline = tokio::time::Instant::from_std(job.window.end + GRACE);
        for task in &mut tasks {
            if tokio::time::timeout_at(deadline, &mut *task).await.is_err() {
                break;
            }
        }
        for task in &tasks {
            task.abort();
        }
        let mut total = LoadResult::empty();
        for s in slots {
            let mut s = s.borrow_mut();
            // A request still unanswered blocked its connection through the
            // window: an error even when it was sent during the warm-up.
            if let Some(sent) = s.in_flight.take()
                && sent < job.window.end
            {
                s.res.error(true, || {
                    format!(
                        "no answer within {} s after the window ended",
                        GRACE.as_secs()
                    )
                });
            }
            total.absorb(std::mem::replace(&mut s.res, LoadResult::empty()));
        }
        Ok(total)
    })
}

/// A duration in whole µs.
pub(crate) fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

/// Makes sure `conn` is open (connecting, and handshaking for TLS), then
/// sends `req` and reads the answer. A GET on a reused keep-alive
/// connection that the server closed before a byte of the answer arrived
/// is sent once more on a new connection, as HTTP clients do for
/// idempotent requests (counted in `retried`).
async fn attempt(
    job: &Job,
    conn: &mut Option<Conn>,
    rd: &mut Reader,
    req: &[u8],
    slot: &SlotRef,
) -> Result<h1::Answer, String> {
    let mut reused = conn.is_some();
    loop {
        if conn.is_none() {
            let c = Conn::connect(job.addr, job.tls.as_deref()).await?;
            if let Some(n) = c.negotiated() {
                let mut s = slot.borrow_mut();
                if s.res.tls.is_none() {
                    s.res.tls = Some(n);
                }
            }
            rd.clear();
            *conn = Some(c);
        }
        let c = conn.as_mut().expect("connected above");
        match h1::exchange(c, req, rd).await {
            Ok(a) => return Ok(a),
            Err(f) if reused && f.unanswered && job.spec.upload.is_none() => {
                *conn = None;
                reused = false;
                slot.borrow_mut().res.retried += 1;
            }
            Err(f) => return Err(f.msg),
        }
    }
}

/// Pause after a failed request so a refused target is not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(1);

/// One closed-loop connection.
async fn closed(job: Arc<Job>, new_conn: bool, slot: SlotRef) {
    let w = job.window;
    let mut spec = job.spec.clone();
    spec.close = spec.close || new_conn;
    let req = h1::request_bytes(&spec, job.addr);
    let mut rd = Reader::new();
    let mut conn: Option<Conn> = None;
    tokio::time::sleep_until(w.load_start.into()).await;
    loop {
        let t0 = Instant::now();
        if t0 >= w.end {
            break;
        }
        slot.borrow_mut().in_flight = Some(t0);
        let out = attempt(&job, &mut conn, &mut rd, &req, &slot).await;
        let t1 = Instant::now();
        let counted = w.contains(t0, t1);
        let failed = {
            let mut s = slot.borrow_mut();
            s.in_flight = None;
            match out.and_then(|a| a.check(&spec).map(|()| a)) {
                Ok(a) => {
                    s.res.answered(counted, micros(t1 - t0));
                    if counted {
                        s.res.body_bytes += a.body_len as u64;
                    }
                    if a.close || new_conn {
                        conn = None;
                    }
                    false
                }
                Err(e) => {
                    conn = None;
                    s.res.error(counted, || e);
                    true
                }
            }
        };
        if failed {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
}

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

/// One open-loop connection. Latency is measured from the intended send
/// time when the connection was still busy then (coordinated-omission
/// free), and from the actual send when it was idle (so the runtime's
/// timer lateness, up to its 1 ms tick, is not charged to the target).
async fn open(job: Arc<Job>, tt: Timetable, c: usize, slot: SlotRef) {
    let w = job.window;
    let req = h1::request_bytes(&job.spec, job.addr);
    let mut rd = Reader::new();
    let mut conn: Option<Conn> = None;
    let mut prev_done = w.load_start;
    for i in 0u64.. {
        let due = w.load_start + tt.due(c, i);
        if due >= w.end {
            break;
        }
        let counted = due >= w.start;
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let sent = Instant::now();
        let from = if prev_done <= due { sent } else { due };
        slot.borrow_mut().in_flight = Some(from);
        let out = attempt(&job, &mut conn, &mut rd, &req, &slot).await;
        let done = Instant::now();
        prev_done = done;
        let mut s = slot.borrow_mut();
        s.in_flight = None;
        match out.and_then(|a| a.check(&job.spec).map(|()| a)) {
            Ok(a) => {
                // Throughput counts answers inside the window; latency
                // counts every request due in it, however late its answer.
                s.res
                    .answered(counted && done <= w.end, micros(done - from));
                if counted && done > w.end {
                    s.res.late(micros(done - from));
                }
                if a.close {
                    conn = None;
                }
            }
            Err(e) => {
                conn = None;
                s.res.error(counted, || e);
            }
        }
    }
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
    }
}

#[cfg(test)]
mod wire_tests {
    //! The driver against a real backend on 127.0.0.1: correct answers are
    //! counted, wrong ones (another backend, a short body) are errors.
    use super::*;
    use crate::load::tls::{TlsClient, TlsPin};

    /// Serves `harness backend`'s handler as `name` with a `body`-byte
    /// answer (TLS with `certs`) on a thread of its own; its address.
    fn backend(
        name: &'static str,
        body: usize,
        certs: Option<&crate::certs::CertFiles>,
    ) -> SocketAddr {
        slow_backend(name, body, certs, Duration::ZERO)
    }

    /// [`backend`] answering after `delay`.
    fn slow_backend(
        name: &'static str,
        body: usize,
        certs: Option<&crate::certs::CertFiles>,
        delay: Duration,
    ) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let tls = certs.map(|c| {
            tokio_rustls::TlsAcceptor::from(crate::certs::server_config(&c.cert, &c.key).unwrap())
        });
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                crate::backend::serve(
                    tokio::net::TcpListener::from_std(l).unwrap(),
                    http::HeaderValue::from_static(name),
                    crate::backend::body_of_size(body),
                    false,
                    delay,
                    tls,
                )
                .await
            });
        });
        addr
    }

    fn job(addr: SocketAddr, mode: Mode, tls: Option<Arc<TlsClient>>) -> Job {
        Job {
            addr,
            spec: RequestSpec::get("/", None, 12),
            mode,
            tls,
            window: Window::new(Duration::from_millis(20), Duration::from_millis(100), 0.4),
            threads: 2,
        }
    }

    const CLOSED: Mode = Mode::Closed {
        conns: 4,
        new_conn: false,
    };

    #[test]
    fn correct_answers_count_and_wrong_ones_are_errors() {
        let good = run(job(backend("main", 12, None), CLOSED, None)).unwrap();
        assert!(good.requests > 100, "{}", good.requests);
        assert_eq!(good.errors, 0, "{:?}", good.first_error);
        assert_eq!(good.hist.len(), good.requests);
        assert!(good.answered_total >= good.requests);
        assert!(good.load_cpu_us_per_req.is_some());

        let elsewhere = run(job(backend("fallback", 12, None), CLOSED, None)).unwrap();
        assert_eq!(elsewhere.requests, 0);
        assert!(elsewhere.errors > 0);
        assert!(elsewhere.first_error.unwrap().contains("not main"));

        let short = run(job(backend("main", 11, None), CLOSED, None)).unwrap();
        assert_eq!(short.requests, 0);
        assert!(
            short
                .first_error
                .unwrap()
                .contains("body 11 bytes, want 12")
        );
    }

    #[test]
    fn open_loop_new_connections_h2c_and_refused() {
        let addr = backend("main", 12, None);
        let open = run(job(
            addr,
            Mode::Open {
                rate: 2000.0,
                conns: 10,
            },
            None,
        ))
        .unwrap();
        assert_eq!(open.errors, 0, "{:?}", open.first_error);
        // 0.4 s at 2,000 req/s: about 800 in the window.
        assert!((600..=900).contains(&open.requests), "{}", open.requests);
        assert!(open.hist.len() >= open.requests);
        // A target slower than the offered rate: fewer answers than offered
        // inside the window, and the late ones' latency still recorded.
        let slow = slow_backend("main", 12, None, Duration::from_millis(10));
        let behind = run(job(
            slow,
            Mode::Open {
                rate: 1000.0,
                conns: 1,
            },
            None,
        ))
        .unwrap();
        assert!(behind.requests < 100, "{}", behind.requests);
        assert!(behind.hist.len() > behind.requests);
        assert!(
            behind.hist.max() > 100_000,
            "late answers wait for their turn"
        );
        let fresh = Mode::Closed {
            conns: 4,
            new_conn: true,
        };
        let nc = run(job(addr, fresh, None)).unwrap();
        assert!(nc.requests > 20 && nc.errors == 0, "{:?}", nc.first_error);
        let h2 = run(job(
            addr,
            Mode::H2 {
                conns: 1,
                streams: 8,
            },
            None,
        ))
        .unwrap();
        assert!(h2.requests > 100 && h2.errors == 0, "{:?}", h2.first_error);

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let refused = run(job(dead, CLOSED, None)).unwrap();
        assert_eq!(refused.requests, 0);
        assert!(refused.first_error.unwrap().contains("connect"));

        // A target that accepts and never answers: cut off after the grace
        // period, every connection's request an error.
        let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let t0 = Instant::now();
        let hung = run(job(mute.local_addr().unwrap(), CLOSED, None)).unwrap();
        assert!(t0.elapsed() < GRACE + Duration::from_secs(5));
        assert_eq!((hung.requests, hung.errors), (0, 4));
        assert!(hung.first_error.unwrap().contains("no answer within"));
    }

    /// Answers one request per connection, then closes the connection
    /// when the next request arrives, without answering it (what a server
    /// that drops idle keep-alive connections, e.g. while reloading, does).
    fn one_answer_per_connection() -> SocketAddr {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    if s.read(&mut buf).unwrap_or(0) > 0 {
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nx-backend: main\r\ncontent-length: 12\r\n\r\nhello world\n",
                        );
                    }
                    let _ = s.read(&mut buf);
                });
            }
        });
        addr
    }

    #[test]
    fn a_kept_alive_connection_closed_unanswered_is_retried_once() {
        let addr = one_answer_per_connection();
        let r = run(job(addr, CLOSED, None)).unwrap();
        assert_eq!(r.errors, 0, "{:?}", r.first_error);
        assert!(r.requests > 20, "{}", r.requests);
        assert!(
            r.retried >= r.requests / 2,
            "{} retried of {}",
            r.retried,
            r.requests
        );
        // An upload is not idempotent: it is not sent again.
        let mut j = job(addr, CLOSED, None);
        j.spec.upload = Some(10);
        let r = run(j).unwrap();
        assert_eq!(r.retried, 0);
        assert!(r.errors > 0);
    }

    #[test]
    fn tls_is_pinned_and_reported() {
        let dir = std::env::temp_dir().join(format!("harness-drv-tls-{}", std::process::id()));
        let certs = crate::certs::generate(&dir, crate::certs::CertKey::default()).unwrap();
        let addr = backend("main", 12, Some(&certs));
        let client = Arc::new(TlsClient::new(&TlsPin::default(), &certs.cert).unwrap());
        for mode in [
            CLOSED,
            Mode::Closed {
                conns: 2,
                new_conn: true,
            },
        ] {
            let r = run(job(addr, mode, Some(client.clone()))).unwrap();
            assert!(r.requests > 10 && r.errors == 0, "{:?}", r.first_error);
            let n = r.tls.unwrap();
            assert_eq!(
                (
                    n.version.as_str(),
                    n.cipher_suite.as_str(),
                    n.group.as_str()
                ),
                ("TLSv1_3", "TLS13_AES_128_GCM_SHA256", "X25519")
            );
        }
        // A pin the server cannot meet fails every handshake.
        let tls12 = TlsPin {
            version: crate::load::tls::TlsVersion::V1_2,
            cipher_suite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            group: "X25519".into(),
        };
        let rsa_only = Arc::new(TlsClient::new(&tls12, &certs.cert).unwrap());
        let r = run(job(addr, CLOSED, Some(rsa_only))).unwrap();
        assert_eq!(r.requests, 0);
        assert!(r.first_error.unwrap().contains("TLS handshake"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
