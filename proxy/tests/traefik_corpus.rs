//! The compatibility corpus: `tests/corpus/*.yml|toml`, one dynamic
//! configuration per feature Traefik documents, written the way its
//! documentation and integration tests use it. Each file says what it
//! expects in its header comments:
//!
//! ```text
//! # feature: router priority (negative fallback)
//! # request: a.test /x -> b1        (host, path, then a backend name or the status
//! #                                   the proxy answers: 404, 503, a redirect's 301)
//! # refused: middleware type "basicAuth"   (instead of requests: the file is
//! #                                         refused, every error "not supported yet")
//! ```
//!
//! `{b1}`..`{b4}` in a file are the addresses of four backends answering
//! with their name. An accepted file must route every request as written,
//! on the proxy and, when Traefik is installed, on a real Traefik 3.7
//! (differential). A refused file must be refused with "not supported yet"
//! errors only, each naming the missing feature; the tally counts which
//! missing features block how many files. A file refused for any other
//! reason is a wrongly rejected configuration and fails the test.
//!
//! One command, for the feature issues to re-run as they land:
//! `cargo test -p proxy --test traefik_corpus -- --nocapture`.

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::traefik::{Answer, Traefik, find_traefik, free_port, send, skip_message};
use support::*;

const BACKENDS: [&str; 4] = ["b1", "b2", "b3", "b4"];

/// One corpus file and what it expects.
struct Entry {
    path: PathBuf,
    feature: String,
    requests: Vec<(String, String, String)>,
    refused: Option<String>,
    text: String,
}

fn read_corpus() -> Vec<Entry> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "toml")))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut e = Entry {
                path: path.clone(),
                feature: String::new(),
                requests: Vec::new(),
                refused: None,
                text,
            };
            for line in e.text.lines() {
                let Some(c) = line.strip_prefix("# ") else {
                    continue;
                };
                if let Some(f) = c.strip_prefix("feature: ") {
                    e.feature = f.trim().to_owned();
                } else if let Some(r) = c.strip_prefix("refused: ") {
                    e.refused = Some(r.trim().to_owned());
                } else if let Some(r) = c.strip_prefix("request: ") {
                    let (req, want) = r
                        .split_once(" -> ")
                        .unwrap_or_else(|| panic!("{}: bad request line {r:?}", path.display()));
                    let (host, p) = req.trim().split_once(' ').unwrap_or((req.trim(), "/"));
                    e.requests
                        .push((host.to_owned(), p.trim().to_owned(), want.trim().to_owned()));
                }
            }
            assert!(!e.feature.is_empty(), "{}: no feature line", path.display());
            assert!(
                e.refused.is_some() == e.requests.is_empty(),
                "{}: either requests or refused",
                path.display()
            );
            e
        })
        .collect()
}

fn expected(want: &str) -> Answer {
    // A status (404, 503, a redirect's 301) is answered by the proxy, a
    // name by that backend.
    match want.parse::<u16>() {
        Ok(status) => Answer {
            status,
            backend: None,
        },
        Err(_) => Answer {
            status: 200,
            backend: Some(want.to_owned()),
        },
    }
}

fn wire(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The feature a "not supported yet" error names: the middleware or
/// service type, else the key refused.
fn blocker(e: &proxy::config::ConfigError) -> String {
    if let Some(rest) = e.message.split_once("type \"") {
        let name = rest.1.split('"').next().unwrap_or("");
        return format!("{} type {name}", e.message.split(' ').next().unwrap_or(""));
    }
    if let Some((what, _)) = e.message.split_once(" is not supported yet") {
        // `https server URL "https://..." is not supported yet`
        return what.split(" \"").next().unwrap_or(what).to_owned();
    }
    let last = e.key.rsplit('.').next().unwrap_or(&e.key);
    let last = last.split('[').next().unwrap_or(last);
    match e.message.split_once("not supported yet: ") {
        Some((_, why)) => format!("{last} ({why})"),
        None => last.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_file_routes_as_traefik_or_names_what_is_missing() {
    let corpus = read_corpus();
    let names: Vec<String> = BACKENDS.iter().map(|s| s.to_string()).collect();
    let backends = named_backends(&names);
    let traefik_bin = find_traefik();
    if traefik_bin.is_none() {
        eprintln!(
            "{}",
            skip_message("the corpus's differential half (the proxy's half still runs)")
        );
    }
    let mut failures = Vec::new();
    let mut blocked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut accepted, mut refused, mut compared) = (0, 0, 0);
    for e in &corpus {
        let name = e.path.file_name().unwrap().to_string_lossy().into_owned();
        let mut text = e.text.clone();
        for (i, b) in BACKENDS.iter().enumerate() {
            text = text.replace(&format!("{{{b}}}"), &backends.addrs[i].to_string());
        }
        let ext = if name.ends_with(".toml") {
            "toml"
        } else {
            "yml"
        };
        let dir = TempDir::new("corpus");
        let dyn_path = dir.write(&format!("dynamic.{ext}"), &text);
        let stat = format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\n",
            dyn_path.display()
        );
        let stat_path = dir.write("static.yml", &stat);
        let (static_cfg, _) = proxy::config::load_static(&stat_path).unwrap();
        let (checked, _) = proxy::control::check(&static_cfg);
        match (&e.refused, checked) {
            (Some(want), Err(errors)) => {
                refused += 1;
                let all: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
                if let Some(other) = errors
                    .0
                    .iter()
                    .find(|e| !e.message.contains("not supported yet"))
                {
                    failures.push(format!(
                        "{name}: refused for another reason than a missing feature: {other}"
                    ));
                } else if !all.iter().any(|m| m.contains(want.as_str())) {
                    failures.push(format!("{name}: refused, but not for {want:?}: {all:?}"));
                }
                let mut seen: Vec<String> = errors.0.iter().map(blocker).collect();
                seen.sort();
                seen.dedup();
                for b in seen {
                    blocked.entry(b).or_default().push(name.clone());
                }
            }
            (Some(want), Ok(_)) => failures.push(format!(
                "{name}: accepted now (expected refused for {want:?}): write its requests instead"
            )),
            (None, Err(errors)) => failures.push(format!(
                "{name} ({}): wrongly rejected:\n{errors}",
                e.feature
            )),
            (None, Ok(_)) => {
                accepted += 1;
                let running = start_file(&stat_path, 1);
                let ours_addr = running.addr("web").unwrap();
                let theirs = match &traefik_bin {
                    Some(bin) => {
                        let tdir = TempDir::new("corpus-traefik");
                        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
                        let t = Traefik::start(
                            bin,
                            &tdir,
                            &support::traefik::static_yaml(
                                &[("web".to_owned(), addr, String::new())],
                                &dyn_path,
                                None,
                            ),
                        );
                        Some((t, addr, tdir))
                    }
                    None => None,
                };
                if let Some((t, addr, _)) = &theirs {
                    // Ready when the first request gets the answer written
                    // for it (Traefik answers 404 until it loaded the file).
                    let (h, p, w) = &e.requests[0];
                    let want = expected(w);
                    let t0 = std::time::Instant::now();
                    loop {
                        let got = send(*addr, Ipv4Addr::LOCALHOST, &wire(h, p)).await;
                        if got.as_ref().is_ok_and(|a| *a == want) {
                            break;
                        }
                        if t0.elapsed() > Duration::from_secs(10) {
                            failures.push(format!(
                                "{name}: Traefik never answered {h}{p} with {want} (last {got:?}); its log:\n{}",
                                t.log_text()
                            ));
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    compared += 1;
                }
                for (h, p, w) in &e.requests {
                    let want = expected(w);
                    let ours = send(ours_addr, Ipv4Addr::LOCALHOST, &wire(h, p)).await;
                    if ours.as_ref().ok() != Some(&want) {
                        failures.push(format!(
                            "{name}: proxy answered {h}{p} with {ours:?}, expected {want}"
                        ));
                    }
                    if let Some((_, addr, _)) = &theirs {
                        let got = send(*addr, Ipv4Addr::LOCALHOST, &wire(h, p)).await;
                        if got.as_ref().ok() != Some(&want) {
                            failures.push(format!(
                                "{name}: Traefik answered {h}{p} with {got:?}, expected {want}"
                            ));
                        }
                    }
                }
                running.shutdown(Some(Duration::from_millis(100)));
            }
        }
    }
    eprintln!(
        "corpus: {} files: {accepted} accepted and routing as written ({compared} compared with a real Traefik), {refused} refused naming a missing feature, {} failures",
        corpus.len(),
        failures.len()
    );
    let mut by_count: Vec<_> = blocked.iter().collect();
    by_count.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    eprintln!("missing features, by the files they block:");
    for (feature, files) in by_count {
        eprintln!("  {:3}  {feature}: {}", files.len(), files.join(", "));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
