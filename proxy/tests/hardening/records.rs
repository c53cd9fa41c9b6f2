//! Item 6, observe: the access log's (and metrics') duration runs to the
//! last byte of the response body, and the bytes of streamed responses
//! (no `Content-Length`) are counted.

use std::time::{Duration, Instant};

use crate::support::*;

/// The access log's JSON entries once `n` are written (5 s at most).
async fn entries(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_responses_are_logged_with_their_bytes_and_full_duration() {
    let b = backend("rec");
    let p = start_proxy_with(
        &routes_yaml(&[("rec", "PathPrefix(`/`)", &b)]),
        "accessLog:\n  filePath: \"{DIR}/access.log\"\n  format: json\n",
        1,
    );
    // 10 KiB dripped over 2 s, then 300,000 bytes streamed without a
    // Content-Length.
    let drip = get(p.web, "x", "/drip/10/200").await;
    assert_eq!(drip.body.len(), 10 * 1024);
    let big = get(p.web, "x", "/bytes/300000").await;
    assert_eq!(big.body.len(), 300_000);
    let log = entries(&p.dir.path().join("access.log"), 2).await;
    assert_eq!(log.len(), 2, "{log:?}");
    let find = |path: &str| {
        log.iter()
            .find(|e| e["RequestPath"] == path)
            .unwrap_or_else(|| panic!("no entry for {path}: {log:?}"))
    };
    let d = find("/drip/10/200");
    assert_eq!(d["DownstreamContentSize"], 10 * 1024, "{d}");
    let nanos = d["Duration"].as_u64().unwrap();
    assert!(
        nanos >= 1_800_000_000,
        "the duration runs to the last byte (2 s), not the headers: {nanos} ns"
    );
    assert_eq!(find("/bytes/300000")["DownstreamContentSize"], 300_000);
}
