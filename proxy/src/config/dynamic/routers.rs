//! `http.routers.<name>`: the file schema, and the checks that need more
//! than a type (a rule that parses in the router's syntax, a service
//! named).
//!
//! The syntax is Traefik's choice: `ruleSyntax: v2` is v2, no `ruleSyntax`
//! is the static `core.defaultRuleSyntax`, any other value is v3 (Traefik
//! parses names it does not know as v3). Traefik 3 warns that the option
//! is deprecated; so does this, and it says so for unknown values.
//!
//! References (service, entrypoints, middlewares) are kept as written with
//! their position; `dynamic/mod.rs` resolves them once every file is read.

use serde::Deserialize;

use crate::routing::{Rule, RuleError, RuleSyntax, parse_rule_with};

use super::super::decode::{At, Ctx, Register, Schema, Spec, Support, schema};
use super::super::error::Origin;
use super::super::node::Pos;
use super::Ref;
use super::tls::{self, RouterTls, RouterTlsSection};

/// The highest priority a user's router may have: Traefik keeps the 1000
/// above it for its internal routers (`maxUserPriority`).
const MAX_USER_PRIORITY: i64 = i64::MAX - 1000;

/// The internal services a router may name (`api@internal`...), as
/// Traefik's internal provider defines them; which exist depends on the
/// static configuration.
pub const INTERNAL_SERVICES: [&str; 5] = ["api", "dashboard", "noop", "ping", "prometheus"];

/// `name@internal` when `reference` names one of [`INTERNAL_SERVICES`].
pub(super) fn internal_service(reference: &str) -> Option<String> {
    let (name, provider) = reference.rsplit_once('@')?;
    (provider == "internal" && INTERNAL_SERVICES.contains(&name)).then(|| reference.to_owned())
}

/// The error of an `@internal` reference that names nothing internal.
pub(super) fn internal_reference_error(kind: &str, reference: &str) -> String {
    if kind == "service" {
        format!(
            "unknown internal service {reference:?} (internal services: {})",
            INTERNAL_SERVICES.join(", ")
        )
    } else {
        format!("{kind} {reference:?}: @internal {kind}s are not supported yet")
    }
}

/// One HTTP router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Its name (case-sensitive).
    pub name: String,
    /// The rule text, in the syntax of [`Rule::syntax`].
    pub rule: String,
    /// The rule, parsed and compiled (regexes included) in the router's
    /// syntax; a rule that does not parse is a load error pointing at its
    /// column, and what it accepts with another meaning than intended
    /// ([`Rule::warnings`]) is a warning there.
    pub parsed: Rule,
    /// Where the rule value starts: for a quoted value, its first character
    /// inside the quotes (so a column offset into `rule` lands on the same
    /// character in the file when the value has no escapes).
    pub rule_origin: Origin,
    /// The service's name, `@file` suffix removed; it exists in
    /// [`DynamicConfig::services`](super::DynamicConfig::services), or is
    /// an internal one written with its `@internal` suffix
    /// (`api@internal`, see [`INTERNAL_SERVICES`]).
    pub service: String,
    /// Entrypoints it listens on; empty = the default entrypoints (see
    /// `StaticConfig::default_entry_points`).
    pub entry_points: Vec<String>,
    /// Explicit priority, negative allowed; `None` = Traefik's default
    /// (the rule's length), which `priority: 0` also means.
    pub priority: Option<i64>,
    /// Middleware names in order, `@file` removed.
    pub middlewares: Vec<String>,
    /// Its `tls` section: the router serves TLS connections only.
    pub tls: Option<RouterTls>,
    /// The routers it is a child of (`parentRefs`, `@file` removed):
    /// it matches only among the requests one of them matched, after its
    /// middlewares (multi-layer routing, `layers.rs`). Empty for a root
    /// router.
    pub parent_refs: Vec<String>,
    /// Its child routers, sorted (the routers naming it in `parentRefs`,
    /// less a link that closes a cycle): a router with children has no
    /// service and routes among them.
    pub children: Vec<String>,
    /// Where the router's name is written.
    pub origin: Origin,
    /// Disabled by a configuration error (its own or of what it
    /// references, in [`DynamicConfig::disabled`](super::DynamicConfig::disabled)):
    /// it keeps its place and answers 503.
    pub disabled: bool,
    /// The percent-encoded bytes refused (400) in its requests' paths
    /// before its middlewares: its entrypoint's `http.encodedCharacters`
    /// (Traefik's model, `DeniedEncodedPathCharacters`), root routers only.
    pub denied_encoded: Option<Vec<u8>>,
}

/// `http.routers.<name>` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RouterFile {
    entry_points: Option<At<Vec<At<String>>>>,
    middlewares: Option<At<Vec<At<String>>>>,
    service: Option<At<String>>,
    rule: Option<At<String>>,
    rule_syntax: Option<At<String>>,
    priority: Option<At<i64>>,
    parent_refs: Option<At<Vec<At<String>>>>,
    /// Ignored (warned about), but a child router may not have one.
    observability: Option<At<serde::de::IgnoredAny>>,
    tls: RouterTlsSection,
}

impl Schema for RouterFile {
    const KEYS: Spec = &[("observability", Support::Warn(""))];
}

pub(super) const SCHEMAS: &[Register] = &[schema::<RouterFile>];

/// A router whose references are still to be resolved.
pub(super) struct RouterDraft {
    pub(super) config: RouterConfig,
    pub(super) service: Option<Ref>,
    pub(super) entry_points: Vec<Ref>,
    pub(super) middlewares: Vec<Ref>,
    pub(super) tls_options: Option<Ref>,
    pub(super) parent_refs: Vec<Ref>,
    /// Its key path (`http.routers.api`).
    pub(super) path: String,
    /// Where its `tls` section is written (a child router may have none).
    pub(super) tls_at: Option<(String, Pos)>,
    /// Where its `entryPoints` list is written.
    pub(super) entry_points_at: Option<(String, Pos)>,
    /// Where its `observability` section is written.
    pub(super) observability_at: Option<(String, Pos)>,
}

/// Checks router `name` (at `path`, named at `pos`). `None` when its rule
/// did not parse; its errors are in `ctx` (a router returned with errors
/// there is disabled).
pub(super) fn check(
    ctx: &mut Ctx,
    name: String,
    path: &str,
    pos: Pos,
    file: RouterFile,
    default_syntax: RuleSyntax,
) -> Option<RouterDraft> {
    let mut parsed = None;
    let syntax = match file.rule_syntax.filter(|f| f.ok) {
        Some(f) => {
            let (syntax, unknown) = RuleSyntax::for_router(&f.value, default_syntax);
            if unknown && f.value != "default" {
                ctx.warn(
                    &f.path,
                    f.pos,
                    format!(
                        "unknown rule syntax {:?}: Traefik parses the rule as v3 (expected \"v2\" or \"v3\")",
                        f.value
                    ),
                );
            } else if !unknown {
                ctx.warn(
                    &f.path,
                    f.pos,
                    "ruleSyntax is deprecated (Traefik 3 warns too): write the rule in v3 and remove it",
                );
            }
            syntax
        }
        None => default_syntax,
    };
    let (rule, rule_origin) = match file.rule {
        Some(f) => {
            if !f.ok {
                // Not a string: reported already.
            } else if f.value.trim().is_empty() {
                ctx.error(&f.path, f.pos, "rule is empty");
            } else {
                // A column of the rule, as a position in the file.
                let at = |e: &RuleError| Pos {
                    line: f.pos.line,
                    column: f.pos.column + e.column as u32 - 1,
                };
                match parse_rule_with(&f.value, syntax) {
                    Ok(r) => {
                        for w in r.warnings() {
                            ctx.warn(
                                &f.path,
                                at(w),
                                format!("{} (column {} of the rule)", w.message, w.column),
                            );
                        }
                        parsed = Some(r);
                    }
                    Err(e) => {
                        ctx.error(
                            &f.path,
                            at(&e),
                            format!("{} (column {} of the rule)", e.message, e.column),
                        );
                    }
                }
            }
            (f.value, ctx.origin(f.pos))
        }
        None => {
            ctx.error(path, pos, "router has no rule");
            (String::new(), ctx.origin(pos))
        }
    };
    let service = match file.service {
        Some(f) if !f.ok => None,
        Some(f) if f.value.trim().is_empty() => {
            ctx.error(&f.path, f.pos, "service is empty");
            None
        }
        Some(f) => Some(Ref {
            name: f.value,
            path: f.path,
            pos: f.pos,
        }),
        // Whether a router without a service is a parent is known once
        // every router is read (`layers.rs`).
        None => None,
    };
    let priority = match file.priority {
        Some(f) if f.ok && f.value > MAX_USER_PRIORITY => {
            ctx.error(
                &f.path,
                f.pos,
                format!(
                    "the router priority {} exceeds the max user-defined priority {MAX_USER_PRIORITY}",
                    f.value
                ),
            );
            None
        }
        // Traefik reads 0 as "not set": the rule's length.
        Some(f) => f.ok().copied().filter(|&p| p != 0),
        None => None,
    };
    let origin = ctx.origin(pos);
    let entry_points_at = file
        .entry_points
        .as_ref()
        .filter(|e| e.ok && !e.value.is_empty())
        .map(|e| (e.path.clone(), e.pos));
    let tls_section = file.tls.and_then(|t| t.on());
    let tls_at = tls_section.as_ref().map(|_| (format!("{path}.tls"), pos));
    let tls = tls_section.as_ref().map(|_| RouterTls::default());
    let tls_options = tls_section.and_then(tls::router_options).map(|f| Ref {
        name: f.value,
        path: f.path,
        pos: f.pos,
    });
    // A router whose rule parsed is kept even with other errors: disabled,
    // it keeps its place and answers 503 (`isolate`).
    let parsed = parsed?;
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
            tls,
            parent_refs: Vec::new(),
            children: Vec::new(),
            origin,
            disabled: false,
            denied_encoded: None,
        },
        service,
        entry_points: refs(file.entry_points),
        middlewares: refs(file.middlewares),
        tls_options,
        parent_refs: refs(file.parent_refs),
        path: path.to_owned(),
        observability_at: file.observability.map(|o| (o.path, o.key_pos)),
        tls_at,
        entry_points_at,
    })
}

/// A list of names, each with the list's key path and its own position.
pub(super) fn refs(list: Option<At<Vec<At<String>>>>) -> Vec<Ref> {
    let Some(list) = list else {
        return Vec::new();
    };
    let path = list.path.clone();
    list.strings()
        .into_iter()
        .map(|(name, pos)| Ref {
            name,
            path: path.clone(),
            pos,
        })
        .collect()
}
