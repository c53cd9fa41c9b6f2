//! Active health checks (`loadBalancer.healthCheck`), run off the worker
//! threads: one `health` thread with its own runtime checks every server
//! of every service that asks for it, and writes the verdict into the
//! server's [`ServerState`] (which the balancers read) and into
//! `proxy_service_server_up{service,url}` (Traefik's
//! `traefik_service_server_up`).
//!
//! A check goes the way the server's requests do (`https://` over TLS with
//! the service's servers transport, `h2c://` as HTTP/2 in clear) unless
//! `scheme` says otherwise; `mode: grpc` asks the gRPC health protocol
//! (`grpc.health.v1.Health/Check`) over HTTP/2 instead of `path`.
//!
//! As in Traefik: servers start up; a healthy server is checked every
//! `interval`, an unhealthy one every `unhealthyInterval`; a check is a
//! request for `path` that must answer within `timeout` with `status`, or
//! any 2xx/3xx when none is set; redirects are followed (at most 10)
//! unless `followRedirects: false`.
//!
//! Each applied configuration replaces the set of checks; the states live
//! in [`ServerStates`](super::ServerStates) by server id, so a reload keeps
//! what the checks found. Control plane only: nothing here runs on a
//! request.

use std::sync::Arc;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Uri};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::service::ServiceKind;
use super::state::ServerState;
use super::tls::UpstreamTls;
use crate::config::{CheckScheme, HealthCheckConfig};
use crate::observe::names;
use crate::snapshot::Snapshot;

/// Redirects followed before a check fails, as Go's HTTP client.
const MAX_REDIRECTS: usize = 10;

/// One server to check.
#[derive(Debug, Clone)]
pub struct Job {
    /// The service (`name@file`), for the metric and logs.
    pub service: Arc<str>,
    /// The server URL as configured (the metric's `url`).
    pub url: Arc<str>,
    /// Where the server listens (`host:port`).
    pub authority: Authority,
    /// What the checks found.
    pub state: Arc<ServerState>,
    /// How to check.
    pub check: Arc<HealthCheckConfig>,
    /// TLS with the server's transport, when checks go over TLS (the
    /// scheme is `https`, or unset for an `https://` server).
    pub tls: Option<UpstreamTls>,
    /// HTTP/2 in clear (`scheme: h2c`, or unset for an `h2c://` server;
    /// always for gRPC without TLS).
    pub h2c: bool,
}

/// Every server of `snap` whose service has a `healthCheck`.
pub fn jobs(snap: &Snapshot) -> Vec<Job> {
    let mut out = Vec::new();
    for svc in &snap.services {
        let ServiceKind::LoadBalancer(lb) = &svc.kind else {
            continue;
        };
        let Some(check) = &lb.health_check else {
            continue;
        };
        for (i, target) in lb.servers.iter().enumerate() {
            let tls = match check.scheme {
                CheckScheme::Server | CheckScheme::Https => target.tls.clone(),
                CheckScheme::Http | CheckScheme::H2c => None,
            };
            let h2c = tls.is_none()
                && (check.grpc
                    || check.scheme == CheckScheme::H2c
                    || (check.scheme == CheckScheme::Server && target.h2c));
            out.push(Job {
                service: Arc::clone(&svc.name),
                url: Arc::clone(&target.url),
                authority: target.authority.clone(),
                state: Arc::clone(lb.balancer.state_arc(i)),
                check: Arc::clone(check),
                tls,
                h2c,
            });
        }
    }
    out
}

/// The health thread: give it the checks of each applied configuration.
#[derive(Debug)]
pub struct HealthChecks {
    jobs: watch::Sender<Vec<Job>>,
    started: std::sync::Once,
}

impl Default for HealthChecks {
    fn default() -> Self {
        Self {
            jobs: watch::channel(Vec::new()).0,
            started: std::sync::Once::new(),
        }
    }
}

impl HealthChecks {
    /// Replaces the running checks with those of `snap`. The thread starts
    /// with the first configuration that has any check, and ends when
    /// `self` is dropped.
    pub fn apply(&self, snap: &Snapshot) {
        let jobs = jobs(snap);
        if jobs.is_empty() && self.jobs.borrow().is_empty() {
            return;
        }
        for j in &jobs {
            metrics::gauge!(names::SERVICE_SERVER_UP, "service" => j.service.to_string(), "url" => j.url.to_string())
                .set(if j.state.is_up() { 1.0 } else { 0.0 });
        }
        self.jobs.send_replace(jobs);
        self.started.call_once(|| {
            let rx = self.jobs.subscribe();
            let spawned = std::thread::Builder::new()
                .name("health".into())
                .spawn(move || run(rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the health check thread; servers are not checked");
            }
        });
    }
}

fn run(mut rx: watch::Receiver<Vec<Job>>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the health check runtime; servers are not checked");
            return;
        }
    };
    rt.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tasks.abort_all();
            for job in rx.borrow_and_update().iter().cloned() {
                tasks.spawn(check_loop(job));
            }
            // The sender is dropped with the control plane: stop.
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}

async fn check_loop(job: Job) {
    loop {
        let wait = if job.state.is_up() {
            job.check.interval
        } else {
            job.check.unhealthy_interval
        };
        tokio::time::sleep(wait).await;
        let verdict = match tokio::time::timeout(job.check.timeout, check_once(&job)).await {
            Ok(v) => v,
            Err(_) => Err(format!("no answer within {:?}", job.check.timeout)),
        };
        let up = verdict.is_ok();
        if job.state.set_up(up) {
            match &verdict {
                Ok(()) => {
                    tracing::info!(service = %job.service, url = %job.url, "server is up again")
                }
                Err(e) => {
                    tracing::warn!(service = %job.service, url = %job.url, reason = %e, "health check failed: server taken out of rotation")
                }
            }
        }
        metrics::gauge!(names::SERVICE_SERVER_UP, "service" => job.service.to_string(), "url" => job.url.to_string())
            .set(if up { 1.0 } else { 0.0 });
    }
}

/// One check, redirects included.
async fn check_once(job: &Job) -> Result<(), String> {
    let c = &job.check;
    let mut authority = match c.port {
        Some(port) => Authority::try_from(format!("{}:{port}", job.authority.host()))
            .map_err(|e| format!("invalid check address: {e}"))?,
        None => job.authority.clone(),
    };
    if c.grpc {
        return grpc_check(job, &authority).await;
    }
    let mut path = PathAndQuery::try_from(c.path.as_str()).map_err(|e| e.to_string())?;
    let mut method = c.method.clone();
    for _ in 0..=MAX_REDIRECTS {
        let status = request(job, &authority, &path, &method).await?;
        let (status, location) = status;
        if c.follow_redirects
            && let Some(loc) = location.filter(|_| is_redirect(status))
        {
            let next: Uri = loc
                .parse()
                .map_err(|_| format!("invalid redirect to {loc:?}"))?;
            if let Some(a) = next.authority() {
                let same = if job.tls.is_some() { "https" } else { "http" };
                if next.scheme_str().is_some_and(|s| s != same) {
                    return Err(format!("redirect to {loc:?}: only {same} is followed"));
                }
                authority = a.clone();
            }
            path = next
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            if matches!(status.as_u16(), 301..=303) && method != Method::HEAD {
                method = Method::GET;
            }
            continue;
        }
        return match c.status {
            Some(want) if status.as_u16() != want => Err(format!(
                "received status {} (expected {want})",
                status.as_u16()
            )),
            None if !(200..400).contains(&status.as_u16()) => {
                Err(format!("received status {}", status.as_u16()))
            }
            _ => Ok(()),
        };
    }
    Err(format!("stopped after {MAX_REDIRECTS} redirects"))
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// A check connection: HTTP/1.1 or HTTP/2, over TLS or not.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// A fresh connection to `authority` for `job`'s check, TLS and HTTP
/// version as the job says (over TLS, as ALPN chose); whether it is TLS.
async fn connect(job: &Job, authority: &Authority) -> Result<Sender, String> {
    let stream = TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    if let Some(tls) = &job.tls {
        let stream = tls
            .connector
            .connect(tls.server_name.clone(), stream)
            .await
            .map_err(|e| format!("TLS handshake with {authority}: {e}"))?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        return handshake(TokioIo::new(stream), h2 || job.check.grpc).await;
    }
    handshake(TokioIo::new(stream), job.h2c).await
}

/// The HTTP/1.1 or HTTP/2 handshake over `io`.
async fn handshake<IO>(io: IO, h2: bool) -> Result<Sender, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if h2 {
        let executor = hyper_util::rt::TokioExecutor::new();
        let (tx, conn) = hyper::client::conn::http2::handshake(executor, io)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Sender::H2(tx))
    } else {
        let (tx, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Sender::H1(tx))
    }
}

/// Sends one check request on a fresh connection: its status and
/// `Location`.
async fn request(
    job: &Job,
    authority: &Authority,
    path: &PathAndQuery,
    method: &Method,
) -> Result<(StatusCode, Option<String>), String> {
    let host = job.check.hostname.as_deref().unwrap_or(authority.as_str());
    let mut req = Request::builder().method(method.clone());
    for (k, v) in &job.check.headers {
        req = req.header(k, v);
    }
    let resp = match connect(job, authority).await? {
        Sender::H2(mut tx) => {
            let scheme = if job.tls.is_some() { "https" } else { "http" };
            let req = req
                .uri(format!("{scheme}://{host}{path}"))
                .body(Full::default())
                .map_err(|e| e.to_string())?;
            tx.send_request(req).await
        }
        Sender::H1(mut tx) => {
            let req = req
                .uri(path.as_str())
                .header(header::HOST, host)
                .header(header::CONNECTION, "close")
                .body(Full::default())
                .map_err(|e| e.to_string())?;
            tx.send_request(req).await
        }
    }
    .map_err(|e| format!("request failed: {e}"))?;
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((resp.status(), location))
}

/// The gRPC health protocol (`grpc.health.v1.Health/Check`, the whole
/// server: an empty service name), over HTTP/2: healthy when the answer
/// is `SERVING`, as Traefik's check.
async fn grpc_check(job: &Job, authority: &Authority) -> Result<(), String> {
    let Sender::H2(mut tx) = connect(job, authority).await? else {
        return Err("gRPC needs HTTP/2, and the server's ALPN chose HTTP/1.1".into());
    };
    let scheme = if job.tls.is_some() { "https" } else { "http" };
    // A gRPC message: not compressed, length 0 (an empty request).
    let req = Request::post(format!(
        "{scheme}://{authority}/grpc.health.v1.Health/Check"
    ))
    .header(header::CONTENT_TYPE, "application/grpc")
    .header(header::TE, "trailers")
    .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
    .map_err(|e| e.to_string())?;
    let resp = tx
        .send_request(req)
        .await
        .map_err(|e| format!("gRPC health check failed: {e}"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!(
            "gRPC health check answered HTTP status {}",
            resp.status().as_u16()
        ));
    }
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("gRPC health check failed: {e}"))?;
    // The status is in the trailers, or in the head of a trailers-only
    // answer.
    let grpc_status = body
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| parts.headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    match grpc_status {
        Some(0) => {}
        // UNIMPLEMENTED
        Some(12) => return Err("gRPC server does not implement the health protocol".into()),
        Some(code) => return Err(format!("gRPC health check failed: status code {code}")),
        None => return Err("gRPC health check answered no grpc-status".into()),
    }
    match serving_status(&body.to_bytes()) {
        Some(1) => Ok(()),
        Some(s) => Err(format!("received gRPC status code: {}", serving_name(s))),
        None => Err("malformed gRPC health check answer".into()),
    }
}

/// The `status` of a `HealthCheckResponse` in one gRPC message: field 1,
/// a varint (0 when absent, as protobuf defaults it).
fn serving_status(msg: &[u8]) -> Option<u64> {
    let (head, rest) = msg.split_at_checked(5)?;
    if head[0] != 0 {
        // A compressed answer to a request that offered no compression.
        return None;
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut m = rest.get(..len)?;
    let mut status = 0;
    while !m.is_empty() {
        let (key, n) = varint(m)?;
        m = &m[n..];
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let (v, n) = varint(m)?;
                m = &m[n..];
                if field == 1 {
                    status = v;
                }
            }
            1 => m = m.get(8..)?,
            2 => {
                let (l, n) = varint(m)?;
                m = m.get(n + usize::try_from(l).ok()?..)?;
            }
            5 => m = m.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

/// A protobuf varint at the start of `b`: its value and length.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The name of a `ServingStatus`, as Traefik's message shows it.
fn serving_name(s: u64) -> String {
    match s {
        0 => "UNKNOWN".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_status_reads_field_one_of_a_grpc_message() {
        // SERVING, NOT_SERVING, the default (an empty message), and a
        // field Traefik's answer does not have before it.
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(
            serving_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]),
            Some(1)
        );
        // Truncated, compressed, a bad varint.
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08]), None);
        assert_eq!(serving_status(&[1, 0, 0, 0, 2, 0x08, 1]), None);
        assert_eq!(serving_status(&[0, 0, 0]), None);
    }
}
