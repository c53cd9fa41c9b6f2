//! Active health checks (`loadBalancer.healthCheck`), run off the worker
//! threads: one `health` thread with its own runtime checks every server
//! of every service that asks for it, and writes the verdict into the
//! server's [`ServerState`] (which the balancers read) and into
//! `proxy_service_server_up{service,url}` (Traefik's
//! `traefik_service_server_up`).
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

use http::uri::{Authority, PathAndQuery, Uri};
use http::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::service::ServiceKind;
use super::state::ServerState;
use crate::config::HealthCheckConfig;
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
            out.push(Job {
                service: Arc::clone(&svc.name),
                url: Arc::clone(&target.url),
                authority: target.authority.clone(),
                state: Arc::clone(lb.balancer.state_arc(i)),
                check: Arc::clone(check),
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
                if next.scheme_str().is_some_and(|s| s != "http") {
                    return Err(format!("redirect to {loc:?}: only http is followed"));
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

/// Sends one check request on a fresh connection: its status and
/// `Location`.
async fn request(
    job: &Job,
    authority: &Authority,
    path: &PathAndQuery,
    method: &Method,
) -> Result<(StatusCode, Option<String>), String> {
    let stream = TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stream);
    let host = job.check.hostname.as_deref().unwrap_or(authority.as_str());
    let mut req = Request::builder().method(method.clone());
    for (k, v) in &job.check.headers {
        req = req.header(k, v);
    }
    let resp = if job.check.h2c {
        let uri = format!("http://{host}{path}");
        let req = req
            .uri(uri)
            .body(String::new())
            .map_err(|e| e.to_string())?;
        let (mut tx, conn) = hyper::client::conn::http2::handshake::<_, _, String>(
            hyper_util::rt::TokioExecutor::new(),
            io,
        )
        .await
        .map_err(|e| format!("h2c handshake: {e}"))?;
        tokio::spawn(conn);
        tx.send_request(req).await
    } else {
        let req = req
            .uri(path.as_str())
            .header(header::HOST, host)
            .header(header::CONNECTION, "close")
            .body(String::new())
            .map_err(|e| e.to_string())?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake::<_, String>(io)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        tx.send_request(req).await
    }
    .map_err(|e| format!("request failed: {e}"))?;
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((resp.status(), location))
}
