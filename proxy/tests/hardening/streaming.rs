//! Item 1: a response streamed for longer than `idleTimeout` and
//! `readTimeout` is delivered whole, over HTTP/1.1 and h2c: the request
//! is in flight until its body ends, and an HTTP/2 connection with an
//! open stream is not idle.

use std::time::{Duration, Instant};

use http::{Request, StatusCode};

use crate::support::*;

/// The static configuration of these tests: entrypoint `web` with the
/// given `respondingTimeouts` lines.
pub(crate) fn static_with_timeouts(timeouts: &str) -> String {
    static_with_transport(&format!("      respondingTimeouts:\n{timeouts}"))
}

/// `/plain...` through an HTTP/1.1 upstream, `/grpc...` through h2c.
pub(crate) fn plain_and_h2c(b: &Backend) -> String {
    format!(
        "http:\n  routers:\n    plain:\n      rule: \"PathPrefix(`/`)\"\n      service: plain\n    grpc:\n      rule: \"HeaderRegexp(`content-type`, `^application/grpc`)\"\n      service: grpc\n  services:\n    plain:\n      loadBalancer:\n        servers: [{{url: \"http://{0}\"}}]\n    grpc:\n      loadBalancer:\n        servers: [{{url: \"h2c://{0}\"}}]\n",
        b.addr
    )
}

/// 30 chunks of 1 KiB, one every 200 ms: 6 s, three times both timeouts.
const DRIP: &str = "/drip/30/200";
const DRIP_BYTES: usize = 30 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_longer_than_idle_and_read_timeouts_arrive_whole() {
    let b = backend("drip");
    let p = start_proxy_static(
        &plain_and_h2c(&b),
        &static_with_timeouts("        idleTimeout: 2s\n        readTimeout: 2s\n"),
        1,
    );
    let web = p.web;
    let mut runs = Vec::new();
    for (name, query, grpc) in [
        ("server-sent events", "?sse", false),
        ("slow download", "", false),
        ("gRPC-style stream", "?grpc", true),
    ] {
        // gRPC runs over HTTP/2 only.
        let over: &[bool] = if grpc { &[true] } else { &[false, true] };
        for &h2 in over {
            runs.push(tokio::spawn(async move {
                let started = Instant::now();
                let mut req = Request::post(format!("http://x{DRIP}{query}"));
                if grpc {
                    req = req.header("content-type", "application/grpc");
                }
                let req = req.header("host", "x").body(empty()).unwrap();
                let r = if h2 {
                    H2::connect(web).await.send(req).await
                } else {
                    H1::connect(web).await.send(req).await
                };
                let what = format!("{name} over {}", if h2 { "h2c" } else { "HTTP/1.1" });
                let r =
                    r.unwrap_or_else(|e| panic!("{what}: cut after {:?}: {e}", started.elapsed()));
                assert_eq!(r.status, StatusCode::OK, "{what}");
                assert_eq!(r.body.len(), DRIP_BYTES, "{what}: every byte arrives");
                if grpc {
                    let t = r.trailers.as_ref().expect("gRPC trailers");
                    assert_eq!(t["grpc-status"], "0", "{what}");
                }
                assert!(
                    started.elapsed() >= Duration::from_secs(5),
                    "{what}: the stream really lasted longer than the timeouts"
                );
            }));
        }
    }
    for r in runs {
        r.await.unwrap();
    }
}
