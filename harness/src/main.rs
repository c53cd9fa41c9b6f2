//! The benchmark harness: starts a backend, the proxy and Traefik on
//! loopback, drives identical load at each and writes a comparison.
//!
//! This file is the CLI only: it parses, dispatches, and makes Ctrl-C stop
//! every child (by dropping the run, whose guards kill them).

mod backend;
mod floor;
mod gate;
mod load;
mod procs;
mod report;
mod results;
mod run;
mod scenario;
mod stats;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Measures the proxy against Traefik, side by side, and writes a report.
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
    /// Baselines for the gate.
    Baseline {
        #[command(subcommand)]
        cmd: BaselineCmd,
    },
    /// Run (or take --results) and compare with a baseline; non-zero on a regression.
    Gate {
        /// Baseline file, e.g. baselines/harness/main.json.
        #[arg(long)]
        baseline: PathBuf,
        /// Compare this results.json / report dir instead of running.
        #[arg(long)]
        results: Option<PathBuf>,
        #[command(flatten)]
        run: Box<run::RunArgs>,
    },
    /// Write the committed scenario configs (traefik-baseline/) for Docker.
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
    /// Save a run as baselines/harness/NAME.json.
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

fn main() -> ExitCode {
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
                None => gate::latest_report(&root.join("reports"))?,
            };
            let out = gate::save_baseline(&root, &name, &from)?;
            println!(
                "baseline saved: {} (from {})",
                out.display(),
                from.display()
            );
            Ok(true)
        })(),
        Some(Cmd::Gate {
            baseline,
            results,
            run,
        }) => (|| {
            let base = results::Results::load(&baseline)?;
            let cur_path = match results {
                Some(p) if p.is_dir() => p.join("results.json"),
                Some(p) => p,
                None => run_measured(&run)?.join("results.json"),
            };
            let cur = results::Results::load(&cur_path)?;
            Ok(gate::print(&gate::compare(&base, &cur)))
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

/// Writes every scenario's dynamic config plus the static files the Docker
/// setup uses (backend reachable as `backend:8081` / `backend:8082`).
fn write_configs(dir: &std::path::Path) -> Result<(), String> {
    let urls = scenario::BackendUrls {
        main: "http://backend:8081".into(),
        fallback: "http://backend:8082".into(),
    };
    let dynamic = dir.join("dynamic");
    std::fs::create_dir_all(&dynamic).map_err(|e| e.to_string())?;
    for s in scenario::all() {
        let p = dynamic.join(format!("{}.yml", s.name));
        std::fs::write(&p, scenario::dynamic_config(&s, &urls, 0))
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let file = std::path::Path::new("/etc/bench/dynamic.yml");
    let w =
        |name: &str, body: String| std::fs::write(dir.join(name), body).map_err(|e| e.to_string());
    w(
        "traefik.yml",
        scenario::traefik_static("0.0.0.0:8000", file),
    )?;
    w(
        "proxy.yml",
        scenario::proxy_static("0.0.0.0:8000", "0.0.0.0:9100", file),
    )?;
    println!("wrote configs to {}", dir.display());
    Ok(())
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
        let mut files = vec!["traefik.yml".to_owned(), "proxy.yml".to_owned()];
        files.extend(
            scenario::all()
                .iter()
                .map(|s| format!("dynamic/{}.yml", s.name)),
        );
        for f in files {
            let want = std::fs::read_to_string(tmp.join(&f)).unwrap();
            let have = std::fs::read_to_string(committed.join(&f)).unwrap_or_default();
            assert!(
                want == have,
                "traefik-baseline/{f} is stale: run `cargo run -p harness -- configs`"
            );
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
