//! `http.serversTransports.<name>`: how connections to servers are made.
//! The file schema and Traefik's defaults, with the TLS of `https://`
//! servers (server name, verification, client certificates, versions and
//! suites, read through [`crate::tls::names`] as for `tls.options`).

use std::time::Duration;

use rustls::CipherSuite;
use serde::Deserialize;

use crate::tls::names::TlsVersion;

use super::super::decode::{At, Ctx, Register, Schema, Spec, Support, schema};
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
    /// TLS towards `https://` servers.
    pub tls: UpstreamTlsConfig,
    /// Where it is defined (default: empty file, line 0).
    pub origin: Origin,
}

/// The TLS settings of a servers transport.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamTlsConfig {
    /// `serverName`: the SNI and the name verified; default the URL's host.
    pub server_name: Option<String>,
    /// `insecureSkipVerify`: accept any server certificate.
    pub insecure_skip_verify: bool,
    /// `rootCAs`: trusted roots; empty = the system's.
    pub root_cas: Vec<super::PemSource>,
    /// `certificates`: the client certificates; each handshake presents
    /// the first the server accepts, as Go chooses.
    pub certificates: Vec<super::CertificateConfig>,
    /// `cipherSuites`: TLS 1.2 suites allowed; `None` = all.
    pub cipher_suites: Option<Vec<CipherSuite>>,
    /// `minVersion` (default TLS 1.2).
    pub min_version: Option<TlsVersion>,
    /// `maxVersion` (default TLS 1.3).
    pub max_version: Option<TlsVersion>,
    /// `peerCertURI`: a URI SAN the server certificate must carry.
    pub peer_cert_uri: Option<String>,
}

impl Default for ServersTransportConfig {
    /// Traefik's defaults, used by services that name no transport.
    fn default() -> Self {
        ServersTransportConfig {
            forwarding_timeouts: ForwardingTimeouts::default(),
            max_idle_conns_per_host: 200,
            disable_http2: false,
            tls: UpstreamTlsConfig::default(),
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
    server_name: Option<At<String>>,
    insecure_skip_verify: Option<bool>,
    #[serde(rename = "rootCAs")]
    root_cas: Option<At<Vec<At<String>>>>,
    certificates: Option<At<Vec<At<ClientCertFile>>>>,
    cipher_suites: Option<At<Vec<At<String>>>>,
    min_version: Option<At<String>>,
    max_version: Option<At<String>>,
    #[serde(rename = "peerCertURI")]
    peer_cert_uri: Option<String>,
}

impl Schema for TransportFile {
    const KEYS: Spec = &[("spiffe", Support::Error("no SPIFFE workload API"))];
}

/// `certificates[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ClientCertFile {
    cert_file: Option<At<String>>,
    key_file: Option<At<String>>,
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

/// The TLS part of a transport; names Go refuses are errors, what rustls
/// cannot do is warned about, as for `tls.options`.
fn tls(ctx: &mut Ctx, path: &str, file: &mut TransportFile) -> UpstreamTlsConfig {
    let mut t = UpstreamTlsConfig {
        server_name: file
            .server_name
            .take()
            .filter(|s| s.ok && !s.value.is_empty())
            .and_then(|s| {
                match rustls::pki_types::ServerName::try_from(
                    s.value.trim_start_matches('[').trim_end_matches(']'),
                ) {
                    Ok(_) => Some(s.value),
                    Err(e) => {
                        ctx.error(
                            &s.path,
                            s.pos,
                            format!("invalid serverName {:?}: {e}", s.value),
                        );
                        None
                    }
                }
            }),
        insecure_skip_verify: file.insecure_skip_verify.unwrap_or(false),
        peer_cert_uri: file.peer_cert_uri.take().filter(|s| !s.is_empty()),
        ..UpstreamTlsConfig::default()
    };
    if let Some(list) = file.root_cas.take() {
        t.root_cas = list
            .strings()
            .into_iter()
            .map(|(v, _)| super::PemSource::new(&v))
            .collect();
    }
    if let Some(list) = file.certificates.take() {
        let lpath = list.path.clone();
        for (i, item) in list.value.into_iter().enumerate() {
            let ipath = format!("{lpath}[{i}]");
            match (item.value.cert_file, item.value.key_file) {
                (Some(c), Some(k)) if c.ok && k.ok => {
                    t.certificates.push(super::CertificateConfig {
                        cert: super::PemSource::new(&c.value),
                        key: super::PemSource::new(&k.value),
                        path: ipath,
                        origin: ctx.origin(item.pos),
                    })
                }
                _ => ctx.error(
                    &ipath,
                    item.pos,
                    "client certificate needs certFile and keyFile",
                ),
            }
        }
    }
    let mut version = |f: Option<At<String>>| {
        let f = f.filter(|f| f.ok)?;
        match TlsVersion::from_go(f.value.trim()) {
            Some(v) if v.in_rustls() => Some(v),
            Some(_) => {
                ctx.warn(&f.path, f.pos, "TLS 1.0 and 1.1 are not available (rustls speaks TLS 1.2 and 1.3): TLS 1.2 is used");
                Some(TlsVersion::Tls12)
            }
            None => {
                ctx.warn(
                    &f.path,
                    f.pos,
                    format!(
                        "unknown TLS version {:?}: ignored, as Traefik ignores it",
                        f.value
                    ),
                );
                None
            }
        }
    };
    t.min_version = version(file.min_version.take());
    t.max_version = version(file.max_version.take());
    if let Some(list) = file.cipher_suites.take() {
        let (suites, _) = super::tls::cipher_suites(ctx, list);
        t.cipher_suites = Some(suites);
    }
    let _ = path;
    t
}

/// The transport defined at `pos` (key path `path`), Traefik's defaults
/// filled in.
pub(super) fn build(
    ctx: &mut Ctx,
    path: &str,
    pos: Pos,
    mut file: TransportFile,
) -> ServersTransportConfig {
    let tls = tls(ctx, path, &mut file);
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
        tls,
        origin: ctx.origin(pos),
    }
}
