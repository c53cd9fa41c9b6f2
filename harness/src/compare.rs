//! The harness comparison (`harness compare`): is this proxy build slower
//! than a reference, judged on ratios measured within one run so the
//! machine cancels out. Two kinds of reference:
//!
//! - a saved baseline run (`--baseline FILE`): the proxy's ratios against
//!   the peers of the same run (traefik, nginx, haproxy and floor CPU per
//!   request; direct throughput) now against then;
//! - another build in the same run (`--base LABEL --head LABEL`, the merge
//!   gate's harness half): head/base CPU per request and throughput, round
//!   by round.
//!
//! A ratio fails when it is worse by more than 5% beyond the noise its
//! rounds show. (The deterministic instruction and allocation counts are
//! the other gate, `cargo run -p gate`.) Pure functions over [`Results`];
//! the verdict is unit tested on synthetic runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::results::{Results, Round, ScenarioResult, TargetResult};
use crate::stats::Spread;

/// Allowed worsening before noise.
pub const TOLERANCE: f64 = 0.05;

/// Whether lower or higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// CPU ratios.
    Lower,
    /// Throughput ratios.
    Higher,
}

/// One ratio over a run's rounds.
#[derive(Debug, Clone)]
pub struct Ratio {
    /// Median and range over rounds.
    pub spread: Spread,
    /// Direction.
    pub better: Better,
}

fn cpu(r: &Round) -> Option<f64> {
    r.cpu_us_per_req
}

fn rps(r: &Round) -> Option<f64> {
    Some(r.req_per_s)
}

fn mem(r: &Round) -> Option<f64> {
    r.mem_per_conn_kib
}

/// The figures a scenario is judged on: memory per connection for
/// idle-conns (its rate is how fast connections opened), else CPU per
/// request and throughput.
fn figures(s: &ScenarioResult) -> &'static [(&'static str, Better, Figure)] {
    let idle = s
        .targets
        .iter()
        .flat_map(|t| &t.rounds)
        .any(|r| r.idle_conns.is_some());
    if idle {
        &[("memory per connection", Better::Lower, mem)]
    } else {
        &[
            ("CPU per request", Better::Lower, cpu),
            ("throughput", Better::Higher, rps),
        ]
    }
}

/// Per-round `a / b` of a figure (rounds paired by position: they ran
/// interleaved).
fn per_round(a: &TargetResult, b: &TargetResult, f: Figure) -> Option<Spread> {
    Spread::of(
        a.rounds
            .iter()
            .zip(&b.rounds)
            .filter_map(|(x, y)| Some(f(x)? / f(y)?))
            .filter(|v| v.is_finite() && *v > 0.0),
    )
}

/// A figure of a round.
type Figure = fn(&Round) -> Option<f64>;

/// The peers the proxy's ratios are taken against: its CPU per request
/// against the proxies', its throughput against direct's (memory per
/// connection against every one of them in idle-conns).
const PEERS: [&str; 5] = ["traefik", "nginx", "haproxy", "floor", "direct"];

/// The target the baseline comparison judges.
pub const GATED: &str = "proxy";

fn driver_rows<'a>(s: &'a ScenarioResult, name: &str) -> Option<&'a TargetResult> {
    s.targets
        .iter()
        .find(|t| t.target == name && t.driver != "wrk")
}

/// The gated ratios of a run, keyed `scenario: what`: the proxy against
/// every peer measured beside it.
pub fn ratios(r: &Results) -> BTreeMap<String, Ratio> {
    let mut out = BTreeMap::new();
    for s in &r.scenarios {
        let Some(p) = driver_rows(s, GATED) else {
            continue;
        };
        for peer in PEERS {
            for &(what, better, f) in figures(s) {
                let judged = match what {
                    "CPU per request" => peer != "direct",
                    "throughput" => peer == "direct",
                    _ => true,
                };
                if let Some(spread) = driver_rows(s, peer)
                    .filter(|_| judged)
                    .and_then(|o| per_round(p, o, f))
                {
                    out.insert(
                        format!("{}: {GATED}/{peer} {what}", s.name),
                        Ratio { spread, better },
                    );
                }
            }
        }
    }
    out
}

/// The verdict on one ratio.
#[derive(Debug, Clone)]
pub struct Check {
    /// `scenario: ratio`.
    pub name: String,
    /// The reference value (the baseline's median, or 1 for base itself).
    pub base: f64,
    /// This run's median.
    pub current: f64,
    /// Relative worsening (negative: better).
    pub worse_by: f64,
    /// Allowed worsening: tolerance plus noise.
    pub allowed: f64,
    /// Verdict.
    pub pass: bool,
}

fn judge(name: String, base: f64, base_noise: f64, cur: &Ratio) -> Check {
    let worse_by = match cur.better {
        Better::Lower => cur.spread.median / base - 1.0,
        Better::Higher => 1.0 - cur.spread.median / base,
    };
    let allowed = TOLERANCE + cur.spread.relative_half_range().max(base_noise);
    Check {
        name,
        base,
        current: cur.spread.median,
        worse_by,
        allowed,
        pass: worse_by <= allowed,
    }
}

/// Compares every ratio present in both runs.
pub fn against_baseline(base: &Results, current: &Results) -> Vec<Check> {
    let b = ratios(base);
    ratios(current)
        .into_iter()
        .filter_map(|(name, cur)| {
            let old = b.get(&name)?;
            Some(judge(
                name,
                old.spread.median,
                old.spread.relative_half_range(),
                &cur,
            ))
        })
        .collect()
}

/// Compares `head` with `base`, both measured in the run `r`: head/base CPU
/// per request (lower is better) and throughput (higher is better) per
/// round, against 1.
pub fn head_vs_base(r: &Results, base: &str, head: &str) -> Vec<Check> {
    let mut out = Vec::new();
    for s in &r.scenarios {
        let (Some(b), Some(h)) = (driver_rows(s, base), driver_rows(s, head)) else {
            continue;
        };
        for &(what, better, f) in figures(s) {
            if let Some(spread) = per_round(h, b, f) {
                out.push(judge(
                    format!("{}: {head}/{base} {what}", s.name),
                    1.0,
                    0.0,
                    &Ratio { spread, better },
                ));
            }
        }
    }
    out
}

/// Renders the verdicts (text for the terminal, markdown for a CI job
/// summary) and whether all passed.
pub fn render(title: &str, checks: &[Check]) -> (String, String, bool) {
    let mut text = format!(
        "harness compare: {title}; a ratio fails when worse by more than {:.0}% plus the noise its rounds show.\n",
        TOLERANCE * 100.0
    );
    let mut md = format!(
        "### Harness comparison: {title}\n\n| ratio | reference | now | worse by | allowed | verdict |\n|---|---:|---:|---:|---:|---|\n"
    );
    let mut ok = !checks.is_empty();
    if checks.is_empty() {
        text.push_str("  no ratio present in both: nothing compared (FAIL)\n");
    }
    for c in checks {
        ok &= c.pass;
        let verdict = if c.pass { "ok" } else { "FAIL" };
        let _ = writeln!(
            text,
            "  {verdict:<4} {:<52} reference {:>7.3}  now {:>7.3}  worse by {:>+6.1}%  (allowed {:.1}%)",
            c.name,
            c.base,
            c.current,
            c.worse_by * 100.0,
            c.allowed * 100.0
        );
        let _ = writeln!(
            md,
            "| {} | {:.3} | {:.3} | {:+.1}% | {:.1}% | {verdict} |",
            c.name,
            c.base,
            c.current,
            c.worse_by * 100.0,
            c.allowed * 100.0
        );
    }
    let verdict = if ok { "PASS" } else { "FAIL" };
    let _ = writeln!(text, "harness compare: {verdict}");
    let _ = writeln!(md, "\n**harness comparison: {verdict}**");
    (text, md, ok)
}

/// Appends `md` to the GitHub job summary when `GITHUB_STEP_SUMMARY` is set.
pub fn job_summary(md: &str) {
    if let Ok(p) = std::env::var("GITHUB_STEP_SUMMARY") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
        {
            let _ = writeln!(f, "{md}");
        }
    }
}

/// Writes `baselines/harness/NAME.json` from a run (histograms dropped).
pub fn save_baseline(root: &Path, name: &str, from: &Path) -> Result<PathBuf, String> {
    let src = if from.is_dir() {
        from.join("results.json")
    } else {
        from.to_owned()
    };
    let mut r = Results::load(&src)?;
    for s in &mut r.scenarios {
        for t in &mut s.targets {
            t.merged_histogram.clear();
            for round in &mut t.rounds {
                round.histogram.clear();
            }
        }
    }
    let dir = root.join("baselines/harness");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join(format!("{name}.json"));
    r.save(&out)?;
    Ok(out)
}

/// The newest report directory holding a results.json.
pub fn latest_report(reports: &Path) -> Result<PathBuf, String> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(reports)
        .map_err(|e| format!("{}: {e}", reports.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("results.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .ok_or_else(|| format!("no report with results.json under {}", reports.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::{Meta, Placement, ScenarioResult};
    use crate::stats::Percentiles;

    fn round(cpu: f64, rps: f64) -> Round {
        Round {
            round: 1,
            requests: 1000,
            errors: 0,
            first_error: None,
            req_per_s: rps,
            latency_us: Percentiles::default(),
            cpu_us_per_req: Some(cpu),
            cpu_user_us_per_req: None,
            load_cpu_us_per_req: None,
            peak_rss_kib: None,
            load_busy_pct: 50.0,
            load_saturated: false,
            sut_busy_pct: Some(99.0),
            others_busy_pct: Some(0.0),
            answered_total: 1000,
            retried: 0,
            log_lines: None,
            tls: None,
            idle_conns: None,
            mem_before_kib: None,
            mem_after_kib: None,
            mem_per_conn_kib: None,
            router_p99_us: None,
            reload: None,
            dashboard: None,
            body_bytes_per_answer: None,
            histogram: String::new(),
        }
    }

    pub(crate) fn target(name: &str, cpu: &[f64], rps: &[f64]) -> TargetResult {
        TargetResult {
            target: name.into(),
            driver: "driver".into(),
            rounds: cpu.iter().zip(rps).map(|(&c, &r)| round(c, r)).collect(),
            merged_histogram: String::new(),
        }
    }

    /// A synthetic run: the proxy's CPU per request per round, Traefik at
    /// 40 µs, nginx at 14, HAProxy at 13, floor at 13 µs, direct at 90k
    /// req/s, the proxy at 70k.
    pub(crate) fn synthetic(proxy_cpu: &[f64]) -> Results {
        let n = proxy_cpu.len();
        Results {
            schema_version: crate::results::SCHEMA_VERSION,
            meta: Meta {
                started_utc: String::new(),
                git_commit: String::new(),
                cpu_model: String::new(),
                cpus: 2,
                placement: Placement {
                    sut_cpus: vec![0],
                    load_cpus: vec![1],
                    workers: 1,
                    pinned: true,
                },
                versions: BTreeMap::new(),
                rounds: n,
                warmup_secs: 1.0,
                quick: false,
                notes: vec![],
                load_threads: 1,
                tls: None,
            },
            scenarios: vec![ScenarioResult {
                name: "small-get".into(),
                what: String::new(),
                duration_secs: 5.0,
                config: "small-get".into(),
                driver: "driver (closed loop)".into(),
                offered_rate: None,
                offered_rate_note: None,
                targets: vec![
                    target("direct", &vec![f64::NAN; n], &vec![90_000.0; n]),
                    target("floor", &vec![13.0; n], &vec![74_000.0; n]),
                    target("proxy", proxy_cpu, &vec![70_000.0; n]),
                    target("traefik", &vec![40.0; n], &vec![27_000.0; n]),
                    target("nginx", &vec![14.0; n], &vec![72_000.0; n]),
                    target("haproxy", &vec![13.0; n], &vec![73_000.0; n]),
                ],
                unavailable: vec![],
            }],
        }
    }

    #[test]
    fn ten_percent_regression_fails() {
        let base = synthetic(&[15.0, 15.1, 14.9]);
        let cur = synthetic(&[16.5, 16.6, 16.4]);
        let checks = against_baseline(&base, &cur);
        assert_eq!(checks.len(), 5);
        let cpu: Vec<&Check> = checks.iter().filter(|c| c.name.contains("CPU")).collect();
        assert_eq!(cpu.len(), 4);
        assert!(cpu.iter().all(|c| !c.pass), "{checks:?}");
        let tput = checks
            .iter()
            .find(|c| c.name.contains("throughput"))
            .unwrap();
        assert!(tput.pass);
        assert!(!render("t", &checks).2);
    }

    #[test]
    fn noise_within_the_rounds_spread_passes() {
        // Rounds spread ±8%; the median moves 7%: within 5% + noise.
        let base = synthetic(&[13.8, 15.0, 16.2]);
        let cur = synthetic(&[14.8, 16.05, 17.0]);
        let checks = against_baseline(&base, &cur);
        assert!(checks.iter().all(|c| c.pass), "{checks:?}");
        // An improvement always passes.
        let better = synthetic(&[10.0, 10.0, 10.0]);
        assert!(against_baseline(&base, &better).iter().all(|c| c.pass));
        // Nothing to compare is a failure, not a pass.
        assert!(!render("t", &[]).2);
    }

    #[test]
    fn throughput_drop_fails() {
        let base = synthetic(&[15.0; 3]);
        let mut cur = synthetic(&[15.0; 3]);
        for r in &mut cur.scenarios[0].targets[2].rounds {
            r.req_per_s = 60_000.0;
        }
        let checks = against_baseline(&base, &cur);
        let t = checks
            .iter()
            .find(|c| c.name.contains("throughput"))
            .unwrap();
        assert!(!t.pass && t.worse_by > 0.1, "{t:?}");
    }

    #[test]
    fn idle_connections_are_judged_on_memory_not_rate() {
        let mut base = synthetic(&[15.0; 3]);
        for t in &mut base.scenarios[0].targets {
            for r in &mut t.rounds {
                r.idle_conns = Some(5000);
                r.mem_per_conn_kib = Some(10.0);
            }
        }
        let mut cur = base.clone();
        for r in &mut cur.scenarios[0].targets[2].rounds {
            r.mem_per_conn_kib = Some(12.0);
        }
        let checks = against_baseline(&base, &cur);
        assert_eq!(checks.len(), 5, "{checks:?}");
        assert!(
            checks
                .iter()
                .all(|c| c.name.contains("memory per connection"))
        );
        assert!(checks.iter().all(|c| !c.pass));
    }

    #[test]
    fn head_slower_than_base_beyond_the_spread_fails() {
        let run = |head_cpu: [f64; 3]| {
            let mut r = synthetic(&[10.0; 3]);
            r.scenarios[0].targets = vec![
                target("base", &[10.0; 3], &[1000.0; 3]),
                target("head", &head_cpu, &[1000.0; 3]),
            ];
            r
        };
        let pass = |r: &Results| {
            let c = head_vs_base(r, "base", "head");
            assert_eq!(c.len(), 2);
            c.iter().all(|c| c.pass)
        };
        assert!(pass(&run([10.2, 10.3, 10.1])));
        assert!(!pass(&run([11.0, 11.0, 11.0])));
        // Noisy rounds widen the allowance: ±10% spread allows up to 15%.
        assert!(pass(&run([10.0, 11.0, 12.0])));
        assert!(head_vs_base(&run([10.0; 3]), "base", "other").is_empty());
    }
}
