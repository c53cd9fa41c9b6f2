//! `entryPoints.<name>`: where the proxy listens, with its connection
//! timeouts and which forwarded headers it trusts. The file schema, and
//! the checks that need more than a type (an address that resolves, IP
//! ranges).
//!
//! Parsing only: the listener binds the resolved addresses.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::EncodedCharacters;
use crate::ipnet::IpNet;

use super::super::address::parse_entrypoint_address;
use super::super::decode::{At, Ctx, Register, Schema, Spec, Support, Switch, schema};
use super::super::error::Origin;
use super::super::node::Pos;

/// One listening entrypoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPointConfig {
    /// Its name (case-sensitive), referenced by routers.
    pub name: String,
    /// The address as written, e.g. `:80`.
    pub address: String,
    /// The resolved socket address (`:80` is `0.0.0.0:80`).
    pub addr: SocketAddr,
    /// `asDefault`: routers without `entryPoints` attach here.
    pub as_default: bool,
    /// Connection timeouts and lifecycle.
    pub transport: EntryPointTransport,
    /// Which `X-Forwarded-*` headers are trusted.
    pub forwarded_headers: ForwardedHeadersConfig,
    /// `http.tls`: every router of this entrypoint without a `tls` section
    /// of its own serves TLS with these settings.
    pub http_tls: Option<EntryPointTls>,
    /// `http.redirections.entryPoint`: plain requests are redirected.
    pub redirect: Option<Redirection>,
    /// `http.middlewares`: run before the own middlewares of every router
    /// of this entrypoint (Traefik's entrypoint model).
    pub http_middlewares: Vec<EntryPointMiddleware>,
    /// HTTP/2 server settings.
    pub http2: Http2Config,
    /// `proxyProtocol`: read a PROXY protocol header (v1 or v2) from each
    /// connection; `None` when not set.
    pub proxy_protocol: Option<ProxyProtocolConfig>,
    /// `http.underscoreHeadersStrategy`: what happens to request headers
    /// whose name has an underscore.
    pub underscore_headers: UnderscoreHeaders,
    /// `http.encodeQuerySemicolons`: a `;` in the query becomes `%3B`
    /// (false, Traefik's default: it becomes `&`, Go's
    /// `AllowQuerySemicolons`).
    pub encode_query_semicolons: bool,
    /// `http.sanitizePath` (default true): dot segments and repeated
    /// slashes are removed from the path before routing and forwarding.
    pub sanitize_path: bool,
    /// `http.encodedCharacters`: the percent-encoded bytes its routers
    /// refuse in a path (400), of `/`, `\`, NUL, `;`, `%`, `?`, `#`; every
    /// one allowed unless set to false. `Some` (even empty) makes a model:
    /// routers on several entrypoints are split, as Traefik splits them.
    pub encoded_characters: Option<Vec<u8>>,
    /// `http.maxHeaderBytes`: the largest request head accepted, in bytes
    /// (Go's `MaxHeaderBytes`, 1 MiB by default); larger is 431.
    pub max_header_bytes: usize,
    /// Where it was defined (line 0 for an implicit entrypoint).
    pub origin: Origin,
}

impl EntryPointConfig {
    /// An entrypoint Traefik creates itself, on every interface at `port`.
    pub(super) fn implicit(name: &str, port: u16, file: &Path) -> Self {
        EntryPointConfig {
            name: name.to_owned(),
            address: format!(":{port}"),
            addr: SocketAddr::from(([0, 0, 0, 0], port)),
            as_default: false,
            transport: EntryPointTransport::default(),
            forwarded_headers: ForwardedHeadersConfig::default(),
            http_tls: None,
            redirect: None,
            http_middlewares: Vec::new(),
            http2: Http2Config::default(),
            proxy_protocol: None,
            underscore_headers: UnderscoreHeaders::Keep,
            encode_query_semicolons: false,
            sanitize_path: true,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            encoded_characters: None,
            origin: Origin {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
            },
        }
    }
}

/// One name of `entryPoints.<name>.http.middlewares`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointMiddleware {
    /// The middleware's name, `@file` removed (another provider's suffix
    /// kept: no such middleware exists here).
    pub name: String,
    /// Its key, `entryPoints.<name>.http.middlewares[i]`.
    pub key: String,
    /// Where it is written.
    pub origin: Origin,
}

/// `entryPoints.<name>.http.tls`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryPointTls {
    /// The TLS options of its routers (`@file` removed); `None` = default.
    pub options: Option<String>,
}

/// `entryPoints.<name>.http.redirections.entryPoint`: Traefik's generated
/// router (`HostRegexp(`^.+$`)` at `priority`) redirecting every request
/// to `scheme` on the port of entrypoint `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirection {
    /// The target entrypoint's name, or `:port`.
    pub to: String,
    /// The port redirected to (resolved from `to`).
    pub port: u16,
    /// `scheme` (default `https`).
    pub scheme: String,
    /// `permanent` (default true): 301/308 instead of 302/307.
    pub permanent: bool,
    /// `priority` (default: Go's `math.MaxInt - 1`).
    pub priority: i64,
}

/// Go's `http.DefaultMaxHeaderBytes`, Traefik's default `maxHeaderBytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 1 << 20;
/// The largest `maxHeaderBytes` accepted (HTTP/2 carries the limit in 32
/// bits; a request head this large is a mistake).
const MAX_HEADER_BYTES_LIMIT: usize = 1 << 30;

/// `entryPoints.<name>.http2`, with Traefik 3.7's defaults (Go's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Config {
    /// Streams one client connection may have open at once.
    pub max_concurrent_streams: u32,
    /// HPACK table size for the headers clients send (decoding side).
    pub max_decoder_header_table_size: u32,
    /// HPACK table size for the headers sent to clients (encoding side).
    pub max_encoder_header_table_size: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_concurrent_streams: 250,
            max_decoder_header_table_size: 4096,
            max_encoder_header_table_size: 4096,
        }
    }
}

/// `entryPoints.<name>.transport`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryPointTransport {
    /// Read/write/idle timeouts.
    pub responding_timeouts: RespondingTimeouts,
    /// Graceful shutdown timings.
    pub life_cycle: LifeCycle,
    /// Close a keep-alive connection after this many requests; 0 = never.
    pub keep_alive_max_requests: u64,
    /// Close a keep-alive connection after this long; 0 = never.
    pub keep_alive_max_time: Duration,
}

/// `transport.respondingTimeouts`; zero means no timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespondingTimeouts {
    /// Reading the whole request, headers and body (default 60s).
    pub read_timeout: Duration,
    /// Writing the response (default 0: none).
    pub write_timeout: Duration,
    /// Keep-alive idle time between requests (default 180s).
    pub idle_timeout: Duration,
}

impl Default for RespondingTimeouts {
    fn default() -> Self {
        RespondingTimeouts {
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::from_secs(180),
        }
    }
}

/// `transport.lifeCycle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifeCycle {
    /// Keep accepting requests this long after a stop signal (default 0).
    pub request_accept_grace_timeout: Duration,
    /// Time given to in-flight requests to finish (default 10s).
    pub grace_time_out: Duration,
}

impl Default for LifeCycle {
    fn default() -> Self {
        LifeCycle {
            request_accept_grace_timeout: Duration::ZERO,
            grace_time_out: Duration::from_secs(10),
        }
    }
}

/// `entryPoints.<name>.proxyProtocol`: whose PROXY headers are used (the
/// others' are read and dropped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyProtocolConfig {
    /// Peers whose header gives the client address.
    pub trusted_ips: Vec<IpNet>,
    /// Use every peer's header.
    pub insecure: bool,
}

/// `entryPoints.<name>.forwardedHeaders`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardedHeadersConfig {
    /// Clients whose `X-Forwarded-*` headers are kept.
    pub trusted_ips: Vec<IpNet>,
    /// Trust every client's `X-Forwarded-*` headers.
    pub insecure: bool,
    /// `connection`: headers a request's `Connection` header names that
    /// rules and middlewares still see (as written; any case matches);
    /// they are removed only when the request is sent upstream, as every
    /// `Connection`-named one.
    pub connection: Vec<String>,
    /// `notAppendXForwardedFor`: the client's address is not appended to
    /// `X-Forwarded-For` (a trusted client's list goes on as sent, an
    /// untrusted client's request gets none).
    pub not_append_x_forwarded_for: bool,
}

/// `entryPoints.<name>.http.underscoreHeadersStrategy` (Traefik 3.7):
/// request headers whose name has an `_` are kept (the default), deleted
/// before anything reads the request, or make the request a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnderscoreHeaders {
    /// `keep`: forwarded as they are.
    #[default]
    Keep,
    /// `delete`: removed before routing.
    Delete,
    /// `reject`: the request is answered 400 `Bad Request`.
    Reject,
}

// === file schema ===

/// `entryPoints.<name>` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EntryPointFile {
    address: Option<At<String>>,
    as_default: Option<bool>,
    transport: TransportFile,
    forwarded_headers: ForwardedFile,
    proxy_protocol: Option<At<ProxyProtocolFile>>,
    http2: Http2File,
    /// `tls` and `redirections`; its other keys are refused or warned about.
    #[serde(rename = "http")]
    http: EntryPointHttpFile,
}

impl Schema for EntryPointFile {
    const KEYS: Spec = &[
        ("http3", Support::Warn("no HTTP/3")),
        ("udp", Support::Warn("no UDP")),
        ("observability", Support::Warn("")),
        ("reusePort", Support::Warn("")),
        ("allowACMEByPass", Support::Warn("no ACME")),
    ];
}

/// `entryPoints.<name>.http`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntryPointHttpFile {
    tls: Option<Switch<EntryPointTlsFile>>,
    redirections: RedirectionsFile,
    middlewares: Option<At<Vec<At<String>>>>,
    #[serde(rename = "underscoreHeadersStrategy")]
    underscore_headers_strategy: Option<At<String>>,
    #[serde(rename = "encodeQuerySemicolons")]
    encode_query_semicolons: Option<bool>,
    #[serde(rename = "sanitizePath")]
    sanitize_path: Option<bool>,
    #[serde(rename = "maxHeaderBytes")]
    max_header_bytes: Option<At<i64>>,
    #[serde(rename = "encodedCharacters")]
    encoded_characters: Option<EncodedCharactersFile>,
}

/// `http.encodedCharacters` as written: each byte allowed unless false.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EncodedCharactersFile {
    allow_encoded_slash: Option<bool>,
    allow_encoded_back_slash: Option<bool>,
    allow_encoded_null_character: Option<bool>,
    allow_encoded_semicolon: Option<bool>,
    allow_encoded_percent: Option<bool>,
    allow_encoded_question_mark: Option<bool>,
    allow_encoded_hash: Option<bool>,
}

impl EncodedCharactersFile {
    /// The bytes refused.
    fn denied(&self) -> Vec<u8> {
        let allowed = |a: Option<bool>| a.unwrap_or(true);
        EncodedCharacters::denying([
            allowed(self.allow_encoded_slash),
            allowed(self.allow_encoded_back_slash),
            allowed(self.allow_encoded_null_character),
            allowed(self.allow_encoded_semicolon),
            allowed(self.allow_encoded_percent),
            allowed(self.allow_encoded_question_mark),
            allowed(self.allow_encoded_hash),
        ])
    }
}

/// `http.tls` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntryPointTlsFile {
    options: Option<At<String>>,
}

impl Schema for EntryPointTlsFile {
    const KEYS: Spec = &[
        (
            "certResolver",
            Support::Error(
                "no ACME certificate resolver: serve a certificate from tls.certificates",
            ),
        ),
        (
            "domains",
            Support::Warn("only a certResolver uses it; certificates come from tls.certificates"),
        ),
    ];
}

/// `http.redirections` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RedirectionsFile {
    entry_point: Option<At<RedirectFile>>,
}

/// `http.redirections.entryPoint` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RedirectFile {
    to: Option<At<String>>,
    scheme: Option<At<String>>,
    permanent: Option<bool>,
    priority: Option<i64>,
}

impl Schema for EntryPointHttpFile {
    const KEYS: Spec = &[];
}

/// `http2` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Http2File {
    max_concurrent_streams: Option<At<i64>>,
    max_decoder_header_table_size: Option<At<i64>>,
    max_encoder_header_table_size: Option<At<i64>>,
}

/// `transport` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TransportFile {
    responding_timeouts: RespondingFile,
    life_cycle: LifeCycleFile,
    keep_alive_max_requests: Option<u64>,
    keep_alive_max_time: Option<Duration>,
}

/// `transport.respondingTimeouts` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RespondingFile {
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
}

/// `transport.lifeCycle` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LifeCycleFile {
    request_accept_grace_timeout: Option<Duration>,
    #[serde(rename = "graceTimeOut")]
    grace_time_out: Option<Duration>,
}

/// `forwardedHeaders` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ForwardedFile {
    #[serde(rename = "trustedIPs")]
    trusted_ips: Option<At<Vec<At<String>>>>,
    insecure: Option<bool>,
    connection: Option<At<Vec<At<String>>>>,
    #[serde(rename = "notAppendXForwardedFor")]
    not_append_x_forwarded_for: Option<bool>,
}

/// `proxyProtocol` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProxyProtocolFile {
    #[serde(rename = "trustedIPs")]
    trusted_ips: Option<At<Vec<At<String>>>>,
    insecure: Option<bool>,
}

pub(super) const SCHEMAS: &[Register] = &[
    schema::<EntryPointFile>,
    schema::<EntryPointHttpFile>,
    schema::<EntryPointTlsFile>,
];

// === checks ===

/// Checks entrypoint `name` (at `path`, named at `pos`). `None` when it
/// has no usable address; its errors are in `ctx`.
pub(super) fn check(
    ctx: &mut Ctx,
    name: &str,
    path: &str,
    pos: Pos,
    file: EntryPointFile,
) -> Option<EntryPointConfig> {
    let mut ep = EntryPointConfig::implicit(name, 80, &ctx.file.clone());
    ep.origin = ctx.origin(pos);
    let mut ok = true;
    match file.address {
        Some(f) if !f.ok => ok = false,
        Some(f) => match parse_entrypoint_address(f.value.trim()) {
            Ok(addr) => {
                ep.addr = addr;
                ep.address = f.value;
            }
            Err(e) => {
                ctx.error(&f.path, f.pos, e);
                ok = false;
            }
        },
        None => {
            ctx.error(path, pos, "entrypoint has no address");
            ok = false;
        }
    }
    ep.as_default = file.as_default.unwrap_or(false);
    let (t, tr) = (file.transport, &mut ep.transport);
    let (rt, to) = (t.responding_timeouts, &mut tr.responding_timeouts);
    to.read_timeout = rt.read_timeout.unwrap_or(to.read_timeout);
    to.write_timeout = rt.write_timeout.unwrap_or(to.write_timeout);
    to.idle_timeout = rt.idle_timeout.unwrap_or(to.idle_timeout);
    let (lc, life) = (t.life_cycle, &mut tr.life_cycle);
    life.request_accept_grace_timeout = lc
        .request_accept_grace_timeout
        .unwrap_or(life.request_accept_grace_timeout);
    life.grace_time_out = lc.grace_time_out.unwrap_or(life.grace_time_out);
    tr.keep_alive_max_requests = t.keep_alive_max_requests.unwrap_or(0);
    tr.keep_alive_max_time = t.keep_alive_max_time.unwrap_or(tr.keep_alive_max_time);
    let h2 = file.http2;
    let limits = [
        (
            h2.max_concurrent_streams,
            &mut ep.http2.max_concurrent_streams,
        ),
        (
            h2.max_decoder_header_table_size,
            &mut ep.http2.max_decoder_header_table_size,
        ),
        (
            h2.max_encoder_header_table_size,
            &mut ep.http2.max_encoder_header_table_size,
        ),
    ];
    for (written, value) in limits {
        let Some(v) = written.filter(|v| v.ok) else {
            continue;
        };
        // Traefik refuses negative values; Go's server reads 0 as its
        // default, and so does this one.
        match u32::try_from(v.value) {
            Ok(0) => {}
            Ok(n) if v.path.to_ascii_lowercase().ends_with("tablesize") && n != 4096 => ctx.warn(
                &v.path,
                v.pos,
                "not applied: the HTTP/2 server's HPACK tables stay at 4096 bytes",
            ),
            Ok(n) => *value = n,
            Err(_) => ctx.error(
                &v.path,
                v.pos,
                format!("must be between 0 and {}, got {}", u32::MAX, v.value),
            ),
        }
    }
    let fh = file.forwarded_headers;
    ep.forwarded_headers.insecure = fh.insecure.unwrap_or(false);
    ep.forwarded_headers.trusted_ips = trusted_ips(ctx, fh.trusted_ips);
    ep.forwarded_headers.not_append_x_forwarded_for =
        fh.not_append_x_forwarded_for.unwrap_or(false);
    if let Some(list) = fh.connection {
        ep.forwarded_headers.connection = list
            .strings()
            .into_iter()
            .map(|(h, _)| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
    }
    if let Some(pp) = file.proxy_protocol.filter(|p| p.ok) {
        let pp = pp.value;
        ep.proxy_protocol = Some(ProxyProtocolConfig {
            insecure: pp.insecure.unwrap_or(false),
            trusted_ips: trusted_ips(ctx, pp.trusted_ips),
        });
    }
    let http = file.http;
    ep.encode_query_semicolons = http.encode_query_semicolons.unwrap_or(false);
    ep.sanitize_path = http.sanitize_path.unwrap_or(true);
    ep.encoded_characters = http
        .encoded_characters
        .as_ref()
        .map(EncodedCharactersFile::denied);
    if let Some(m) = http.max_header_bytes.filter(|m| m.ok) {
        // Go's server reads 0 (and below) as its default.
        match usize::try_from(m.value) {
            _ if m.value <= 0 => {}
            Ok(n) if n <= MAX_HEADER_BYTES_LIMIT => ep.max_header_bytes = n,
            _ => ctx.error(
                &m.path,
                m.pos,
                format!(
                    "must be at most {MAX_HEADER_BYTES_LIMIT} (1 GiB), got {}",
                    m.value
                ),
            ),
        }
    }
    if let Some(s) = http.underscore_headers_strategy.filter(|s| s.ok) {
        // Traefik's default is `keep`; an empty value is that default.
        match s.value.as_str() {
            "" | "keep" => {}
            "delete" => ep.underscore_headers = UnderscoreHeaders::Delete,
            "reject" => ep.underscore_headers = UnderscoreHeaders::Reject,
            other => {
                ctx.error(
                    &s.path,
                    s.pos,
                    format!(
                        "invalid underscoreHeadersStrategy value {other:?} (keep, delete or reject)"
                    ),
                );
                ok = false;
            }
        }
    }
    if let Some(list) = http.middlewares {
        let list_path = list.path.clone();
        for (i, (mw, mw_pos)) in list.strings().into_iter().enumerate() {
            let name = match mw.rsplit_once('@') {
                Some((n, "file")) => n.to_owned(),
                _ => mw,
            };
            ep.http_middlewares.push(EntryPointMiddleware {
                name,
                key: format!("{list_path}[{i}]"),
                origin: ctx.origin(mw_pos),
            });
        }
    }
    ep.http_tls = http.tls.and_then(Switch::on).map(|t| EntryPointTls {
        options: t.options.filter(|o| o.ok && !o.value.is_empty()).map(|o| {
            match o.value.rsplit_once('@') {
                Some((name, "file")) => name.to_owned(),
                _ => o.value,
            }
        }),
    });
    if let Some(r) = http.redirections.entry_point.filter(|r| r.ok) {
        let (rpath, rpos) = (r.path.clone(), r.key_pos);
        let r = r.value;
        match r.to.filter(|t| t.ok && !t.value.is_empty()) {
            Some(to) => {
                let scheme = r
                    .scheme
                    .filter(|s| s.ok && !s.value.is_empty())
                    .map_or_else(|| "https".to_owned(), |s| s.value);
                ep.redirect = Some(Redirection {
                    // Resolved once every entrypoint is known.
                    port: 0,
                    to: to.value,
                    scheme,
                    permanent: r.permanent.unwrap_or(true),
                    priority: r.priority.unwrap_or(i64::MAX - 1),
                });
            }
            None => {
                ctx.error(&rpath, rpos, "redirection has no target entrypoint (to)");
                ok = false;
            }
        }
    }
    ok.then_some(ep)
}

/// The ranges of a `trustedIPs` list, each bad one an error at its place.
fn trusted_ips(ctx: &mut Ctx, list: Option<At<Vec<At<String>>>>) -> Vec<IpNet> {
    let mut out = Vec::new();
    if let Some(list) = list {
        let list_path = list.path.clone();
        for (ip, ip_pos) in list.strings() {
            match ip.parse::<IpNet>() {
                Ok(net) => out.push(net),
                Err(e) => ctx.error(&list_path, ip_pos, e),
            }
        }
    }
    out
}

/// The port a redirection of entrypoint `from` goes to: `:port`, or the
/// port of the entrypoint named `to`.
pub(super) fn redirect_port(to: &str, eps: &[EntryPointConfig]) -> Result<u16, String> {
    if let Some(port) = to.strip_prefix(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        return port.parse().map_err(|_| format!("invalid port {to:?}"));
    }
    match eps.iter().find(|e| e.name == to) {
        Some(e) => Ok(e.addr.port()),
        None => Err(format!(
            "redirection target {to:?} is neither an entrypoint nor a :port"
        )),
    }
}
