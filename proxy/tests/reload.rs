//! Hot reload under load: configuration rewritten while clients keep
//! sending requests, with no failed request, no closed connection, and new
//! routes live quickly.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use support::*;

/// Version `k` of the dynamic config: `/stable` alternates between two
/// services, `/v{k}` and `/v{k-1}` exist, plus a service per version.
fn version(k: usize, backends: &[Backend]) -> String {
    let stable_svc = if k.is_multiple_of(2) { "even" } else { "odd" };
    let mut s = format!(
        "http:\n  routers:\n    stable:\n      rule: \"PathPrefix(`/stable`)\"\n      service: {stable_svc}\n"
    );
    let versions: &[usize] = if k == 0 { &[0] } else { &[k - 1, k] };
    for &v in versions {
        s += &format!("    route-v{v}:\n      rule: \"Path(`/v{v}`)\"\n      service: svc-v{v}\n");
    }
    s += &format!(
        "  services:\n    even:\n      loadBalancer:\n        servers: [{{url: \"http://{}\"}}]\n    odd:\n      loadBalancer:\n        servers: [{{url: \"http://{}\"}}]\n",
        backends[0].addr, backends[1].addr
    );
    for &v in versions {
        s += &format!(
            "    svc-v{v}:\n      loadBalancer:\n        servers: [{{url: \"http://{}\"}}]\n",
            backends[2 + v % 3].addr
        );
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_lose_nothing() {
    let backends: Vec<Backend> = (0..5).map(|i| backend(&format!("b{i}"))).collect();
    let p = start_proxy_with(&version(0, &backends), "", 2);
    let web = p.web;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));

    // Clients: keep-alive HTTP/1.1 and HTTP/2, hitting /stable without pause.
    let mut clients = Vec::new();
    for i in 0..4 {
        let stop = Arc::clone(&stop);
        let ok = Arc::clone(&ok);
        clients.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            if i % 2 == 0 {
                let mut c = H1::connect(web).await;
                while !stop.load(Ordering::Relaxed) {
                    let req = Request::get("/stable")
                        .header("host", "x")
                        .body(empty())
                        .unwrap();
                    match c.send(req).await {
                        Ok(r)
                            if r.status == StatusCode::OK
                                && matches!(r.backend(), Some("b0" | "b1")) =>
                        {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => bad.push(format!("h1: {} from {:?}", r.status, r.backend())),
                        Err(e) => {
                            bad.push(format!("h1 connection error: {e}"));
                            break;
                        }
                    }
                }
            } else {
                let mut c = H2::connect(web).await;
                while !stop.load(Ordering::Relaxed) {
                    let req = Request::get("http://x/stable").body(empty()).unwrap();
                    match c.send(req).await {
                        Ok(r)
                            if r.status == StatusCode::OK
                                && matches!(r.backend(), Some("b0" | "b1")) =>
                        {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => bad.push(format!("h2: {} from {:?}", r.status, r.backend())),
                        Err(e) => {
                            bad.push(format!("h2 connection error: {e}"));
                            break;
                        }
                    }
                }
            }
            bad
        }));
    }

    let control = p.running().control();
    let mut delays = Vec::new();
    let mut probe = H1::connect(web).await;
    for k in 1..=50 {
        if k == 25 {
            // A file that does not parse: rejected whole, the running
            // config stays.
            let rejected = control.rejected();
            p.dir.write_atomic(
                "dynamic.yml",
                "http:\n  routers:\n    broken:\n      rule: \"Host(`x`)\n      service: [nowhere\n",
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while control.rejected() == rejected {
                assert!(
                    Instant::now() < deadline,
                    "the invalid config was never examined"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let r = probe.get("x", "/v24").await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "route of the running config still served"
            );
            let r = probe.get("x", "/stable").await;
            assert_eq!(r.status, StatusCode::OK, "the invalid config did not apply");
            continue;
        }
        let written = Instant::now();
        p.dir.write_atomic("dynamic.yml", &version(k, &backends));
        let want = backends[2 + k % 3].name.clone();
        loop {
            let r = probe.get("x", &format!("/v{k}")).await;
            if r.status == StatusCode::OK {
                assert_eq!(r.backend(), Some(want.as_str()));
                break;
            }
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert!(
                written.elapsed() < Duration::from_secs(10),
                "route /v{k} never became reachable"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(written.elapsed());
        // The route two versions back is gone.
        if k >= 2 {
            let r = probe.get("x", &format!("/v{}", k - 2)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut problems = Vec::new();
    for c in clients {
        problems.extend(c.await.unwrap());
    }
    assert!(
        problems.is_empty(),
        "failed requests during reloads: {problems:?}"
    );
    assert!(ok.load(Ordering::Relaxed) > 100, "load kept flowing");
    delays.sort();
    eprintln!(
        "new route live after: median {:?}, max {:?} over {} reloads ({} requests served meanwhile)",
        delays[delays.len() / 2],
        delays.last().unwrap(),
        delays.len(),
        ok.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_connection_survives_twenty_reloads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backends: Vec<Backend> = (0..5).map(|i| backend(&format!("b{i}"))).collect();
    let p = start_proxy(&version(0, &backends));
    let mut byte = [0u8; 1];
    let ws_version = |k: usize| {
        version(k, &backends).replace(
            "  services:\n",
            "    ws:\n      rule: \"Path(`/upgrade`)\"\n      service: even\n  services:\n",
        )
    };
    p.dir.write_atomic("dynamic.yml", &ws_version(0));
    let control = p.running().control();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(p.web, "x", "/upgrade").await.status == StatusCode::NOT_FOUND {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut s = tokio::net::TcpStream::connect(p.web).await.unwrap();
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"));
    for k in 1..=20 {
        let before = control.generation();
        p.dir.write_atomic("dynamic.yml", &ws_version(k));
        let deadline = Instant::now() + Duration::from_secs(10);
        while control.generation() == before {
            assert!(Instant::now() < deadline, "reload {k} not applied");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let msg = format!("message after reload {k}");
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_pools_survive_reloads_of_unchanged_servers() {
    let backends: Vec<Backend> = (0..5).map(|i| backend(&format!("b{i}"))).collect();
    let p = start_proxy(&version(0, &backends));
    let mut c = H1::connect(p.web).await;
    assert_eq!(c.get("x", "/stable").await.backend(), Some("b0"));
    let control = p.running().control();
    for k in [2, 4, 6] {
        let before = control.generation();
        p.dir.write_atomic("dynamic.yml", &version(k, &backends));
        let deadline = Instant::now() + Duration::from_secs(10);
        while control.generation() == before {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(c.get("x", "/stable").await.backend(), Some("b0"));
    }
    assert_eq!(
        backends[0].stats.connections.load(Ordering::Relaxed),
        1,
        "the pooled upstream connection was kept across reloads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_reload_of_an_unparseable_file_reports_errors_and_keeps_serving() {
    let backends: Vec<Backend> = (0..5).map(|i| backend(&format!("b{i}"))).collect();
    let p = start_proxy(&version(0, &backends));
    let control = p.running().control();
    let g = control.generation();
    std::fs::write(
        p.dynamic_path(),
        version(0, &backends).replace("PathPrefix(`/stable`)\"", "PathPrefix(`/new`)"),
    )
    .unwrap();
    let errs = control.reload().unwrap_err().to_string();
    assert!(errs.contains("dynamic.yml:"), "{errs}");
    assert_eq!(control.generation(), g, "nothing published");
    assert_eq!(get(p.web, "x", "/stable").await.status, StatusCode::OK);
}

/// Waits up to 10 s for the generation to pass `before`.
async fn next_generation(control: &proxy::control::Control, before: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while control.generation() == before {
        assert!(Instant::now() < deadline, "{what}: no reload");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_write_reloads_once_and_unchanged_bytes_not_at_all() {
    let backends: Vec<Backend> = (0..5).map(|i| backend(&format!("b{i}"))).collect();
    let p = start_proxy(&version(0, &backends));
    let control = p.running().control();
    let settle = Duration::from_secs(3);

    // A plain write (truncate, write, close: a burst of events), then
    // several seconds of quiet: one reload, not one per event, and none
    // caused by the proxy's own reads of the file.
    let g0 = control.generation();
    std::fs::write(p.dynamic_path(), version(1, &backends)).unwrap();
    next_generation(control, g0, "first write").await;
    tokio::time::sleep(settle).await;
    assert_eq!(control.generation(), g0 + 1, "one write, one reload");

    // The same bytes written again: nothing to apply.
    std::fs::write(p.dynamic_path(), version(1, &backends)).unwrap();
    p.dir.write_atomic("dynamic.yml", &version(1, &backends));
    tokio::time::sleep(settle).await;
    assert_eq!(control.generation(), g0 + 1, "unchanged bytes, no reload");

    // A second, different write: exactly one more.
    std::fs::write(p.dynamic_path(), version(2, &backends)).unwrap();
    next_generation(control, g0 + 1, "second write").await;
    tokio::time::sleep(settle).await;
    assert_eq!(
        control.generation(),
        g0 + 2,
        "second write, one more reload"
    );
    assert_eq!(get(p.web, "x", "/v2").await.status, StatusCode::OK);
    assert_eq!(control.rejected(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_router_on_reload_is_disabled_and_the_rest_is_published() {
    let backends: Vec<Backend> = (0..5).map(|i| backend(&format!("b{i}"))).collect();
    let p = start_proxy(&version(0, &backends));
    let control = p.running().control();
    let g = control.generation();
    // One team's typo (a rule that does not parse) next to another team's
    // new route.
    std::fs::write(
        p.dynamic_path(),
        version(1, &backends).replace("PathPrefix(`/stable`)", "Hostt(`x`)"),
    )
    .unwrap();
    let next = control.reload().expect("published");
    assert!(next > g);
    assert_eq!(
        get(p.web, "x", "/v1").await.status,
        StatusCode::OK,
        "new route live"
    );
    assert_eq!(
        get(p.web, "x", "/stable").await.status,
        StatusCode::NOT_FOUND,
        "the router whose rule does not parse is gone"
    );
    let snap = control.snapshot().load_full();
    let d: Vec<String> = snap.disabled.iter().map(|d| d.to_string()).collect();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with("router \"stable\"") && d[0].contains("unknown matcher"),
        "{d:?}"
    );
    assert_eq!(snap.disabled[0].errors.len(), 1);
    assert!(!snap.disabled[0].keeps_place);
}

/// 1,000 routers on `/r{i}`, plus `/new` when `with_new`.
fn thousand_routers(b: &Backend, with_new: bool) -> String {
    let mut s = String::from("http:\n  routers:\n");
    for i in 0..1000 {
        s += &format!("    r{i}:\n      rule: \"Path(`/r{i}`)\"\n      service: svc\n");
    }
    if with_new {
        s += "    new:\n      rule: \"Path(`/new`)\"\n      service: svc\n";
    }
    s += &format!(
        "  services:\n    svc:\n      loadBalancer:\n        servers: [{{url: \"http://{}\"}}]\n",
        b.addr
    );
    s
}

/// Issue 20, item 5: the control thread waits in `SCHED_IDLE` so that a
/// reload never delays a request, and a change must still apply when
/// every core is kept busy (threads of the normal class spinning on each
/// core, twice over). In `SCHED_IDLE` alone such a reload waited for
/// seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_applies_while_every_core_is_busy() {
    let b = backend("app");
    let p = start_proxy_with(&thousand_routers(&b, false), "", 2);
    let control = p.running().control();
    assert_eq!(get(p.web, "x", "/r999").await.status, StatusCode::OK);

    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners: Vec<_> = (0..2 * cores)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(20);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let g0 = control.generation();
    let written = Instant::now();
    p.dir
        .write_atomic("dynamic.yml", &thousand_routers(&b, true));
    let deadline = written + Duration::from_secs(10);
    while control.generation() == g0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = written.elapsed();
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    assert_ne!(control.generation(), g0, "no reload within 10 s");
    // The issue asks for under 1 s; the bound is generous for a loaded
    // test machine, and far below what the idle class alone gave.
    assert!(
        took < Duration::from_secs(3),
        "the change applied {took:?} after the write"
    );
    assert_eq!(get(p.web, "x", "/new").await.status, StatusCode::OK);
}
