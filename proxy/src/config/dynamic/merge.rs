//! Merging the files' drafts and cross-checking them: the first definition
//! of a name wins (as in Traefik's file provider, later ones warned
//! about), every reference (a router's service, entrypoints, middlewares
//! and TLS options; a service's children, transport and middlewares) is
//! resolved with its provider suffix checked, and the errors are given to
//! the elements holding them (`isolate.rs`). Nothing here reads files or
//! touches the network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::super::decode::suggest;
use super::super::error::{ConfigError, ConfigErrors, ConfigWarning, Origin, sort_warnings};
use super::super::node::Pos;
use super::aggregate::EXTERNAL_PROVIDERS;
use super::middlewares::MiddlewareDraft;
use super::routers::{self, RouterDraft, internal_service};
use super::services::ServiceDraft;
use super::tls::TlsMerge;
use super::{
    DynamicConfig, FileDraft, Loaded, Ref, ServersTransportConfig, ServiceConfig, composite,
    isolate, layers, middlewares,
};

/// Error helper for items whose file is only known from their origin.
/// A service reference without its provider, and whether that service
/// exists (an unknown one is an error, with a did-you-mean); `None` when
/// the provider part was refused.
pub(super) fn service_ref(
    r: &Ref,
    file: &Path,
    names: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, bool)> {
    let s = strip_provider(r, file, "service", errors)?;
    let known = names.contains(&s);
    if !known {
        let hint = suggest(&s, names.iter().map(String::as_str));
        errors.push(err_at(
            file,
            &r.path,
            r.pos,
            format!("unknown service {s:?}{hint}"),
        ));
    }
    Some((s, known))
}

pub(super) fn err_at(file: &Path, key: &str, pos: Pos, message: String) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        key: key.to_owned(),
        line: (pos.line > 0).then_some(pos.line),
        column: (pos.line > 0).then_some(pos.column),
        message,
    }
}

pub(super) fn dup_warning(
    kind: &str,
    name: &str,
    kept: &Origin,
    dropped: &Origin,
) -> ConfigWarning {
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
pub(super) fn keep_first<T>(
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

/// Resolves `name@provider`: no provider or `@file` names the file
/// provider's element (kept bare), another provider's suffix is kept
/// (that provider's elements are named so, `aggregate.rs`).
pub(super) fn strip_provider(
    r: &Ref,
    file: &Path,
    kind: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    match r.name.rsplit_once('@') {
        None => Some(r.name.clone()),
        Some((name, "file")) => Some(name.to_owned()),
        Some((_, "internal")) => {
            let message = routers::internal_reference_error(kind, &r.name);
            errors.push(err_at(file, &r.path, r.pos, message));
            None
        }
        Some((_, provider)) if EXTERNAL_PROVIDERS.contains(&provider) => Some(r.name.clone()),
        Some((_, provider)) => {
            errors.push(err_at(
                file,
                &r.path,
                r.pos,
                format!(
                    "{kind} {:?}: provider {provider:?} is not supported (only @file, @{})",
                    r.name,
                    EXTERNAL_PROVIDERS.join(", @")
                ),
            ));
            None
        }
    }
}

/// The middlewares `refs` name (a router's or a service's), provider
/// suffixes checked; an unknown one is an error at its reference (its
/// holder is disabled) and left out.
fn resolve_middlewares(
    refs: Vec<Ref>,
    file: &Path,
    defined: &BTreeMap<String, Origin>,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        match strip_provider(&r, file, "middleware", errors) {
            Some(m) if defined.contains_key(&m) => out.push(m),
            Some(m) => {
                let hint = suggest(&m, defined.keys().map(String::as_str));
                errors.push(err_at(
                    file,
                    &r.path,
                    r.pos,
                    format!("unknown middleware {m:?}{hint}"),
                ));
            }
            None => {}
        }
    }
    out
}

pub(super) fn finish(
    drafts: Vec<FileDraft>,
    entry_points: &[String],
    mut errors: Vec<ConfigError>,
    mut warnings: Vec<ConfigWarning>,
) -> Loaded {
    // First definition of a name wins, as in Traefik's file provider.
    let mut routers: BTreeMap<String, RouterDraft> = BTreeMap::new();
    let mut services: BTreeMap<String, ServiceDraft> = BTreeMap::new();
    let mut transports: BTreeMap<String, ServersTransportConfig> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, Origin> = BTreeMap::new();
    let mut middleware_drafts: BTreeMap<String, MiddlewareDraft> = BTreeMap::new();
    let mut service_names: BTreeSet<String> = BTreeSet::new();
    let mut transport_names: BTreeSet<String> = BTreeSet::new();
    let mut tls = TlsMerge::default();
    let mut elements = Vec::new();
    for draft in drafts {
        tls.add(draft.tls, &mut warnings);
        service_names.extend(draft.service_names);
        transport_names.extend(draft.transport_names);
        elements.extend(draft.elements);
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
        // Its duplicates were warned about just above.
        let mut ignored = Vec::new();
        keep_first(
            &mut middleware_drafts,
            draft.middleware_drafts,
            "middleware",
            |m| &m.origin,
            &mut ignored,
        );
    }

    // References are resolved first (their errors belong to the element
    // holding them), then errors are given to their elements.
    let mut config = DynamicConfig::default();
    let mut service_transport: BTreeMap<String, String> = BTreeMap::new();
    let mut service_children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut child_refs = BTreeMap::new();
    let mut tracking = Vec::new();
    for (name, draft) in services {
        let ServiceDraft {
            config: mut svc,
            transport,
            children,
            middlewares: mws,
        } = draft;
        let file = svc.origin().file.clone();
        if !mws.is_empty() {
            let written = mws.iter().map(|r| r.name.clone()).collect();
            config
                .service_middlewares_written
                .insert(name.clone(), written);
        }
        let resolved = resolve_middlewares(mws, &file, &middlewares, &mut errors);
        if !resolved.is_empty() {
            config.service_middlewares.insert(name.clone(), resolved);
        }
        if let (Some(r), ServiceConfig::LoadBalancer(lb)) = (transport, &mut svc)
            && let Some(resolved) = strip_provider(&r, &file, "serversTransport", &mut errors)
        {
            if transport_names.contains(&resolved) {
                service_transport.insert(name.clone(), resolved.clone());
                lb.servers_transport = Some(resolved);
            } else {
                let hint = suggest(&resolved, transport_names.iter().map(String::as_str));
                errors.push(err_at(
                    &file,
                    &r.path,
                    r.pos,
                    format!("unknown serversTransport {resolved:?}{hint}"),
                ));
            }
        }
        let mut resolved_children = Vec::with_capacity(children.len());
        for r in &children {
            // An unknown child keeps its name: the parent is disabled
            // because of it.
            match service_ref(r, &file, &service_names, &mut errors) {
                Some((s, _)) => resolved_children.push(s),
                None => resolved_children.push(r.name.clone()),
            }
        }
        match &mut svc {
            ServiceConfig::LoadBalancer(_) => {}
            ServiceConfig::Weighted(w) | ServiceConfig::HighestRandomWeight(w) => {
                for (child, resolved) in w.services.iter_mut().zip(&resolved_children) {
                    child.service.clone_from(resolved);
                }
            }
            ServiceConfig::Failover(f) => {
                f.service.clone_from(&resolved_children[0]);
                f.fallback.clone_from(&resolved_children[1]);
            }
            ServiceConfig::Mirroring(m) => {
                m.service.clone_from(&resolved_children[0]);
                for (mirror, resolved) in m.mirrors.iter_mut().zip(&resolved_children[1..]) {
                    mirror.service.clone_from(resolved);
                }
            }
        }
        if let Some(first) = children.first() {
            child_refs.insert(name.clone(), (file.clone(), first.path.clone(), first.pos));
            service_children.insert(name.clone(), resolved_children);
            tracking.push((name.clone(), file, children));
        }
        config.services.insert(name, svc);
    }
    composite::reject_cycles(&service_children, &child_refs, &mut errors);
    composite::check_tracking(&config.services, &tracking, &mut errors);
    let mut placed: BTreeMap<String, bool> = BTreeMap::new();
    let mut tree: BTreeMap<String, layers::Links> = BTreeMap::new();
    for (name, draft) in routers {
        let RouterDraft {
            config: mut router,
            service,
            entry_points: eps,
            middlewares: mws,
            tls_options: tls_ref,
            parent_refs,
            path,
            tls_at,
            entry_points_at,
            observability_at,
        } = draft;
        let file = router.origin.file.clone();
        let parents = parent_refs
            .into_iter()
            .map(|r| {
                // A provider refused is reported here; the router stays a
                // child (of a parent that does not exist).
                let name = strip_provider(&r, &file, "router", &mut errors)
                    .unwrap_or_else(|| r.name.clone());
                (name, r)
            })
            .collect();
        tree.insert(
            name.clone(),
            layers::Links {
                path,
                parents,
                tls_at,
                entry_points_at,
                observability_at,
                pos: Pos {
                    line: router.origin.line,
                    column: router.origin.column,
                },
                has_service: service.is_some(),
            },
        );
        // An internal service is kept with its suffix; whether the static
        // configuration provides it is `isolate::disable_missing_internal`'s.
        if let Some(r) = service {
            if let Some(s) = internal_service(&r.name) {
                router.service = s;
            } else if let Some((s, true)) = service_ref(&r, &file, &service_names, &mut errors) {
                router.service = s;
            }
        }
        // A router listed on entrypoints that do not exist is placed on
        // those that do, and nowhere when none does.
        let mut any_known = eps.is_empty();
        for r in eps {
            if entry_points.contains(&r.name) {
                router.entry_points.push(r.name);
                any_known = true;
            } else {
                let hint = suggest(&r.name, entry_points.iter().map(String::as_str));
                errors.push(err_at(
                    &file,
                    &r.path,
                    r.pos,
                    format!("unknown entrypoint {:?}{hint}", r.name),
                ));
            }
        }
        router.middlewares = resolve_middlewares(mws, &file, &middlewares, &mut errors);
        if let (Some(r), Some(t)) = (tls_ref, router.tls.as_mut()) {
            tls.resolve(&r, t, &file, &mut errors);
        }
        placed.insert(name.clone(), any_known);
        config.routers.insert(name, router);
    }
    // A child router has its place under its parents, not on entrypoints.
    // A parent whose rule did not parse exists (it is disabled).
    let defined: BTreeSet<&str> = elements
        .iter()
        .filter(|e| e.kind == isolate::ElementKind::Router)
        .map(|e| e.name.as_str())
        .collect();
    placed.extend(layers::check_tree(
        &mut config.routers,
        &tree,
        &defined,
        &mut errors,
    ));
    config.servers_transports = transports;
    config.tls = tls.config;
    let (mws, middleware_needs) =
        middlewares::resolve(middleware_drafts, &middlewares, &service_names, &mut errors);
    config.middlewares = mws;

    let usable = isolate::disable(
        &mut config,
        &errors,
        &elements,
        &isolate::Links {
            service_transport: &service_transport,
            service_children: &service_children,
            placed: &placed,
            middlewares: &middlewares,
            middleware_needs: &middleware_needs,
        },
    );
    errors.extend(layers::disable_childless(&mut config));
    sort_warnings(&mut warnings);
    Loaded {
        config,
        errors: ConfigErrors::sorted(errors).0,
        warnings,
        usable,
    }
}
