//! h2c (HTTP/2 prior knowledge) for the driver: one hyper HTTP/2 client
//! connection per driver connection, on the driver thread's current-thread
//! runtime, with a closed loop per stream.
//!
//! Per request: hyper builds the request and its HPACK frames; the driver
//! adds two clock reads and a histogram record, no lock.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::driver::{Job, SlotRef};
use crate::scenario::RequestSpec;

type Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

fn request(spec: &RequestSpec, authority: &str, body: &Bytes) -> Request<Full<Bytes>> {
    let uri = format!(
        "http://{}{}",
        spec.host.as_deref().unwrap_or(authority),
        spec.path
    );
    Request::builder()
        .method(if spec.upload.is_some() {
            Method::POST
        } else {
            Method::GET
        })
        .uri(uri)
        .body(Full::new(body.clone()))
        .expect("valid request")
}

async fn one(
    send: &mut Sender,
    req: Request<Full<Bytes>>,
    spec: &RequestSpec,
) -> Result<(), String> {
    send.ready().await.map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let backend = resp.headers().get("x-backend").cloned();
    let mut body = resp.into_body();
    let mut len = 0usize;
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| format!("reading body: {e}"))?;
        len += f.data_ref().map_or(0, Bytes::len);
    }
    super::check(status, backend.as_ref().map(|v| v.as_bytes()), len, spec)
}

/// One h2c request like `spec`'s on a fresh connection, answered correctly
/// or an error; bounded by 2 s. For readiness probes.
pub(crate) async fn probe(addr: std::net::SocketAddr, spec: &RequestSpec) -> Result<(), String> {
    let fut = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .map_err(|e| format!("h2c handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let body = spec
            .upload
            .map_or_else(Bytes::new, |n| Bytes::from(vec![b'x'; n]));
        let out = one(&mut send, request(spec, &addr.to_string(), &body), spec).await;
        conn.abort();
        out
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), fut)
        .await
        .unwrap_or_else(|_| Err("h2c probe timed out".into()))
}

/// One h2c connection with one closed-loop stream per slot.
pub(crate) async fn connection(job: Arc<Job>, slots: Vec<SlotRef>) {
    let w = job.window;
    tokio::time::sleep_until(w.load_start.into()).await;
    let fail = |e: String| {
        if let Some(s) = slots.first() {
            s.borrow_mut().res.error(true, || e);
        }
    };
    let tcp = match TcpStream::connect(job.addr).await {
        Ok(s) => s,
        Err(e) => return fail(format!("connect {}: {e}", job.addr)),
    };
    let _ = tcp.set_nodelay(true);
    let (send, conn) = match hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return fail(format!("h2c handshake with {}: {e}", job.addr)),
    };
    tokio::task::spawn_local(conn);
    let body = job
        .spec
        .upload
        .map_or_else(Bytes::new, |n| Bytes::from(vec![b'x'; n]));
    let authority = job.addr.to_string();
    let mut streams = Vec::new();
    for slot in slots {
        let mut send = send.clone();
        let (job, body, authority) = (job.clone(), body.clone(), authority.clone());
        streams.push(tokio::task::spawn_local(async move {
            loop {
                let t0 = Instant::now();
                if t0 >= w.end {
                    break;
                }
                slot.borrow_mut().in_flight = Some(t0);
                let out = one(&mut send, request(&job.spec, &authority, &body), &job.spec).await;
                let t1 = Instant::now();
                let counted = w.contains(t0, t1);
                let mut s = slot.borrow_mut();
                s.in_flight = None;
                match out {
                    Ok(()) => s.res.answered(counted, super::driver::micros(t1 - t0)),
                    Err(e) => {
                        s.res.error(counted, || e);
                        if send.is_closed() {
                            s.res.error(true, || "h2c connection closed".into());
                            break;
                        }
                    }
                }
            }
        }));
    }
    for s in streams {
        let _ = s.await;
    }
}
