//! Integration test: `harness --quick` end to end through real processes on
//! 127.0.0.1: every scenario, against the backend (direct), the floor, the
//! proxy, Traefik, nginx and HAProxy, driven by the harness's driver (and
//! goose and wrk where the scenarios say so). It fails when a target
//! answers wrongly (the driver checks status, backend and body of every
//! answer) or a scenario's figures are missing.
//!
//! A peer that is not installed is left out with a printed SKIPPED line
//! (and `reload-storm-redis` without `redis-server`); under CI (`CI` set,
//! as `.ci/run` does, which installs them all) a missing one fails the
//! test instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::results::{Results, ScenarioResult};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn on_path(name: &str) -> bool {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .any(|d| d.join(name).is_file())
}

fn traefik() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRAEFIK_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let venv = target.join("traefik-venv/bin/traefik");
    venv.is_file().then_some(venv)
}

/// The proxy in the dev profile: this test checks that every target answers
/// every scenario correctly, not how fast. `cargo test --workspace` has
/// already built that binary (for the proxy's own tests) with the
/// workspace's unified features; building it again with `-p proxy` alone
/// would rebuild its dependencies, and a fat-LTO release build adds about
/// six minutes to CI with artifacts the gate's bench profile cannot reuse.
/// So it is built only when missing or older than the proxy's sources.
fn proxy_builds() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bin = target.join("debug/proxy");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let ws = workspace();
    let sources = [
        ws.join("proxy"),
        ws.join("Cargo.lock"),
        ws.join("Cargo.toml"),
    ];
    let fresh = built.is_some_and(|b| sources.iter().all(|p| newest(p) <= b));
    if fresh {
        return Ok(bin);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-p", "proxy", "--bin", "proxy"])
        .current_dir(ws)
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("cargo build -p proxy: {st}"));
    }
    Ok(bin)
}

/// The newest modification time under `p` (a file or a directory tree,
/// leaving out `target`).
fn newest(p: &Path) -> std::time::SystemTime {
    let Ok(m) = std::fs::metadata(p) else {
        return std::time::SystemTime::UNIX_EPOCH;
    };
    let own = m.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    if !m.is_dir() {
        return own;
    }
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name() != "target")
        .map(|e| newest(&e.path()))
        .fold(own, std::cmp::max)
}

/// Leaves out what is missing, saying so (or failing under CI).
fn optional(name: &str, found: bool, targets: &mut Vec<String>) {
    if found {
        targets.push(name.into());
    } else if std::env::var_os("CI").is_some() {
        panic!("{name} is not installed, and CI is set: .ci/run installs it");
    } else {
        println!("SKIPPED target {name}: not installed");
    }
}

fn run_quick(args: &[&str], out: &Path) -> Results {
    let st = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["--quick", "--duration", "0.6", "--warmup", "0.3"])
        .args(args)
        .arg("--out")
        .arg(out)
        .status()
        .expect("running the harness");
    assert!(st.success(), "harness --quick failed: {st}");
    let dir = std::fs::read_dir(out)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("results.json").is_file())
        .expect("a report directory");
    for f in ["report.md", "report.html"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    Results::load(&dir.join("results.json")).unwrap()
}

fn scenario<'a>(r: &'a Results, name: &str) -> &'a ScenarioResult {
    r.scenarios
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("scenario {name} missing"))
}

#[test]
fn quick_run_every_scenario_every_target() {
    let base = std::env::temp_dir().join(format!("harness-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut targets: Vec<String> = vec!["direct".into(), "floor".into()];
    let mut extra: Vec<String> = Vec::new();
    match proxy_builds() {
        Ok(bin) => {
            targets.push("proxy".into());
            extra.extend(["--proxy-path".into(), bin.display().to_string()]);
        }
        Err(e) if std::env::var_os("CI").is_some() => panic!("the proxy does not build: {e}"),
        Err(e) => println!("SKIPPED target proxy: it does not build ({e})"),
    }
    let t = traefik();
    optional("traefik", t.is_some(), &mut targets);
    if let Some(t) = t {
        extra.extend(["--traefik-bin".into(), t.display().to_string()]);
    }
    optional("nginx", on_path("nginx"), &mut targets);
    optional("haproxy", on_path("haproxy"), &mut targets);
    let wrk = on_path("wrk");
    if !wrk && std::env::var_os("CI").is_some() {
        panic!("wrk is not installed, and CI is set: .ci/run installs it");
    }
    // reload-storm-redis starts a redis-server per target: without one,
    // the scenario runs no target, and says so.
    let redis = on_path("redis-server");
    if !redis {
        if std::env::var_os("CI").is_some() {
            panic!("redis-server is not installed, and CI is set: .ci/run installs it");
        }
        println!("SKIPPED scenario reload-storm-redis: redis-server is not installed");
    }

    let joined = targets.join(",");
    let mut args: Vec<&str> = vec!["--scenario", "all", "--target", &joined];
    args.extend(extra.iter().map(String::as_str));
    let r = run_quick(&args, &base);

    // Every scenario ran, and every target that ran answered correctly.
    assert_eq!(r.scenarios.len(), 22, "every scenario");
    for s in &r.scenarios {
        if s.name == "reload-storm-redis" && !redis {
            assert!(
                s.targets.is_empty(),
                "reload-storm-redis ran without redis-server"
            );
            continue;
        }
        assert!(!s.targets.is_empty(), "{}: no target ran", s.name);
        for t in &s.targets {
            for round in &t.rounds {
                assert_eq!(
                    round.errors, 0,
                    "{} {} ({}): {:?}",
                    s.name, t.target, t.driver, round.first_error
                );
                // A target that falls behind an open-loop rate can answer
                // every request due in a short quick window only after it
                // ended (Traefik rebuilding 1,000 routers every 100 ms in
                // reload-storm): those answers' latencies are recorded, its
                // in-window throughput is 0. No answer at all fails.
                let late_only = round.requests == 0 && round.latency_us.max > 0.0;
                assert!(
                    round.requests > 0 || late_only,
                    "{} {}: no answers",
                    s.name,
                    t.target
                );
            }
        }
        // Nothing a target could run was left out for another reason than
        // one the harness states (the proxy has no TLS yet: it says so).
        for u in &s.unavailable {
            assert!(!u.reason.is_empty());
            assert!(
                targets.contains(&u.target),
                "{}: unexpected target {}",
                s.name,
                u.target
            );
        }
    }
    let ran = |s: &ScenarioResult, t: &str| s.targets.iter().any(|x| x.target == t);

    // The driver's own figures, and wrk beside it.
    let small = scenario(&r, "small-get");
    for t in &small.targets {
        let round = &t.rounds[0];
        assert!(round.load_cpu_us_per_req.unwrap() > 0.0);
        if t.target != "direct" {
            assert!(round.cpu_us_per_req.unwrap() > 0.0, "{}", t.target);
            assert!(round.sut_busy_pct.is_some(), "{}", t.target);
        }
    }
    let vs = scenario(&r, "driver-vs-wrk");
    assert!(vs.targets.iter().any(|t| t.driver == "driver"));
    if wrk {
        let w = vs.targets.iter().find(|t| t.driver == "wrk").unwrap();
        assert!(w.rounds[0].load_cpu_us_per_req.unwrap() > 0.0);
    }
    assert!(
        scenario(&r, "small-get-goose")
            .targets
            .iter()
            .all(|t| t.driver == "goose")
    );

    // idle-conns: memory per connection for every target, then answers.
    let idle = scenario(&r, "idle-conns");
    for t in &idle.targets {
        let round = &t.rounds[0];
        assert_eq!(round.idle_conns, Some(500), "{}", t.target);
        assert!(round.mem_per_conn_kib.is_some(), "{}", t.target);
        // 500 opened, 50 sampled again after idling, one new connection.
        assert_eq!(round.requests, 551, "{}", t.target);
    }

    // access-log-on: every target wrote a line per answer.
    for t in &scenario(&r, "access-log-on").targets {
        let round = &t.rounds[0];
        let lines = round.log_lines.unwrap_or(0);
        assert!(
            lines as f64 >= 0.5 * round.answered_total as f64,
            "{}: {lines} lines for {} answers",
            t.target,
            round.answered_total
        );
    }

    // TLS: the pinned parameters were negotiated by every target.
    let pinned = r.meta.tls.as_ref().expect("TLS pinned").pinned.clone();
    for name in ["tls-handshake", "tls-keepalive"] {
        let s = scenario(&r, name);
        assert!(ran(s, "direct"), "{name}: direct");
        for t in &s.targets {
            assert_eq!(
                t.rounds[0].tls.as_ref(),
                Some(&pinned),
                "{name} {}",
                t.target
            );
        }
    }

    // Open-loop scenarios state their offered rate.
    assert_eq!(scenario(&r, "fixed-rate").offered_rate, Some(5000.0));
    let eq = scenario(&r, "equal-rate");
    assert!(eq.offered_rate.unwrap() > 0.0 && eq.offered_rate_note.is_some());

    // reload-storm: every configured target took new routes (through
    // the file, or through Redis).
    let storms = scenario(&r, "reload-storm").targets.iter();
    for t in storms.chain(&scenario(&r, "reload-storm-redis").targets) {
        let rl = t.rounds[0].reload.as_ref().unwrap();
        assert!(rl.rewrites > 0, "{}", t.target);
        assert!(
            rl.route_live_ms.is_some(),
            "{}: new route never answered",
            t.target
        );
    }

    // dashboard-open: the proxy and Traefik answered every API call of the
    // dashboard's refreshes; the targets without an API did not run it.
    let dash = scenario(&r, "dashboard-open");
    for t in &dash.targets {
        assert!(
            ["proxy", "traefik"].contains(&t.target.as_str()),
            "{}",
            t.target
        );
        let fig = t.rounds[0].dashboard.as_ref().expect("dashboard figures");
        assert!(
            fig.refreshes >= 1 && fig.failed == 0,
            "{}: {fig:?}, {:?}",
            t.target,
            t.rounds[0].first_error
        );
    }
    for t in ["proxy", "traefik"] {
        assert_eq!(
            ran(dash, t),
            targets.iter().any(|x| x == t),
            "dashboard-open: {t}"
        );
    }

    // middleware-chain: Traefik's middlewares, so the proxy and Traefik
    // only (every answer passed the chain: 200 from main, auth accepted,
    // prefix stripped, limit not reached).
    let chain = scenario(&r, "middleware-chain");
    for t in &chain.targets {
        assert!(
            ["proxy", "traefik"].contains(&t.target.as_str()),
            "{}",
            t.target
        );
    }
    // compress: every target that ran sent compressed answers, and says
    // how large they were.
    for t in &scenario(&r, "compress").targets {
        let bytes = t.rounds[0].body_bytes_per_answer.expect("bytes per answer");
        assert!(bytes > 0.0 && bytes < 16384.0, "{}: {bytes}", t.target);
    }

    // The peers ran where the scenario could use them.
    for peer in ["nginx", "haproxy"] {
        if targets.iter().any(|t| t == peer) {
            for name in [
                "small-get",
                "many-routers",
                "h2c",
                "metrics-on",
                "tls-keepalive",
                "compress",
            ] {
                assert!(ran(scenario(&r, name), peer), "{peer} in {name}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}
