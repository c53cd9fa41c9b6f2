//! `retry` over real sockets: a request the first server refuses goes to
//! another (any method: nothing was sent); answers with a listed status
//! are retried up to `attempts` (not for POST unless
//! `retryNonIdempotentMethod`), the body sent again whole; a response
//! whose head has been answered is never retried; and the options
//! Traefik refuses are refused where written.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use support::*;

/// How a scripted backend answers.
#[derive(Clone, Copy)]
enum Script {
    /// The first `n` requests get `status`, the others 200; every answer
    /// says how many body bytes it read (`x-body-len`).
    FailFirst(u64, u16),
    /// A 200 head promising 100 bytes, 10 of them, then the connection
    /// closes.
    Truncated,
}

/// A backend on 127.0.0.1 that answers each connection's one request by
/// `script`, counting requests. Its thread ends with the test process.
fn scripted(script: Script) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, len) = loop {
                let Ok(n) = conn.read(&mut chunk) else {
                    break (0, 0);
                };
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    break (end + 4, len);
                }
            };
            if head_end == 0 {
                continue;
            }
            while buf.len() < head_end + len {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let read = buf.len() - head_end;
            let answer = match script {
                Script::FailFirst(k, status) => {
                    let status = if n < k { status } else { 200 };
                    format!(
                        "HTTP/1.1 {status} X\r\nx-body-len: {read}\r\nx-attempt: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        n + 1
                    )
                }
                Script::Truncated => {
                    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_owned()
                }
            };
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    (addr, hits)
}

/// A port nothing listens on (bound, then closed).
fn dead() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn config(servers: &[SocketAddr], retry: &str) -> String {
    let urls: String = servers
        .iter()
        .map(|a| format!("          - url: \"http://{a}\"\n"))
        .collect();
    format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n      middlewares: [again]\n  services:\n    s:\n      loadBalancer:\n        servers:\n{urls}  middlewares:\n    again:\n      retry:\n{retry}"
    )
}

fn request(method: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} /x HTTP/1.1\r\nHost: r.test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status(text: &str) -> u16 {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_on_another_server() {
    let b = backend("live");
    let p = start_proxy(&config(&[dead(), b.addr], "        attempts: 2\n"));
    for method in ["GET", "GET", "POST", "POST"] {
        let r = raw(p.web, &request(method, "")).await;
        assert_eq!(status(&r), 200, "{method}: {r}");
    }
    assert_eq!(b.stats.requests.load(Ordering::Relaxed), 4);

    // Without the network retry half the requests meet the dead server.
    let p = start_proxy(&config(
        &[dead(), b.addr],
        "        attempts: 2\n        disableRetryOnNetworkError: true\n        status: [\"599\"]\n",
    ));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status(&raw(p.web, &request("GET", "")).await));
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 502, 502]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_statuses_are_retried_up_to_attempts_with_the_body() {
    // Two 503s, then 200: three attempts are enough, the body each time.
    let (addr, hits) = scripted(Script::FailFirst(2, 503));
    let p = start_proxy(&config(
        &[addr],
        "        attempts: 3\n        status: [\"500-599\"]\n        retryNonIdempotentMethod: true\n",
    ));
    let r = raw(p.web, &request("PUT", "hello body")).await;
    assert_eq!(status(&r), 200, "{r}");
    assert!(r.contains("x-body-len: 10"), "the body sent again: {r}");
    assert!(r.contains("x-attempt: 3"), "{r}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // Two attempts against two failures: the last answer is the client's.
    let (addr, hits) = scripted(Script::FailFirst(2, 503));
    let p = start_proxy(&config(
        &[addr],
        "        attempts: 2\n        status: [\"503\"]\n        initialInterval: 10ms\n",
    ));
    let r = raw(p.web, &request("GET", "")).await;
    assert_eq!(status(&r), 503, "{r}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // POST is not retried on a status by default.
    let (addr, hits) = scripted(Script::FailFirst(1, 500));
    let p = start_proxy(&config(
        &[addr],
        "        attempts: 3\n        status: [\"500\"]\n",
    ));
    let r = raw(p.web, &request("POST", "x")).await;
    assert_eq!(status(&r), 500, "{r}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // A status not listed is the answer at once.
    let r = raw(p.web, &request("GET", "")).await;
    assert_eq!(status(&r), 200, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_once_started_is_not_retried() {
    let (addr, hits) = scripted(Script::Truncated);
    let p = start_proxy(&config(
        &[addr],
        "        attempts: 3\n        status: [\"500-599\"]\n",
    ));
    let r = raw(p.web, &request("GET", "")).await;
    assert_eq!(status(&r), 200, "{r}");
    assert!(r.ends_with("0123456789"), "the part that came: {r}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "sent once");
}

#[test]
fn bad_retry_options_are_refused_where_written() {
    let a = dead();
    let errors = dynamic_errors(&config(&[a], "        attempts: 0\n"));
    assert!(
        errors.contains("incorrect value for attempts (0)"),
        "{errors}"
    );
    let errors = dynamic_errors(&config(
        &[a],
        "        attempts: 2\n        status: [\"50x\"]\n",
    ));
    assert!(
        errors.contains("status[0]: invalid status \"50x\""),
        "{errors}"
    );
    let errors = dynamic_errors(&config(
        &[a],
        "        attempts: 2\n        disableRetryOnNetworkError: true\n",
    ));
    assert!(
        errors.contains("requires at least HTTP status codes"),
        "{errors}"
    );
}
