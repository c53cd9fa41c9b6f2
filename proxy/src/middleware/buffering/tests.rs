//! Holding bodies: in memory under the limit, spilled to a temporary file
//! past it (the file there while the body lives, gone after), refused past
//! the maximum, replayed whole; and the retry condition's evaluation.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

use super::spill::{Held, Overflow, hold};
use super::*;
use crate::config::CmpOp;
use crate::upstream::MessageBody;

/// A body of `chunks`, one frame each.
struct Chunks(Vec<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(self.0.remove(0)))))
    }
}

fn chunks(n: usize, size: usize) -> (Chunks, Vec<u8>) {
    let all: Vec<u8> = (0..n * size).map(|i| (i % 251) as u8).collect();
    let parts = all.chunks(size).map(Bytes::copy_from_slice).collect();
    (Chunks(parts), all)
}

/// The spill files this process has open (unlinked: seen through
/// `/proc/self/fd`), by name, with their sizes.
fn open_spills() -> Vec<(String, u64)> {
    let prefix = std::env::temp_dir()
        .join(format!("proxy-buffer-{}-", std::process::id()))
        .to_string_lossy()
        .into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let target = target.to_string_lossy().into_owned();
            let size = std::fs::metadata(e.path()).ok()?.len();
            target.starts_with(&prefix).then_some((target, size))
        })
        .collect()
}

async fn read_all(body: RequestBody) -> Vec<u8> {
    body.collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn small_bodies_stay_in_memory() {
    let (body, all) = chunks(4, 1000);
    let Ok(Held::Memory(b)) = hold(body, 4000, None).await else {
        panic!("held in memory");
    };
    assert_eq!(&b[..], &all[..]);
}

#[tokio::test]
async fn larger_bodies_spill_to_a_file_removed_with_the_body() {
    // 700 KiB with 100 KiB in memory: the rest goes to the file.
    let (body, all) = chunks(70, 10 * 1024);
    let Ok(held) = hold(body, 100 * 1024, Some(1 << 20)).await else {
        panic!("held");
    };
    assert_eq!(held.len(), all.len() as u64);
    let Held::Disk(spilled) = &held else {
        panic!("spilled");
    };
    let path = spilled.path().to_string_lossy().into_owned();
    assert!(!spilled.path().exists(), "unlinked at once");
    let open = |p: &str| open_spills().into_iter().find(|(t, _)| t.starts_with(p));
    assert_eq!(
        open(&path).map(|f| f.1),
        Some((all.len() - 100 * 1024) as u64)
    );
    let body: RequestBody = held.into_body();
    let again = body.replay().expect("a spilled body replays");
    assert_eq!(read_all(body).await, all);
    assert!(open(&path).is_some(), "the replay still holds the file");
    assert_eq!(read_all(again).await, all);
    assert!(open(&path).is_none(), "closed with the last copy");
}

#[tokio::test]
async fn bodies_over_the_maximum_are_refused() {
    let (body, _) = chunks(10, 1000);
    assert!(matches!(
        hold(body, 100, Some(9_999)).await,
        Err(Overflow::TooLarge)
    ));
    let (body, _) = chunks(10, 1000);
    assert!(matches!(
        hold(body, 100, Some(10_000)).await,
        Ok(Held::Disk(_))
    ));
}

#[test]
fn retry_conditions_evaluate_as_oxy_s() {
    let c = RetryCondition::And(
        Box::new(RetryCondition::NetworkError),
        Box::new(RetryCondition::Attempts(CmpOp::Lt, 3)),
    );
    assert!(holds(&c, 1, 502, &Method::GET));
    assert!(holds(&c, 2, 504, &Method::GET));
    assert!(!holds(&c, 3, 502, &Method::GET));
    assert!(!holds(&c, 1, 503, &Method::GET));
    let m = RetryCondition::Method(true, "PUT".into());
    assert!(holds(&m, 1, 200, &Method::PUT));
    assert!(!holds(&m, 1, 200, &Method::POST));
    let r = RetryCondition::ResponseCode(CmpOp::Ge, 500);
    assert!(holds(&r, 9, 500, &Method::POST));
}

#[tokio::test]
async fn a_spilled_body_is_read_into_memory_for_those_keeping_bytes() {
    // A failover or a mirror holds the body as bytes, up to its limit.
    let (body, all) = chunks(30, 10 * 1024);
    let held: RequestBody = hold(body, 1024, None).await.unwrap().into_body();
    assert!(matches!(held, MessageBody::Spilled(_)));
    let again = held.replay().unwrap();
    match held.held(Some(300 * 1024)).await.unwrap() {
        MessageBody::Full(Some(b)) => assert_eq!(&b[..], &all[..]),
        other => panic!("read into memory: {other:?}"),
    }
    // Over the limit it stays as it is (the caller's "too large").
    assert!(matches!(
        again.held(Some(1000)).await.unwrap(),
        MessageBody::Spilled(_)
    ));
}
