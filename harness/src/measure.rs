//! One measured window against one running target: the load (driver,
//! goose or wrk, as the scenario says), and sampled at the window's edges
//! on a thread of their own: CPU of the target's process tree, busy time of
//! the load and target cores, its `/metrics` (the proxy's router-decision
//! histogram), its access-log lines; for reload-storm, a thread rewriting
//! its configuration every 100 ms and then the time a new route takes to
//! answer; for idle-conns, its memory before and while N connections sit
//! idle.
//!
//! Runs once per round and target; the load itself is in [`crate::load`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::launch::{Reloader, Running};
use crate::load::driver::{self, Job, Mode};
use crate::load::tls::TlsClient;
use crate::load::{LoadResult, Window, goose, idle, wrk};
use crate::procs;
use crate::prom;
use crate::results::{ReloadFigures, Round, SATURATED_PCT};
use crate::scenario::{self, Load, RequestSpec, Scenario};
use crate::stats::{self, Percentiles};

/// What every measurement of a run shares.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Warm-up before each measured window, seconds.
    pub(crate) warmup: f64,
    /// Cores of the load generator and backend.
    pub(crate) load_cpus: Vec<usize>,
    /// Cores of the process under test.
    pub(crate) sut_cpus: Vec<usize>,
    /// Whether processes are pinned.
    pub(crate) pinned: bool,
    /// Driver threads.
    pub(crate) threads: usize,
    /// The pinned TLS client (when a TLS scenario runs).
    pub(crate) tls: Option<Arc<TlsClient>>,
    /// wrk, when installed.
    pub(crate) wrk: Option<PathBuf>,
    /// Connections idle-conns holds.
    pub(crate) idle_conns: usize,
}

impl Ctx {
    fn load_pin(&self) -> Option<&[usize]> {
        self.pinned.then_some(self.load_cpus.as_slice())
    }

    fn tls_for(&self, s: &Scenario) -> Option<Arc<TlsClient>> {
        if s.tls { self.tls.clone() } else { None }
    }
}

/// Which load tool a window uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// The harness's driver (or goose, when the scenario says so).
    Own,
    /// wrk (driver-vs-wrk).
    Wrk,
}

/// Figures sampled at a window edge.
struct Sample {
    /// The target's process tree: (user, system) seconds.
    cpu: Option<(f64, f64)>,
    /// The load side's own processes (this one and the backend), seconds.
    load_cpu: f64,
    /// Every core's (busy, total) jiffies, whoever used them.
    jiffies: Vec<(usize, u64, u64)>,
    router: Option<Vec<(f64, f64)>>,
}

fn sample(pid: Option<u32>, backend: u32, metrics: Option<SocketAddr>) -> Sample {
    let backend_cpu = procs::cpu_seconds(backend).map_or(0.0, |(u, s)| u + s);
    Sample {
        cpu: pid.and_then(procs::cpu_seconds),
        load_cpu: procs::self_cpu_seconds().0 + backend_cpu,
        jiffies: procs::cpu_jiffies(),
        router: metrics.and_then(|m| {
            scrape(m)
                .ok()
                .map(|t| prom::buckets(&t, "proxy_router_decision_seconds"))
        }),
    }
}

/// Sleeps until the window edges and samples there, on its own thread (so
/// the samples are taken on time whatever the load runtime is doing).
fn sampler(
    pid: Option<u32>,
    backend: u32,
    metrics: Option<SocketAddr>,
    w: Window,
) -> std::thread::JoinHandle<(Sample, Sample)> {
    std::thread::spawn(move || {
        std::thread::sleep(w.start.saturating_duration_since(Instant::now()));
        let a = sample(pid, backend, metrics);
        std::thread::sleep(w.end.saturating_duration_since(Instant::now()));
        let b = sample(pid, backend, metrics);
        (a, b)
    })
}

/// GET /metrics (Prometheus text, or nginx's stub_status).
fn scrape(addr: SocketAddr) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

/// Rewrites the target's configuration every 100 ms through the window;
/// returns the number of rewrites and the last generation written.
fn reloader(
    r: Reloader,
    s: Scenario,
    w: Window,
    first_gen: u64,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        std::thread::sleep(w.start.saturating_duration_since(Instant::now()));
        let (mut n, mut generation) = (0u64, first_gen);
        let mut next = Instant::now();
        while Instant::now() < w.end {
            generation += 1;
            if r.apply(&s, generation).is_ok() {
                n += 1;
            }
            next += Duration::from_millis(100);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        (n, generation)
    })
}

/// Writes a configuration with a new route and times until it answers (≤ 10 s).
async fn route_live(r: &Reloader, s: &Scenario, addr: SocketAddr, generation: u64) -> Option<f64> {
    r.apply(s, generation).ok()?;
    let t0 = Instant::now();
    let spec = RequestSpec::get("/", Some(scenario::reload_host(generation)), s.body_size);
    while t0.elapsed() < Duration::from_secs(10) {
        if crate::load::probe(addr, &spec, None).await.is_ok() {
            return Some(t0.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn progress(label: &str, w: Window) -> (ProgressBar, tokio::task::JoinHandle<()>) {
    let total = (w.end - w.load_start).as_millis() as u64;
    let pb = ProgressBar::new(total.max(1));
    pb.set_style(
        ProgressStyle::with_template("   {prefix} [{bar:30}] {elapsed:>3}/{msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_owned());
    pb.set_message(format!("{:.0}s", w.total_secs().ceil()));
    let pb2 = pb.clone();
    let tick = tokio::spawn(async move {
        loop {
            let now = Instant::now();
            pb2.set_position(now.saturating_duration_since(w.load_start).as_millis() as u64);
            if now >= w.end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (pb, tick)
}

/// Runs the scenario's load at `addr` through `w`.
pub(crate) async fn drive(
    ctx: &Ctx,
    s: &Scenario,
    addr: SocketAddr,
    tool: Tool,
    w: Window,
    rate: Option<f64>,
) -> Result<LoadResult, String> {
    let spec = s.request();
    let job = |mode| Job {
        addr,
        spec: spec.clone(),
        mode,
        tls: ctx.tls_for(s),
        window: w,
        threads: ctx.threads,
    };
    match (s.load, tool) {
        (Load::VersusWrk { conns }, Tool::Wrk) => {
            let bin = ctx.wrk.as_deref().ok_or("wrk is not installed")?;
            wrk::run(bin, addr, &spec, conns, ctx.threads, w, ctx.load_pin()).await
        }
        (Load::Closed { conns, new_conn }, _) => {
            driver::drive(job(Mode::Closed { conns, new_conn })).await
        }
        (Load::VersusWrk { conns }, Tool::Own) => {
            driver::drive(job(Mode::Closed {
                conns,
                new_conn: false,
            }))
            .await
        }
        (Load::Goose { users }, _) => {
            goose::closed(&format!("http://{addr}"), &spec, users, w).await
        }
        (Load::Open { rate, conns }, _) => {
            driver::drive(job(Mode::Open {
                rate: rate as f64,
                conns,
            }))
            .await
        }
        (Load::EqualRate { conns, .. }, _) => {
            let rate = rate.ok_or("equal-rate without an offered rate")?;
            driver::drive(job(Mode::Open { rate, conns })).await
        }
        (Load::H2 { conns, streams }, _) => driver::drive(job(Mode::H2 { conns, streams })).await,
        (Load::Idle { .. }, _) => Err("idle-conns is measured by measure_idle".into()),
    }
}

/// Lines in a file (0 when it does not exist yet).
fn lines_in(p: &Path) -> u64 {
    std::fs::read(p).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count() as u64)
}

/// A round's figures from a load result and the window's samples.
fn round_of(
    ctx: &Ctx,
    round: usize,
    res: &LoadResult,
    w: Window,
    samples: Option<(Sample, Sample)>,
    pid: Option<u32>,
) -> Round {
    let served = res.requests + res.errors;
    let (a, b) = match samples {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    let cpu = match (
        a.as_ref().and_then(|a| a.cpu),
        b.as_ref().and_then(|b| b.cpu),
    ) {
        (Some((u0, s0)), Some((u1, s1))) if served > 0 => Some((
            (u1 + s1 - u0 - s0) * 1e6 / served as f64,
            (u1 - u0) * 1e6 / served as f64,
        )),
        _ => None,
    };
    // Busy: the CPU our own processes used, as a share of the cores they
    // are pinned to (other tenants of a shared machine do not count).
    let secs = res.measured_secs.unwrap_or_else(|| w.secs());
    let share = |cpu: f64, cores: usize| 100.0 * cpu / (secs * cores.max(1) as f64);
    let load_busy = match (&a, &b) {
        (Some(a), Some(b)) => share(
            b.load_cpu - a.load_cpu + res.external_cpu_secs.unwrap_or(0.0),
            ctx.load_cpus.len(),
        ),
        _ => f64::NAN,
    };
    let sut_busy = match (
        a.as_ref().and_then(|a| a.cpu),
        b.as_ref().and_then(|b| b.cpu),
    ) {
        (Some((u0, s0)), Some((u1, s1))) => Some(share(u1 + s1 - u0 - s0, ctx.sut_cpus.len())),
        _ => None,
    };
    let router_p99_us = match (
        a.as_ref().and_then(|a| a.router.as_ref()),
        b.as_ref().and_then(|b| b.router.as_ref()),
    ) {
        (Some(x), Some(y)) => prom::quantile(x, y, 0.99).map(|v| v * 1e6),
        _ => None,
    };
    Round {
        round,
        requests: res.requests,
        errors: res.errors,
        first_error: res.first_error.clone(),
        req_per_s: res.requests as f64 / secs,
        latency_us: res.percentiles(),
        cpu_us_per_req: cpu.map(|c| c.0),
        cpu_user_us_per_req: cpu.map(|c| c.1),
        load_cpu_us_per_req: res.load_cpu_us_per_req,
        peak_rss_kib: pid.and_then(procs::peak_rss_kib),
        load_busy_pct: load_busy,
        load_saturated: load_busy > SATURATED_PCT,
        sut_busy_pct: sut_busy.filter(|b| b.is_finite()),
        others_busy_pct: match (&a, &b) {
            (Some(a), Some(b)) if ctx.pinned => {
                // Everyone's use of our cores minus our own processes' use.
                let all: Vec<usize> = ctx.load_cpus.iter().chain(&ctx.sut_cpus).copied().collect();
                let everyone = procs::busy_percent(&a.jiffies, &b.jiffies, &all);
                let ours = (load_busy * ctx.load_cpus.len() as f64
                    + sut_busy.unwrap_or(0.0) * ctx.sut_cpus.len() as f64)
                    / all.len() as f64;
                Some((everyone - ours).max(0.0)).filter(|v| v.is_finite())
            }
            _ => None,
        },
        answered_total: res.answered_total,
        retried: res.retried,
        log_lines: None,
        tls: res.tls.clone(),
        idle_conns: None,
        mem_before_kib: None,
        mem_after_kib: None,
        mem_per_conn_kib: None,
        router_p99_us,
        reload: None,
        dashboard: None,
        body_bytes_per_answer: None,
        histogram: stats::to_v2_base64(&res.hist),
    }
}

/// How long the first window waits before load starts.
const LEAD: Duration = Duration::from_millis(150);

/// The lead for `tool`: goose builds its configuration and user tasks and
/// launches its users (at 1,000/s) before its first request, which took
/// longer than a quick run's whole window on a loaded 2-core machine (every
/// answer fell after the window): it gets a second.
fn lead(s: &Scenario, tool: Tool) -> Duration {
    if tool == Tool::Own && matches!(s.load, Load::Goose { .. }) {
        Duration::from_secs(1)
    } else {
        LEAD
    }
}

/// One measured window (two for reload-storm: quiet, then storm).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn measure(
    ctx: &Ctx,
    s: &Scenario,
    r: &Running,
    tool: Tool,
    round: usize,
    label: &str,
    rate: Option<f64>,
) -> Result<(LoadResult, Round), String> {
    let pid = r.child.as_ref().map(procs::ChildGuard::pid);
    // wrk runs whole seconds: its windows are rounded up.
    let (warm, secs) = if tool == Tool::Wrk {
        (ctx.warmup.ceil(), s.default_secs.ceil().max(1.0))
    } else {
        (ctx.warmup, s.default_secs)
    };
    let warm = Duration::from_secs_f64(warm);

    let mut quiet: Option<LoadResult> = None;
    if s.reload {
        let w = Window::new(lead(s, tool), warm, secs);
        let (pb, tick) = progress(&format!("{label} (quiet)"), w);
        let res = drive(ctx, s, r.addr, tool, w, rate).await;
        let _ = tick.await;
        pb.finish_and_clear();
        quiet = Some(res?);
    }

    let log_before = r.access_log.as_deref().map(lines_in);
    let w = Window::new(lead(s, tool), warm, secs);
    let samp = sampler(pid, r.backend_pid, r.metrics, w);
    let storm = match (&r.reloader, s.reload) {
        (Some(rl), true) => Some(reloader(
            rl.clone(),
            s.clone(),
            w,
            (round as u64) * 1_000_000,
        )),
        _ => None,
    };
    let poll = r
        .api
        .map(|(addr, kind)| tokio::spawn(crate::poll::dashboard(addr, kind, w)));
    let (pb, tick) = progress(label, w);
    let res = drive(ctx, s, r.addr, tool, w, rate).await;
    let _ = tick.await;
    pb.finish_and_clear();
    let res = res?;
    let polled = match poll {
        Some(h) => Some(h.await.map_err(|_| "dashboard poller panicked")?),
        None => None,
    };
    let samples = samp.join().map_err(|_| "sampler thread panicked")?;
    let mut fig = round_of(ctx, round, &res, w, Some(samples), pid);
    if s.compress && res.requests > 0 {
        fig.body_bytes_per_answer = Some(res.body_bytes as f64 / res.requests as f64);
    }
    if let Some((figures, first_error)) = polled {
        if fig.first_error.is_none() {
            fig.first_error = first_error;
        }
        fig.dashboard = Some(figures);
    }

    if let Some(before) = log_before {
        // Let buffered writers flush before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = r.access_log.as_deref().map_or(0, lines_in);
        fig.log_lines = Some(after.saturating_sub(before));
    }
    if let (Some(h), Some(q)) = (storm, quiet) {
        let (rewrites, generation) = h.join().map_err(|_| "reloader thread panicked")?;
        let route_live_ms = match &r.reloader {
            Some(rl) => route_live(rl, s, r.addr, generation + 1).await,
            None => None,
        };
        fig.reload = Some(ReloadFigures {
            quiet_latency_us: Percentiles::of(&q.hist),
            quiet_errors: q.errors,
            rewrites,
            route_live_ms,
        });
    }
    Ok((res, fig))
}

/// The flat-out rate of a target over a short closed-loop window
/// (equal-rate's calibration).
pub(crate) async fn flat_out(ctx: &Ctx, s: &Scenario, r: &Running) -> Result<f64, String> {
    let Load::EqualRate { conns, .. } = s.load else {
        return Err("not an equal-rate scenario".into());
    };
    let w = Window::new(LEAD, Duration::from_millis(300), 1.0);
    let job = Job {
        addr: r.addr,
        spec: s.request(),
        mode: Mode::Closed {
            conns,
            new_conn: false,
        },
        tls: None,
        window: w,
        threads: ctx.threads,
    };
    let res = driver::drive(job).await?;
    if res.errors > 0 {
        return Err(format!(
            "{} errors while calibrating: {}",
            res.errors,
            res.first_error.unwrap_or_default()
        ));
    }
    Ok(res.requests as f64 / w.secs())
}

/// idle-conns: memory before, while `ctx.idle_conns` connections that have
/// each served one request sit idle, then requests on a sample of them and
/// on a new connection.
pub(crate) async fn measure_idle(
    ctx: &Ctx,
    s: &Scenario,
    r: &Running,
    round: usize,
    label: &str,
) -> Result<(LoadResult, Round), String> {
    let spec = s.request();
    let tls = ctx.tls_for(s);
    let bounded = |what: &'static str| move |_| format!("{what} took longer than 60 s");
    // Warm the target's lazily built state (pools, buffers) first.
    let warm = tokio::time::timeout(
        Duration::from_secs(60),
        idle::open(r.addr, &spec, 64, tls.clone()),
    )
    .await
    .map_err(bounded("warming up"))?;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = r.mem_pid.and_then(procs::memory_kib);
    let pb = ProgressBar::new_spinner();
    pb.set_message(format!("{label}: opening {} connections", ctx.idle_conns));
    pb.enable_steady_tick(Duration::from_millis(100));
    let t0 = Instant::now();
    let mut held = tokio::time::timeout(
        Duration::from_secs(60),
        idle::open(r.addr, &spec, ctx.idle_conns, tls.clone()),
    )
    .await
    .map_err(bounded("opening the idle connections"))?;
    let open_secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = r.mem_pid.and_then(procs::memory_kib);
    let check = tokio::time::timeout(
        Duration::from_secs(60),
        idle::recheck(&mut held, r.addr, &spec, 50, tls.as_deref()),
    )
    .await
    .map_err(bounded("the requests after idling"))?;
    pb.finish_and_clear();
    let n = held.conns.len() as u64;
    let mut res = std::mem::replace(&mut held.opened, LoadResult::empty());
    res.absorb(check);
    drop(held);
    let w = Window {
        load_start: t0,
        start: t0,
        end: t0 + Duration::from_secs_f64(open_secs.max(1e-3)),
    };
    let mut fig = round_of(ctx, round, &res, w, None, r.mem_pid);
    fig.idle_conns = Some(n);
    fig.mem_before_kib = before;
    fig.mem_after_kib = after;
    fig.mem_per_conn_kib = match (before, after) {
        (Some(b), Some(a)) if n > 0 => Some((a as f64 - b as f64) / n as f64),
        _ => None,
    };
    Ok((res, fig))
}
