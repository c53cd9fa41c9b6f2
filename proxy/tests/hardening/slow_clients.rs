//! Item 3: slow or broken clients are bounded. `readTimeout` covers the
//! request body; `writeTimeout` (Go's `WriteTimeout`) cuts a response the
//! client does not take, but not an upgraded tunnel; a malformed chunked
//! body is the client's error (400), not a 502.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::streaming::static_with_timeouts;
use crate::support::*;

/// Reads until EOF, an error or `limit`; what was read.
async fn read_for(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_at_one_byte_a_second_is_cut_at_read_timeout() {
    let b = backend("up");
    let p = start_proxy_static(
        &routes_yaml(&[("up", "PathPrefix(`/`)", &b)]),
        &static_with_timeouts("        readTimeout: 2s\n"),
        1,
    );
    let mut s = TcpStream::connect(p.web).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    // One byte a second; the proxy must answer (or close) within 5 s of
    // the 2 s limit.
    while started.elapsed() < Duration::from_secs(12) {
        if s.write_all(b"x").await.is_err() {
            break;
        }
        let got = read_for(&mut s, Duration::from_secs(1)).await;
        if !got.is_empty() {
            answer = got;
            break;
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(7),
        "upload still open after {took:?}"
    );
    assert!(took >= Duration::from_millis(1500), "cut early: {took:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "a timed-out body is the client's error: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_a_64_mib_response_is_cut_at_write_timeout() {
    let b = backend("big");
    let p = start_proxy_static(
        &routes_yaml(&[("big", "PathPrefix(`/`)", &b)]),
        &static_with_timeouts("        writeTimeout: 3s\n"),
        1,
    );
    let mut s = TcpStream::connect(p.web).await.unwrap();
    s.write_all(b"GET /bytes/67108864 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Not reading for 3 s + 5 s of slack, then read what is left: the
    // proxy has closed the connection, short of the whole body.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let got = read_for(&mut s, Duration::from_secs(10)).await;
    assert!(
        got.len() < 64 * 1024 * 1024,
        "the whole response was kept for a client that did not read ({} bytes)",
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_timeout_does_not_cut_an_upgraded_tunnel() {
    let b = backend("ws");
    let p = start_proxy_static(
        &routes_yaml(&[("ws", "PathPrefix(`/`)", &b)]),
        &static_with_timeouts("        writeTimeout: 1s\n"),
        1,
    );
    let mut s = upgraded(p.web).await;
    for i in 0..4 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let msg = format!("message {i}, {} ms after the upgrade", (i + 1) * 800);
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunked_bodies_are_answered_400() {
    let b = backend("chunks");
    let p = start_proxy(&routes_yaml(&[("c", "PathPrefix(`/`)", &b)]));
    for (what, chunks) in [
        ("0x5", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("5zz", "5zz\r\nhello\r\n0\r\n\r\n"),
        (
            "a size over 64 bits",
            "fffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        ("bare LF chunk lines", "5\nhello\n0\n\n"),
    ] {
        let req = format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}"
        );
        let answer = raw(p.web, req.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{what}: {}",
            answer.lines().next().unwrap_or("(no answer)")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_max_concurrent_streams_is_applied() {
    let b = backend("h2");
    let p = start_proxy_static(
        &routes_yaml(&[("h2", "PathPrefix(`/`)", &b)]),
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    http2:\n      maxConcurrentStreams: 2\nproviders:\n  file:\n    filename: \"{DIR}/dynamic.yml\"\n",
        1,
    );
    let mut c = H2::connect(p.web).await;
    // One exchange first, so the client has the server's SETTINGS.
    assert_eq!(c.get("x", "/").await.status, http::StatusCode::OK);
    let started = Instant::now();
    let mut runs = Vec::new();
    for _ in 0..4 {
        let mut c = c.clone();
        runs.push(tokio::spawn(async move {
            let req = http::Request::get("http://x/slow/1000")
                .body(empty())
                .unwrap();
            c.send(req).await.map(|r| r.status)
        }));
    }
    let mut refused = 0;
    for r in runs {
        match r.await.unwrap() {
            Ok(status) => assert_eq!(status, http::StatusCode::OK),
            Err(e) => {
                assert!(format!("{e:?}").contains("REFUSED_STREAM"), "{e:?}");
                refused += 1;
            }
        }
    }
    // Two streams at a time: the others were refused (the client sent
    // them anyway) or waited for a second round of 1 s.
    let took = started.elapsed();
    assert!(
        refused > 0 || took >= Duration::from_millis(1900),
        "more than two streams ran at once: {took:?}"
    );
}
