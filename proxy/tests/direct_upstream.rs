//! The direct upstream path (`upstream/direct.rs`): HTTP/1.1 requests to
//! plain servers written and answered on the request's own task. A
//! scripted backend on 127.0.0.1 writes its answers in small pieces with
//! pauses, so every answer is read across many reads: heads, chunk-size
//! lines, trailers and bodies split at every point. The tests check what a
//! client sees, and how many connections the backend had to accept (the
//! pool's reuse).

// The backend's threads record the requests they saw under a mutex: test
// code, not the proxy's request path.
#![allow(clippy::disallowed_types)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use support::*;

/// What the scripted backend saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// Each request as received: head and body, the body de-chunked
    /// (`chunked` bodies keep their trailer lines after a `|`).
    requests: Mutex<Vec<String>>,
}

/// An answer, in the pieces it is written in, and whether the backend
/// then reads the request body (`false`: it answers first, and closes).
struct Answer {
    pieces: Vec<Vec<u8>>,
    read_body: bool,
    /// After this answer the connection's next request is read and
    /// dropped unanswered with the connection (a backend closing a
    /// kept-alive connection on its idle clock).
    drop_next: bool,
}

/// A backend that answers each request of each connection with
/// `script(method, path)`, writing piece by piece with a 2 ms pause after
/// each (the proxy sees them one read at a time).
fn scripted(script: fn(&str, &str) -> Answer) -> (SocketAddr, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            s2.connections.fetch_add(1, Ordering::Relaxed);
            let seen = Arc::clone(&s2);
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = Vec::new();
                loop {
                    let Some(head) = read_until(&mut s, &mut buf, b"\r\n\r\n") else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let mut words = head.split(' ');
                    let method = words.next().unwrap_or("").to_string();
                    let path = words.next().unwrap_or("").to_string();
                    let answer = script(&method, &path);
                    let lower = head.to_ascii_lowercase();
                    let mut body = String::new();
                    if answer.read_body {
                        if lower.contains("transfer-encoding: chunked") {
                            loop {
                                let line = read_until(&mut s, &mut buf, b"\r\n").unwrap();
                                let line = String::from_utf8_lossy(&line).into_owned();
                                let size = usize::from_str_radix(line.trim(), 16).unwrap();
                                if size == 0 {
                                    let rest = read_until(&mut s, &mut buf, b"\r\n").unwrap();
                                    let mut rest = String::from_utf8_lossy(&rest).into_owned();
                                    while rest != "\r\n" {
                                        body.push('|');
                                        body.push_str(rest.trim_end());
                                        rest = String::from_utf8_lossy(
                                            &read_until(&mut s, &mut buf, b"\r\n").unwrap(),
                                        )
                                        .into_owned();
                                    }
                                    break;
                                }
                                let data = read_exact(&mut s, &mut buf, size + 2).unwrap();
                                body.push_str(&String::from_utf8_lossy(&data[..size]));
                            }
                        } else if let Some(len) = lower
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse::<usize>().unwrap())
                        {
                            let data = read_exact(&mut s, &mut buf, len).unwrap();
                            body.push_str(&String::from_utf8_lossy(&data));
                        }
                    }
                    seen.requests.lock().unwrap().push(format!("{head}{body}"));
                    for piece in &answer.pieces {
                        if s.write_all(piece).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    if !answer.read_body {
                        return;
                    }
                    if answer.drop_next {
                        if let Some(head) = read_until(&mut s, &mut buf, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&head).into_owned();
                            seen.requests
                                .lock()
                                .unwrap()
                                .push(format!("dropped: {head}"));
                        }
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Bytes from `s` up to and including `end` (`None` at EOF).
fn read_until(s: &mut std::net::TcpStream, buf: &mut Vec<u8>, end: &[u8]) -> Option<Vec<u8>> {
    loop {
        if let Some(at) = buf.windows(end.len()).position(|w| w == end) {
            return Some(buf.drain(..at + end.len()).collect());
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Exactly `n` bytes from `s` (`None` at EOF).
fn read_exact(s: &mut std::net::TcpStream, buf: &mut Vec<u8>, n: usize) -> Option<Vec<u8>> {
    while buf.len() < n {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
    Some(buf.drain(..n).collect())
}

/// `text` cut into pieces of `size` bytes.
fn pieces(text: &[u8], size: usize) -> Vec<Vec<u8>> {
    text.chunks(size).map(<[u8]>::to_vec).collect()
}

fn answer(text: &[u8], size: usize) -> Answer {
    Answer {
        pieces: pieces(text, size),
        read_body: true,
        drop_next: false,
    }
}

fn one_service(addr: SocketAddr) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{{url: \"http://{addr}\"}}]\n"
    )
}

fn script(method: &str, path: &str) -> Answer {
    match (method, path) {
        // Two informational answers, then the real one.
        (_, "/continue") => answer(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            3,
        ),
        // Chunk extensions, a chunk split mid-data, and trailers.
        (_, "/chunked") => answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 19\r\n\r\n",
            2,
        ),
        // A HEAD answer announces a length and sends no body.
        ("HEAD", "/sized") => answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 4),
        (_, "/not-modified") => answer(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"v1\"\r\n\r\n",
            5,
        ),
        (_, "/sized") => answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsized", 4),
        (_, "/echo") => answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 64),
        (_, "/then-close") => Answer {
            drop_next: true,
            ..answer(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce", 64)
        },
        // Answered before the body is read: the proxy stops sending it.
        (_, "/early") => Answer {
            pieces: vec![b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!".to_vec()],
            read_body: false,
            drop_next: false,
        },
        (_, "/bad-length") => answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello", 64),
        (_, "/two-lengths") => answer(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            64,
        ),
        (_, "/garbage") => answer(b"HTTP/1.1 abc\r\n\r\n", 64),
        (_, "/cut") => Answer {
            pieces: vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf".to_vec()],
            read_body: false,
            drop_next: false,
        },
        _ => answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_read_in_pieces_come_out_whole_on_one_upstream_connection() {
    let (addr, seen) = scripted(script);
    let p = start_proxy(&one_service(addr));
    let mut c = H1::connect(p.web).await;

    let r = c.get("x", "/continue").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "hello"));

    let req = Request::get("/chunked")
        .header("host", "x")
        .header("te", "trailers")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "abc0123456789abcdef");
    let trailers = r.trailers.expect("the trailers reach the client");
    assert_eq!(trailers.get("x-sum").unwrap(), "19");

    let req = Request::head("/sized")
        .header("host", "x")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("content-length").unwrap(), "5");
    assert!(r.body.is_empty());

    let r = c.get("x", "/not-modified").await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers.get("etag").unwrap(), "\"v1\"");
    assert!(r.body.is_empty());

    let r = c.get("x", "/sized").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "sized"));

    // Every answer ended where its framing said: one connection served
    // them all.
    assert_eq!(seen.connections.load(Ordering::Relaxed), 1);
    assert_eq!(seen.requests.lock().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_framed_as_hyper_frames_them() {
    let (addr, seen) = scripted(script);
    let p = start_proxy(&one_service(addr));
    let mut c = H1::connect(p.web).await;

    // A body of known length.
    let req = Request::post("/echo")
        .header("host", "x")
        .body(body("0123456789"))
        .unwrap();
    assert_eq!(c.send(req).await.unwrap().text(), "ok");

    // A body of unknown length, with a trailer: it goes chunked, the
    // trailer with it (Go's transport sends a request's trailers for
    // Traefik).
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-check", "42".parse().unwrap());
    let streamed = Frames(vec![
        Frame::trailers(trailers),
        Frame::data(Bytes::from_static(b"part two")),
        Frame::data(Bytes::from_static(b"part one, ")),
    ])
    .boxed();
    let req = Request::put("/echo")
        .header("host", "x")
        .header("trailer", "x-check")
        .body(streamed)
        .unwrap();
    assert_eq!(c.send(req).await.unwrap().text(), "ok");

    // Answered before the body was all there: the client gets the answer
    // (its body still coming, 4 MiB announced and 64 KiB sent), and the
    // spent connection is not used again.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(p.web).await.unwrap();
        s.write_all(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n")
            .await
            .unwrap();
        s.write_all(&vec![b'z'; 64 << 10]).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"big!") {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("the early answer within 5 s")
                .unwrap();
            assert!(
                n > 0,
                "closed before the answer: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(raw_status(&String::from_utf8_lossy(&got)), 413);
    }
    let r = H1::connect(p.web).await.get("x", "/sized").await;
    assert_eq!(r.text(), "sized");

    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let lower = requests[0].to_ascii_lowercase();
    assert!(
        lower.starts_with("post /echo http/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(lower.contains("content-length: 10\r\n"), "{}", requests[0]);
    assert!(
        requests[0].ends_with("\r\n\r\n0123456789"),
        "{}",
        requests[0]
    );
    let lower = requests[1].to_ascii_lowercase();
    assert!(
        lower.contains("transfer-encoding: chunked\r\n"),
        "{}",
        requests[1]
    );
    assert!(!lower.contains("content-length"), "{}", requests[1]);
    assert!(
        requests[1].ends_with("part one, part two|x-check: 42"),
        "{}",
        requests[1]
    );
    // The first two shared a connection; the early answer spent its
    // connection, so the last request needed another.
    assert_eq!(seen.connections.load(Ordering::Relaxed), 2);
}

/// A reused connection the backend drops on the next request: the request
/// goes again on a new connection, whole (its head's fields were lent to
/// the answer that never came, and are back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_on_a_reused_connection_goes_again_whole() {
    let (addr, seen) = scripted(script);
    let p = start_proxy(&one_service(addr));
    let mut c = H1::connect(p.web).await;
    assert_eq!(c.get("x", "/then-close").await.text(), "once");
    // Idle for longer than 10 ms: a written request may go again.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let req = Request::get("/sized")
        .header("host", "x")
        .header("x-mine", "kept")
        .body(empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "sized"));
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(
        requests[1].starts_with("dropped: GET /sized"),
        "{requests:#?}"
    );
    assert_eq!(
        requests[1].trim_start_matches("dropped: "),
        requests[2],
        "the same request, twice"
    );
    assert!(requests[2].contains("x-mine: kept\r\n"), "{}", requests[2]);
    assert!(requests[2].contains("host: x\r\n"), "{}", requests[2]);
    assert_eq!(seen.connections.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_cut_answers_fail_and_other_requests_go_on() {
    let (addr, _seen) = scripted(script);
    let p = start_proxy(&one_service(addr));
    for path in ["/bad-length", "/two-lengths", "/garbage"] {
        let r = get(p.web, "x", path).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{path}");
    }
    // A body cut short after its head went out: the client's answer ends
    // in an error, not in a shorter body taken for whole.
    let mut c = H1::connect(p.web).await;
    let req = Request::get("/cut")
        .header("host", "x")
        .body(empty())
        .unwrap();
    assert!(
        c.send(req).await.is_err(),
        "a cut body must not look complete"
    );
    let r = get(p.web, "x", "/sized").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "sized"));
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/sized")
        .header("host", "x")
        .body(empty())
        .unwrap();
    let r = H1::connect(p.web).await.send(req).await.unwrap();
    assert_eq!(r.text(), "sized");
}

/// A body of `frames` (taken from the end), of unknown length.
struct Frames(Vec<Frame<Bytes>>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        std::task::Poll::Ready(self.0.pop().map(Ok))
    }
}
