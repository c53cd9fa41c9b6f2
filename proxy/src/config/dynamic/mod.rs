//! The dynamic configuration (the file provider's files): HTTP routers,
//! services, middlewares and servers transports, merged across a directory
//! and cross-checked (every reference must name something defined).
//!
//! Each section has its own file with its derived file schema and checks
//! (`routers`, `services`, `transports`, `middlewares`); this file holds
//! the top of the schema and reading the files; `merge.rs` merges them and
//! cross-checks the references. Rules are kept
//! as text with their position: the routing module parses them. Nothing
//! here touches the network.

mod aggregate;
mod composite;
mod files;
mod health;
mod isolate;
mod kv;
mod layers;
mod merge;
mod middlewares;
mod model;
mod routers;
mod services;
mod status;
mod sticky;
mod tls;
mod transports;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::decode::{Ctx, Named, Register, Schema, Spec, Support, decode, schema};
use super::error::{ConfigError, ConfigErrors, ConfigWarning, Origin};
use super::node::{Format, Node, Pos, parse};
use super::read_file;
use super::static_config::FileProviderConfig;
use crate::routing::RuleSyntax;

pub use aggregate::{
    EXTERNAL_PROVIDERS, FileTexts, ProviderConfig, ProviderSource, check_source, load_providers,
    qualified, read_file_provider,
};
pub use composite::{
    ChildService, FailoverConfig, FailoverErrors, MirrorConfig, MirroringConfig, WeightedConfig,
};
pub use files::dynamic_paths;
pub use health::{CheckScheme, HealthCheckConfig, PassiveHealthCheckConfig};
pub use isolate::{DisabledElement, ElementKind, disable_missing_internal, disable_unbuilt};
pub use kv::load_kv_isolated;
pub use middlewares::{
    AddPrefix, BasicAuth, Buffering, CertInfo, CircuitBreaker, CmpOp, Compress, Condition,
    ContentType, Cors, DigestAuth, DnFields, EncodedCharacters, Encoding, ErrorPage, ForwardAuth,
    GrpcWeb, Headers, InFlightReq, IpAllowList, IpStrategy, MediaType, Metric, MiddlewareConfig,
    PassTlsClientCert, Pattern, RateLimit, RedirectRegex, RedirectScheme, ReplacePath,
    ReplacePathRegex, Retry, RetryCondition, Secure, SourceCriterion, StripPrefix,
    StripPrefixRegex, Threshold, parse_media_type,
};
pub use model::apply_entry_point_models;
pub use routers::{INTERNAL_SERVICES, RouterConfig};
pub use services::{LoadBalancerConfig, ServerConfig, ServiceConfig};
pub use status::StatusRanges;
pub use sticky::{SameSite, StickyCookie};
pub use tls::{CertificateConfig, PemSource, RouterTls, TlsConfig, TlsOptionsConfig};
pub use transports::{ForwardingTimeouts, ServersTransportConfig, UpstreamTlsConfig};

pub(in crate::config) use middlewares::{ClientTlsFile, client_tls};

use isolate::Element;
use merge::{dup_warning, err_at, finish, keep_first, service_ref, strip_provider};
use middlewares::{MiddlewareDraft, MiddlewareFile};
use routers::{RouterDraft, RouterFile};
use services::{ServiceDraft, ServiceFile};
use tls::{TlsDraft, TlsFile};
use transports::TransportFile;

/// The validated dynamic configuration (HTTP only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DynamicConfig {
    /// Routers by name (names are case-sensitive).
    pub routers: BTreeMap<String, RouterConfig>,
    /// Services by name.
    pub services: BTreeMap<String, ServiceConfig>,
    /// The middlewares of each service that names some (Traefik 3.7's
    /// `services.<name>.middlewares`), resolved: each is in
    /// `middlewares`. They run after the router's, around the service.
    pub service_middlewares: BTreeMap<String, Vec<String>>,
    /// The same lists as written (`auth`, `auth@file`), as the API shows
    /// them.
    pub service_middlewares_written: BTreeMap<String, Vec<String>>,
    /// Servers transports by name, as defined by the user; services without
    /// one use [`ServersTransportConfig::default`].
    pub servers_transports: BTreeMap<String, ServersTransportConfig>,
    /// Middlewares by name; a disabled one (an error of its own or of a
    /// middleware its chain lists) is not here, and the routers using it
    /// are disabled.
    pub middlewares: BTreeMap<String, MiddlewareConfig>,
    /// Certificates and TLS options.
    pub tls: TlsConfig,
    /// Every element disabled by an error, in kind and name order. Disabled
    /// routers whose rule parsed are in `routers` too, marked
    /// [`RouterConfig::disabled`]; no other disabled element is in its map.
    pub disabled: Vec<DisabledElement>,
}

/// A load of the dynamic configuration with Traefik's error isolation.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// What can be served: every element without an error, and the
    /// disabled routers that keep their place.
    pub config: DynamicConfig,
    /// Every error, in file order, each once.
    pub errors: Vec<ConfigError>,
    /// Every warning, in file order.
    pub warnings: Vec<ConfigWarning>,
    /// `false` when an error belongs to no element (a file that does not
    /// parse, an unknown or unsupported section): the provider then keeps
    /// its last good configuration (at start: none).
    pub usable: bool,
}

impl Loaded {
    /// The errors as one value, or `None` when there are none.
    pub fn error_list(&self) -> Option<ConfigErrors> {
        (!self.errors.is_empty()).then(|| ConfigErrors(self.errors.clone()))
    }
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

// === file schema ===

/// A dynamic configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DynamicFile {
    http: HttpFile,
    tls: TlsFile,
}

/// The static configuration's sections, which a dynamic file may carry
/// when the static file names itself as the file provider's `filename`
/// (static and dynamic in one file, as most of Traefik's integration
/// fixtures are written): read from the static file only, ignored here.
const STATIC_HERE: Support = Support::Silent;

impl Schema for DynamicFile {
    const KEYS: Spec = &[
        // Ignoring a TCP router could serve over HTTP what Traefik hands
        // to a TCP service (a `HostSNI(`*`)` router on a shared
        // entrypoint), so the file is refused until TCP routing exists.
        ("tcp", Support::Error("TCP routing")),
        ("udp", Support::Error("UDP routing")),
        ("global", STATIC_HERE),
        ("entryPoints", STATIC_HERE),
        ("providers", STATIC_HERE),
        ("log", STATIC_HERE),
        ("accessLog", STATIC_HERE),
        ("metrics", STATIC_HERE),
        ("ping", STATIC_HERE),
        ("api", STATIC_HERE),
        ("core", STATIC_HERE),
        ("serversTransport", STATIC_HERE),
        ("tcpServersTransport", STATIC_HERE),
        ("tracing", STATIC_HERE),
        ("hostResolver", STATIC_HERE),
        ("certificatesResolvers", STATIC_HERE),
        ("experimental", STATIC_HERE),
        ("pilot", STATIC_HERE),
        ("spiffe", STATIC_HERE),
        ("ocsp", STATIC_HERE),
    ];
}

/// `http`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HttpFile {
    routers: Named<RouterFile>,
    services: Named<ServiceFile>,
    middlewares: Named<MiddlewareFile>,
    servers_transports: Named<TransportFile>,
}

impl Schema for HttpFile {
    const KEYS: Spec = &[(
        "models",
        Support::Error("router models (the defaults an entrypoint gives its routers)"),
    )];
}

/// Every key table of the dynamic schema.
const SCHEMAS: &[&[Register]] = &[
    &[schema::<DynamicFile>, schema::<HttpFile>],
    routers::SCHEMAS,
    services::SCHEMAS,
    transports::SCHEMAS,
    middlewares::SCHEMAS,
    tls::SCHEMAS,
];

// === per-file drafts, before merging and cross-checking ===

/// A name reference as written, to check once every file is merged.
struct Ref {
    name: String,
    path: String,
    pos: Pos,
}

/// A service naming other services: its name, file and references (in
/// the order of its config's children).
type ChildRefs = (String, PathBuf, Vec<Ref>);

/// One file's decoded items; names in file order.
#[derive(Default)]
struct FileDraft {
    routers: Vec<(String, RouterDraft)>,
    services: Vec<(String, ServiceDraft)>,
    transports: Vec<(String, ServersTransportConfig)>,
    /// Middleware names and where each is defined (including those
    /// dropped for their own errors: a reference to them is not unknown).
    middlewares: Vec<(String, Origin)>,
    /// The middlewares that could be built.
    middleware_drafts: Vec<(String, MiddlewareDraft)>,
    /// Every service and transport name defined, including those dropped
    /// for their own errors: a reference to them is not "unknown".
    service_names: Vec<String>,
    transport_names: Vec<String>,
    tls: TlsDraft,
    /// Every element defined, for giving errors to their element.
    elements: Vec<Element>,
}

// === loading ===

/// Reads the file provider's file or directory and validates it against
/// the static entrypoint names; routers without `ruleSyntax` are parsed in
/// `default_rule_syntax` (the static `core.defaultRuleSyntax`). Every error
/// of every file is returned.
pub fn load_dynamic(
    file: &FileProviderConfig,
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    strict(load_dynamic_isolated(
        file,
        entry_points,
        default_rule_syntax,
    ))
}

/// Fails on any error, the way `proxy check` and the tests judge a
/// configuration.
fn strict(loaded: Loaded) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    match loaded.error_list() {
        Some(errors) => Err(errors),
        None => Ok((loaded.config, loaded.warnings)),
    }
}

/// [`load_dynamic`] with Traefik's error isolation: each error disables
/// its element and what references it, and the rest is served.
pub fn load_dynamic_isolated(
    file: &FileProviderConfig,
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Loaded {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let paths = match dynamic_paths(file) {
        Ok(paths) => paths,
        Err(e) => return unusable(e),
    };
    let mut drafts = Vec::new();
    for path in &paths {
        match read_file(path) {
            Ok((text, format)) => {
                drafts.push(decode_file(
                    &text,
                    format,
                    path,
                    default_rule_syntax,
                    &mut errors,
                    &mut warnings,
                ));
            }
            Err(e) => errors.extend(e.0),
        }
    }
    finish(drafts, entry_points, errors, warnings)
}

/// A load that found nothing usable.
fn unusable(e: ConfigError) -> Loaded {
    Loaded {
        errors: vec![e],
        ..Loaded::default()
    }
}

/// Validates one dynamic file's text; `file` is only used in messages.
pub fn parse_dynamic(
    text: &str,
    format: Format,
    file: &Path,
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    strict(parse_dynamic_isolated(
        text,
        format,
        file,
        entry_points,
        default_rule_syntax,
    ))
}

/// [`parse_dynamic`] with Traefik's error isolation.
pub fn parse_dynamic_isolated(
    text: &str,
    format: Format,
    file: &Path,
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Loaded {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let draft = decode_file(
        text,
        format,
        file,
        default_rule_syntax,
        &mut errors,
        &mut warnings,
    );
    finish(vec![draft], entry_points, errors, warnings)
}

fn decode_file(
    text: &str,
    format: Format,
    file: &Path,
    default_rule_syntax: RuleSyntax,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> FileDraft {
    let draft = FileDraft::default();
    if let Some(e) = template_action(text, file) {
        errors.push(e);
        return draft;
    }
    match parse(text, format, file) {
        Ok(root) => decode_root(&root, file, default_rule_syntax, errors, warnings),
        Err(e) => {
            errors.push(e);
            draft
        }
    }
}

/// Decodes one source's node tree (a file's, or a key-value store's);
/// `file` names the source in messages.
fn decode_root(
    root: &Node,
    file: &Path,
    default_rule_syntax: RuleSyntax,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> FileDraft {
    let mut draft = FileDraft::default();
    let mut ctx = Ctx::new(file, SCHEMAS);
    if let Some(top) = decode::<DynamicFile>(&mut ctx, root) {
        draft.tls = tls::check(&mut ctx, top.tls);
        let http = top.http;
        let mut element = |kind: ElementKind, name: &str, path: &str| {
            draft.elements.push(Element {
                kind,
                name: name.to_owned(),
                file: file.to_path_buf(),
                path: path.to_owned(),
            });
        };
        for item in &http.routers.0 {
            element(ElementKind::Router, &item.name, &item.path);
        }
        for item in &http.services.0 {
            element(ElementKind::Service, &item.name, &item.path);
        }
        for item in &http.servers_transports.0 {
            element(ElementKind::ServersTransport, &item.name, &item.path);
        }
        for item in &http.middlewares.0 {
            element(ElementKind::Middleware, &item.name, &item.path);
        }
        let options = draft.tls.elements(file);
        draft.elements.extend(options);
        for item in http.routers.0 {
            if let Some(router) = item.value
                && let Some(r) = routers::check(
                    &mut ctx,
                    item.name.clone(),
                    &item.path,
                    item.key_pos,
                    router,
                    default_rule_syntax,
                )
            {
                draft.routers.push((item.name, r));
            }
        }
        for item in http.services.0 {
            draft.service_names.push(item.name.clone());
            if let Some(service) = item.value
                && let Some(s) = services::check(&mut ctx, &item.path, item.key_pos, service)
            {
                draft.services.push((item.name, s));
            }
        }
        for item in http.servers_transports.0 {
            draft.transport_names.push(item.name.clone());
            if let Some(t) = item.value {
                let t = transports::build(&mut ctx, &item.path, item.key_pos, t);
                draft.transports.push((item.name, t));
            }
        }
        for item in http.middlewares.0 {
            draft
                .middlewares
                .push((item.name.clone(), ctx.origin(item.key_pos)));
            if let Some(m) = item.value
                && let Some(m) = middlewares::check(&mut ctx, &item.path, item.key_pos, m)
            {
                draft.middleware_drafts.push((item.name, m));
            }
        }
    }
    errors.append(&mut ctx.errors);
    warnings.append(&mut ctx.warnings);
    draft
}

/// A Go template action (`{{ ... }}`), which Traefik's file provider
/// renders before parsing: the file is refused with that reason instead of
/// a syntax error about the braces.
fn template_action(text: &str, file: &Path) -> Option<ConfigError> {
    let start = text.find("{{")?;
    text[start..].find("}}")?;
    let before = &text[..start];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    Some(ConfigError {
        file: file.to_path_buf(),
        key: String::new(),
        line: Some(line),
        column: Some(column),
        message: "Go template actions ({{ ... }}) are not supported: the file is read as it is, not rendered as a template".to_owned(),
    })
}
