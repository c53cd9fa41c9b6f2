//! The dynamic configuration (the file provider's files): HTTP routers,
//! services, middlewares and servers transports, merged across a directory
//! and cross-checked (every reference must name something defined).
//!
//! Rules are kept as text with their position: the routing module parses
//! them. Nothing here touches the network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;

use crate::routing::{Rule, parse_rule};

use super::decode::{
    Ctx, Spec, Support, boolean, child, map_entries, named_entries, string, string_list, suggest,
    table, uint,
};
use super::error::{ConfigError, ConfigErrors, ConfigWarning, Origin, sort_warnings};
use super::node::{Format, Node, Pos, Value, parse};
use super::read_file;
use super::static_config::{FileProviderConfig, set_duration};

/// The validated dynamic configuration (HTTP only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DynamicConfig {
    /// Routers by name (names are case-sensitive).
    pub routers: BTreeMap<String, RouterConfig>,
    /// Services by name.
    pub services: BTreeMap<String, ServiceConfig>,
    /// Servers transports by name, as defined by the user; services without
    /// one use [`ServersTransportConfig::default`].
    pub servers_transports: BTreeMap<String, ServersTransportConfig>,
    /// Middlewares by name. No middleware type is implemented yet, so every
    /// middleware definition is a load error and this map is always empty.
    pub middlewares: BTreeMap<String, MiddlewareConfig>,
}

impl DynamicConfig {
    /// The transport a load balancer uses: its named one or the default.
    pub fn transport_for(&self, lb: &LoadBalancerConfig) -> ServersTransportConfig {
        lb.servers_transport
            .as_ref()
            .and_then(|n| self.servers_transports.get(n))
            .cloned()
            .unwrap_or_default()
    }
}

/// One HTTP router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Its name (case-sensitive).
    pub name: String,
    /// The rule text (v3 syntax).
    pub rule: String,
    /// The rule, parsed and compiled (regexes included); a rule that does
    /// not parse is a load error pointing at its column.
    pub parsed: Rule,
    /// Where the rule value starts: for a quoted value, its first character
    /// inside the quotes (so a column offset into `rule` lands on the same
    /// character in the file when the value has no escapes).
    pub rule_origin: Origin,
    /// The service's name, `@file` suffix removed; it exists in
    /// [`DynamicConfig::services`].
    pub service: String,
    /// Entrypoints it listens on; empty = the default entrypoints (see
    /// `StaticConfig::default_entry_points`).
    pub entry_points: Vec<String>,
    /// Explicit priority; `None` = Traefik's default (the rule's length).
    pub priority: Option<u64>,
    /// Middleware names in order, `@file` removed.
    pub middlewares: Vec<String>,
    /// Where the router's name is written.
    pub origin: Origin,
}

/// A service. Only load balancers exist so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceConfig {
    /// `loadBalancer`: weighted round robin over servers.
    LoadBalancer(LoadBalancerConfig),
}

impl ServiceConfig {
    /// Where the service's name is written.
    pub fn origin(&self) -> &Origin {
        match self {
            ServiceConfig::LoadBalancer(lb) => &lb.origin,
        }
    }
}

/// `services.<name>.loadBalancer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerConfig {
    /// The servers; never empty.
    pub servers: Vec<ServerConfig>,
    /// Forward the client's `Host` header (default true).
    pub pass_host_header: bool,
    /// Named servers transport; it exists in
    /// [`DynamicConfig::servers_transports`].
    pub servers_transport: Option<String>,
    /// Where the service's name is written.
    pub origin: Origin,
}

/// One upstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The URL as written.
    pub url: String,
    /// The parsed URL: scheme `http` or `h2c`, with a host.
    pub uri: Uri,
    /// Speak HTTP/2 cleartext (scheme `h2c`).
    pub h2c: bool,
    /// Weight for the round robin; `None` = Traefik's default of 1.
    pub weight: Option<u32>,
    /// Keep the URL's path as a prefix of forwarded paths.
    pub preserve_path: bool,
}

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

/// A middleware. No type is implemented yet, so no value can exist; a
/// configuration defining any middleware fails to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MiddlewareConfig {}

// === specs ===

const TOP: Spec = &[
    ("http", Support::Yes),
    ("tcp", Support::Warn("no TCP routing")),
    ("udp", Support::Warn("no UDP routing")),
    ("tls", Support::Warn("no TLS yet")),
];

const HTTP: Spec = &[
    ("routers", Support::Yes),
    ("services", Support::Yes),
    ("middlewares", Support::Yes),
    ("serversTransports", Support::Yes),
];

const ROUTER: Spec = &[
    ("entryPoints", Support::Yes),
    ("middlewares", Support::Yes),
    ("service", Support::Yes),
    ("rule", Support::Yes),
    ("ruleSyntax", Support::Yes),
    ("priority", Support::Yes),
    (
        "tls",
        Support::Error("no TLS yet; the router would be served without it"),
    ),
    ("observability", Support::Warn("")),
];

const UNSUPPORTED_KIND: Support = Support::Error("only loadBalancer services exist");

const SERVICE: Spec = &[
    ("loadBalancer", Support::Yes),
    ("weighted", UNSUPPORTED_KIND),
    ("mirroring", UNSUPPORTED_KIND),
    ("failover", UNSUPPORTED_KIND),
];

const LOAD_BALANCER: Spec = &[
    ("servers", Support::Yes),
    ("passHostHeader", Support::Yes),
    ("serversTransport", Support::Yes),
    (
        "sticky",
        Support::Warn("requests are not pinned to a server"),
    ),
    (
        "healthCheck",
        Support::Warn("servers are not health-checked"),
    ),
    ("responseForwarding", Support::Warn("")),
    ("strategy", Support::Warn("weighted round robin is used")),
];

const SERVER: Spec = &[
    ("url", Support::Yes),
    ("weight", Support::Yes),
    ("preservePath", Support::Yes),
];

const NO_UPSTREAM_TLS: Support = Support::Warn("no TLS to servers yet");

const TRANSPORT: Spec = &[
    ("forwardingTimeouts", Support::Yes),
    ("maxIdleConnsPerHost", Support::Yes),
    ("disableHTTP2", Support::Yes),
    ("serverName", NO_UPSTREAM_TLS),
    ("insecureSkipVerify", NO_UPSTREAM_TLS),
    ("rootCAs", NO_UPSTREAM_TLS),
    ("certificates", NO_UPSTREAM_TLS),
    ("peerCertURI", NO_UPSTREAM_TLS),
    ("spiffe", NO_UPSTREAM_TLS),
];

const FORWARDING: Spec = &[
    ("dialTimeout", Support::Yes),
    ("responseHeaderTimeout", Support::Yes),
    ("idleConnTimeout", Support::Yes),
    ("readIdleTimeout", Support::Yes),
    ("pingTimeout", Support::Yes),
];

/// Traefik v3's HTTP middleware types.
const MIDDLEWARE_TYPES: &[&str] = &[
    "addPrefix",
    "basicAuth",
    "buffering",
    "chain",
    "circuitBreaker",
    "compress",
    "contentType",
    "digestAuth",
    "errors",
    "forwardAuth",
    "grpcWeb",
    "headers",
    "ipAllowList",
    "ipWhiteList",
    "inFlightReq",
    "passTLSClientCert",
    "plugin",
    "rateLimit",
    "redirectRegex",
    "redirectScheme",
    "replacePath",
    "replacePathRegex",
    "retry",
    "stripPrefix",
    "stripPrefixRegex",
];

// === per-file drafts, before merging and cross-checking ===

/// A name reference as written, to check once every file is merged.
struct Ref {
    name: String,
    path: String,
    pos: Pos,
}

struct RouterDraft {
    config: RouterConfig,
    service: Option<Ref>,
    entry_points: Vec<Ref>,
    middlewares: Vec<Ref>,
}

struct ServiceDraft {
    config: ServiceConfig,
    transport: Option<Ref>,
}

/// One file's decoded items; names in file order.
#[derive(Default)]
struct FileDraft {
    routers: Vec<(String, RouterDraft)>,
    services: Vec<(String, ServiceDraft)>,
    transports: Vec<(String, ServersTransportConfig)>,
    /// Middleware names and where each is defined.
    middlewares: Vec<(String, Origin)>,
    /// Every service and transport name defined, including those dropped
    /// for their own errors: a reference to them is not "unknown".
    service_names: Vec<String>,
    transport_names: Vec<String>,
}

// === loading ===

/// Reads the file provider's file or directory and validates it against
/// the static entrypoint names. Every error of every file is returned.
pub fn load_dynamic(
    file: &FileProviderConfig,
    entry_points: &[String],
) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let paths = match (&file.filename, &file.directory) {
        (Some(f), None) => vec![f.clone()],
        (None, Some(dir)) => match list_dir(dir) {
            Ok(paths) => paths,
            Err(e) => return Err(ConfigErrors(vec![e])),
        },
        _ => {
            return Err(ConfigErrors(vec![ConfigError {
                file: PathBuf::new(),
                key: "providers.file".to_owned(),
                line: None,
                column: None,
                message: "exactly one of filename or directory must be set".to_owned(),
            }]));
        }
    };
    let mut drafts = Vec::new();
    for path in &paths {
        match read_file(path) {
            Ok((text, format)) => {
                drafts.push(decode_file(&text, format, path, &mut errors, &mut warnings));
            }
            Err(e) => errors.extend(e.0),
        }
    }
    finish(drafts, entry_points, errors, warnings)
}

/// Validates one dynamic file's text; `file` is only used in messages.
pub fn parse_dynamic(
    text: &str,
    format: Format,
    file: &Path,
    entry_points: &[String],
) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let draft = decode_file(text, format, file, &mut errors, &mut warnings);
    finish(vec![draft], entry_points, errors, warnings)
}

/// Every `.yml`/`.yaml`/`.toml` file under `dir`, recursively, sorted.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| ConfigError {
            file: d.clone(),
            key: String::new(),
            line: None,
            column: None,
            message: format!("cannot read directory: {e}"),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if Format::from_path(&path).is_some() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn decode_file(
    text: &str,
    format: Format,
    file: &Path,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> FileDraft {
    let mut draft = FileDraft::default();
    let root = match parse(text, format, file) {
        Ok(root) => root,
        Err(e) => {
            errors.push(e);
            return draft;
        }
    };
    let mut ctx = Ctx::new(file);
    if let Some(top) = table(&mut ctx, "", &root, TOP)
        && let Some(f) = top.get("http")
        && let Some(http) = table(&mut ctx, &f.path, &f.node, HTTP)
    {
        if let Some(f) = http.get("routers") {
            for (key, node) in named_entries(&mut ctx, &f.path, &f.node).unwrap_or_default() {
                let path = child(&f.path, &key.name);
                if let Some(r) = decode_router(&mut ctx, &path, key.name.clone(), key.pos, &node) {
                    draft.routers.push((key.name.clone(), r));
                }
            }
        }
        if let Some(f) = http.get("services") {
            for (key, node) in named_entries(&mut ctx, &f.path, &f.node).unwrap_or_default() {
                let path = child(&f.path, &key.name);
                draft.service_names.push(key.name.clone());
                if let Some(s) = decode_service(&mut ctx, &path, key.pos, &node) {
                    draft.services.push((key.name.clone(), s));
                }
            }
        }
        if let Some(f) = http.get("serversTransports") {
            for (key, node) in named_entries(&mut ctx, &f.path, &f.node).unwrap_or_default() {
                let path = child(&f.path, &key.name);
                draft.transport_names.push(key.name.clone());
                if let Some(t) = decode_transport(&mut ctx, &path, key.pos, &node) {
                    draft.transports.push((key.name.clone(), t));
                }
            }
        }
        if let Some(f) = http.get("middlewares") {
            for (key, node) in named_entries(&mut ctx, &f.path, &f.node).unwrap_or_default() {
                let path = child(&f.path, &key.name);
                check_middleware(&mut ctx, &path, key.pos, &node);
                draft
                    .middlewares
                    .push((key.name.clone(), ctx.origin(key.pos)));
            }
        }
    }
    errors.append(&mut ctx.errors);
    warnings.append(&mut ctx.warnings);
    draft
}

fn decode_router(
    ctx: &mut Ctx,
    path: &str,
    name: String,
    pos: Pos,
    node: &Node,
) -> Option<RouterDraft> {
    let t = table(ctx, path, node, ROUTER)?;
    let mut ok = true;
    let mut parsed = None;
    let (rule, rule_origin) = match t.get("rule") {
        Some(f) => {
            let rule = string(ctx, f).unwrap_or_default();
            if rule.trim().is_empty() && !matches!(f.node.value, Value::Map(_) | Value::Seq(_)) {
                ctx.error(&f.path, f.node.pos, "rule is empty");
                ok = false;
            } else if !rule.trim().is_empty() {
                match parse_rule(&rule) {
                    Ok(r) => parsed = Some(r),
                    Err(e) => {
                        let at = Pos {
                            line: f.node.pos.line,
                            column: f.node.pos.column + e.column as u32 - 1,
                        };
                        ctx.error(
                            &f.path,
                            at,
                            format!("{} (column {} of the rule)", e.message, e.column),
                        );
                        ok = false;
                    }
                }
            }
            (rule, ctx.origin(f.node.pos))
        }
        None => {
            ctx.error(path, pos, "router has no rule");
            ok = false;
            (String::new(), ctx.origin(pos))
        }
    };
    if let Some(f) = t.get("ruleSyntax")
        && let Some(syntax) = string(ctx, f)
    {
        match syntax.as_str() {
            "" | "v3" => {}
            "v2" => {
                ctx.error(
                    &f.path,
                    f.node.pos,
                    "rule syntax \"v2\" is not supported yet (only \"v3\")",
                );
                ok = false;
            }
            other => {
                ctx.error(
                    &f.path,
                    f.node.pos,
                    format!("unknown rule syntax {other:?} (expected \"v3\")"),
                );
                ok = false;
            }
        }
    }
    let service = match t.get("service") {
        Some(f) => match string(ctx, f) {
            Some(s) if !s.trim().is_empty() => Some(Ref {
                name: s,
                path: f.path.clone(),
                pos: f.node.pos,
            }),
            Some(_) => {
                ctx.error(&f.path, f.node.pos, "service is empty");
                None
            }
            None => None,
        },
        None => {
            ctx.error(path, pos, "router has no service");
            None
        }
    };
    ok &= service.is_some();
    let refs = |ctx: &mut Ctx, key: &str| -> Vec<Ref> {
        let Some(f) = t.get(key) else {
            return Vec::new();
        };
        string_list(ctx, f)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, pos)| Ref {
                name,
                path: f.path.clone(),
                pos,
            })
            .collect()
    };
    let entry_points = refs(ctx, "entryPoints");
    let middlewares = refs(ctx, "middlewares");
    let priority = match t.get("priority") {
        Some(f) => {
            let p = uint(ctx, f, i64::MAX as u64);
            ok &= p.is_some();
            p
        }
        None => None,
    };
    let origin = ctx.origin(pos);
    let parsed = parsed.filter(|_| ok)?;
    Some(RouterDraft {
        config: RouterConfig {
            name,
            rule,
            parsed,
            rule_origin,
            service: String::new(),
            entry_points: Vec::new(),
            priority,
            middlewares: Vec::new(),
            origin,
        },
        service,
        entry_points,
        middlewares,
    })
}

fn decode_service(ctx: &mut Ctx, path: &str, pos: Pos, node: &Node) -> Option<ServiceDraft> {
    // Count the kinds before `table` reports the unsupported ones.
    let kinds = match &node.value {
        Value::Map(entries) => entries
            .iter()
            .filter(|(k, _)| SERVICE.iter().any(|(n, _)| n.eq_ignore_ascii_case(&k.name)))
            .count(),
        _ => 0,
    };
    let t = table(ctx, path, node, SERVICE)?;
    if kinds > 1 {
        ctx.error(path, pos, "a service must have exactly one type");
        return None;
    }
    let Some(f) = t.get("loadBalancer") else {
        if kinds == 0 {
            ctx.error(path, pos, "service has no type (expected loadBalancer)");
        }
        return None;
    };
    let lb = table(ctx, &f.path, &f.node, LOAD_BALANCER)?;
    let mut ok = true;
    let mut servers = Vec::new();
    match lb.get("servers") {
        Some(f) => match &f.node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let spath = format!("{}[{i}]", f.path);
                    match decode_server(ctx, &spath, item) {
                        Some(s) => servers.push(s),
                        None => ok = false,
                    }
                }
                if items.is_empty() {
                    ctx.error(&f.path, f.node.pos, "load balancer has no servers");
                    ok = false;
                }
            }
            Value::Null => {
                ctx.error(&f.path, f.node.pos, "load balancer has no servers");
                ok = false;
            }
            other => {
                ctx.error(
                    &f.path,
                    f.node.pos,
                    format!("expected a list of servers, found {}", other.describe()),
                );
                ok = false;
            }
        },
        None => {
            ctx.error(&f.path, f.key.pos, "load balancer has no servers");
            ok = false;
        }
    }
    let mut pass_host_header = true;
    if let Some(f) = lb.get("passHostHeader") {
        match boolean(ctx, f) {
            Some(b) => pass_host_header = b,
            None => ok = false,
        }
    }
    let transport = match lb.get("serversTransport") {
        Some(f) => string(ctx, f).filter(|s| !s.is_empty()).map(|name| Ref {
            name,
            path: f.path.clone(),
            pos: f.node.pos,
        }),
        None => None,
    };
    let origin = ctx.origin(pos);
    ok.then_some(ServiceDraft {
        config: ServiceConfig::LoadBalancer(LoadBalancerConfig {
            servers,
            pass_host_header,
            servers_transport: None,
            origin,
        }),
        transport,
    })
}

fn decode_server(ctx: &mut Ctx, path: &str, node: &Node) -> Option<ServerConfig> {
    let t = table(ctx, path, node, SERVER)?;
    let Some(f) = t.get("url") else {
        ctx.error(path, node.pos, "server has no url");
        return None;
    };
    let url = string(ctx, f)?;
    let (uri, h2c) = match parse_server_url(url.trim()) {
        Ok(v) => v,
        Err(e) => {
            ctx.error(&f.path, f.node.pos, e);
            return None;
        }
    };
    let mut ok = true;
    let weight = match t.get("weight") {
        Some(f) => {
            let w = uint(ctx, f, u64::from(u32::MAX)).and_then(|w| u32::try_from(w).ok());
            ok &= w.is_some();
            w
        }
        None => None,
    };
    let mut preserve_path = false;
    if let Some(f) = t.get("preservePath") {
        match boolean(ctx, f) {
            Some(b) => preserve_path = b,
            None => ok = false,
        }
    }
    ok.then_some(ServerConfig {
        url,
        uri,
        h2c,
        weight,
        preserve_path,
    })
}

/// An absolute `http://` or `h2c://` URL with a host.
fn parse_server_url(url: &str) -> Result<(Uri, bool), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid server URL {url:?}: {e}"))?;
    let h2c = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => false,
        Some("h2c") => true,
        Some("https") => {
            return Err(format!(
                "https server URL {url:?} is not supported yet (no TLS to servers)"
            ));
        }
        Some(other) => {
            return Err(format!(
                "server URL {url:?} has unsupported scheme {other:?} (expected http or h2c)"
            ));
        }
        None => {
            return Err(format!(
                "server URL {url:?} must be absolute, e.g. \"http://10.0.0.1:8080\""
            ));
        }
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("server URL {url:?} has no host"));
    }
    Ok((uri, h2c))
}

fn decode_transport(
    ctx: &mut Ctx,
    path: &str,
    pos: Pos,
    node: &Node,
) -> Option<ServersTransportConfig> {
    let t = table(ctx, path, node, TRANSPORT)?;
    let errors_before = ctx.errors.len();
    let mut out = ServersTransportConfig {
        origin: ctx.origin(pos),
        ..ServersTransportConfig::default()
    };
    if let Some(f) = t.get("forwardingTimeouts")
        && let Some(ft) = table(ctx, &f.path, &f.node, FORWARDING)
    {
        let to = &mut out.forwarding_timeouts;
        set_duration(ctx, &ft, "dialTimeout", &mut to.dial_timeout);
        set_duration(
            ctx,
            &ft,
            "responseHeaderTimeout",
            &mut to.response_header_timeout,
        );
        set_duration(ctx, &ft, "idleConnTimeout", &mut to.idle_conn_timeout);
        set_duration(ctx, &ft, "readIdleTimeout", &mut to.read_idle_timeout);
        set_duration(ctx, &ft, "pingTimeout", &mut to.ping_timeout);
    }
    if let Some(f) = t.get("maxIdleConnsPerHost")
        && let Some(n) = uint(ctx, f, u64::from(u32::MAX))
    {
        out.max_idle_conns_per_host = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(f) = t.get("disableHTTP2")
        && let Some(b) = boolean(ctx, f)
    {
        out.disable_http2 = b;
    }
    (ctx.errors.len() == errors_before).then_some(out)
}

/// Every middleware is refused: none is implemented yet.
fn check_middleware(ctx: &mut Ctx, path: &str, pos: Pos, node: &Node) {
    let Some(entries) = map_entries(ctx, path, node) else {
        return;
    };
    if entries.is_empty() {
        ctx.error(path, pos, "middleware has no type");
    }
    for (key, _) in entries {
        let kpath = child(path, &key.name);
        match MIDDLEWARE_TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(&key.name))
        {
            Some(t) => ctx.error(
                &kpath,
                key.pos,
                format!("middleware type {t:?} is not supported yet"),
            ),
            None => {
                let hint = suggest(&key.name, MIDDLEWARE_TYPES.iter().copied());
                ctx.error(
                    &kpath,
                    key.pos,
                    format!("unknown middleware type {:?}{hint}", key.name),
                );
            }
        }
    }
}

// === merge and cross-check ===

/// Error helper for items whose file is only known from their origin.
fn err_at(file: &Path, key: &str, pos: Pos, message: String) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        key: key.to_owned(),
        line: (pos.line > 0).then_some(pos.line),
        column: (pos.line > 0).then_some(pos.column),
        message,
    }
}

fn dup_warning(kind: &str, name: &str, kept: &Origin, dropped: &Origin) -> ConfigWarning {
    ConfigWarning {
        file: dropped.file.clone(),
        key: name.to_owned(),
        line: Some(dropped.line),
        column: Some(dropped.column),
        message: format!(
            "{kind} {name:?} is already defined in {}; this definition is ignored",
            kept
        ),
    }
}

/// Resolves `name@provider`: only `@file` (or no provider) is accepted.
fn strip_provider(
    r: &Ref,
    file: &Path,
    kind: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    match r.name.rsplit_once('@') {
        None => Some(r.name.clone()),
        Some((name, "file")) => Some(name.to_owned()),
        Some((_, "internal")) => {
            errors.push(err_at(
                file,
                &r.path,
                r.pos,
                format!(
                    "{kind} {:?}: @internal {kind}s are not supported yet",
                    r.name
                ),
            ));
            None
        }
        Some((_, provider)) => {
            errors.push(err_at(
                file,
                &r.path,
                r.pos,
                format!(
                    "{kind} {:?}: provider {provider:?} is not supported (only @file)",
                    r.name
                ),
            ));
            None
        }
    }
}

fn finish(
    drafts: Vec<FileDraft>,
    entry_points: &[String],
    mut errors: Vec<ConfigError>,
    mut warnings: Vec<ConfigWarning>,
) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    // First definition of a name wins, as in Traefik's file provider.
    let mut routers: BTreeMap<String, RouterDraft> = BTreeMap::new();
    let mut services: BTreeMap<String, ServiceDraft> = BTreeMap::new();
    let mut transports: BTreeMap<String, ServersTransportConfig> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, Origin> = BTreeMap::new();
    let mut service_names: BTreeSet<String> = BTreeSet::new();
    let mut transport_names: BTreeSet<String> = BTreeSet::new();
    for draft in drafts {
        service_names.extend(draft.service_names);
        transport_names.extend(draft.transport_names);
        for (name, r) in draft.routers {
            match routers.get(&name) {
                Some(kept) => warnings.push(dup_warning(
                    "router",
                    &name,
                    &kept.config.origin,
                    &r.config.origin,
                )),
                None => {
                    routers.insert(name, r);
                }
            }
        }
        for (name, s) in draft.services {
            match services.get(&name) {
                Some(kept) => warnings.push(dup_warning(
                    "service",
                    &name,
                    kept.config.origin(),
                    s.config.origin(),
                )),
                None => {
                    services.insert(name, s);
                }
            }
        }
        for (name, t) in draft.transports {
            match transports.get(&name) {
                Some(kept) => warnings.push(dup_warning(
                    "serversTransport",
                    &name,
                    &kept.origin,
                    &t.origin,
                )),
                None => {
                    transports.insert(name, t);
                }
            }
        }
        for (name, o) in draft.middlewares {
            match middlewares.get(&name) {
                Some(kept) => warnings.push(dup_warning("middleware", &name, kept, &o)),
                None => {
                    middlewares.insert(name, o);
                }
            }
        }
    }

    let mut config = DynamicConfig::default();
    for (name, draft) in services {
        let ServiceDraft {
            config: ServiceConfig::LoadBalancer(mut lb),
            transport,
        } = draft;
        if let Some(r) = transport
            && let Some(resolved) =
                strip_provider(&r, &lb.origin.file, "serversTransport", &mut errors)
        {
            if transport_names.contains(&resolved) {
                lb.servers_transport = Some(resolved);
            } else {
                let hint = suggest(&resolved, transport_names.iter().map(String::as_str));
                errors.push(err_at(
                    &lb.origin.file,
                    &r.path,
                    r.pos,
                    format!("unknown serversTransport {resolved:?}{hint}"),
                ));
            }
        }
        config
            .services
            .insert(name, ServiceConfig::LoadBalancer(lb));
    }
    for (name, draft) in routers {
        let RouterDraft {
            config: mut router,
            service,
            entry_points: eps,
            middlewares: mws,
        } = draft;
        let file = router.origin.file.clone();
        let mut ok = true;
        if let Some(r) = service {
            match strip_provider(&r, &file, "service", &mut errors) {
                Some(s) if service_names.contains(&s) => router.service = s,
                Some(s) => {
                    let hint = suggest(&s, service_names.iter().map(String::as_str));
                    errors.push(err_at(
                        &file,
                        &r.path,
                        r.pos,
                        format!("unknown service {s:?}{hint}"),
                    ));
                    ok = false;
                }
                None => ok = false,
            }
        }
        for r in eps {
            if entry_points.contains(&r.name) {
                router.entry_points.push(r.name);
            } else {
                let hint = suggest(&r.name, entry_points.iter().map(String::as_str));
                errors.push(err_at(
                    &file,
                    &r.path,
                    r.pos,
                    format!("unknown entrypoint {:?}{hint}", r.name),
                ));
                ok = false;
            }
        }
        for r in mws {
            match strip_provider(&r, &file, "middleware", &mut errors) {
                Some(m) if middlewares.contains_key(&m) => router.middlewares.push(m),
                Some(m) => {
                    let hint = suggest(&m, middlewares.keys().map(String::as_str));
                    errors.push(err_at(
                        &file,
                        &r.path,
                        r.pos,
                        format!("unknown middleware {m:?}{hint}"),
                    ));
                    ok = false;
                }
                None => ok = false,
            }
        }
        if ok {
            config.routers.insert(name, router);
        }
    }
    config.servers_transports = transports;
    if errors.is_empty() {
        sort_warnings(&mut warnings);
        Ok((config, warnings))
    } else {
        Err(ConfigErrors::sorted(errors))
    }
}
