//! Multi-layer routing (`http.routers.<name>.parentRefs`), checked as
//! Traefik 3.7 parses its router tree (`pkg/server/router/router.go`,
//! `ParseRouterTree`): the routers naming a parent become its children; a
//! root router (no `parentRefs`) is the top of a tree; a walk from the
//! roots in name order, children in name order, finds the links closing a
//! cycle and cuts them (the router whose child link closes it gets the
//! error); then a router no root reaches, a router with neither service nor
//! children, and a router with both are errors. A child may not have
//! `tls`, `observability` or `entryPoints` (its root's apply). Traefik's messages, with its
//! qualified names (`parent@file`).
//!
//! Traefik builds a parent's child muxer from the children without errors
//! and drops the parent when none is left ("no child routers could be
//! added to muxer"): [`disable_childless`] disables such a parent, after
//! every step that disables routers. A disabled child keeps its place
//! among its parent's children and answers 503 (Traefik leaves it out, so
//! its requests reach a sibling or a 404): the project's rule for every
//! disabled router.
//!
//! Control plane only: nothing here runs per request.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::super::error::ConfigError;
use super::super::node::Pos;
use super::isolate::{DisabledElement, ElementKind};
use super::merge::err_at;
use super::{DynamicConfig, Ref, RouterConfig};

/// What the tree check needs of one router besides its config.
pub(super) struct Links {
    /// Its key path (`http.routers.api`).
    pub(super) path: String,
    /// Each parent named, resolved (`@file` removed), with its reference.
    pub(super) parents: Vec<(String, Ref)>,
    /// Where its `tls` section is.
    pub(super) tls_at: Option<(String, Pos)>,
    /// Where its `entryPoints` list is.
    pub(super) entry_points_at: Option<(String, Pos)>,
    /// Where its `observability` section is.
    pub(super) observability_at: Option<(String, Pos)>,
    /// Where the router's name is.
    pub(super) pos: Pos,
    /// It names a service (resolved or not: an unknown one is an error of
    /// its own already).
    pub(super) has_service: bool,
}

fn qualified(name: &str) -> String {
    super::aggregate::qualified(name).into_owned()
}

/// Fills each router's `parent_refs` and `children` and reports the tree's
/// errors (each at its router); `defined` names every router written (one
/// whose rule did not parse is in no tree, but exists). Returns, for each child router, whether it
/// has a place (a parent that exists): one without is disabled without
/// keeping a place.
pub(super) fn check_tree(
    routers: &mut BTreeMap<String, RouterConfig>,
    links: &BTreeMap<String, Links>,
    defined: &BTreeSet<&str>,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, bool> {
    let mut placed = BTreeMap::new();
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (name, router) in routers.iter_mut() {
        let Some(l) = links.get(name) else { continue };
        let file = router.origin.file.clone();
        if l.parents.is_empty() {
            roots.push(name.clone());
            continue;
        }
        let mut has_parent = false;
        for (parent, r) in &l.parents {
            if !router.parent_refs.contains(parent) {
                router.parent_refs.push(parent.clone());
            }
            if links.contains_key(parent) {
                has_parent = true;
                let kids = children.entry(parent.clone()).or_default();
                if !kids.contains(name) {
                    kids.push(name.clone());
                }
            } else if !parent.contains('@') && !defined.contains(parent.as_str()) {
                // (With a provider, refused when it was resolved.)
                errors.push(err_at(
                    &file,
                    &r.path,
                    r.pos,
                    format!("parent router {:?} does not exist", qualified(parent)),
                ));
            }
        }
        placed.insert(name.clone(), has_parent);
        // One of these, as Traefik reports the first only.
        if let Some((path, pos)) = &l.tls_at {
            errors.push(err_at(
                &file,
                path,
                *pos,
                "non-root router cannot have TLS configuration".to_owned(),
            ));
        } else if let Some((path, pos)) = &l.observability_at {
            errors.push(err_at(
                &file,
                path,
                *pos,
                "non-root router cannot have Observability configuration".to_owned(),
            ));
        } else if let Some((path, pos)) = &l.entry_points_at {
            errors.push(err_at(
                &file,
                path,
                *pos,
                "non-root router cannot have Entrypoints configuration".to_owned(),
            ));
        }
    }
    for kids in children.values_mut() {
        kids.sort();
    }

    let mut walk = Walk {
        children: &mut children,
        visited: BTreeSet::new(),
        on_path: Vec::new(),
        cycles: Vec::new(),
    };
    for root in &roots {
        walk.visit(root);
    }
    let Walk {
        visited, cycles, ..
    } = walk;
    let report = |name: &str, message: String, errors: &mut Vec<ConfigError>| {
        if let (Some(r), Some(l)) = (routers.get(name), links.get(name)) {
            errors.push(err_at(&r.origin.file, &l.path, l.pos, message));
        }
    };
    for (guilty, cycle) in cycles {
        let path: Vec<String> = cycle.iter().map(|n| qualified(n)).collect();
        report(
            &guilty,
            format!(
                "cyclic reference detected in router tree: {}",
                path.join(" -> ")
            ),
            errors,
        );
    }
    for name in links.keys() {
        if !routers.contains_key(name) {
            continue;
        }
        let kids = children.get(name).map_or(&[][..], Vec::as_slice);
        let has_service = links[name].has_service;
        if !visited.contains(name) {
            report(name, "router is not reachable".to_owned(), errors);
        } else if !has_service && kids.is_empty() {
            report(
                name,
                "router has no service and no child routers".to_owned(),
                errors,
            );
        } else if has_service && !kids.is_empty() {
            report(
                name,
                "router has both a service and is referenced as a parent by other routers"
                    .to_owned(),
                errors,
            );
        }
    }
    for (name, kids) in children {
        if let Some(r) = routers.get_mut(&name) {
            r.children = kids;
        }
    }
    placed
}

/// The depth-first walk from the roots.
struct Walk<'a> {
    children: &'a mut BTreeMap<String, Vec<String>>,
    visited: BTreeSet<String>,
    on_path: Vec<String>,
    /// Each link cut: the router holding it, and the cycle's path.
    cycles: Vec<(String, Vec<String>)>,
}

impl Walk<'_> {
    fn visit(&mut self, name: &str) {
        if let Some(start) = self.on_path.iter().position(|n| n == name) {
            // The last router on the path links back to `name`: that link
            // is cut, and that router holds the error.
            let mut cycle: Vec<String> = self.on_path[start..].to_vec();
            cycle.push(name.to_owned());
            let guilty = self.on_path.last().cloned().unwrap_or_default();
            if let Some(kids) = self.children.get_mut(&guilty) {
                kids.retain(|k| k != name);
            }
            self.cycles.push((guilty, cycle));
            return;
        }
        if !self.visited.insert(name.to_owned()) {
            return;
        }
        self.on_path.push(name.to_owned());
        let kids = self.children.get(name).cloned().unwrap_or_default();
        for kid in &kids {
            self.visit(kid);
        }
        self.on_path.pop();
    }
}

/// Disables each parent router all of whose children are disabled (or
/// gone), as Traefik drops a parent whose child muxer would be empty, until
/// none is left; each keeps its place and answers 503. Returns the errors
/// added (also in the disabled elements).
pub(super) fn disable_childless(config: &mut DynamicConfig) -> Vec<ConfigError> {
    let mut added = Vec::new();
    loop {
        let found: Vec<(String, usize)> = config
            .routers
            .iter()
            .filter(|(_, r)| !r.disabled && !r.children.is_empty())
            .filter(|(_, r)| {
                r.children
                    .iter()
                    .all(|c| config.routers.get(c).is_none_or(|c| c.disabled))
            })
            .map(|(name, r)| (name.clone(), r.children.len()))
            .collect();
        if found.is_empty() {
            break;
        }
        for (name, skipped) in found {
            let Some(r) = config.routers.get_mut(&name) else {
                continue;
            };
            r.disabled = true;
            let error = err_at(
                Path::new(&r.origin.file),
                &format!("http.routers.{name}"),
                Pos {
                    line: r.origin.line,
                    column: r.origin.column,
                },
                format!(
                    "building child routers muxer: no child routers could be added to muxer ({skipped} skipped)"
                ),
            );
            added.push(error.clone());
            config.disabled.push(DisabledElement {
                kind: ElementKind::Router,
                name,
                origin: r.origin.clone(),
                errors: vec![error],
                because: Vec::new(),
                keeps_place: true,
            });
        }
    }
    if !added.is_empty() {
        config
            .disabled
            .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    }
    added
}
