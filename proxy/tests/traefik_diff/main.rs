//! Differential routing test against a real Traefik: one generated dynamic
//! configuration (hundreds of routers using every matcher and operator of
//! both rule syntaxes, Go regexp constructs, explicit and default
//! priorities, no priority ties; `gen.rs`, `v2.rs`), one shared corpus of
//! raw HTTP/1.1 requests, sent to Traefik and to our proxy; both must give
//! the same answer for every request (the chosen service's name, or the same
//! error status such as 404 or 400).
//!
//! Every service has its own upstream listener answering with its name
//! (`support::named_backends`), so the answer identifies the router without
//! depending on how the server URL path is joined.
//!
//! Traefik is found and run by `support::traefik`.
//!
//! With none found the test prints a SKIP line and passes.
//!
//! Knobs: `DIFF_SEED` (u64, default fixed), `DIFF_ROUTERS`, `DIFF_REQUESTS`;
//! `DIFF_DEBUG=1` prints every router and every request with both answers.
//! Traefik runs natively on 127.0.0.1 only and is killed on drop (also when
//! the test panics).

#[path = "../support/mod.rs"]
mod support;

mod corpus;
mod v2;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corpus::{
    Kind, READY_HOST, Req, Rng, Router, dynamic_yaml, generate_request, generate_routers,
};
use support::traefik::{Answer, Traefik, find_traefik, free_port, send, skip_message, wait_ready};
use support::*;

const DEFAULT_SEED: u64 = 0x7261_6566_6669_6b21;
const DEFAULT_ROUTERS: usize = 300;
const DEFAULT_REQUESTS: usize = 1000;
/// In-flight requests per target.
const CONCURRENCY: usize = 16;

async fn send_all(
    target: SocketAddr,
    reqs: Arc<Vec<(Ipv4Addr, Vec<u8>)>>,
) -> Vec<Result<Answer, String>> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let reqs = Arc::clone(&reqs);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((src, bytes)) = reqs.get(i) else {
                    break;
                };
                done.push((i, send(target, *src, bytes).await));
            }
            done
        }));
    }
    let mut out: Vec<Option<Result<Answer, String>>> = vec![None; reqs.len()];
    for t in tasks {
        for (i, a) in t.await.unwrap() {
            out[i] = Some(a);
        }
    }
    out.into_iter().map(Option::unwrap).collect()
}

// === the test ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_is_identical_to_traefik() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("routing_is_identical_to_traefik"));
        return;
    };
    let t0 = Instant::now();
    let seed: u64 = env_or("DIFF_SEED", DEFAULT_SEED);
    let n_routers: usize = env_or("DIFF_ROUTERS", DEFAULT_ROUTERS);
    let n_requests: usize = env_or("DIFF_REQUESTS", DEFAULT_REQUESTS);
    eprintln!(
        "traefik: {} (seed {seed:#x}, {n_routers} routers, {n_requests} requests)",
        bin.display()
    );

    // splitmix64 of the seed: nearby seeds give unrelated streams, never 0.
    let mut rng = Rng({
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) | 1
    });
    let routers = generate_routers(&mut rng, n_routers);
    let reqs: Vec<Req> = (0..n_requests)
        .map(|_| generate_request(&mut rng, &routers))
        .collect();

    let names: Vec<String> = routers
        .iter()
        .map(|r| r.name.clone())
        .chain(["ready".to_string()])
        .collect();
    let backends = named_backends(&names);
    let dynamic = dynamic_yaml(&routers, &backends);

    let dir = TempDir::new("traefik-diff");
    let dyn_path = dir.write("dynamic.yml", &dynamic);
    let traefik_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let traefik = Traefik::start(
        &bin,
        &dir,
        &support::traefik::static_yaml(
            &[("web".to_owned(), traefik_addr, String::new())],
            &dyn_path,
            None,
        ),
    );
    let proxy = start_proxy(&dynamic);

    let ready = |addr, what| {
        wait_ready(
            addr,
            READY_HOST,
            "ready",
            what,
            Duration::from_secs(20),
            || traefik.log_text(),
        )
    };
    ready(traefik_addr, "traefik").await;
    ready(proxy.web, "proxy").await;

    let wire: Arc<Vec<(Ipv4Addr, Vec<u8>)>> =
        Arc::new(reqs.iter().map(|r| (r.source, r.bytes())).collect());
    let (theirs, ours) = tokio::join!(
        send_all(traefik_addr, Arc::clone(&wire)),
        send_all(proxy.web, wire)
    );

    // === compare and report ===
    let by_name: BTreeMap<&str, &Router> = routers.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut mismatches = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut hit_routers: BTreeSet<&str> = BTreeSet::new();
    let mut hits_by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut guided_hits = 0;
    for (i, req) in reqs.iter().enumerate() {
        let t = theirs[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("traefik: {e} for {}", req.describe()));
        let o = ours[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("proxy: {e} for {}", req.describe()));
        if std::env::var_os("DIFF_DEBUG").is_some() {
            eprintln!("REQ {} => {t} / {o}", req.describe());
        }
        if t != o {
            mismatches.push((req, t, o));
            continue;
        }
        *statuses.entry(t.status).or_default() += 1;
        if let Some(r) = t.backend.as_deref().and_then(|b| by_name.get(b)) {
            hit_routers.insert(&r.name);
            if req.guided_by.is_some_and(|g| routers[g].name == r.name) {
                guided_hits += 1;
            }
            for k in r.kinds() {
                *hits_by_kind.entry(k).or_default() += 1;
            }
        }
    }
    let mut routers_by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for r in &routers {
        for k in r.kinds() {
            *routers_by_kind.entry(k).or_default() += 1;
        }
    }

    let mut summary = format!(
        "traefik differential: {} requests, {} identical, {} different; statuses {:?}; \
         {} of {} routers chosen at least once ({} requests reached the router they were shaped after)\n\
         {:<18} {:>8} {:>14}\n",
        reqs.len(),
        reqs.len() - mismatches.len(),
        mismatches.len(),
        statuses,
        hit_routers.len(),
        routers.len(),
        guided_hits,
        "matcher/feature",
        "routers",
        "answers won"
    );
    for (k, n) in &routers_by_kind {
        let _ = writeln!(
            summary,
            "{:<18} {:>8} {:>14}",
            format!("{k:?}"),
            n,
            hits_by_kind.get(k).unwrap_or(&0)
        );
    }
    let mut wins: BTreeMap<&str, usize> = BTreeMap::new();
    for a in theirs.iter().flatten() {
        if let Some(b) = &a.backend {
            *wins.entry(b.as_str()).or_default() += 1;
        }
    }
    let mut wins: Vec<_> = wins.into_iter().collect();
    wins.sort_by_key(|w| std::cmp::Reverse(w.1));
    for (name, n) in wins.iter().take(5) {
        if let Some(r) = by_name.get(name) {
            let _ = writeln!(
                summary,
                "  {n:>4} x {name} (priority {}): {}",
                r.effective_priority(),
                r.rule
            );
        }
    }
    let _ = writeln!(summary, "took {:?}", t0.elapsed());
    eprintln!("{summary}");

    if !mismatches.is_empty() {
        let rule_of = |a: &Answer| {
            a.backend
                .as_deref()
                .and_then(|b| by_name.get(b))
                .map(|r| format!(" rule {:?} priority {}", r.rule, r.effective_priority()))
                .unwrap_or_default()
        };
        let mut report = String::new();
        for (req, t, o) in mismatches.iter().take(40) {
            let _ = writeln!(
                report,
                "- {}\n    traefik: {t}{}\n    proxy:   {o}{}",
                req.describe(),
                rule_of(t),
                rule_of(o)
            );
        }
        panic!(
            "{} of {} requests routed differently (seed {seed:#x}); first ones:\n{report}",
            mismatches.len(),
            reqs.len()
        );
    }
    drop(traefik);
}
