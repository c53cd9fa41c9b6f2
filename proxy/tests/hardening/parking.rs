//! Idle HTTP/1.1 connections are parked (the performance issue's memory
//! per idle connection): hyper is stopped and dropped with its buffers
//! while the socket stays open, and the connection is served again when
//! bytes arrive. What a client sees must not change: the next request, a
//! head split across the park, pipelined requests, an upgrade, TLS; the
//! idle timeout and the drain still close it. The proxy's debug events
//! ("idle connection parked", "parked connection readable") show that a
//! connection really parked, by the client's address.

// The events' sink is a test's own buffer behind a mutex, not the
// request path (decision 2).
#![allow(clippy::disallowed_types)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::shutdown::drain;
use super::streaming::static_with_timeouts;
use crate::support::tls::{ClientOpts, client_config};
use crate::support::*;

const PARKED: &str = "idle connection parked";
const RESUMED: &str = "parked connection readable";

/// The connection module's debug events of this test binary, as text.
fn events() -> &'static Mutex<Vec<u8>> {
    static EVENTS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)));
        let only_conn = tracing_subscriber::filter::Targets::new()
            .with_target("proxy::listener::conn", tracing::Level::DEBUG);
        tracing_subscriber::registry()
            .with(layer)
            .with(only_conn)
            .try_init()
            .expect("no other subscriber in this test binary");
        events
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plain connection to `addr`, and its address (what the proxy's
/// events name as `peer`); the events' capture is on from here.
async fn client(addr: SocketAddr) -> (TcpStream, SocketAddr) {
    events();
    let s = TcpStream::connect(addr).await.unwrap();
    let me = s.local_addr().unwrap();
    (s, me)
}

/// How many times `what` was logged for the client at `peer`.
fn logged(peer: SocketAddr, what: &str) -> usize {
    let text = String::from_utf8_lossy(&events().lock().unwrap()).into_owned();
    let peer = format!("peer={peer}");
    text.lines()
        .filter(|l| l.contains(what) && l.split_whitespace().any(|w| w == peer))
        .count()
}

/// Waits (5 s at most) until `what` was logged `n` times for `peer`.
async fn logged_times(peer: SocketAddr, what: &str, n: usize) -> bool {
    eventually(5, async || logged(peer, what) >= n).await
}

/// Reads one response (its head, then a `Content-Length` body): the head
/// and the body as text.
async fn response<S: AsyncRead + Unpin>(s: &mut S) -> (String, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("a response within 5 s")
            .expect("a readable connection");
        assert_eq!(n, 1, "the connection closed after {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = raw_header(&head, "content-length")
        .expect("a response with a length")
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8(body).unwrap())
}

/// Reads one answer, which must be a 200 from the backend for `path`: its
/// head.
async fn served<S: AsyncRead + Unpin>(s: &mut S, path: &str) -> String {
    let (head, body) = response(s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    assert!(
        body.contains(&format!("\"path\":\"{path}\"")),
        "{path}: {body}"
    );
    head
}

/// Sends a GET of `path` and reads its answer, which must be a 200 from
/// the backend for that path.
async fn get_ok<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, path: &str) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    served(s, path).await;
}

/// Whether the connection is closed by the proxy within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_parks_and_serves_each_next_request() {
    let b = backend("app");
    let p = start_proxy(&routes_yaml(&[("app", "PathPrefix(`/`)", &b)]));
    let (mut s, me) = client(p.web).await;
    for round in 1..=3 {
        get_ok(&mut s, &format!("/round/{round}")).await;
        assert!(
            logged_times(me, PARKED, round).await,
            "round {round}: the idle connection was not parked"
        );
    }
    get_ok(&mut s, "/after").await;
    assert_eq!(logged(me, RESUMED), 3, "served again after each park");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_split_across_the_park_is_served_whole() {
    let b = backend("app");
    let p = start_proxy(&routes_yaml(&[("app", "PathPrefix(`/`)", &b)]));
    let (mut s, me) = client(p.web).await;
    // Half the next head right after a response: hyper reads it and falls
    // idle, and the connection parks holding the half, which must be
    // replayed first.
    get_ok(&mut s, "/first").await;
    s.write_all(b"GET /split/head HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(
        logged_times(me, PARKED, 1).await,
        "not parked with half a head read"
    );
    s.write_all(b"st: x\r\nX-Part: two\r\n\r\n").await.unwrap();
    let head = served(&mut s, "/split/head").await;
    assert!(
        raw_header(&head, "connection").is_none(),
        "the connection is kept: {head}"
    );
    let (_, headers) = &*b.stats.last().unwrap();
    assert_eq!(headers.get("x-part").unwrap(), "two");
    // Half a head wakes a parked connection: hyper starts again busy, and
    // the connection is not parked again before that request is served.
    assert!(logged_times(me, PARKED, 2).await);
    s.write_all(b"GET /woken/by/half HTTP/1.1\r\nHo")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(logged(me, PARKED), 2, "parked while hyper was busy");
    s.write_all(b"st: x\r\n\r\n").await.unwrap();
    let head = served(&mut s, "/woken/by/half").await;
    assert!(raw_header(&head, "connection").is_none(), "{head}");
    // Pipelined requests on a parked connection: both answered, in order.
    assert!(logged_times(me, PARKED, 3).await);
    s.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for path in ["/one", "/two"] {
        served(&mut s, path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_upgrades_to_a_tunnel() {
    let b = backend("ws");
    let p = start_proxy(&routes_yaml(&[("ws", "PathPrefix(`/`)", &b)]));
    let (mut s, me) = client(p.web).await;
    get_ok(&mut s, "/first").await;
    assert!(logged_times(me, PARKED, 1).await);
    upgrade(&mut s).await;
    // A tunnel is not an idle HTTP connection: it is never parked.
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.write_all(b"through the tunnel").await.unwrap();
    let mut back = [0u8; 18];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"through the tunnel");
    assert_eq!(logged(me, PARKED), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_last_request_had_a_body_is_not_parked() {
    let b = backend("app");
    let p = start_proxy(&routes_yaml(&[("app", "PathPrefix(`/`)", &b)]));
    let (mut s, me) = client(p.web).await;
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let (head, _) = response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Four checks' worth of idleness: hyper may still be reading a body,
    // so the connection keeps its buffers.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(logged(me, PARKED), 0, "parked after a request with a body");
    get_ok(&mut s, "/then").await;
    assert!(logged_times(me, PARKED, 1).await, "a GET after it parks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sent_half_its_first_head_is_not_parked() {
    let b = backend("app");
    let p = start_proxy(&routes_yaml(&[("app", "PathPrefix(`/`)", &b)]));
    let (mut s, me) = client(p.web).await;
    // Before its first request hyper is busy: stopped, it would close
    // the connection after that request.
    s.write_all(b"GET /first HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(logged(me, PARKED), 0);
    s.write_all(b"st: x\r\n\r\n").await.unwrap();
    let head = served(&mut s, "/first").await;
    assert!(
        raw_header(&head, "connection").is_none(),
        "the first request keeps the connection: {head}"
    );
    get_ok(&mut s, "/second").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_a_parked_connection() {
    let b = backend("app");
    let p = start_proxy_static(
        &routes_yaml(&[("app", "PathPrefix(`/`)", &b)]),
        &static_with_timeouts("        idleTimeout: 2s\n"),
        1,
    );
    let (mut s, me) = client(p.web).await;
    get_ok(&mut s, "/first").await;
    let served = Instant::now();
    assert!(logged_times(me, PARKED, 1).await);
    assert!(
        closed_within(&mut s, Duration::from_secs(6)).await,
        "a parked connection outlived idleTimeout"
    );
    let took = served.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "closed early: {took:?}"
    );
    assert_eq!(logged(me, RESUMED), 0, "closed while parked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_closes_parked_connections_at_once() {
    let b = backend("app");
    let mut p = start_proxy(&routes_yaml(&[("app", "PathPrefix(`/`)", &b)]));
    let (mut s, me) = client(p.web).await;
    get_ok(&mut s, "/first").await;
    assert!(logged_times(me, PARKED, 1).await);
    let drained = drain(&mut p, Duration::from_secs(20));
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "a parked connection kept open through the drain"
    );
    let took = tokio::task::spawn_blocking(move || drained.join().unwrap())
        .await
        .unwrap();
    assert!(
        took < Duration::from_secs(15),
        "the drain waited for a parked connection: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_parks_and_resumes() {
    events();
    let b = backend("app");
    let dynamic = format!(
        "http:\n  routers:\n    app:\n      rule: \"PathPrefix(`/`)\"\n      service: app\n      tls: {{}}\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
        b.addr
    );
    let p = start_proxy(&dynamic);
    let mut s =
        crate::support::tls::connect(p.web, Some("x.test"), client_config(&ClientOpts::default()))
            .await
            .unwrap();
    let me = s.get_ref().0.local_addr().unwrap();
    for round in 1..=2 {
        get_ok(&mut s, &format!("/tls/{round}")).await;
        assert!(
            logged_times(me, PARKED, round).await,
            "round {round}: the idle TLS connection was not parked"
        );
    }
    get_ok(&mut s, "/tls/after").await;
    assert_eq!(logged(me, RESUMED), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_max_requests_counts_across_parks() {
    let b = backend("app");
    let p = start_proxy_static(
        &routes_yaml(&[("app", "PathPrefix(`/`)", &b)]),
        &static_with_transport("      keepAliveMaxRequests: 3\n"),
        1,
    );
    let (mut s, me) = client(p.web).await;
    // Each request on a new hyper connection, after a park: the count is
    // the connection's, not hyper's.
    for n in 1..=2 {
        get_ok(&mut s, &format!("/count/{n}")).await;
        assert!(logged_times(me, PARKED, n).await);
    }
    s.write_all(b"GET /count/3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = served(&mut s, "/count/3").await;
    assert_eq!(
        raw_header(&head, "connection"),
        Some("close"),
        "the third request closes the connection: {head}"
    );
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
}
