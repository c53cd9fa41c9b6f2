//! The command line: parses, dispatches, and makes Ctrl-C stop every
//! child (by dropping the run, whose guards kill them).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{backend, compare, configs, floor, procs, report, results, run, scenario, targets};

/// Measures the proxy against Traefik, nginx, HAProxy, the bare-hyper floor and direct, side by side, and writes a report.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Re-render report.md / report.html from DIR/results.json.
    Report {
        /// A report directory (or a results.json).
        dir: PathBuf,
    },
    /// Saved runs to compare against.
    Baseline {
        #[command(subcommand)]
        cmd: BaselineCmd,
    },
    /// The harness comparison: a run (taken with --results, or run now)
    /// against a saved baseline (--baseline), or build --head against build
    /// --base measured in the same run. Exit 1 when a ratio is more than 5%
    /// worse beyond its rounds' noise. (The counts gate is `cargo run -p gate`.)
    Compare {
        /// Baseline file, e.g. baselines/harness/main.json.
        #[arg(long, conflicts_with_all = ["base", "head"])]
        baseline: Option<PathBuf>,
        /// The label of the reference build in the run (`--proxy-bin base=...`).
        #[arg(long, requires = "head")]
        base: Option<String>,
        /// The label of the build judged (`--proxy-bin head=...`).
        #[arg(long, requires = "base")]
        head: Option<String>,
        /// Compare this results.json / report dir instead of running.
        #[arg(long)]
        results: Option<PathBuf>,
        #[command(flatten)]
        run: Box<run::RunArgs>,
    },
    /// Write the committed scenario configurations (traefik-baseline/).
    Configs {
        /// Output directory.
        #[arg(default_value = "traefik-baseline")]
        dir: PathBuf,
    },
    /// (internal) The backend server process.
    #[command(hide = true)]
    Backend(backend::BackendArgs),
    /// (internal) The floor forwarder process.
    #[command(hide = true)]
    Floor(floor::FloorArgs),
}

#[derive(Debug, Subcommand)]
enum BaselineCmd {
    /// Save a run as baselines/harness/NAME.json (for `compare --baseline`).
    Save {
        /// Baseline name.
        name: String,
        /// Report directory (default: the newest under reports/).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    // Threads match the load cores this process is pinned to.
    let n = threads.clamp(1, 64);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs the harness, stopping cleanly on Ctrl-C.
fn run_measured(args: &run::RunArgs) -> Result<PathBuf, String> {
    let plan = run::plan(args)?;
    let rt = runtime(if plan.pinned {
        plan.load_cpus.len()
    } else {
        procs::allowed_cpus().len()
    });
    rt.block_on(async {
        tokio::select! {
            r = run::run(args, &plan) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted: stopped every process the harness started".into()),
        }
    })
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let res: Result<bool, String> = match cli.command {
        None => run_measured(&cli.run).map(|_| true),
        Some(Cmd::Backend(a)) => backend::run(a).map(|()| true),
        Some(Cmd::Floor(a)) => floor::run(a).map(|()| true),
        Some(Cmd::Report { dir }) => {
            let (json, out) = if dir.is_dir() {
                (dir.join("results.json"), dir.clone())
            } else {
                (
                    dir.clone(),
                    dir.parent().map(PathBuf::from).unwrap_or_default(),
                )
            };
            results::Results::load(&json).and_then(|r| {
                report::write_all(&r, &out)?;
                println!("{}", report::terminal(&r));
                println!("re-rendered {}", out.display());
                Ok(true)
            })
        }
        Some(Cmd::Baseline {
            cmd: BaselineCmd::Save { name, from },
        }) => (|| {
            let root = targets::workspace_dirs()?.0;
            let from = match from {
                Some(f) => f,
                None => compare::latest_report(&root.join("reports"))?,
            };
            let out = compare::save_baseline(&root, &name, &from)?;
            println!(
                "baseline saved: {} (from {})",
                out.display(),
                from.display()
            );
            Ok(true)
        })(),
        Some(Cmd::Compare {
            baseline,
            base,
            head,
            results,
            run,
        }) => (|| {
            if baseline.is_none() && base.is_none() {
                return Err("compare needs --baseline FILE, or --base LABEL --head LABEL".into());
            }
            let cur_path = match results {
                Some(p) if p.is_dir() => p.join("results.json"),
                Some(p) => p,
                None => run_measured(&run)?.join("results.json"),
            };
            let cur = results::Results::load(&cur_path)?;
            let (title, checks) = match (baseline, base, head) {
                (Some(b), _, _) => (
                    format!("{} against baseline {}", cur_path.display(), b.display()),
                    compare::against_baseline(&results::Results::load(&b)?, &cur),
                ),
                (None, Some(base), Some(head)) => (
                    format!("{head} against {base} in {}", cur_path.display()),
                    compare::head_vs_base(&cur, &base, &head),
                ),
                _ => {
                    return Err(
                        "compare needs --baseline FILE, or --base LABEL --head LABEL".into(),
                    );
                }
            };
            let (text, md, ok) = compare::render(&title, &checks);
            print!("{text}");
            compare::job_summary(&md);
            Ok(ok)
        })(),
        Some(Cmd::Configs { dir }) => write_configs(&dir).map(|()| true),
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("harness: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes every distinct scenario configuration into `dir/<config>/`:
/// the Traefik/proxy dynamic file, both static files, nginx's and
/// HAProxy's (and its map), with the paths docker-compose.yml uses.
fn write_configs(dir: &std::path::Path) -> Result<(), String> {
    for s in scenario::configs() {
        let env = configs::Env::committed_for(&s);
        let d = dir.join(s.config);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        let w = |name: &str, body: String| {
            let p = d.join(name);
            std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))
        };
        w("dynamic.yml", configs::dynamic(&s, &env, 0))?;
        w("traefik.yml", configs::traefik_static(&s, &env))?;
        w("proxy.yml", configs::proxy_static(&s, &env))?;
        if peers_run(&s) {
            w("nginx.conf", configs::nginx(&s, &env, 0))?;
            w("haproxy.cfg", configs::haproxy(&s, &env))?;
            if let Some(m) = configs::haproxy_map(&s, 0) {
                w("haproxy.map", m)?;
            }
        }
    }
    println!("wrote configs to {}", dir.display());
    Ok(())
}

/// Whether nginx and HAProxy run `s` (not dashboard-open: they have no
/// API), so that its configuration has their files.
fn peers_run(s: &scenario::Scenario) -> bool {
    use crate::targets::{Kind, availability};
    availability(s, Kind::Nginx).is_ok() || availability(s, Kind::Haproxy).is_ok()
}

/// The files [`write_configs`] writes, relative to its directory.
#[cfg(test)]
fn config_files() -> Vec<String> {
    let mut v = Vec::new();
    for s in scenario::configs() {
        let peers: &[&str] = if peers_run(&s) {
            &["nginx.conf", "haproxy.cfg"]
        } else {
            &[]
        };
        for f in ["dynamic.yml", "traefik.yml", "proxy.yml"]
            .iter()
            .chain(peers)
        {
            v.push(format!("{}/{f}", s.config));
        }
        if peers_run(&s) && configs::haproxy_map(&s, 0).is_some() {
            v.push(format!("{}/haproxy.map", s.config));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed copies in traefik-baseline/ are what the harness
    /// generates: regenerate with `cargo run -p harness -- configs`.
    #[test]
    fn committed_configs_are_current() {
        let tmp = std::env::temp_dir().join(format!("harness-configs-{}", std::process::id()));
        write_configs(&tmp).unwrap();
        let committed =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../traefik-baseline");
        for f in config_files() {
            let want = std::fs::read_to_string(tmp.join(&f)).unwrap();
            let have = std::fs::read_to_string(committed.join(&f)).unwrap_or_default();
            assert!(
                want == have,
                "traefik-baseline/{f} is stale: run `cargo run -p harness -- configs`"
            );
        }
        // Nothing stale left over either.
        for e in std::fs::read_dir(&committed).unwrap().flatten() {
            for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                let rel = format!(
                    "{}/{}",
                    e.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                assert!(
                    config_files().contains(&rel),
                    "traefik-baseline/{rel} is not generated any more: remove it"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
