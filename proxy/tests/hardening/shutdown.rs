//! Item 6, shutdown: on a drain (what `SIGTERM` starts), an open
//! WebSocket tunnel and a streaming response keep going for up to the
//! grace period; nothing is reset while it runs.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Starts draining `p` with `grace` on a thread of its own; joined by the
/// returned handle, which yields how long the drain took.
pub(crate) fn drain(p: &mut TestProxy, grace: Duration) -> std::thread::JoinHandle<Duration> {
    let running = p.running.take().expect("a running proxy");
    std::thread::spawn(move || {
        let started = Instant::now();
        running.shutdown(Some(grace));
        started.elapsed()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_tunnel_keeps_working_through_the_grace_period() {
    let b = backend("ws");
    let mut p = start_proxy(&routes_yaml(&[("ws", "PathPrefix(`/`)", &b)]));
    let mut s = upgraded(p.web).await;

    let drained = drain(&mut p, Duration::from_secs(20));
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let msg = format!("message {i} while draining");
        s.write_all(msg.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{msg}: {e}"));
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back)
            .await
            .unwrap_or_else(|e| panic!("{msg}: tunnel cut: {e}"));
        assert_eq!(back, msg.as_bytes());
    }
    // The client closes the tunnel: the drain ends then, not at the
    // deadline.
    drop(s);
    let took = tokio::task::spawn_blocking(move || drained.join().unwrap())
        .await
        .unwrap();
    assert!(
        took < Duration::from_secs(15),
        "the drain waited for the tunnel, then ended: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_response_finishes_during_the_grace_period() {
    let b = backend("stream");
    let mut p = start_proxy(&routes_yaml(&[("s", "PathPrefix(`/`)", &b)]));
    let web = p.web;
    let stream = tokio::spawn(async move { H1::connect(web).await.get("x", "/drip/15/200").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drained = drain(&mut p, Duration::from_secs(20));
    let r = stream.await.unwrap();
    assert_eq!(r.body.len(), 15 * 1024, "every byte of the stream arrives");
    let took = tokio::task::spawn_blocking(move || drained.join().unwrap())
        .await
        .unwrap();
    assert!(took < Duration::from_secs(15), "{took:?}");
}
