//! The `proxy` binary: parses the command line, loads the configuration,
//! starts the workers, waits for a signal and drains with a deadline.
//! Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// jemalloc, for the pages it gives back: an idle keep-alive connection
/// frees its buffers (`listener/conn.rs`), and with glibc's malloc the
/// pages stay with the process (harness idle-conns, 5,000 connections,
/// RSS each: 18.3 KiB before parking, 4.8 parked with jemalloc, in one
/// run; parked with glibc 19.6, in an earlier one), at the same CPU per
/// request (small-get 18.7 µs against 19.1 before, in one run). Its
/// background thread returns freed pages after `dirty_decay_ms`
/// (`.cargo/config.toml`; `MALLOC_CONF` overrides it at run time).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A high-performance reverse proxy that reads Traefik's file-provider
/// configuration.
#[derive(Debug, Parser)]
#[command(name = "proxy", version, about)]
struct Cli {
    /// Static configuration file (Traefik format, YAML or TOML by
    /// extension). Default: traefik.{yml,yaml,toml} in the current
    /// directory, $HOME/.config/ or /etc/traefik/, as Traefik looks.
    #[arg(
        long = "configFile",
        visible_alias = "config",
        alias = "configfile",
        global = true
    )]
    config_file: Option<PathBuf>,

    /// Worker threads, each serving its own connections. Default: the
    /// number of available cores.
    #[arg(long, global = true)]
    workers: Option<usize>,

    /// Log level (TRACE, DEBUG, INFO, WARN, ERROR); overrides `log.level`.
    #[arg(long = "log-level", alias = "log.level", global = true)]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the static and dynamic configuration and exit: non-zero
    /// with every error found.
    Check,
    /// Say which router the configuration sends a request to, and why,
    /// without starting the proxy (the same answer as `/api/explain`).
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    /// The request's URL (`http://host/path?query`), or a path with a
    /// `Host` header given by `-H`.
    url: String,
    /// A request header, `Name: Value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request method.
    #[arg(short = 'X', long = "request", default_value = "GET")]
    method: String,
    /// The entrypoint it arrives on. Default: every entrypoint routers
    /// attach to by default.
    #[arg(long = "entryPoint", alias = "entrypoint")]
    entry_point: Option<String>,
    /// The client's address (default 127.0.0.1).
    #[arg(long = "clientIP", alias = "client-ip")]
    client_ip: Option<String>,
    /// The TLS server name, for a TLS connection.
    #[arg(long)]
    sni: Option<String>,
    /// Print the answer as JSON (the API's shape).
    #[arg(long)]
    json: bool,
    /// Exit 3 unless this router (`name` or `name@file`) takes the request
    /// on some entrypoint explained: a CI check of a routing change.
    #[arg(long)]
    expect: Option<String>,
}

/// `proxy explain`: the answer per entrypoint; exit 1 when the
/// configuration cannot be used or the question is malformed, 3 when
/// `--expect` names another router than the one that answers.
fn explain(static_cfg: &proxy::config::StaticConfig, args: &ExplainArgs) -> ExitCode {
    let snap = match proxy::control::served(static_cfg) {
        Ok((snap, errors)) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            snap
        }
        Err(errors) => {
            eprintln!("error: the dynamic configuration cannot be used:\n{errors}");
            return ExitCode::from(1);
        }
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((n, v)) = h.split_once(':') else {
            eprintln!("error: header {h:?}: expected 'Name: Value'");
            return ExitCode::from(1);
        };
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let entry_points = match &args.entry_point {
        Some(ep) => vec![ep.clone()],
        None => static_cfg.default_entry_points(),
    };
    let mut taken = Vec::new();
    for ep in entry_points {
        let q = proxy::admin::explain::Question {
            entry_point: ep,
            url: args.url.clone(),
            method: args.method.clone(),
            headers: headers.clone(),
            client_ip: args.client_ip.clone(),
            sni: args.sni.clone(),
        };
        match proxy::admin::explain::explain(static_cfg, &snap, &q) {
            Ok(v) => {
                if args.json {
                    println!("{v}");
                } else {
                    print!("{}", proxy::admin::explain::to_text(&v));
                }
                if let Some(r) = v["router"].as_str() {
                    taken.push(r.to_owned());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let Some(want) = &args.expect {
        let qualified = if want.contains('@') {
            want.clone()
        } else {
            format!("{want}@file")
        };
        if !taken.contains(&qualified) {
            eprintln!(
                "expected router {qualified}, got {}",
                if taken.is_empty() {
                    "none".to_owned()
                } else {
                    taken.join(", ")
                }
            );
            return ExitCode::from(3);
        }
    }
    ExitCode::SUCCESS
}

fn default_config_file() -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".config"));
    }
    dirs.push(PathBuf::from("/etc/traefik"));
    dirs.iter()
        .flat_map(|d| ["traefik.yml", "traefik.yaml", "traefik.toml"].map(|f| d.join(f)))
        .find(|p| p.is_file())
}

/// `proxy check`: every warning (one a line, `warning: file:line:col:
/// ...`), then every error; exit 1 when there is an error, 0 otherwise.
fn check(
    static_cfg: &proxy::config::StaticConfig,
    static_warnings: &[proxy::config::ConfigWarning],
) -> ExitCode {
    let (result, warnings) = proxy::control::check(static_cfg);
    for w in static_warnings.iter().chain(&warnings) {
        eprintln!("warning: {w}");
    }
    match result {
        Ok(snap) => {
            println!(
                "configuration OK: {} entrypoints, {} routers, {} services{}",
                static_cfg.entry_points.len(),
                snap.routers.len(),
                snap.services.len(),
                match static_warnings.len() + warnings.len() {
                    0 => String::new(),
                    n => format!(", {n} warnings"),
                }
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("error: invalid configuration:\n{errors}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(config_file) = cli.config_file.clone().or_else(default_config_file) else {
        eprintln!(
            "error: no static configuration: pass --configFile FILE (or put traefik.yml in the current directory, $HOME/.config/ or /etc/traefik/)"
        );
        return ExitCode::from(2);
    };

    let (static_cfg, warnings) = match proxy::config::load_static(&config_file) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("error: invalid configuration:\n{errors}");
            return ExitCode::from(1);
        }
    };
    let level = cli
        .log_level
        .clone()
        .unwrap_or_else(|| static_cfg.log.level.as_str().to_owned());
    let json = static_cfg.log.format == proxy::config::LogFormat::Json;
    proxy::observe::init_logging(&level, json);
    match &cli.command {
        Some(Command::Check) => return check(&static_cfg, &warnings),
        Some(Command::Explain(args)) => return explain(&static_cfg, args),
        None => {}
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }

    match proxy::listener::bind::raise_nofile_limit() {
        Ok(n) => tracing::debug!(limit = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
    let workers = cli
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let running = match proxy::app::start(static_cfg, Some(config_file), workers) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        workers,
        version = env!("CARGO_PKG_VERSION"),
        "proxy started"
    );

    let deadline = wait_for_signal();
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown(deadline);
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Blocks until SIGTERM or SIGINT. SIGTERM drains for the configured
/// `graceTimeOut`; SIGINT (Ctrl-C) uses a short deadline.
fn wait_for_signal() -> Option<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("signal runtime");
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => None,
            _ = int.recv() => Some(Duration::from_secs(1)),
        }
    })
}
