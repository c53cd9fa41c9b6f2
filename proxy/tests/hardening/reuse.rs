//! Item 2: a kept-alive upstream connection that the backend closes as the
//! next request arrives (on its idle clock) is not a 502: a request that may go twice is sent
//! again on a new connection (Go's transport retry); one that may not is
//! not, and the client gets the real cause (502, never 503).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, StatusCode};

use crate::support::*;

#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    answered: AtomicU64,
    /// Requests whose head arrived and were dropped unanswered.
    dropped: AtomicU64,
}

enum Closing {
    /// Answer one request per connection, then close it when the next
    /// request's head has arrived (without answering).
    OnNextRequest,
    /// Close a connection idle for this long (Node, gunicorn and nginx
    /// each have such a keep-alive timeout).
    WhenIdleFor(Duration),
}

/// Reads one request (head and `Content-Length` body) from `s`; `None` at
/// EOF or on a read timeout before any byte.
fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return Some(());
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if buf.is_empty() {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

/// A raw keep-alive HTTP/1.1 backend on 127.0.0.1:0 that closes its
/// connections on its own clock. Its threads end when the test process
/// does (each blocks on its own socket).
fn closing_backend(how: Closing) -> (SocketAddr, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let st = Arc::clone(&seen);
    let how = Arc::new(how);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            st.connections.fetch_add(1, Ordering::Relaxed);
            let st = Arc::clone(&st);
            let how = Arc::clone(&how);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Closing::WhenIdleFor(d) = *how {
                    s.set_read_timeout(Some(d)).unwrap();
                }
                let mut answered = 0;
                while read_request(&mut s, &mut buf).is_some() {
                    if matches!(*how, Closing::OnNextRequest) && answered == 1 {
                        st.dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    answered += 1;
                    st.answered.fetch_add(1, Ordering::Relaxed);
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn one_service(addr: SocketAddr) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{{url: \"http://{addr}\"}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_on_connections_the_backend_closes_as_they_arrive_are_sent_again() {
    let (addr, seen) = closing_backend(Closing::OnNextRequest);
    let p = start_proxy(&one_service(addr));
    let mut c = H1::connect(p.web).await;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        // A pause, as between a user's clicks: the backend closes an idle
        // connection as the next request arrives.
        // (Longer than the 10 ms under which a connection is taken as
        // busy, not closing on an idle clock, and the request not copied.)
        tokio::time::sleep(Duration::from_millis(20)).await;
        statuses.push(c.get("x", "/").await.status);
    }
    let bad = statuses.iter().filter(|s| **s != StatusCode::OK).count();
    assert_eq!(bad, 0, "answers other than 200: {statuses:?}");
    // Every request after the first met a reused connection that the
    // backend dropped: it was sent again, once, on a new one.
    assert_eq!(seen.answered.load(Ordering::Relaxed), 50);
    assert_eq!(seen.dropped.load(Ordering::Relaxed), 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_body_was_sent_is_not_sent_twice_and_fails_as_502() {
    let (addr, seen) = closing_backend(Closing::OnNextRequest);
    let p = start_proxy(&one_service(addr));
    let mut c = H1::connect(p.web).await;
    assert_eq!(c.get("x", "/").await.status, StatusCode::OK);
    let post = Request::post("/")
        .header("host", "x")
        .body(body("once only"))
        .unwrap();
    let r = c.send(post).await.unwrap();
    assert_eq!(
        r.status,
        StatusCode::BAD_GATEWAY,
        "the backend's failure, not a 503"
    );
    assert_eq!(seen.dropped.load(Ordering::Relaxed), 1, "sent once only");
    assert_eq!(seen.connections.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_closing_idle_connections_after_30ms_never_yields_a_502() {
    let (addr, seen) = closing_backend(Closing::WhenIdleFor(Duration::from_millis(30)));
    let p = start_proxy(&one_service(addr));
    let mut c = H1::connect(p.web).await;
    let mut bad = Vec::new();
    for i in 0..300u64 {
        // GETs every 20 to 40 ms: some land just as the backend closes.
        tokio::time::sleep(Duration::from_millis(20 + (i * 7) % 21)).await;
        let r = c.get("x", "/").await;
        if r.status != StatusCode::OK {
            bad.push((i, r.status));
        }
    }
    assert!(bad.is_empty(), "failed requests: {bad:?}");
    assert!(
        seen.connections.load(Ordering::Relaxed) > 1,
        "the backend did close idle connections"
    );
}

/// Copies `r` to `w` until EOF; once connection `me` is frozen, goes
/// silent instead, holding both sockets open.
async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    me: u64,
    frozen: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if me <= frozen.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A TCP relay on 127.0.0.1:0 to `to`: connections numbered up to the
/// value of the returned counter go silent both ways, sockets kept open
/// (a dead host, or a middlebox that dropped the flow).
async fn relay(to: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let frozen = Arc::new(AtomicU64::new(0));
    let fz = Arc::clone(&frozen);
    tokio::spawn(async move {
        let mut seq = 0u64;
        while let Ok((down, _)) = l.accept().await {
            seq += 1;
            let (me, fz) = (seq, Arc::clone(&fz));
            tokio::spawn(async move {
                let up = tokio::net::TcpStream::connect(to).await.unwrap();
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::join!(pipe(dr, uw, me, Arc::clone(&fz)), pipe(ur, dw, me, fz));
            });
        }
    });
    (addr, frozen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_upstream_that_goes_silent_is_found_dead_by_pings() {
    let b = backend("h2");
    let (addr, frozen) = relay(b.addr).await;
    let p = start_proxy(&format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        serversTransport: pings\n        servers: [{{url: \"h2c://{addr}\"}}]\n  serversTransports:\n    pings:\n      forwardingTimeouts:\n        readIdleTimeout: 1s\n        pingTimeout: 1s\n"
    ));
    assert_eq!(get(p.web, "x", "/").await.status, StatusCode::OK);
    // The backend's connection goes silent: no answer, no close.
    frozen.store(1, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), get(p.web, "x", "/"))
        .await
        .expect("the request on the dead connection waited forever");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", started.elapsed());
    // The dead connection is gone: the next request dials a new one.
    assert_eq!(get(p.web, "x", "/").await.status, StatusCode::OK);
}
