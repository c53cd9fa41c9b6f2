//! Integration test: `harness --quick` on `small-get` against the backend
//! (direct) and the proxy, end to end through real processes on 127.0.0.1.
//! The proxy part is skipped, with a printed reason, only when the proxy
//! binary cannot be built.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn proxy_builds() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--release", "-p", "proxy"])
        .current_dir(workspace())
        .status()
        .map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cargo build --release -p proxy: {st}"))
    }
}

fn run_quick(targets: &str, out: &Path) -> serde_json::Value {
    let st = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "--quick",
            "--scenario",
            "small-get",
            "--target",
            targets,
            "--duration",
            "1",
        ])
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
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn assert_measured(v: &serde_json::Value, target: &str) {
    let s = &v["scenarios"][0];
    assert_eq!(s["name"], "small-get");
    let t = s["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .unwrap_or_else(|| panic!("{target} not measured: {s}"));
    let r = &t["rounds"][0];
    assert!(r["requests"].as_u64().unwrap() > 100, "{target}: {r}");
    assert_eq!(r["errors"].as_u64().unwrap(), 0, "{target}: {r}");
}

#[test]
fn quick_small_get_direct_and_proxy() {
    let base = std::env::temp_dir().join(format!("harness-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let direct = run_quick("direct", &base.join("direct"));
    assert_measured(&direct, "direct");

    if let Err(e) = proxy_builds() {
        println!("SKIPPED the proxy part: the proxy binary cannot be built ({e})");
        return;
    }
    let v = run_quick("direct,proxy", &base.join("proxy"));
    assert_measured(&v, "proxy");
    let r = &v["scenarios"][0]["targets"][1]["rounds"][0];
    assert!(r["cpu_us_per_req"].as_f64().unwrap() > 0.0, "{r}");
    let _ = std::fs::remove_dir_all(&base);
}
