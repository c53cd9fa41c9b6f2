//! Item 2, HTTP/2: a stream the backend refused — reset with
//! `REFUSED_STREAM`, or above the last stream id of its `GOAWAY` — was not
//! processed, and is sent again once on a new connection, as Go's
//! transport does, when the request may go twice.
//!
//! The backend is a few lines of raw HTTP/2 frames: a library server
//! counts a stream as processed the moment its headers arrive, and so
//! cannot send the `GOAWAY` that refuses a stream it has already seen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, Request, StatusCode};

use crate::support::*;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ACK: u8 = 1;
const REFUSED_STREAM: u32 = 7;

fn frame(s: &mut TcpStream, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    s.write_all(&f).unwrap();
}

/// The next frame: (type, flags, stream id, payload); `None` at EOF.
fn read_frame(s: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    Some((head[3], head[4], stream, payload))
}

/// What the first connection does with the requests it gets; every later
/// connection answers `200` with body `conn <n>`.
#[derive(Clone, Copy)]
enum First {
    /// Resets every stream with `REFUSED_STREAM`.
    Refuses,
    /// Answers the first stream, then sends `GOAWAY` naming it as the last
    /// one processed when the second arrives (refusing that one).
    GoesAwayOnSecond,
}

/// An h2c backend; returns its address and the number of requests that
/// reached it (headers received) per connection, in order.
fn refusing_backend(first: First) -> (SocketAddr, Arc<[AtomicU64; 4]>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let counts = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (n, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            let seen = Arc::clone(&counts);
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut preface = [0u8; 24];
                if s.read_exact(&mut preface).is_err() {
                    return;
                }
                frame(&mut s, SETTINGS, 0, 0, &[]);
                let mut streams = 0;
                while let Some((kind, flags, id, payload)) = read_frame(&mut s) {
                    match kind {
                        SETTINGS if flags & ACK == 0 => frame(&mut s, SETTINGS, ACK, 0, &[]),
                        PING if flags & ACK == 0 => frame(&mut s, PING, ACK, 0, &payload),
                        HEADERS => {
                            streams += 1;
                            seen[n.min(3)].fetch_add(1, Ordering::Relaxed);
                            match (n, first) {
                                (0, First::Refuses) => {
                                    frame(&mut s, RST_STREAM, 0, id, &REFUSED_STREAM.to_be_bytes())
                                }
                                (0, First::GoesAwayOnSecond) if streams == 2 => {
                                    let mut p = (id - 2).to_be_bytes().to_vec();
                                    p.extend_from_slice(&0u32.to_be_bytes());
                                    frame(&mut s, GOAWAY, 0, 0, &p);
                                    std::thread::sleep(Duration::from_millis(200));
                                    return;
                                }
                                _ => {
                                    // `:status: 200` (static table entry 8).
                                    frame(&mut s, HEADERS, END_HEADERS, id, &[0x88]);
                                    let body = format!("conn {}", n + 1);
                                    frame(&mut s, DATA, END_STREAM, id, body.as_bytes());
                                }
                            }
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn config(addr: SocketAddr) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{{url: \"h2c://{addr}\"}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_sent_again_on_a_new_connection() {
    let (addr, seen) = refusing_backend(First::Refuses);
    let p = start_proxy(&config(addr));
    let r = get(p.web, "x", "/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), "conn 2");
    assert_eq!(seen[0].load(Ordering::Relaxed), 1, "refused once");
    assert_eq!(seen[1].load(Ordering::Relaxed), 1, "sent once more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_above_the_goaway_last_stream_id_is_sent_again_on_a_new_connection() {
    let (addr, seen) = refusing_backend(First::GoesAwayOnSecond);
    let p = start_proxy(&config(addr));
    let mut c = H1::connect(p.web).await;
    let first = c.get("x", "/").await;
    assert_eq!(first.text(), "conn 1");
    let second = c.get("x", "/").await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.text(), "conn 2");
    assert_eq!(seen[0].load(Ordering::Relaxed), 2);
    assert_eq!(seen[1].load(Ordering::Relaxed), 1);
}

/// A request that may not go twice (a POST with a body the proxy streamed)
/// is not sent again: the client gets the backend's refusal as a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_post_with_a_body_is_not_sent_again() {
    let (addr, seen) = refusing_backend(First::Refuses);
    let p = start_proxy(&config(addr));
    let mut c = H1::connect(p.web).await;
    let r = c
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/")
                .header("host", "x")
                .body(body("payload"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text());
    assert_eq!(seen[0].load(Ordering::Relaxed), 1);
    assert_eq!(seen[1].load(Ordering::Relaxed), 0);
}
