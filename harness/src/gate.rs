//! The merge gate: machine-independent ratios from one run (proxy/traefik
//! and proxy/floor CPU per request, proxy/direct throughput), compared with
//! a saved baseline. A ratio fails when it is worse by more than 5% beyond
//! the noise its rounds show.
//!
//! Pure functions over [`Results`]: the decision is unit tested on
//! synthetic results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::results::Results;
use crate::stats::Spread;

/// Allowed worsening before noise.
pub(crate) const TOLERANCE: f64 = 0.05;

/// The target the gate judges.
pub(crate) const GATED: &str = "proxy";

/// Whether lower or higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    /// CPU ratios.
    Lower,
    /// Throughput ratios.
    Higher,
}

/// One gated ratio, per round paired across targets.
#[derive(Debug, Clone)]
pub(crate) struct Ratio {
    /// Median and range over rounds.
    pub(crate) spread: Spread,
    /// Direction.
    pub(crate) better: Better,
}

/// The gated ratios of a run, keyed `scenario: what`.
pub(crate) fn ratios(r: &Results) -> BTreeMap<String, Ratio> {
    let mut out = BTreeMap::new();
    for s in &r.scenarios {
        let Some(p) = s.target(GATED) else { continue };
        let mut add = |other: &str,
                       what: &str,
                       better: Better,
                       f: &dyn Fn(&crate::results::Round) -> Option<f64>| {
            let Some(o) = s.target(other) else { return };
            let vals = p
                .rounds
                .iter()
                .zip(&o.rounds)
                .filter_map(|(a, b)| Some(f(a)? / f(b)?))
                .filter(|v| v.is_finite() && *v > 0.0);
            if let Some(spread) = Spread::of(vals) {
                out.insert(
                    format!("{}: {GATED}/{other} {what}", s.name),
                    Ratio { spread, better },
                );
            }
        };
        add("traefik", "CPU per request", Better::Lower, &|r| {
            r.cpu_us_per_req
        });
        add("floor", "CPU per request", Better::Lower, &|r| {
            r.cpu_us_per_req
        });
        add("direct", "throughput", Better::Higher, &|r| {
            Some(r.req_per_s)
        });
    }
    out
}

/// The verdict on one ratio.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// `scenario: ratio`.
    pub(crate) name: String,
    /// Baseline median.
    pub(crate) base: f64,
    /// This run's median.
    pub(crate) current: f64,
    /// Relative worsening (negative: better).
    pub(crate) worse_by: f64,
    /// Allowed worsening: tolerance plus noise.
    pub(crate) allowed: f64,
    /// Verdict.
    pub(crate) pass: bool,
}

/// Compares every ratio present in both runs.
pub(crate) fn compare(base: &Results, current: &Results) -> Vec<Check> {
    let b = ratios(base);
    let c = ratios(current);
    c.iter()
        .filter_map(|(name, cur)| {
            let old = b.get(name)?;
            let worse_by = match cur.better {
                Better::Lower => cur.spread.median / old.spread.median - 1.0,
                Better::Higher => 1.0 - cur.spread.median / old.spread.median,
            };
            let noise = cur
                .spread
                .relative_half_range()
                .max(old.spread.relative_half_range());
            let allowed = TOLERANCE + noise;
            Some(Check {
                name: name.clone(),
                base: old.spread.median,
                current: cur.spread.median,
                worse_by,
                allowed,
                pass: worse_by <= allowed,
            })
        })
        .collect()
}

/// Prints the verdicts; true when all pass.
pub(crate) fn print(checks: &[Check]) -> bool {
    println!(
        "gate: comparing machine-independent ratios from the same run (proxy/traefik and proxy/floor CPU per request, proxy/direct throughput) with the baseline; a ratio fails when worse by more than {:.0}% plus the noise its rounds show.",
        TOLERANCE * 100.0
    );
    if checks.is_empty() {
        println!("gate: no ratio present in both runs: nothing to compare (FAIL)");
        return false;
    }
    let mut ok = true;
    for c in checks {
        ok &= c.pass;
        println!(
            "  {:<4} {:<48} baseline {:>7.3}  now {:>7.3}  worse by {:>+6.1}%  (allowed {:.1}%)",
            if c.pass { "ok" } else { "FAIL" },
            c.name,
            c.base,
            c.current,
            c.worse_by * 100.0,
            c.allowed * 100.0
        );
    }
    println!("gate: {}", if ok { "PASS" } else { "FAIL" });
    ok
}

/// Writes `baselines/harness/NAME.json` from a run (histograms dropped).
pub(crate) fn save_baseline(root: &Path, name: &str, from: &Path) -> Result<PathBuf, String> {
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
pub(crate) fn latest_report(reports: &Path) -> Result<PathBuf, String> {
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
    use crate::results::{Meta, Placement, Round, ScenarioResult, TargetResult};
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
            peak_rss_kib: None,
            load_busy_pct: 50.0,
            load_saturated: false,
            router_p99_us: None,
            reload: None,
            histogram: String::new(),
        }
    }

    fn target(name: &str, cpu: &[f64], rps: &[f64]) -> TargetResult {
        TargetResult {
            target: name.into(),
            rounds: cpu.iter().zip(rps).map(|(&c, &r)| round(c, r)).collect(),
            merged_histogram: String::new(),
        }
    }

    /// A synthetic run: the proxy's CPU per request per round, Traefik at
    /// 40 µs, floor at 13 µs, direct at 90k req/s, the proxy at 70k.
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
            },
            scenarios: vec![ScenarioResult {
                name: "small-get".into(),
                what: String::new(),
                duration_secs: 5.0,
                targets: vec![
                    target("direct", &vec![f64::NAN; n], &vec![90_000.0; n]),
                    target("floor", &vec![13.0; n], &vec![74_000.0; n]),
                    target("proxy", proxy_cpu, &vec![70_000.0; n]),
                    target("traefik", &vec![40.0; n], &vec![27_000.0; n]),
                ],
                unavailable: vec![],
            }],
        }
    }

    #[test]
    fn ten_percent_regression_fails() {
        let base = synthetic(&[15.0, 15.1, 14.9]);
        let cur = synthetic(&[16.5, 16.6, 16.4]);
        let checks = compare(&base, &cur);
        assert_eq!(checks.len(), 3);
        let cpu: Vec<&Check> = checks.iter().filter(|c| c.name.contains("CPU")).collect();
        assert_eq!(cpu.len(), 2);
        assert!(cpu.iter().all(|c| !c.pass), "{checks:?}");
        let tput = checks
            .iter()
            .find(|c| c.name.contains("throughput"))
            .unwrap();
        assert!(tput.pass);
    }

    #[test]
    fn noise_within_the_rounds_spread_passes() {
        // Rounds spread ±8%; the median moves 7%: within 5% + noise.
        let base = synthetic(&[13.8, 15.0, 16.2]);
        let cur = synthetic(&[14.8, 16.05, 17.0]);
        let checks = compare(&base, &cur);
        assert!(checks.iter().all(|c| c.pass), "{checks:?}");
        // An improvement always passes.
        let better = synthetic(&[10.0, 10.0, 10.0]);
        assert!(compare(&base, &better).iter().all(|c| c.pass));
    }

    #[test]
    fn throughput_drop_fails() {
        let base = synthetic(&[15.0; 3]);
        let mut cur = synthetic(&[15.0; 3]);
        for r in &mut cur.scenarios[0].targets[2].rounds {
            r.req_per_s = 60_000.0;
        }
        let checks = compare(&base, &cur);
        let t = checks
            .iter()
            .find(|c| c.name.contains("throughput"))
            .unwrap();
        assert!(!t.pass && t.worse_by > 0.1, "{t:?}");
    }
}
