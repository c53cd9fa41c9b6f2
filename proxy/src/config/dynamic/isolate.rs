//! Error isolation, as Traefik does it (and safer): an error that belongs to
//! one element (a router, service, middleware, servers transport, TLS
//! options other than `default`) disables
//! that element and every element that references it; the others are
//! served. An error that belongs to no element (a file that does not parse,
//! an unknown top-level section) makes the whole load unusable, and the
//! provider keeps its last good configuration.
//!
//! Which element an error belongs to is decided by its file and key path:
//! the element whose path (`http.routers.api`) is the longest prefix of the
//! error's key. Any element kind a schema adds only needs to be listed with
//! its path ([`Element`]); references are followed in `dynamic/mod.rs`.
//!
//! Control plane only: nothing here runs per request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use super::super::error::{ConfigError, Origin};
use super::DynamicConfig;

/// The kinds of configuration element an error can disable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ElementKind {
    /// `http.routers.<name>`.
    Router,
    /// `http.services.<name>`.
    Service,
    /// `http.middlewares.<name>`.
    Middleware,
    /// `http.serversTransports.<name>`.
    ServersTransport,
    /// `tls.options.<name>` (not `default`: an error there refuses the
    /// load, since every TLS connection without other options uses them).
    TlsOptions,
}

impl ElementKind {
    /// The kind as logs, metrics and the API name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ElementKind::Router => "router",
            ElementKind::Service => "service",
            ElementKind::Middleware => "middleware",
            ElementKind::ServersTransport => "serversTransport",
            ElementKind::TlsOptions => "tlsOptions",
        }
    }

    /// Every kind, for metrics that report each (zero included).
    pub const ALL: [ElementKind; 5] = [
        ElementKind::Router,
        ElementKind::Service,
        ElementKind::Middleware,
        ElementKind::ServersTransport,
        ElementKind::TlsOptions,
    ];
}

impl fmt::Display for ElementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An element that is not served, with why: for logs, metrics, `proxy
/// check` and the API (which shows it as `disabled` with its errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledElement {
    /// What it is.
    pub kind: ElementKind,
    /// Its name as configured.
    pub name: String,
    /// Where its name is written.
    pub origin: Origin,
    /// Its own errors (each also in the load's error list).
    pub errors: Vec<ConfigError>,
    /// The disabled elements it references (`service "api"`), whose errors
    /// are theirs: one cause, one message.
    pub because: Vec<String>,
    /// A router whose rule parsed keeps its place among the routers and
    /// answers 503 for the requests it matches, so they never fall through
    /// to a lower-priority router (Traefik lets them).
    pub keeps_place: bool,
}

impl fmt::Display for DisabledElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} ({}) is disabled",
            self.kind, self.name, self.origin
        )?;
        if self.keeps_place {
            f.write_str(" and answers 503 for the requests it matches")?;
        }
        let mut why: Vec<String> = self.errors.iter().map(|e| e.message.clone()).collect();
        why.extend(self.because.iter().map(|b| format!("{b} is disabled")));
        if !why.is_empty() {
            write!(f, ": {}", why.join("; "))?;
        }
        Ok(())
    }
}

/// One element as defined in a file: where errors about it are found.
#[derive(Debug, Clone)]
pub(super) struct Element {
    pub(super) kind: ElementKind,
    pub(super) name: String,
    pub(super) file: PathBuf,
    /// Its key path, e.g. `http.routers.api`.
    pub(super) path: String,
}

/// Errors split by owner: each element's own, and those of no element.
#[derive(Debug, Default)]
pub(super) struct Attributed {
    pub(super) by_element: BTreeMap<(ElementKind, String), Vec<ConfigError>>,
    pub(super) file_level: Vec<ConfigError>,
}

impl Attributed {
    /// Whether `kind` `name` has errors of its own.
    pub(super) fn has(&self, kind: ElementKind, name: &str) -> bool {
        self.by_element.contains_key(&(kind, name.to_owned()))
    }

    /// The own errors of `kind` `name`.
    pub(super) fn take(&mut self, kind: ElementKind, name: &str) -> Vec<ConfigError> {
        self.by_element
            .remove(&(kind, name.to_owned()))
            .unwrap_or_default()
    }
}

/// Disables what could not be built once the load was decoded (read and
/// built by `crate::tls`): each TLS options entry and servers transport of
/// `unbuilt`, then the services using such a transport (and the services
/// sending to those), each `forwardAuth` whose TLS cannot be built (and
/// the chains listing it), then the routers using a disabled service,
/// middleware or options, each keeping its place. An entry without an element (a
/// certificate that cannot be read) disables nothing: Traefik leaves the
/// certificate out and serves the rest. Every error joins the load's.
pub fn disable_unbuilt(loaded: &mut super::Loaded, unbuilt: &[crate::tls::Unbuilt]) {
    let config = &mut loaded.config;
    let mut new = Vec::new();
    let mut bad_options = BTreeSet::new();
    let mut bad_transports = BTreeSet::new();
    let mut bad_middlewares = BTreeSet::new();
    for crate::tls::Unbuilt { element, error } in unbuilt {
        loaded.errors.push(error.clone());
        let Some((kind, name)) = element else {
            continue;
        };
        let origin = match kind {
            ElementKind::TlsOptions => config.tls.options.remove(name).map(|o| o.origin),
            ElementKind::ServersTransport => {
                config.servers_transports.remove(name).map(|t| t.origin)
            }
            ElementKind::Middleware => {
                config.middlewares.remove(name);
                Some(Origin {
                    file: error.file.clone(),
                    line: error.line.unwrap_or(0),
                    column: error.column.unwrap_or(0),
                })
            }
            _ => None,
        };
        match kind {
            ElementKind::TlsOptions => bad_options.insert(name.clone()),
            ElementKind::Middleware => bad_middlewares.insert(name.clone()),
            _ => bad_transports.insert(name.clone()),
        };
        new.push(DisabledElement {
            kind: *kind,
            name: name.clone(),
            origin: origin.unwrap_or_default(),
            errors: vec![error.clone()],
            because: Vec::new(),
            keeps_place: false,
        });
    }
    // The chains listing a disabled middleware, until none is left.
    loop {
        let found: Vec<(String, Vec<String>)> = config
            .middlewares
            .iter()
            .filter_map(|(name, m)| {
                let super::MiddlewareConfig::Chain(members) = m else {
                    return None;
                };
                let because: Vec<String> = members
                    .iter()
                    .filter(|c| bad_middlewares.contains(*c))
                    .map(|c| format!("middleware {c:?}"))
                    .collect();
                (!because.is_empty()).then(|| (name.clone(), because))
            })
            .collect();
        if found.is_empty() {
            break;
        }
        for (name, because) in found {
            config.middlewares.remove(&name);
            new.push(DisabledElement {
                kind: ElementKind::Middleware,
                name: name.clone(),
                origin: Origin::default(),
                errors: Vec::new(),
                because,
                keeps_place: false,
            });
            bad_middlewares.insert(name);
        }
    }
    let mut bad_services = BTreeSet::new();
    loop {
        let found: Vec<(String, Vec<String>)> = config
            .services
            .iter()
            .filter_map(|(name, s)| {
                let mut because = Vec::new();
                if let super::ServiceConfig::LoadBalancer(lb) = s
                    && let Some(t) = lb
                        .servers_transport
                        .as_ref()
                        .filter(|t| bad_transports.contains(*t))
                {
                    because.push(format!("serversTransport {t:?}"));
                }
                because.extend(
                    s.children()
                        .into_iter()
                        .filter(|c| bad_services.contains(*c))
                        .map(|c| format!("service {c:?}")),
                );
                because.extend(middlewares_because(config, name, |m| {
                    bad_middlewares.contains(m)
                }));
                (!because.is_empty()).then(|| (name.clone(), because))
            })
            .collect();
        if found.is_empty() {
            break;
        }
        for (name, because) in found {
            let origin = config.services.remove(&name).map(|s| s.origin().clone());
            new.push(DisabledElement {
                kind: ElementKind::Service,
                name: name.clone(),
                origin: origin.unwrap_or_default(),
                errors: Vec::new(),
                because,
                keeps_place: false,
            });
            bad_services.insert(name);
        }
    }
    for (name, r) in config.routers.iter_mut().filter(|(_, r)| !r.disabled) {
        let because = router_because(
            r,
            &bad_services,
            |m| bad_middlewares.contains(m),
            &bad_options,
        );
        if because.is_empty() {
            continue;
        }
        r.disabled = true;
        new.push(DisabledElement {
            kind: ElementKind::Router,
            name: name.clone(),
            origin: r.origin.clone(),
            errors: Vec::new(),
            because,
            keeps_place: true,
        });
    }
    config.disabled.extend(new);
    config
        .disabled
        .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    // The parents left without a child served.
    let childless = super::layers::disable_childless(config);
    loaded.errors.extend(childless);
    loaded.errors = super::super::error::ConfigErrors::sorted(std::mem::take(&mut loaded.errors)).0;
}

/// Disables the routers whose service is an `@internal` one the static
/// configuration does not provide (`api@internal` without an `api`
/// section), as Traefik does; each keeps its place (its rule parsed) and
/// answers 503. `available` lists the internal services that exist
/// (`api`, `noop`...).
pub fn disable_missing_internal(loaded: &mut super::Loaded, available: &[&str]) {
    let config = &mut loaded.config;
    for (name, r) in config.routers.iter_mut() {
        let Some(service) = r.service.strip_suffix("@internal") else {
            continue;
        };
        if r.disabled || available.contains(&service) {
            continue;
        }
        let needs = match service {
            "dashboard" => "the static api section with dashboard on",
            "prometheus" => "the static metrics.prometheus section",
            "ping" => "the static ping section",
            _ => "the static api section",
        };
        let error = ConfigError {
            file: r.origin.file.clone(),
            key: format!("http.routers.{name}.service"),
            line: Some(r.origin.line),
            column: Some(r.origin.column),
            message: format!(
                "the service {:?} does not exist: it needs {needs}",
                r.service
            ),
        };
        r.disabled = true;
        loaded.errors.push(error.clone());
        config.disabled.push(DisabledElement {
            kind: ElementKind::Router,
            name: name.clone(),
            origin: r.origin.clone(),
            errors: vec![error],
            because: Vec::new(),
            keeps_place: true,
        });
    }
    config
        .disabled
        .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let childless = super::layers::disable_childless(config);
    loaded.errors.extend(childless);
}

/// Why router `r` is disabled: the disabled service, middlewares
/// (`bad_middleware`) and TLS options it uses; empty when none.
fn router_because(
    r: &super::RouterConfig,
    bad_services: &BTreeSet<String>,
    bad_middleware: impl Fn(&str) -> bool,
    bad_options: &BTreeSet<String>,
) -> Vec<String> {
    let mut because = Vec::new();
    if bad_services.contains(&r.service) {
        because.push(format!("service {:?}", r.service));
    }
    for m in r.middlewares.iter().filter(|m| bad_middleware(m)) {
        because.push(format!("middleware {m:?}"));
    }
    if let Some(o) = r
        .tls
        .as_ref()
        .and_then(|t| t.options.as_ref())
        .filter(|o| bad_options.contains(*o))
    {
        because.push(format!("TLS options {o:?}"));
    }
    because
}

/// Whether `key` is `path` or a key under it.
fn under(key: &str, path: &str) -> bool {
    key.strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// Gives each error to the element of its file whose path is the longest
/// prefix of its key.
pub(super) fn attribute(errors: &[ConfigError], elements: &[Element]) -> Attributed {
    let mut out = Attributed::default();
    for e in errors {
        let owner = elements
            .iter()
            .filter(|el| el.file == e.file && under(&e.key, &el.path))
            .max_by_key(|el| el.path.len());
        match owner {
            Some(el) => out
                .by_element
                .entry((el.kind, el.name.clone()))
                .or_default()
                .push(e.clone()),
            None => out.file_level.push(e.clone()),
        }
    }
    out
}

/// Why service `name` is disabled by its own middlewares: each one
/// `bad` says is disabled.
fn middlewares_because<'c>(
    config: &'c DynamicConfig,
    name: &str,
    bad: impl Fn(&str) -> bool + 'c,
) -> impl Iterator<Item = String> + 'c {
    config
        .service_middlewares
        .get(name)
        .into_iter()
        .flatten()
        .filter(move |m| bad(m))
        .map(|m| format!("middleware {m:?}"))
}

/// What `finish` resolved that the disabling follows.
pub(super) struct Links<'a> {
    /// Each service's servers transport, by name.
    pub(super) service_transport: &'a BTreeMap<String, String>,
    /// The services each weighted or failover service sends to.
    pub(super) service_children: &'a BTreeMap<String, Vec<String>>,
    /// Each router with a parsed rule: whether it has an entrypoint to be
    /// placed on (it keeps its place when disabled).
    pub(super) placed: &'a BTreeMap<String, bool>,
    /// Where each middleware is defined.
    pub(super) middlewares: &'a BTreeMap<String, Origin>,
    /// The middlewares each `chain` lists.
    pub(super) middleware_needs: &'a BTreeMap<String, Vec<String>>,
}

/// The names of `elements` of `kind`, sorted, each once.
fn names_of(elements: &[Element], kind: ElementKind) -> BTreeSet<String> {
    elements
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.name.clone())
        .collect()
}

/// Disables in `config` every element with an error of its own in
/// `errors`, then what references a disabled element (transports and
/// middlewares, then the services using them, then the routers using those services,
/// disabled middlewares or disabled TLS options), listing them in `config.disabled`. A disabled
/// router that has a place keeps it, marked disabled; every other disabled
/// element leaves its map. `false` when an error belongs to no element
/// (the load is unusable).
pub(super) fn disable(
    config: &mut DynamicConfig,
    errors: &[ConfigError],
    elements: &[Element],
    links: &Links<'_>,
) -> bool {
    let mut own = attribute(errors, elements);
    let usable = own.file_level.is_empty();
    let mut disabled = Vec::new();
    let mut disable = |kind: ElementKind,
                       name: &str,
                       origin: Origin,
                       because: Vec<String>,
                       keeps_place: bool,
                       own: &mut Attributed| {
        disabled.push(DisabledElement {
            kind,
            name: name.to_owned(),
            origin,
            errors: own.take(kind, name),
            because,
            keeps_place,
        });
    };
    let origin_of = |kind: ElementKind, name: &str, own: &Attributed| {
        own.by_element
            .get(&(kind, name.to_owned()))
            .and_then(|e| e.first())
            .map(|e| Origin {
                file: e.file.clone(),
                line: e.line.unwrap_or(0),
                column: e.column.unwrap_or(0),
            })
            .unwrap_or_else(|| Origin {
                file: PathBuf::new(),
                line: 0,
                column: 0,
            })
    };
    // Servers transports, then the services using them, then the routers
    // using those services or disabled middlewares.
    let mut bad_transports = BTreeSet::new();
    for name in &names_of(elements, ElementKind::ServersTransport) {
        if own.has(ElementKind::ServersTransport, name) {
            let origin = config.servers_transports.remove(name).map_or_else(
                || origin_of(ElementKind::ServersTransport, name, &own),
                |t| t.origin,
            );
            disable(
                ElementKind::ServersTransport,
                name,
                origin,
                Vec::new(),
                false,
                &mut own,
            );
            bad_transports.insert(name.clone());
        }
    }
    // Middlewares with errors of their own, then the chains listing a
    // disabled one, until none is added.
    let mut bad_middlewares: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let middleware_names = names_of(elements, ElementKind::Middleware);
    for name in &middleware_names {
        if own.has(ElementKind::Middleware, name) {
            bad_middlewares.insert(name.clone(), Vec::new());
        }
    }
    loop {
        let mut added = false;
        for name in &middleware_names {
            if bad_middlewares.contains_key(name) {
                continue;
            }
            let because: Vec<String> = links
                .middleware_needs
                .get(name)
                .into_iter()
                .flatten()
                .filter(|m| bad_middlewares.contains_key(*m))
                .map(|m| format!("middleware {m:?}"))
                .collect();
            if !because.is_empty() {
                bad_middlewares.insert(name.clone(), because);
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    for (name, because) in &bad_middlewares {
        config.middlewares.remove(name);
        let origin = links
            .middlewares
            .get(name)
            .cloned()
            .unwrap_or_else(|| origin_of(ElementKind::Middleware, name, &own));
        disable(
            ElementKind::Middleware,
            name,
            origin,
            because.clone(),
            false,
            &mut own,
        );
    }
    let mut bad_services = BTreeSet::new();
    for name in &names_of(elements, ElementKind::Service) {
        let because: Vec<String> = links
            .service_transport
            .get(name)
            .filter(|t| bad_transports.contains(*t))
            .map(|t| format!("serversTransport {t:?}"))
            .into_iter()
            .chain(middlewares_because(config, name, |m| {
                bad_middlewares.contains_key(m)
            }))
            .collect();
        if own.has(ElementKind::Service, name) || !because.is_empty() {
            let origin = config.services.remove(name).map_or_else(
                || origin_of(ElementKind::Service, name, &own),
                |s| s.origin().clone(),
            );
            disable(ElementKind::Service, name, origin, because, false, &mut own);
            bad_services.insert(name.clone());
        }
    }
    // Then the services sending to a disabled service, until none is left.
    loop {
        let parents: Vec<(String, Vec<String>)> = links
            .service_children
            .iter()
            .filter(|(name, _)| !bad_services.contains(*name))
            .filter_map(|(name, kids)| {
                let because: Vec<String> = kids
                    .iter()
                    .filter(|k| bad_services.contains(*k))
                    .map(|k| format!("service {k:?}"))
                    .collect();
                (!because.is_empty()).then(|| (name.clone(), because))
            })
            .collect();
        if parents.is_empty() {
            break;
        }
        for (name, because) in parents {
            let origin = config.services.remove(&name).map_or_else(
                || origin_of(ElementKind::Service, &name, &own),
                |s| s.origin().clone(),
            );
            disable(
                ElementKind::Service,
                &name,
                origin,
                because,
                false,
                &mut own,
            );
            bad_services.insert(name);
        }
    }
    let mut bad_options = BTreeSet::new();
    for name in &names_of(elements, ElementKind::TlsOptions) {
        if own.has(ElementKind::TlsOptions, name) {
            // Options with errors were never built into the map.
            let origin = config.tls.options.remove(name).map_or_else(
                || origin_of(ElementKind::TlsOptions, name, &own),
                |o| o.origin,
            );
            disable(
                ElementKind::TlsOptions,
                name,
                origin,
                Vec::new(),
                false,
                &mut own,
            );
            bad_options.insert(name.clone());
        }
    }
    for name in &names_of(elements, ElementKind::Router) {
        let because = config.routers.get(name).map_or_else(Vec::new, |r| {
            router_because(
                r,
                &bad_services,
                |m| bad_middlewares.contains_key(m),
                &bad_options,
            )
        });
        if !own.has(ElementKind::Router, name) && because.is_empty() {
            continue;
        }
        let keeps_place = links.placed.get(name).copied().unwrap_or(false);
        let origin = match config.routers.get_mut(name) {
            Some(r) if keeps_place => {
                r.disabled = true;
                r.origin.clone()
            }
            Some(_) => config
                .routers
                .remove(name)
                .map(|r| r.origin)
                .unwrap_or_else(|| origin_of(ElementKind::Router, name, &own)),
            None => origin_of(ElementKind::Router, name, &own),
        };
        disable(
            ElementKind::Router,
            name,
            origin,
            because,
            keeps_place,
            &mut own,
        );
    }
    disabled.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    config.disabled = disabled;
    usable
}

#[cfg(test)]
#[path = "isolate_tests.rs"]
mod tests;
