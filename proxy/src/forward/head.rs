//! Phase 1 of a request's journey: the request head checked (the host it
//! is for) and prepared the way Traefik's entrypoint prepares it before
//! routing: forwarding headers set (`X-Forwarded-*`, `X-Real-Ip`, after
//! dropping an untrusted client's) and the `Connection`-named headers
//! removed. Rules and middlewares see the result.
//!
//! The SNI check (a router whose TLS options differ from those the
//! connection's SNI chose answers [`Answer::Misdirected`]) runs once the
//! router is known, in `journey`, as Traefik runs it in the router's chain.
//!
//! Runs per request: header lookups and reference-counted values; the
//! host's port is cached per connection.

use http::header::{self, HeaderValue};
use http::{Request, Version};

use super::headers::{self, Forwarding};
use super::respond::Answer;
use crate::listener::ConnCtx;

/// What the head phase learnt, for the later phases.
#[derive(Debug)]
pub(super) struct Head {
    /// The host as the client addressed it: `Host` (HTTP/1) or
    /// `:authority` (HTTP/2), port included.
    pub(super) host: Option<HeaderValue>,
    /// The request asks for a protocol upgrade (WebSocket and others).
    pub(super) upgrade: bool,
}

impl Head {
    /// The host as routing reads it (`""` when absent or not text).
    pub(super) fn host_str(&self) -> &str {
        self.host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
    }
}

/// Checks the head of `req` and prepares its headers for routing.
pub(super) fn check<B>(ctx: &ConnCtx, req: &mut Request<B>) -> Result<Head, Answer> {
    let host: Option<HeaderValue> = match req.headers().get(header::HOST) {
        Some(h) => Some(h.clone()),
        None => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    if host.is_none() && req.version() == Version::HTTP_11 {
        return Err(Answer::MissingHost);
    }
    let upgrade = headers::is_upgrade_request(req.headers());
    let host_port = host.as_ref().and_then(|h| ctx.port_of(h));
    let h = req.headers_mut();
    headers::set_forwarded_headers(
        h,
        &Forwarding {
            client_ip: ctx.client_ip(),
            trusted: ctx.trusted(),
            tls: ctx.tls,
            websocket: upgrade,
            host: host.as_ref(),
            host_port: host_port.as_ref(),
            server_name: &ctx.shared.server_name,
        },
    );
    headers::remove_connection_headers(h, upgrade);
    Ok(Head { host, upgrade })
}
