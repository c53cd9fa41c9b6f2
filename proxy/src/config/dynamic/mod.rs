//! The dynamic configuration (the file provider's files): HTTP routers,
//! services, middlewares and servers transports, merged across a directory
//! and cross-checked (every reference must name something defined).
//!
//! Each section has its own file with its derived file schema and checks
//! (`routers`, `services`, `transports`, `middlewares`); this file holds
//! the top of the schema, reading the files, and the merge. Rules are kept
//! as text with their position: the routing module parses them. Nothing
//! here touches the network.

mod middlewares;
mod routers;
mod services;
mod transports;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::decode::{Ctx, Named, Register, Schema, Spec, Support, decode, schema, suggest};
use super::error::{ConfigError, ConfigErrors, ConfigWarning, Origin, sort_warnings};
use super::node::{Format, Pos, parse};
use super::read_file;
use super::static_config::FileProviderConfig;
use crate::routing::RuleSyntax;

pub use middlewares::MiddlewareConfig;
pub use routers::RouterConfig;
pub use services::{LoadBalancerConfig, ServerConfig, ServiceConfig};
pub use transports::{ForwardingTimeouts, ServersTransportConfig};

use routers::{RouterDraft, RouterFile};
use services::{ServiceDraft, ServiceFile};
use transports::TransportFile;

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

// === file schema ===

/// A dynamic configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DynamicFile {
    http: HttpFile,
}

impl Schema for DynamicFile {
    const KEYS: Spec = &[
        ("tcp", Support::Warn("no TCP routing")),
        ("udp", Support::Warn("no UDP routing")),
        ("tls", Support::Warn("no TLS yet")),
    ];
}

/// `http`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HttpFile {
    routers: Named<RouterFile>,
    services: Named<ServiceFile>,
    middlewares: Named<MiddlewareConfig>,
    servers_transports: Named<TransportFile>,
}

/// Every key table of the dynamic schema.
const SCHEMAS: &[&[Register]] = &[
    &[schema::<DynamicFile>],
    routers::SCHEMAS,
    services::SCHEMAS,
    transports::SCHEMAS,
    middlewares::SCHEMAS,
];

// === per-file drafts, before merging and cross-checking ===

/// A name reference as written, to check once every file is merged.
struct Ref {
    name: String,
    path: String,
    pos: Pos,
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
/// the static entrypoint names; routers without `ruleSyntax` are parsed in
/// `default_rule_syntax` (the static `core.defaultRuleSyntax`). Every error
/// of every file is returned.
pub fn load_dynamic(
    file: &FileProviderConfig,
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let paths = dynamic_paths(file)?;
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

/// Validates one dynamic file's text; `file` is only used in messages.
pub fn parse_dynamic(
    text: &str,
    format: Format,
    file: &Path,
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Result<(DynamicConfig, Vec<ConfigWarning>), ConfigErrors> {
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

/// The files the file provider reads, in the order it reads them: its
/// `filename`, or every configuration file under its `directory`.
pub fn dynamic_paths(file: &FileProviderConfig) -> Result<Vec<PathBuf>, ConfigErrors> {
    match (&file.filename, &file.directory) {
        (Some(f), None) => Ok(vec![f.clone()]),
        (None, Some(dir)) => list_dir(dir).map_err(|e| ConfigErrors(vec![e])),
        _ => Err(ConfigErrors(vec![ConfigError {
            file: PathBuf::new(),
            key: "providers.file".to_owned(),
            line: None,
            column: None,
            message: "exactly one of filename or directory must be set".to_owned(),
        }])),
    }
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
    default_rule_syntax: RuleSyntax,
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
    let mut ctx = Ctx::new(file, SCHEMAS);
    if let Some(top) = decode::<DynamicFile>(&mut ctx, &root) {
        let http = top.http;
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
                let t = transports::build(&ctx, item.key_pos, t);
                draft.transports.push((item.name, t));
            }
        }
        for item in http.middlewares.0 {
            draft
                .middlewares
                .push((item.name, ctx.origin(item.key_pos)));
        }
    }
    errors.append(&mut ctx.errors);
    warnings.append(&mut ctx.warnings);
    draft
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

/// Adds each of `items` to `kept` unless its name is already there (the
/// first definition wins, as in Traefik's file provider), and warns about
/// each one dropped.
fn keep_first<T>(
    kept: &mut BTreeMap<String, T>,
    items: Vec<(String, T)>,
    kind: &str,
    origin: impl Fn(&T) -> &Origin,
    warnings: &mut Vec<ConfigWarning>,
) {
    for (name, item) in items {
        match kept.get(&name) {
            Some(first) => warnings.push(dup_warning(kind, &name, origin(first), origin(&item))),
            None => {
                kept.insert(name, item);
            }
        }
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
        let w = &mut warnings;
        keep_first(
            &mut routers,
            draft.routers,
            "router",
            |r| &r.config.origin,
            w,
        );
        keep_first(
            &mut services,
            draft.services,
            "service",
            |s| s.config.origin(),
            w,
        );
        keep_first(
            &mut transports,
            draft.transports,
            "serversTransport",
            |t| &t.origin,
            w,
        );
        keep_first(&mut middlewares, draft.middlewares, "middleware", |o| o, w);
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
