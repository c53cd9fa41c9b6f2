//! Traefik's entrypoint models (`pkg/server/aggregator.go`, `applyModel`):
//! an entrypoint with `http.middlewares` or `http.tls` turns each router
//! it serves into a router of its own there, whose middlewares are the
//! entrypoint's followed by the router's, and which serves TLS with the
//! entrypoint's settings unless it has a `tls` section itself. A router on
//! several entrypoints is split: the copy for a modelled entrypoint `ep`
//! is named `ep-<router>` (the API shows it so), and the router keeps its
//! name on the entrypoints without a model.
//!
//! Only root routers have models: a child router (`parentRefs`) is kept
//! as it is, its `parentRefs` naming the routers a split parent became.
//!
//! A step of the load, after the dynamic configuration is validated:
//! plain data in, plain data out. A copy naming a middleware that does not
//! exist (or is disabled) is disabled, keeping its place, as any router.

use std::collections::BTreeMap;

use super::isolate::{DisabledElement, ElementKind};
use super::{Loaded, RouterTls};
use crate::config::{ConfigError, EntryPointConfig, StaticConfig};

/// Applies the models of `static_cfg`'s entrypoints to `loaded`'s routers.
pub fn apply_entry_point_models(loaded: &mut Loaded, static_cfg: &StaticConfig) {
    let has_model = |e: &&EntryPointConfig| {
        !e.http_middlewares.is_empty() || e.http_tls.is_some() || e.encoded_characters.is_some()
    };
    let modelled = |name: &str| {
        static_cfg
            .entry_points
            .iter()
            .find(|e| e.name == name)
            .filter(has_model)
    };
    if !static_cfg.entry_points.iter().any(|e| has_model(&e)) {
        return;
    }
    let default_eps = static_cfg.default_entry_points();
    let config = &mut loaded.config;
    let routers = std::mem::take(&mut config.routers);
    let mut disabled_now: Vec<DisabledElement> = Vec::new();
    // The routers a split parent became, for its children's `parentRefs`.
    let mut split: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, router) in routers {
        // Only root routers have models (a child is on no entrypoint).
        if !router.parent_refs.is_empty() {
            config.routers.insert(name, router);
            continue;
        }
        let eps = if router.entry_points.is_empty() {
            default_eps.clone()
        } else {
            router.entry_points.clone()
        };
        if !eps.iter().any(|e| modelled(e).is_some()) {
            config.routers.insert(name, router);
            continue;
        }
        // The router's own record when it was disabled by its errors: each
        // router it becomes carries it.
        let own: Option<DisabledElement> = config
            .disabled
            .iter()
            .find(|d| d.kind == ElementKind::Router && d.name == name)
            .cloned();
        let renamed = |new: &str| {
            own.clone().map(|mut d| {
                d.name = new.to_owned();
                d
            })
        };
        let mut rest = Vec::new();
        for ep_name in &eps {
            let Some(ep) = modelled(ep_name) else {
                rest.push(ep_name.clone());
                continue;
            };
            let mut cp = router.clone();
            cp.name = if eps.len() > 1 {
                let copy = format!("{ep_name}-{name}");
                split.entry(name.clone()).or_default().push(copy.clone());
                copy
            } else {
                name.clone()
            };
            cp.entry_points = vec![ep_name.clone()];
            if cp.tls.is_none() {
                cp.tls = ep.http_tls.as_ref().map(|t| RouterTls {
                    options: t.options.clone(),
                });
            }
            if ep.encoded_characters.is_some() {
                cp.denied_encoded.clone_from(&ep.encoded_characters);
            }
            cp.middlewares = ep
                .http_middlewares
                .iter()
                .map(|m| m.name.clone())
                .chain(router.middlewares.iter().cloned())
                .collect();
            let mut missing = Vec::new();
            if !cp.disabled {
                for m in &ep.http_middlewares {
                    if config.middlewares.contains_key(&m.name) {
                        continue;
                    }
                    let why = if config
                        .disabled
                        .iter()
                        .any(|d| d.kind == ElementKind::Middleware && d.name == m.name)
                    {
                        "has an error"
                    } else {
                        "does not exist"
                    };
                    missing.push(ConfigError {
                        file: m.origin.file.clone(),
                        key: m.key.clone(),
                        line: Some(m.origin.line),
                        column: Some(m.origin.column),
                        message: format!(
                            "the middleware {:?} of entrypoint {ep_name:?} {why}: router {:?} is disabled",
                            m.name, cp.name
                        ),
                    });
                }
            }
            if let Some(d) = renamed(&cp.name) {
                disabled_now.push(d);
            } else if !missing.is_empty() {
                cp.disabled = true;
                loaded.errors.extend(missing.iter().cloned());
                disabled_now.push(DisabledElement {
                    kind: ElementKind::Router,
                    name: cp.name.clone(),
                    origin: cp.origin.clone(),
                    errors: missing,
                    because: Vec::new(),
                    keeps_place: true,
                });
            }
            config.routers.insert(cp.name.clone(), cp);
        }
        if !rest.is_empty() {
            let mut kept = router;
            kept.entry_points = rest;
            disabled_now.extend(renamed(&name));
            config.routers.insert(name.clone(), kept);
        }
        // The router's own entry is replaced by those of what it became.
        config
            .disabled
            .retain(|d| !(d.kind == ElementKind::Router && d.name == name));
    }
    // As Traefik rewrites them: each parent still there, and the routers a
    // split one became (they keep its children).
    if !split.is_empty() {
        let names: Vec<String> = config.routers.keys().cloned().collect();
        for r in config.routers.values_mut() {
            if r.parent_refs.iter().any(|p| split.contains_key(p)) {
                r.parent_refs = r
                    .parent_refs
                    .iter()
                    .flat_map(|p| {
                        let kept = names.contains(p).then(|| p.clone());
                        kept.into_iter()
                            .chain(split.get(p).into_iter().flatten().cloned())
                    })
                    .collect();
            }
        }
    }
    config.disabled.extend(disabled_now);
    config
        .disabled
        .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
}
