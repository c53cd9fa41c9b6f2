//! One harness run: CPU placement, resolving and building the targets,
//! then per scenario a backend plus every available target started once,
//! and interleaved rounds (direct, floor, proxy, traefik, direct, …) each
//! measuring one window: load, CPU of the process under test, peak RSS,
//! load-core saturation, the proxy's router-decision histogram.
//!
//! Every child process is owned by a guard: returning early, failing or
//! being cancelled by Ctrl-C kills them all.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::load::{self, LoadResult, Window};
use crate::procs::{self, ChildGuard};
use crate::results::{
    Meta, Placement, ReloadFigures, Results, Round, ScenarioResult, TargetResult, Unavailable,
};
use crate::scenario::{self, Load, Scenario};
use crate::stats::{self, Percentiles};
use crate::targets::{self, BackendAddrs, Kind, Running, Target};

/// Options of a run (also used by `gate`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RunArgs {
    /// Smoke test: 1 round, short windows, scenarios small-get, h2c, fixed-rate (unless --scenario).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Scenarios to run (comma-separated or repeated; default: all).
    #[arg(long = "scenario", value_delimiter = ',')]
    pub(crate) scenarios: Vec<String>,
    /// Targets to run: direct, floor, proxy, traefik, nginx, haproxy, or a --proxy-bin label.
    #[arg(long = "target", value_delimiter = ',')]
    pub(crate) targets: Vec<String>,
    /// Interleaved rounds (default 3; 1 with --quick).
    #[arg(long)]
    pub(crate) rounds: Option<usize>,
    /// Measured seconds per round for every scenario (default: per scenario).
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Warm-up seconds before each measured window (default 0.5; targets stay up between rounds).
    #[arg(long)]
    pub(crate) warmup: Option<f64>,
    /// Proxy workers / Traefik GOMAXPROCS (default: the number of SUT cores).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Cores for the process under test, e.g. `0` (default: the first half).
    #[arg(long)]
    pub(crate) sut_cpus: Option<String>,
    /// Cores for the load generator and backend (default: the rest).
    #[arg(long)]
    pub(crate) load_cpus: Option<String>,
    /// Traefik executable (else TRAEFIK_BIN, PATH, or a venv install).
    #[arg(long)]
    pub(crate) traefik_bin: Option<PathBuf>,
    /// Another proxy build as a target, `LABEL=PATH` (repeatable).
    #[arg(long = "proxy-bin")]
    pub(crate) proxy_bins: Vec<String>,
    /// Use this proxy binary instead of building the workspace's.
    #[arg(long)]
    pub(crate) proxy_path: Option<PathBuf>,
    /// Where report directories go (default: <workspace>/reports).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

const DEFAULT_TARGETS: [&str; 4] = ["direct", "floor", "proxy", "traefik"];

/// Load cores busier than this mean the load side was the limit.
const SATURATED_PCT: f64 = 90.0;

/// Where things run, decided before the load runtime starts.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Cores of the process under test.
    pub(crate) sut_cpus: Vec<usize>,
    /// Cores of the load generator and backend.
    pub(crate) load_cpus: Vec<usize>,
    /// Workers / GOMAXPROCS.
    pub(crate) workers: usize,
    /// Pinning applied.
    pub(crate) pinned: bool,
    /// CPUs usable before pinning.
    pub(crate) cpus: usize,
}

/// Decides the placement, prints it, and pins this process to the load
/// cores (call before building the load runtime so its threads inherit it).
pub(crate) fn plan(args: &RunArgs) -> Result<Plan, String> {
    let allowed = procs::allowed_cpus();
    let taskset = procs::have_taskset();
    let (sut_cpus, load_cpus) = match (&args.sut_cpus, &args.load_cpus) {
        (Some(s), Some(l)) => (procs::parse_cpu_list(s)?, procs::parse_cpu_list(l)?),
        (Some(s), None) => {
            let s = procs::parse_cpu_list(s)?;
            let l: Vec<usize> = allowed.iter().copied().filter(|c| !s.contains(c)).collect();
            (s, l)
        }
        (None, Some(l)) => {
            let l = procs::parse_cpu_list(l)?;
            let s: Vec<usize> = allowed.iter().copied().filter(|c| !l.contains(c)).collect();
            (s, l)
        }
        (None, None) => {
            let half = (allowed.len() / 2).max(1);
            (allowed[..half].to_vec(), allowed[half..].to_vec())
        }
    };
    let pinned = taskset && !sut_cpus.is_empty() && !load_cpus.is_empty();
    let workers = args.workers.unwrap_or(sut_cpus.len().max(1));
    eprintln!(
        "placement: process under test on cpu {} ({} worker(s) / GOMAXPROCS={}), load generator + backend on cpu {}{}",
        procs::cpu_list(&sut_cpus),
        workers,
        workers,
        procs::cpu_list(&load_cpus),
        if pinned { "" } else { " (NOT pinned)" }
    );
    if pinned {
        procs::pin_self(&load_cpus)?;
    }
    Ok(Plan {
        sut_cpus,
        load_cpus,
        workers,
        pinned,
        cpus: allowed.len(),
    })
}

/// Runs everything; returns the report directory.
pub(crate) async fn run(args: &RunArgs, plan: &Plan) -> Result<PathBuf, String> {
    let (started_utc, stamp) = crate::results::utc_now();
    let mut notes = Vec::new();

    let Plan {
        sut_cpus,
        load_cpus,
        workers,
        pinned,
        cpus,
    } = plan.clone();
    if !pinned {
        notes.push(
            "CPU pinning off (needs taskset and at least 2 cores): figures are noisier".into(),
        );
    }
    let placement = Placement {
        sut_cpus: sut_cpus.clone(),
        load_cpus: load_cpus.clone(),
        workers,
        pinned,
    };
    let sut = pinned.then_some(sut_cpus.as_slice());
    let load_pin = pinned.then_some(load_cpus.as_slice());

    // --- scenarios ---
    let quick = args.quick;
    let mut scenarios: Vec<Scenario> =
        if args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == "all") {
            scenario::all()
                .into_iter()
                .filter(|s| !quick || s.in_quick || !args.scenarios.is_empty())
                .collect()
        } else {
            let mut v = Vec::new();
            for n in &args.scenarios {
                v.push(scenario::by_name(n).ok_or_else(|| {
                    format!(
                        "unknown scenario `{n}` (known: {})",
                        scenario::all()
                            .iter()
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?);
            }
            v
        };
    let rounds = args.rounds.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let warmup = args.warmup.unwrap_or(0.5);
    for s in &mut scenarios {
        s.default_secs = args
            .duration
            .unwrap_or(if quick { 1.5 } else { s.default_secs });
    }

    // --- targets ---
    let (root, target_dir) = targets::workspace_dirs()?;
    let wanted: Vec<String> = if args.targets.is_empty() {
        let mut v: Vec<String> = DEFAULT_TARGETS.iter().map(|s| s.to_string()).collect();
        v.extend(
            args.proxy_bins
                .iter()
                .filter_map(|p| p.split_once('=').map(|(l, _)| l.to_owned())),
        );
        v
    } else {
        args.targets.clone()
    };
    let mut resolved: Vec<Target> = Vec::new();
    let mut missing: BTreeMap<String, String> = BTreeMap::new();
    let harness_version = format!("harness {}", env!("CARGO_PKG_VERSION"));
    for name in &wanted {
        let extra = args.proxy_bins.iter().find_map(|p| {
            p.split_once('=')
                .filter(|(l, _)| l == name)
                .map(|(_, p)| PathBuf::from(p))
        });
        let t = match (name.as_str(), extra) {
            (_, Some(bin)) => {
                if bin.is_file() {
                    Ok(Target {
                        name: name.clone(),
                        kind: Kind::Proxy,
                        version: targets::proxy_version(&bin),
                        bin: Some(bin),
                    })
                } else {
                    Err(format!(
                        "--proxy-bin {name}={} does not exist",
                        bin.display()
                    ))
                }
            }
            ("direct", None) => Ok(Target {
                name: name.clone(),
                kind: Kind::Direct,
                bin: None,
                version: format!("backend of {harness_version}"),
            }),
            ("floor", None) => Ok(Target {
                name: name.clone(),
                kind: Kind::Floor,
                bin: std::env::current_exe().ok(),
                version: format!("floor of {harness_version} (hyper 1)"),
            }),
            ("proxy", None) => {
                let bin = match &args.proxy_path {
                    Some(p) => Ok(p.clone()),
                    None => targets::build_proxy(&root, &target_dir),
                };
                bin.map(|bin| Target {
                    name: name.clone(),
                    kind: Kind::Proxy,
                    version: targets::proxy_version(&bin),
                    bin: Some(bin),
                })
            }
            ("traefik", None) => targets::find_traefik(args.traefik_bin.as_deref(), &target_dir)
                .map(|bin| Target {
                    name: name.clone(),
                    kind: Kind::Traefik,
                    version: targets::traefik_version(&bin),
                    bin: Some(bin),
                }),
            ("nginx", None) => targets::find_context(Kind::Nginx)
                .ok_or_else(|| "nginx not found on PATH".to_owned()),
            ("haproxy", None) => targets::find_context(Kind::Haproxy)
                .ok_or_else(|| "haproxy not found on PATH".to_owned()),
            (other, None) => Err(format!("unknown target `{other}`")),
        };
        match t {
            Ok(t) => resolved.push(t),
            Err(e) => {
                eprintln!("!! target `{name}` unavailable: {e} -- running the remaining targets");
                notes.push(format!("target `{name}` unavailable: {e}"));
                missing.insert(name.clone(), e);
            }
        }
    }
    let versions: BTreeMap<String, String> = resolved
        .iter()
        .map(|t| (t.name.clone(), t.version.clone()))
        .collect();
    for t in &resolved {
        eprintln!("target {:<10} {}", t.name, t.version);
    }

    let out_root = args.out.clone().unwrap_or_else(|| root.join("reports"));
    let dir = out_root.join(&stamp);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let mut results = Results {
        schema_version: crate::results::SCHEMA_VERSION,
        meta: Meta {
            started_utc,
            git_commit: git_commit(&root),
            cpu_model: procs::cpu_model(),
            cpus,
            placement,
            versions,
            rounds,
            warmup_secs: warmup,
            quick,
            notes,
        },
        scenarios: Vec::new(),
    };

    for s in &scenarios {
        let r = run_scenario(
            s, &resolved, &missing, &dir, rounds, warmup, workers, sut, load_pin, &load_cpus,
        )
        .await?;
        results.scenarios.push(r);
        results.save(&dir.join("results.json"))?;
    }
    crate::report::write_all(&results, &dir)?;
    println!("{}", crate::report::terminal(&results));
    println!("report: {}", dir.display());
    Ok(dir)
}

fn git_commit(root: &Path) -> String {
    let out = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = out(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty =
        out(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// Starts the backend process for a scenario.
fn start_backend(
    s: &Scenario,
    load_cpus: Option<&[usize]>,
    threads: usize,
    dir: &Path,
) -> Result<(ChildGuard, BackendAddrs), String> {
    let main = procs::loopback(procs::free_port()?);
    let fallback = procs::loopback(procs::free_port()?);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let args = vec![
        "backend".to_owned(),
        "--listen".into(),
        format!("main={}", main.port()),
        "--listen".into(),
        format!("fallback={}", fallback.port()),
        "--body-size".into(),
        s.body_size.to_string(),
        "--threads".into(),
        threads.to_string(),
    ];
    let mut child = procs::spawn(
        "backend",
        &exe,
        &args,
        &[],
        load_cpus,
        Some(&dir.join("backend.log")),
    )?;
    procs::wait_until(
        "the backend to listen",
        Duration::from_secs(10),
        Some(&mut child),
        || TcpStream::connect(main).is_ok() && TcpStream::connect(fallback).is_ok(),
    )?;
    Ok((child, BackendAddrs { main, fallback }))
}

#[allow(clippy::too_many_arguments)]
async fn run_scenario(
    s: &Scenario,
    targets: &[Target],
    missing: &BTreeMap<String, String>,
    dir: &Path,
    rounds: usize,
    warmup: f64,
    workers: usize,
    sut: Option<&[usize]>,
    load_pin: Option<&[usize]>,
    load_cpus: &[usize],
) -> Result<ScenarioResult, String> {
    eprintln!(
        "\n== {} ({} s x {} round(s)): {}",
        s.name, s.default_secs, rounds, s.what
    );
    let work = dir.join("work").join(s.name);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut unavailable: Vec<Unavailable> = missing
        .iter()
        .map(|(t, r)| Unavailable {
            target: t.clone(),
            reason: r.clone(),
        })
        .collect();
    let (_backend, baddrs) = start_backend(s, load_pin, load_cpus.len().max(1), &work)?;
    let mut running: Vec<(&Target, Running)> = Vec::new();
    for t in targets {
        if let Err(reason) = targets::availability(s, t.kind) {
            eprintln!("   {:<10} unavailable: {reason}", t.name);
            unavailable.push(Unavailable {
                target: t.name.clone(),
                reason,
            });
            continue;
        }
        match targets::start(t, s, &work.join(&t.name), baddrs, sut, workers).await {
            Ok(r) => running.push((t, r)),
            Err(e) => {
                eprintln!("!! {} failed to start for {}: {e}", t.name, s.name);
                unavailable.push(Unavailable {
                    target: t.name.clone(),
                    reason: format!("failed to start: {e}"),
                });
            }
        }
    }
    let mut per_target: Vec<(Vec<Round>, hdrhistogram::Histogram<u64>)> = running
        .iter()
        .map(|_| (Vec::new(), stats::new_histogram()))
        .collect();
    for round in 1..=rounds {
        for (i, (t, r)) in running.iter_mut().enumerate() {
            let label = format!("{} round {round}/{rounds} {:<8}", s.name, t.name);
            let (res, round_fig) = measure(s, r, warmup, load_cpus, round, &label, &baddrs).await?;
            stats::merge(&mut per_target[i].1, &res.hist);
            eprintln!(
                "   {label} {:>9.0} req/s  p50 {:>6} µs  p99 {:>6} µs  p99.9 {:>6} µs  cpu/req {}  errors {}{}",
                round_fig.req_per_s,
                round_fig.latency_us.p50,
                round_fig.latency_us.p99,
                round_fig.latency_us.p999,
                round_fig
                    .cpu_us_per_req
                    .map_or("-".into(), |c| format!("{c:.1} µs")),
                round_fig.errors,
                if round_fig.load_saturated {
                    "  (load side saturated)"
                } else {
                    ""
                }
            );
            if let Some(e) = &round_fig.first_error {
                eprintln!("      first error: {e}");
            }
            per_target[i].0.push(round_fig);
        }
    }
    let targets_out = running
        .iter()
        .zip(per_target)
        .map(|((t, _), (rounds, merged))| TargetResult {
            target: t.name.clone(),
            rounds,
            merged_histogram: stats::to_v2_base64(&merged),
        })
        .collect();
    Ok(ScenarioResult {
        name: s.name.to_owned(),
        what: s.what.to_owned(),
        duration_secs: s.default_secs,
        targets: targets_out,
        unavailable,
    })
}

/// Figures sampled at a window edge.
struct Sample {
    cpu: Option<(f64, f64)>,
    jiffies: Vec<(usize, u64, u64)>,
    router: Option<Vec<(f64, f64)>>,
}

fn sample(pid: Option<u32>, metrics: Option<SocketAddr>) -> Sample {
    Sample {
        cpu: pid.and_then(procs::cpu_seconds),
        jiffies: procs::cpu_jiffies(),
        router: metrics.and_then(|m| scrape_router_buckets(m).ok()),
    }
}

/// Sleeps until the window edges and samples there, on its own thread (so
/// the samples are taken on time whatever the load runtime is doing).
fn sampler(
    pid: Option<u32>,
    metrics: Option<SocketAddr>,
    w: Window,
) -> std::thread::JoinHandle<(Sample, Sample)> {
    std::thread::spawn(move || {
        std::thread::sleep(w.start.saturating_duration_since(Instant::now()));
        let a = sample(pid, metrics);
        std::thread::sleep(w.end.saturating_duration_since(Instant::now()));
        let b = sample(pid, metrics);
        (a, b)
    })
}

/// Rewrites the dynamic file every 100 ms through the window; returns the
/// number of rewrites and the last generation written.
fn reloader(
    path: PathBuf,
    s: Scenario,
    baddrs: BackendAddrs,
    w: Window,
    first_gen: u64,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        std::thread::sleep(w.start.saturating_duration_since(Instant::now()));
        let (mut n, mut generation) = (0u64, first_gen);
        let mut next = Instant::now();
        while Instant::now() < w.end {
            generation += 1;
            if write_atomically(
                &path,
                &scenario::dynamic_config(&s, &baddrs.urls(), generation),
            )
            .is_ok()
            {
                n += 1;
            }
            next += Duration::from_millis(100);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        (n, generation)
    })
}

fn write_atomically(path: &Path, body: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("yml.tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

async fn drive(s: &Scenario, addr: SocketAddr, w: Window) -> Result<LoadResult, String> {
    let spec = s.request();
    match s.load {
        Load::Closed { users, new_conn } => {
            load::closed(&format!("http://{addr}"), &spec, users, new_conn, w).await
        }
        Load::Open { rate, conns } => load::open(addr, &spec, rate, conns, w).await,
        Load::H2 { conns, streams } => load::h2(addr, &spec, conns, streams, w).await,
    }
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
    pb.set_message(format!(
        "{:.0}s",
        (w.end - w.load_start).as_secs_f64().ceil()
    ));
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

/// One measured window (two for reload-storm: quiet, then storm).
async fn measure(
    s: &Scenario,
    r: &mut Running,
    warmup: f64,
    load_cpus: &[usize],
    round: usize,
    label: &str,
    baddrs: &BackendAddrs,
) -> Result<(LoadResult, Round), String> {
    let pid = r.child.as_ref().map(ChildGuard::pid);
    let lead = Duration::from_millis(150);
    let warm = Duration::from_secs_f64(warmup);

    let mut quiet: Option<LoadResult> = None;
    if s.reload {
        let w = Window::new(lead, warm, s.default_secs);
        let (pb, tick) = progress(&format!("{label} (quiet)"), w);
        let res = drive(s, r.addr, w).await;
        let _ = tick.await;
        pb.finish_and_clear();
        quiet = Some(res?);
    }

    let w = Window::new(lead, warm, s.default_secs);
    let samp = sampler(pid, r.metrics, w);
    let storm = match (&r.dynamic, s.reload) {
        (Some(p), true) => Some(reloader(
            p.clone(),
            s.clone(),
            *baddrs,
            w,
            (round as u64) * 1_000_000,
        )),
        _ => None,
    };
    let (pb, tick) = progress(label, w);
    let res = drive(s, r.addr, w).await;
    let _ = tick.await;
    pb.finish_and_clear();
    let res = res?;
    let (a, b) = samp.join().map_err(|_| "sampler thread panicked")?;

    let mut reload = None;
    if let (Some(h), Some(q)) = (storm, quiet) {
        let (rewrites, generation) = h.join().map_err(|_| "reloader thread panicked")?;
        let route_live_ms = match &r.dynamic {
            Some(p) => route_live(p, s, baddrs, r.addr, generation + 1).await,
            None => None,
        };
        reload = Some(ReloadFigures {
            quiet_latency_us: Percentiles::of(&q.hist),
            quiet_errors: q.errors,
            rewrites,
            route_live_ms,
        });
    }

    let requests = res.hist.len();
    let served = requests + res.errors;
    let cpu = match (a.cpu, b.cpu) {
        (Some((u0, s0)), Some((u1, s1))) if served > 0 => Some((
            (u1 + s1 - u0 - s0) * 1e6 / served as f64,
            (u1 - u0) * 1e6 / served as f64,
        )),
        _ => None,
    };
    let busy = procs::busy_percent(&a.jiffies, &b.jiffies, load_cpus);
    let router_p99_us = match (a.router, b.router) {
        (Some(x), Some(y)) => bucket_quantile(&x, &y, 0.99).map(|v| v * 1e6),
        _ => None,
    };
    let round_fig = Round {
        round,
        requests,
        errors: res.errors,
        first_error: res.first_error.clone(),
        req_per_s: requests as f64 / w.secs(),
        latency_us: Percentiles::of(&res.hist),
        cpu_us_per_req: cpu.map(|c| c.0),
        cpu_user_us_per_req: cpu.map(|c| c.1),
        peak_rss_kib: pid.and_then(procs::peak_rss_kib),
        load_busy_pct: busy,
        load_saturated: busy > SATURATED_PCT,
        router_p99_us,
        reload,
        histogram: stats::to_v2_base64(&res.hist),
    };
    Ok((res, round_fig))
}

/// Writes a config with a new route and times until it answers (≤ 10 s).
async fn route_live(
    path: &Path,
    s: &Scenario,
    baddrs: &BackendAddrs,
    addr: SocketAddr,
    generation: u64,
) -> Option<f64> {
    write_atomically(
        path,
        &scenario::dynamic_config(s, &baddrs.urls(), generation),
    )
    .ok()?;
    let t0 = Instant::now();
    let host = scenario::reload_host(generation);
    while t0.elapsed() < Duration::from_secs(10) {
        if let Ok((st, Some(b))) = load::probe(addr, Some(&host), "/").await
            && st.is_success()
            && b == "main"
        {
            return Some(t0.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

// === the proxy's router-decision histogram (Prometheus text) ===

fn scrape_router_buckets(addr: SocketAddr) -> Result<Vec<(f64, f64)>, String> {
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
    Ok(parse_buckets(&body, "proxy_router_decision_seconds"))
}

/// Cumulative `(le, count)` buckets of histogram `name`, summed over label sets.
pub(crate) fn parse_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut acc: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("le="))
        else {
            continue;
        };
        let le = le.trim_matches('"');
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let Ok(v) = value.split_whitespace().next().unwrap_or("").parse::<f64>() else {
            continue;
        };
        if le.is_nan() {
            continue;
        }
        let e = acc.entry(le.to_bits()).or_insert((le, 0.0));
        e.1 += v;
    }
    let mut v: Vec<(f64, f64)> = acc.into_values().collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The `q` quantile of the observations between two bucket snapshots: the
/// upper bound of the bucket holding it (the largest finite bound for +Inf).
pub(crate) fn bucket_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, c)| {
            let c0 = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, c - c0)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let hit = delta.iter().find(|d| d.1 >= rank)?;
    if hit.0.is_finite() {
        Some(hit.0)
    } else {
        delta.iter().rev().find(|d| d.0.is_finite()).map(|d| d.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_p99_from_prometheus_buckets() {
        let before = "proxy_router_decision_seconds_bucket{le=\"0.00001\"} 10\n\
                      proxy_router_decision_seconds_bucket{le=\"0.00005\"} 10\n\
                      proxy_router_decision_seconds_bucket{le=\"+Inf\"} 10\n";
        let after = "# TYPE proxy_router_decision_seconds histogram\n\
                     proxy_router_decision_seconds_bucket{entrypoint=\"web\",le=\"0.00001\"} 990\n\
                     proxy_router_decision_seconds_bucket{entrypoint=\"web\",le=\"0.00005\"} 1009\n\
                     proxy_router_decision_seconds_bucket{entrypoint=\"web\",le=\"+Inf\"} 1010\n\
                     proxy_router_decision_seconds_sum 0.01\n";
        let a = parse_buckets(before, "proxy_router_decision_seconds");
        let b = parse_buckets(after, "proxy_router_decision_seconds");
        assert_eq!(b.len(), 3);
        // 1000 new observations: 980 <= 10 µs, 19 more <= 50 µs, 1 above.
        assert_eq!(bucket_quantile(&a, &b, 0.5), Some(0.00001));
        assert_eq!(bucket_quantile(&a, &b, 0.99), Some(0.00005));
        assert_eq!(bucket_quantile(&a, &b, 0.9999), Some(0.00005));
        assert_eq!(bucket_quantile(&b, &b, 0.99), None);
    }
}
