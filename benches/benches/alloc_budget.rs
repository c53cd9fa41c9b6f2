//! The allocation budget: heap allocations and bytes per proxied request
//! (keep-alive small GET through the real proxy, in process, over plain
//! HTTP and over an established TLS 1.3 connection), and per call of each
//! hot-path stage, counted by a global allocator that sees every thread
//! (for TLS, every thread but the client's: its rustls allocates per
//! record, the proxy's allocations are what is budgeted).
//!
//! Prints a human summary on stderr and one JSON object on stdout, which
//! `cargo run -p gate` compares with `baselines/counts.json`.
//!
//! Attribution: for a short window the allocator also records a backtrace
//! per allocation; each is charged to the innermost frame outside the
//! allocator, the standard library and the container crates (`bytes`,
//! `http`, `hashbrown`...), i.e. to the code that asked for the memory:
//! ours (`proxy::`) or a dependency's (`hyper`, `hyper_util`, `tokio`...).
//! The client and backend of the fixture allocate nothing per request.
//! `ALLOC_BUDGET_TRACES=1` prints every traced backtrace.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use benches::e2e::{E2e, H2C_STREAMS, Route};
use benches::fixtures::{
    Case, ForwardingValues, PICK_CLIENT_IP, Tree, balancer, process_head, request_head,
    route_input, service_tree, strategy_balancer,
};
use proxy::upstream::{Strategy, Walk, resolve};

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static TRACING: AtomicBool = AtomicBool::new(false);

// Only the attribution window takes this lock, from inside the allocator
// with the re-entrancy flag set: it is bench code, never the proxy's path.
#[allow(clippy::disallowed_types)]
static TRACES: std::sync::Mutex<Vec<Backtrace>> = std::sync::Mutex::new(Vec::new());

thread_local! {
    // `const`, no destructor: usable from inside the allocator at any time.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    // Set on the thread of a client whose allocations are not the proxy's.
    static UNCOUNTED: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

impl Counting {
    #[inline]
    fn note(size: usize) {
        let nested = IN_HOOK.try_with(Cell::get).unwrap_or(true);
        if nested || UNCOUNTED.try_with(Cell::get).unwrap_or(true) {
            return; // the allocator's own bookkeeping, or the TLS client's
        }
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
        if TRACING.load(Ordering::Relaxed) {
            let _ = IN_HOOK.try_with(|f| {
                f.set(true);
                let bt = Backtrace::force_capture();
                if let Ok(mut v) = TRACES.lock() {
                    v.push(bt);
                }
                f.set(false);
            });
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold. The bookkeeping uses atomics, a
// `const` thread-local flag (no destructor, no allocation) and, in the
// attribution window only, a lock taken with the flag set so that the
// allocations it causes are not re-entered.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout.size());
        // SAFETY: forwarded as is (see the impl's comment).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::note(new_size);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn snapshot() -> (u64, u64) {
    (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst))
}

/// Allocations (count, bytes) per call of `f` over `n` calls.
fn per_call(n: u64, mut f: impl FnMut()) -> (f64, f64) {
    let (a0, b0) = snapshot();
    for _ in 0..n {
        f();
    }
    let (a1, b1) = snapshot();
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

/// Requests measured after the warm-up.
const MEASURED: u64 = 2_000;
/// Requests whose allocations are traced for attribution.
const TRACED: u64 = 50;

fn main() {
    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: f64| {
        out.insert(k.to_owned(), serde_json::json!((v * 100.0).round() / 100.0));
    };

    // Stages, on this thread alone (the proxy is not running yet).
    let mut route = route_input(10_000, Case::HitLast);
    let _ = route.decide();
    let (a, _) = per_call(1_000, || {
        black_box(route.decide());
    });
    put("route_decision_10000_allocs", a);

    let values = ForwardingValues::default();
    let mut total = 0u64;
    for _ in 0..1_000 {
        let mut h = request_head();
        let (a0, _) = snapshot();
        process_head(black_box(&mut h), &values);
        total += snapshot().0 - a0;
    }
    put("request_head_processing_allocs", total as f64 / 1_000.0);

    let rr = balancer(true);
    let (a, _) = per_call(1_000, || {
        black_box(rr.pick());
    });
    put("upstream_pick_allocs", a);

    // Every strategy at 100 servers: none may allocate.
    let mut most = 0.0f64;
    for strategy in [
        Strategy::Wrr,
        Strategy::P2c,
        Strategy::Hrw,
        Strategy::LeastTime,
    ] {
        let b = strategy_balancer(strategy, 100);
        let _ = b.pick(PICK_CLIENT_IP);
        let (a, _) = per_call(1_000, || {
            black_box(b.pick(PICK_CLIENT_IP));
        });
        most = most.max(a);
    }
    put("strategy_pick_allocs", most);

    // Resolving through weighted, failover and a sticky cookie hit: none
    // may allocate.
    let mut most = 0.0f64;
    for tree in [Tree::Weighted, Tree::Failover, Tree::StickyHit] {
        let (services, headers) = service_tree(tree);
        let mut walk = Walk::default();
        let _ = resolve(&services, 0, PICK_CLIENT_IP, &headers, &mut walk);
        let (a, _) = per_call(1_000, || {
            let mut walk = Walk::default();
            black_box(resolve(&services, 0, PICK_CLIENT_IP, &headers, &mut walk));
        });
        most = most.max(a);
    }
    put("service_resolve_allocs", most);

    // Whole requests through the real proxy.
    let mut e2e = E2e::start();
    for _ in 0..200 {
        e2e.request(); // warm-up: pools, buffers, lazy state
    }
    let (allocs, bytes) = per_call(MEASURED, || e2e.request());
    put("e2e_allocs_per_request", allocs);
    put("e2e_bytes_per_request", bytes);

    // The same through three middlewares (headers, stripPrefix, basicAuth).
    let mut chain = E2e::start_with(Route::Chain);
    for _ in 0..200 {
        chain.request();
    }
    let (a, b) = per_call(MEASURED, || chain.request());
    chain.stop();
    put("e2e_chain_allocs_per_request", a);
    put("e2e_chain_bytes_per_request", b);

    // Plain requests with the API and dashboard on beside them.
    let mut api = E2e::start_with(Route::Api);
    for _ in 0..200 {
        api.request();
    }
    let (a, b) = per_call(MEASURED, || api.request());
    api.stop();
    put("e2e_api_on_allocs_per_request", a);
    put("e2e_api_on_bytes_per_request", b);

    // The same through a rateLimit far above the load.
    let mut limited = E2e::start_with(Route::RateLimit);
    for _ in 0..200 {
        limited.request();
    }
    let (a, b) = per_call(MEASURED, || limited.request());
    limited.stop();
    put("e2e_ratelimit_allocs_per_request", a);
    put("e2e_ratelimit_bytes_per_request", b);

    // The same through a weighted service of two load balancers.
    let mut weighted = E2e::start_with(Route::Weighted);
    for _ in 0..200 {
        weighted.request();
    }
    let (a, b) = per_call(MEASURED, || weighted.request());
    weighted.stop();
    put("e2e_weighted_allocs_per_request", a);
    put("e2e_weighted_bytes_per_request", b);

    // Through compress: a 12-byte answer (left as it is) and a 64 KiB one
    // (gzip: the encoder's state and its output chunks).
    for (route, name) in [
        (Route::CompressSmall, "e2e_compress_small"),
        (Route::CompressLarge, "e2e_compress_64k"),
    ] {
        let mut c = E2e::start_with(route);
        for _ in 0..200 {
            c.request();
        }
        let (a, b) = per_call(MEASURED, || c.request());
        c.stop();
        put(&format!("{name}_allocs_per_request"), a);
        put(&format!("{name}_bytes_per_request"), b);
    }

    // The request shapes real clients send: a browser's headers with
    // `Connection: keep-alive`, metrics on, the access log on (its writer
    // thread counted: it runs because of the request).
    for (route, name) in [
        (Route::Browser, "e2e_browser"),
        (Route::Metrics, "e2e_metrics"),
        (Route::AccessLog, "e2e_access_log"),
    ] {
        let mut c = E2e::start_with(route);
        for _ in 0..200 {
            c.request();
        }
        let (a, b) = per_call(MEASURED, || c.request());
        c.stop();
        put(&format!("{name}_allocs_per_request"), a);
        put(&format!("{name}_bytes_per_request"), b);
    }

    // h2c, one connection, H2C_STREAMS concurrent streams per call; the
    // client (h2 and its runtime on this thread) is not counted.
    let mut h2c = E2e::start_with(Route::H2c);
    for _ in 0..20 {
        h2c.request();
    }
    UNCOUNTED.with(|u| u.set(true));
    let batches = MEASURED / H2C_STREAMS as u64;
    let (a, b) = per_call(batches, || h2c.request());
    UNCOUNTED.with(|u| u.set(false));
    h2c.stop();
    put("e2e_h2c_allocs_per_request", a / H2C_STREAMS as f64);
    put("e2e_h2c_bytes_per_request", b / H2C_STREAMS as f64);

    // Attribution traces the plain request, or the shape
    // `ALLOC_BUDGET_TRACE_ROUTE` names (browser, metrics, access-log, chain).
    let traced_route = std::env::var("ALLOC_BUDGET_TRACE_ROUTE").ok();
    let mut traced = match traced_route.as_deref() {
        None | Some("plain") => e2e,
        Some(name) => {
            e2e.stop();
            let route = match name {
                "browser" => Route::Browser,
                "metrics" => Route::Metrics,
                "access-log" => Route::AccessLog,
                "chain" => Route::Chain,
                other => panic!(
                    "ALLOC_BUDGET_TRACE_ROUTE={other:?}: plain, browser, metrics, access-log or chain"
                ),
            };
            let mut c = E2e::start_with(route);
            for _ in 0..200 {
                c.request();
            }
            c
        }
    };
    TRACING.store(true, Ordering::SeqCst);
    for _ in 0..TRACED {
        traced.request();
    }
    TRACING.store(false, Ordering::SeqCst);
    traced.stop();

    // The same over TLS; this thread (the client) is not counted.
    let mut tls = E2e::start_tls();
    for _ in 0..200 {
        tls.request();
    }
    UNCOUNTED.with(|u| u.set(true));
    let (tls_allocs, tls_bytes) = per_call(MEASURED, || tls.request());
    UNCOUNTED.with(|u| u.set(false));
    tls.stop();
    put("e2e_tls_allocs_per_request", tls_allocs);
    put("e2e_tls_bytes_per_request", tls_bytes);

    let traces = std::mem::take(&mut *TRACES.lock().unwrap_or_else(|e| e.into_inner()));
    let mut by_site: BTreeMap<String, u64> = BTreeMap::new();
    let dump = std::env::var_os("ALLOC_BUDGET_TRACES").is_some();
    for bt in &traces {
        if dump {
            eprintln!("--- allocation\n{bt}");
        }
        *by_site.entry(owner(&bt.to_string())).or_default() += 1;
    }
    let mut by_crate: BTreeMap<String, f64> = BTreeMap::new();
    let mut sites: Vec<(String, f64)> = by_site
        .into_iter()
        .map(|(site, n)| {
            let per_req = n as f64 / TRACED as f64;
            *by_crate.entry(crate_of(&site).to_owned()).or_default() += per_req;
            (site, per_req)
        })
        .collect();
    sites.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    eprintln!("allocation budget (keep-alive GET through the proxy, every thread counted):");
    eprintln!("  {allocs:.2} allocations, {bytes:.0} bytes per request");
    eprintln!(
        "  over TLS keep-alive: {tls_allocs:.2} allocations, {tls_bytes:.0} bytes per request (client thread not counted)"
    );
    eprintln!("  by the crate that asked (traced over {TRACED} requests):");
    for (c, n) in &by_crate {
        eprintln!("    {c:<12} {n:>6.2} per request");
    }
    eprintln!("  by call site:");
    for (site, n) in &sites {
        eprintln!("    {n:>6.2}  {site}");
    }
    for (k, v) in &out {
        eprintln!("  {k} = {v}");
    }
    let attribution: Vec<serde_json::Value> = sites
        .iter()
        .map(|(s, n)| serde_json::json!({ "site": s, "per_request": (n * 100.0).round() / 100.0 }))
        .collect();
    let report = serde_json::json!({
        "allocations": out,
        "attribution_by_crate": by_crate,
        "attribution_by_site": attribution,
    });
    println!("{report}");
}

/// Crates that only provide memory to their caller: an allocation made
/// inside them is charged to whoever called them.
const PASS_THROUGH: [&str; 10] = [
    "std",
    "alloc_budget",
    "bytes",
    "http",
    "hashbrown",
    "smallvec",
    "slab",
    "indexmap",
    "unknown",
    "benches",
];

/// The innermost frame of a formatted backtrace that is not allocator or
/// container code, as `crate: function (file:line)`, followed by the
/// innermost frame of ours (`proxy`) that led to it, if another crate
/// asked. Inlined frames carry only a short function name, so the crate is
/// read from the source path.
fn owner(trace: &str) -> String {
    let mut frames = Vec::new();
    let mut lines = trace.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let Some((num, sym)) = line.split_once(": ") else {
            continue;
        };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let at = match lines.peek() {
            Some(next) if next.starts_with("at ") => lines.next().map(|l| &l[3..]),
            _ => None,
        };
        frames.push((at.map_or("unknown", crate_of_path), sym, at));
    }
    let label = |(krate, sym, at): &(&str, &str, Option<&str>)| {
        let func = sym.split('<').next().unwrap_or(sym);
        let place = at.map_or(String::new(), |a| {
            let short = a.rsplit_once("/src/").map_or(a, |(_, rest)| rest);
            format!(" (src/{short})")
        });
        format!("{krate}: {func}{place}")
    };
    let Some(i) = frames.iter().position(|f| !PASS_THROUGH.contains(&f.0)) else {
        return "<unresolved>".to_owned();
    };
    let mut site = label(&frames[i]);
    if frames[i].0 != "proxy"
        && let Some(ours) = frames[i..].iter().find(|f| f.0 == "proxy")
    {
        site.push_str(" <- ");
        site.push_str(&label(ours));
    }
    site
}

/// The crate a source path belongs to: registry paths name it in the
/// directory (`hyper-util-0.1.21` -> `hyper_util`), the toolchain's own
/// sources are `std`, and this workspace's crates are named by folder.
fn crate_of_path(path: &str) -> &'static str {
    if path.starts_with("/rustc/") {
        return "std";
    }
    if let Some(i) = path.find("/registry/src/") {
        let rest = &path[i + "/registry/src/".len()..];
        let dir = rest.split('/').nth(1).unwrap_or("");
        let name = match dir.rfind('-') {
            Some(j) if dir[j + 1..].starts_with(|c: char| c.is_ascii_digit()) => &dir[..j],
            _ => dir,
        };
        return Box::leak(name.replace('-', "_").into_boxed_str());
    }
    for (folder, name) in [
        ("proxy/src/", "proxy"),
        ("benches/alloc_budget.rs", "alloc_budget"),
        ("benches/src/", "benches"),
    ] {
        if path.contains(folder) {
            return name;
        }
    }
    "unknown"
}

/// The crate part of a site label.
fn crate_of(site: &str) -> &str {
    site.split(':').next().unwrap_or(site)
}
