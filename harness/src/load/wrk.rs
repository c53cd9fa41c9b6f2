//! wrk, run beside the driver on the same placement (`driver-vs-wrk`) to
//! show the driver is not the limit: a warm-up run, then a measured run of
//! whole seconds, both pinned to the load cores; its text output is parsed
//! for the request count, the latency distribution and the errors. wrk
//! checks only the status of an answer (a non-2xx/3xx is an error here).
//!
//! Runs a child process per window; nothing per request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{LoadResult, Window};
use crate::procs;
use crate::scenario::RequestSpec;
use crate::stats::Percentiles;

/// Finds `wrk` on PATH.
pub(crate) fn find() -> Option<PathBuf> {
    procs::on_path("wrk")
}

/// `wrk --version`'s first line.
pub(crate) fn version(bin: &Path) -> String {
    let out = std::process::Command::new(bin).arg("-v").output();
    out.ok()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| "wrk (unknown version)".into())
}

/// What one wrk run printed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WrkOutput {
    /// Requests completed.
    pub(crate) requests: u64,
    /// Seconds it ran.
    pub(crate) secs: f64,
    /// Latency percentiles (p50, p90, p99; max), µs.
    pub(crate) latency: Percentiles,
    /// Non-2xx/3xx answers plus socket errors.
    pub(crate) errors: u64,
    /// What the errors were.
    pub(crate) error_text: Option<String>,
    /// CPU seconds wrk used (user + system).
    pub(crate) cpu_secs: f64,
}

/// Parses a duration as wrk prints it (`118.00us`, `0.90ms`, `1.02s`, `2.00m`) into µs.
fn parse_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e6)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60e6)
    } else {
        return None;
    };
    num.trim().parse::<f64>().ok().map(|v| v * mult)
}

/// Parses wrk's report (run with `--latency`).
pub(crate) fn parse(out: &str) -> Result<WrkOutput, String> {
    let mut requests = None;
    let mut secs = None;
    let mut lat = Percentiles {
        p999: f64::NAN,
        ..Percentiles::default()
    };
    let mut errors = 0u64;
    let mut texts = Vec::new();
    for line in out.lines() {
        let l = line.trim();
        if let Some((n, rest)) = l.split_once(" requests in ") {
            requests = n.trim().parse::<u64>().ok();
            secs = rest.split(',').next().and_then(parse_us).map(|us| us / 1e6);
        } else if let Some(v) = l.strip_prefix("50%") {
            lat.p50 = parse_us(v).unwrap_or(f64::NAN);
        } else if let Some(v) = l.strip_prefix("90%") {
            lat.p90 = parse_us(v).unwrap_or(f64::NAN);
        } else if let Some(v) = l.strip_prefix("99%") {
            lat.p99 = parse_us(v).unwrap_or(f64::NAN);
        } else if let Some(v) = l.strip_prefix("Latency") {
            // `Latency  0.96ms  1.83ms  12.77ms  87.46%`: avg, stdev, max.
            if let Some(max) = v.split_whitespace().nth(2).and_then(parse_us) {
                lat.max = max;
            }
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            let n = v.trim().parse::<u64>().unwrap_or(0);
            errors += n;
            texts.push(format!("{n} non-2xx/3xx answers"));
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            let n: u64 = v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
            errors += n;
            texts.push(format!("socket errors:{v}"));
        } else if l.starts_with("unable to connect") {
            return Err(format!("wrk: {l}"));
        }
    }
    match (requests, secs) {
        (Some(requests), Some(secs)) if secs > 0.0 => Ok(WrkOutput {
            requests,
            secs,
            latency: lat,
            errors,
            error_text: (!texts.is_empty()).then(|| texts.join("; ")),
            cpu_secs: 0.0,
        }),
        _ => Err(format!("could not read wrk's output: {out}")),
    }
}

async fn once(
    bin: &Path,
    addr: SocketAddr,
    spec: &RequestSpec,
    conns: usize,
    threads: usize,
    secs: u64,
    cpus: Option<&[usize]>,
) -> Result<WrkOutput, String> {
    let mut args = vec![
        format!("-t{}", threads.clamp(1, conns)),
        format!("-c{conns}"),
        format!("-d{secs}s"),
        "--latency".into(),
    ];
    if let Some(h) = &spec.host {
        args.push("-H".into());
        args.push(format!("Host: {h}"));
    }
    args.push(format!("http://{addr}{}", spec.path));
    let mut cmd = procs::command(bin, &args, cpus);
    // wrk's CPU time lands in this process's reaped-children time once
    // output() has waited for it.
    let (out, cpu_secs) = tokio::task::spawn_blocking(move || {
        let before = procs::self_cpu_seconds().1;
        let out = cmd.output();
        (out, procs::self_cpu_seconds().1 - before)
    })
    .await
    .map_err(|e| e.to_string())?;
    let out = out.map_err(|e| format!("running wrk: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    parse(&text).map(|o| WrkOutput { cpu_secs, ..o })
}

/// Runs wrk through `window` (whose warm-up and length are whole seconds,
/// wrk's resolution): a warm-up run, then the measured run.
pub(crate) async fn run(
    bin: &Path,
    addr: SocketAddr,
    spec: &RequestSpec,
    conns: usize,
    threads: usize,
    window: Window,
    cpus: Option<&[usize]>,
) -> Result<LoadResult, String> {
    tokio::time::sleep_until(window.load_start.into()).await;
    let warm = (window.start - Instant::now()).as_secs_f64().round() as u64;
    if warm > 0 {
        once(bin, addr, spec, conns, threads, warm, cpus).await?;
    }
    let secs = window.secs().round().max(1.0) as u64;
    let o = once(bin, addr, spec, conns, threads, secs, cpus).await?;
    let mut r = LoadResult::empty();
    r.requests = o.requests;
    r.answered_total = o.requests;
    r.errors = o.errors;
    r.first_error = o.error_text;
    r.external_latency = Some(o.latency);
    r.measured_secs = Some(o.secs);
    r.external_cpu_secs = Some(o.cpu_secs);
    if o.requests > 0 {
        r.load_cpu_us_per_req = Some(o.cpu_secs * 1e6 / o.requests as f64);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let out = "Running 1s test @ http://127.0.0.1:18081/\n  1 threads and 10 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     0.96ms    1.83ms  12.77ms   87.46%\n\
    Req/Sec    49.13k    26.69k   90.40k    50.00%\n  Latency Distribution\n     50%  118.00us\n\
     75%    0.90ms\n     90%    3.38ms\n     99%    8.08ms\n  49242 requests in 1.01s, 4.93MB read\n\
  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 5\n\
Requests/sec:  48620.29\nTransfer/sec:      4.87MB\n";
        let o = parse(out).unwrap();
        assert_eq!(o.requests, 49242);
        assert!((o.secs - 1.01).abs() < 1e-9);
        assert_eq!(o.latency.p50, 118.0);
        assert!((o.latency.p90 - 3380.0).abs() < 1e-6);
        assert!((o.latency.p99 - 8080.0).abs() < 1e-6);
        assert!((o.latency.max - 12770.0).abs() < 1e-6);
        assert_eq!(o.errors, 8);
        assert!(o.error_text.unwrap().contains("5 non-2xx"));
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_err());
        assert!(parse("garbage").is_err());
    }
}
