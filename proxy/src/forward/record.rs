//! Phase 5, observe: what a request looked like when it arrived and what
//! the proxy did with it, recorded in the request metrics and the access
//! log when they are on.
//!
//! Runs per request when metrics or the access log are configured (never
//! otherwise: [`Record::begin`] is not called); the record is finished
//! when the response body has been sent ([`Finish::done`]), so durations
//! run to the last byte and streamed bodies are counted. Metrics use this worker's
//! cached handles (no lock, no allocation on a cache hit); an access-log
//! entry copies five small request fields (the path, `Host`,
//! `X-Forwarded-For`, `Referer`, `User-Agent`) and hands the entry to the
//! writer thread without waiting.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, Method, Request, Response};

use super::ProxyBody;
use crate::listener::ConnCtx;
use crate::observe::{AccessLogEntry, Protocol, RequestLabels, WorkerMetrics, grpc_status_code};
use crate::snapshot::SnapshotRef;

thread_local! {
    /// This worker's request-metric handles.
    static METRICS: RefCell<Option<WorkerMetrics>> = const { RefCell::new(None) };
}

/// What the proxy did with one request: filled in by the phases as they
/// run.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// The snapshot the request was routed with (its names label the
    /// records).
    pub(super) snap: Option<SnapshotRef>,
    /// Index of the router that matched.
    pub(super) router: Option<u32>,
    /// Under a parent router (multi-layer routing), the routers passed,
    /// as Traefik's access log names them (`parent@file -> child@file`).
    pub(super) layers: Option<Arc<str>>,
    /// Index of its service.
    pub(super) service: Option<u32>,
    /// The URL of the server the request was sent to.
    pub(super) server: Option<Arc<str>>,
    /// The status the server answered.
    pub(super) origin_status: Option<u16>,
}

/// What the records need from the request, captured before the request
/// is handed to the upstream.
#[derive(Debug)]
pub(super) struct Record {
    method: Method,
    protocol: Protocol,
    request_size: u64,
    log: Option<AccessLogEntry>,
}

impl Record {
    /// Captures what `req` looks like on arrival.
    pub(super) fn begin<B>(ctx: &ConnCtx, req: &Request<B>) -> Record {
        let method = req.method().clone();
        let request_size = body_len(req.headers());
        let log = ctx.shared.access_log.as_ref().map(|_| {
            let mut e = AccessLogEntry::new(
                SystemTime::now(),
                method.clone(),
                Bytes::copy_from_slice(
                    req.uri()
                        .path_and_query()
                        .map_or(req.uri().path(), |p| p.as_str())
                        .as_bytes(),
                ),
                req.version(),
            );
            let h = req.headers();
            let copy = |n: HeaderName| h.get(n).map(|v| Bytes::copy_from_slice(v.as_bytes()));
            e.client_addr = Some(ctx.peer);
            e.forwarded_for = copy(HeaderName::from_static("x-forwarded-for"));
            e.host = copy(header::HOST).or_else(|| {
                req.uri()
                    .authority()
                    .map(|a| Bytes::copy_from_slice(a.as_str().as_bytes()))
            });
            e.tls = ctx.tls;
            e.referer = copy(header::REFERER);
            e.user_agent = copy(header::USER_AGENT);
            e.request_size = request_size;
            e
        });
        Record {
            protocol: Protocol::detect(req.headers()),
            method,
            request_size,
            log,
        }
    }

    /// The response head is ready (`resp` is what the client gets): what
    /// the record needs of it, kept until its body has been sent.
    pub(super) fn responded(
        self,
        resp: &Response<ProxyBody>,
        outcome: Outcome,
        started: Instant,
    ) -> Finish {
        let code = if self.protocol.is_grpc() {
            grpc_status_code(resp.headers())
        } else {
            resp.status().as_u16()
        };
        Finish {
            record: self,
            outcome,
            started,
            status: resp.status().as_u16(),
            code,
        }
    }
}

/// A request whose response is being sent: recorded by
/// [`Finish::done`] once its body has ended (or the client went away).
#[derive(Debug)]
pub struct Finish {
    record: Record,
    outcome: Outcome,
    started: Instant,
    status: u16,
    /// The status the metrics record (gRPC's when the request is gRPC).
    code: u16,
}

impl Finish {
    /// Records the request: its duration to now (the last byte of the
    /// response body), and the `body_bytes` sent.
    pub fn done(self, ctx: &ConnCtx, body_bytes: u64) {
        let Finish {
            record,
            outcome,
            started,
            status,
            code,
        } = self;
        let shared = &ctx.shared;
        let duration = started.elapsed();
        let names = outcome.snap.as_ref().map(|snap| {
            let router = outcome.router.map(|r| &snap.routers[r as usize].name);
            let service = outcome.service.map(|s| &snap.services[s as usize].name);
            (snap.generation, router, service)
        });

        if let Some(handle) = &shared.metrics {
            let (generation, router, service) = names.unwrap_or((0, None, None));
            METRICS.with(|m| {
                let mut m = m.borrow_mut();
                let m = m.get_or_insert_with(|| WorkerMetrics::new(handle, shared.metric_flags));
                m.record(
                    RequestLabels {
                        generation,
                        entrypoint: &ctx.entrypoint.name,
                        router,
                        service,
                    },
                    code,
                    &record.method,
                    record.protocol,
                    duration,
                    record.request_size,
                    body_bytes,
                );
            });
        }
        if let (Some(log), Some(mut e)) = (&shared.access_log, record.log) {
            e.duration = duration;
            e.status = status;
            e.response_size = body_bytes;
            e.origin_status = outcome.origin_status;
            if let Some((_, router, service)) = names {
                e.router = outcome.layers.or_else(|| router.cloned());
                e.service = service.cloned();
            }
            e.service_url = outcome.server;
            log.log(e);
        }
    }
}

/// The request body length announced by `Content-Length` (0 otherwise).
fn body_len(h: &HeaderMap) -> u64 {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
