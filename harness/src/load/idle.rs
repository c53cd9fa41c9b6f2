//! The `idle-conns` load: N keep-alive connections that each get one
//! correct answer and then sit idle, held open while the target's memory is
//! read; afterwards a request on a sample of them, and one on a new
//! connection, must still be answered.
//!
//! Not a throughput driver: it runs on the harness's main runtime, opening
//! a bounded number of connections at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use super::LoadResult;
use super::driver::micros;
use super::h1::{self, Conn, Reader};
use super::tls::TlsClient;
use crate::scenario::RequestSpec;

/// Connections being opened at once.
const CONCURRENCY: usize = 64;

/// Idle connections the target still holds, and how opening them went.
#[derive(Debug)]
pub(crate) struct Idle {
    /// The open connections (each has served one request).
    pub(crate) conns: Vec<Conn>,
    /// One answer per connection.
    pub(crate) opened: LoadResult,
}

async fn one(
    addr: SocketAddr,
    req: Arc<Vec<u8>>,
    spec: Arc<RequestSpec>,
    tls: Option<Arc<TlsClient>>,
) -> Result<(Conn, u64), String> {
    let t0 = Instant::now();
    let mut c = Conn::connect(addr, tls.as_deref()).await?;
    let mut rd = Reader::with_capacity(4096);
    let a = h1::exchange(&mut c, &req, &mut rd).await?;
    a.check(&spec)?;
    if a.close {
        return Err("the target closed a keep-alive connection after one answer".into());
    }
    Ok((c, micros(t0.elapsed())))
}

/// Opens `n` connections to `addr`, one checked request each.
pub(crate) async fn open(
    addr: SocketAddr,
    spec: &RequestSpec,
    n: usize,
    tls: Option<Arc<TlsClient>>,
) -> Idle {
    let req = Arc::new(h1::request_bytes(spec, addr));
    let spec = Arc::new(spec.clone());
    let mut opened = LoadResult::empty();
    let mut conns = Vec::with_capacity(n);
    let mut set = JoinSet::new();
    let mut started = 0;
    while started < n || !set.is_empty() {
        while started < n && set.len() < CONCURRENCY {
            set.spawn(one(addr, req.clone(), spec.clone(), tls.clone()));
            started += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok((c, us)))) => {
                opened.answered(true, us);
                conns.push(c);
            }
            Some(Ok(Err(e))) => opened.error(true, || e),
            Some(Err(e)) => opened.error(true, || format!("task: {e}")),
            None => break,
        }
    }
    Idle { conns, opened }
}

/// Sends one more request on `sample` connections spread over the idle
/// ones and one on a new connection; every answer must be correct.
pub(crate) async fn recheck(
    idle: &mut Idle,
    addr: SocketAddr,
    spec: &RequestSpec,
    sample: usize,
    tls: Option<&TlsClient>,
) -> LoadResult {
    let req = h1::request_bytes(spec, addr);
    let mut res = LoadResult::empty();
    let n = idle.conns.len();
    let step = (n / sample.max(1)).max(1);
    let mut rd = Reader::with_capacity(4096);
    for i in (0..n).step_by(step).take(sample) {
        rd.clear();
        let t0 = Instant::now();
        match h1::exchange(&mut idle.conns[i], &req, &mut rd).await {
            Ok(a) => match a.check(spec) {
                Ok(()) => res.answered(true, micros(t0.elapsed())),
                Err(e) => res.error(true, || format!("idle connection #{i}: {e}")),
            },
            Err(e) => res.error(true, || format!("idle connection #{i}: {}", e.msg)),
        }
    }
    let t0 = Instant::now();
    let fresh = async {
        let mut c = Conn::connect(addr, tls).await?;
        rd.clear();
        let a = h1::exchange(&mut c, &req, &mut rd).await?;
        a.check(spec)
    };
    match fresh.await {
        Ok(()) => res.answered(true, micros(t0.elapsed())),
        Err(e) => res.error(true, || {
            format!("new connection while idle ones are held: {e}")
        }),
    }
    res
}
