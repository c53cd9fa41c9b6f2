//! `http.routers.<name>`: the file schema, and the checks that need more
//! than a type (a rule that parses, a service named, the rule syntax).
//!
//! References (service, entrypoints, middlewares) are kept as written with
//! their position; `dynamic/mod.rs` resolves them once every file is read.

use serde::Deserialize;

use crate::routing::{Rule, parse_rule};

use super::super::decode::{At, Ctx, Register, Schema, Spec, Support, schema};
use super::super::error::Origin;
use super::super::node::Pos;
use super::Ref;

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
    /// [`DynamicConfig::services`](super::DynamicConfig::services).
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

/// `http.routers.<name>` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RouterFile {
    entry_points: Option<At<Vec<At<String>>>>,
    middlewares: Option<At<Vec<At<String>>>>,
    service: Option<At<String>>,
    rule: Option<At<String>>,
    rule_syntax: Option<At<String>>,
    priority: Option<At<u64>>,
}

impl Schema for RouterFile {
    const KEYS: Spec = &[
        (
            "tls",
            Support::Error("no TLS yet; the router would be served without it"),
        ),
        ("observability", Support::Warn("")),
    ];
}

pub(super) const SCHEMAS: &[Register] = &[schema::<RouterFile>];

/// A router whose references are still to be resolved.
pub(super) struct RouterDraft {
    pub(super) config: RouterConfig,
    pub(super) service: Option<Ref>,
    pub(super) entry_points: Vec<Ref>,
    pub(super) middlewares: Vec<Ref>,
}

/// Checks router `name` (at `path`, named at `pos`). `None` when it cannot
/// be served; its errors are in `ctx`.
pub(super) fn check(
    ctx: &mut Ctx,
    name: String,
    path: &str,
    pos: Pos,
    file: RouterFile,
) -> Option<RouterDraft> {
    let mut ok = true;
    let mut parsed = None;
    let (rule, rule_origin) = match file.rule {
        Some(f) => {
            if !f.ok {
                // Not a string: reported already.
            } else if f.value.trim().is_empty() {
                ctx.error(&f.path, f.pos, "rule is empty");
                ok = false;
            } else {
                match parse_rule(&f.value) {
                    Ok(r) => parsed = Some(r),
                    Err(e) => {
                        let at = Pos {
                            line: f.pos.line,
                            column: f.pos.column + e.column as u32 - 1,
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
            (f.value, ctx.origin(f.pos))
        }
        None => {
            ctx.error(path, pos, "router has no rule");
            ok = false;
            (String::new(), ctx.origin(pos))
        }
    };
    if let Some(f) = file.rule_syntax
        && f.ok
    {
        match f.value.as_str() {
            "" | "v3" => {}
            "v2" => {
                ctx.error(
                    &f.path,
                    f.pos,
                    "rule syntax \"v2\" is not supported yet (only \"v3\")",
                );
                ok = false;
            }
            other => {
                ctx.error(
                    &f.path,
                    f.pos,
                    format!("unknown rule syntax {other:?} (expected \"v3\")"),
                );
                ok = false;
            }
        }
    }
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
        None => {
            ctx.error(path, pos, "router has no service");
            None
        }
    };
    ok &= service.is_some();
    let priority = match file.priority {
        Some(f) => {
            ok &= f.ok;
            f.ok().copied()
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
        entry_points: refs(file.entry_points),
        middlewares: refs(file.middlewares),
    })
}

/// A list of names, each with the list's key path and its own position.
fn refs(list: Option<At<Vec<At<String>>>>) -> Vec<Ref> {
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
