//! `http.serversTransports.<name>`: how connections to servers are made.
//! The file schema and Traefik's defaults.
//!
//! TLS towards servers is not built: its keys are warned about.

use std::time::Duration;

use serde::Deserialize;

use super::super::decode::{Ctx, Register, Schema, Spec, Support, schema};
use super::super::error::Origin;
use super::super::node::Pos;

/// `serversTransports.<name>`: how connections to servers are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServersTransportConfig {
    /// Timeouts towards the servers.
    pub forwarding_timeouts: ForwardingTimeouts,
    /// Idle connections kept per host (default 200).
    pub max_idle_conns_per_host: u32,
    /// Never use HTTP/2 towards servers.
    pub disable_http2: bool,
    /// Where it is defined (default: empty file, line 0).
    pub origin: Origin,
}

impl Default for ServersTransportConfig {
    /// Traefik's defaults, used by services that name no transport.
    fn default() -> Self {
        ServersTransportConfig {
            forwarding_timeouts: ForwardingTimeouts::default(),
            max_idle_conns_per_host: 200,
            disable_http2: false,
            origin: Origin::default(),
        }
    }
}

/// `forwardingTimeouts`; zero means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingTimeouts {
    /// Connecting to a server (default 30s).
    pub dial_timeout: Duration,
    /// Waiting for response headers after the request is sent (default 0).
    pub response_header_timeout: Duration,
    /// An idle pooled connection is closed after this (default 90s).
    pub idle_conn_timeout: Duration,
    /// HTTP/2: ping a connection idle for this long (default 0: never).
    pub read_idle_timeout: Duration,
    /// HTTP/2: close if a ping gets no answer in this time (default 15s).
    pub ping_timeout: Duration,
}

impl Default for ForwardingTimeouts {
    fn default() -> Self {
        ForwardingTimeouts {
            dial_timeout: Duration::from_secs(30),
            response_header_timeout: Duration::ZERO,
            idle_conn_timeout: Duration::from_secs(90),
            read_idle_timeout: Duration::ZERO,
            ping_timeout: Duration::from_secs(15),
        }
    }
}

// === file schema ===

/// `serversTransports.<name>` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct TransportFile {
    forwarding_timeouts: ForwardingFile,
    max_idle_conns_per_host: Option<u32>,
    #[serde(rename = "disableHTTP2")]
    disable_http2: Option<bool>,
}

const NO_UPSTREAM_TLS: Support = Support::Warn("no TLS to servers yet");

impl Schema for TransportFile {
    const KEYS: Spec = &[
        ("serverName", NO_UPSTREAM_TLS),
        ("insecureSkipVerify", NO_UPSTREAM_TLS),
        ("rootCAs", NO_UPSTREAM_TLS),
        ("certificates", NO_UPSTREAM_TLS),
        ("peerCertURI", NO_UPSTREAM_TLS),
        ("spiffe", NO_UPSTREAM_TLS),
        ("cipherSuites", NO_UPSTREAM_TLS),
        ("minVersion", NO_UPSTREAM_TLS),
        ("maxVersion", NO_UPSTREAM_TLS),
    ];
}

/// `forwardingTimeouts` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ForwardingFile {
    dial_timeout: Option<Duration>,
    response_header_timeout: Option<Duration>,
    idle_conn_timeout: Option<Duration>,
    read_idle_timeout: Option<Duration>,
    ping_timeout: Option<Duration>,
}

pub(super) const SCHEMAS: &[Register] = &[schema::<TransportFile>];

/// The transport defined at `pos`, Traefik's defaults filled in.
pub(super) fn build(ctx: &Ctx, pos: Pos, file: TransportFile) -> ServersTransportConfig {
    let d = ServersTransportConfig::default();
    let (t, dt) = (file.forwarding_timeouts, d.forwarding_timeouts);
    ServersTransportConfig {
        forwarding_timeouts: ForwardingTimeouts {
            dial_timeout: t.dial_timeout.unwrap_or(dt.dial_timeout),
            response_header_timeout: t
                .response_header_timeout
                .unwrap_or(dt.response_header_timeout),
            idle_conn_timeout: t.idle_conn_timeout.unwrap_or(dt.idle_conn_timeout),
            read_idle_timeout: t.read_idle_timeout.unwrap_or(dt.read_idle_timeout),
            ping_timeout: t.ping_timeout.unwrap_or(dt.ping_timeout),
        },
        max_idle_conns_per_host: file
            .max_idle_conns_per_host
            .unwrap_or(d.max_idle_conns_per_host),
        disable_http2: file.disable_http2.unwrap_or(d.disable_http2),
        origin: ctx.origin(pos),
    }
}
