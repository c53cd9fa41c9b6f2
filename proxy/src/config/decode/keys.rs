//! Keys: resolving a map's keys against a struct's fields and key table
//! (case-insensitive, two spellings merged, did-you-mean, support levels),
//! a map of user-chosen names (case-sensitive, merged when repeated), and
//! the one key naming the type of an enum of types.
//!
//! Reports what it finds in the [`Ctx`]; decodes no value.

use std::borrow::Cow;
use std::collections::HashMap;

use super::super::node::{Key, Node, Pos, Value};
use super::scalar::expected;
use super::{Ctx, Spec, Support, child, suggest};

/// `not supported yet; ignored (why)`.
pub(super) fn ignored(why: &str) -> String {
    if why.is_empty() {
        "not supported yet; ignored".to_owned()
    } else {
        format!("not supported yet; ignored ({why})")
    }
}

/// A key of a struct (or enum) resolved to its canonical spelling.
pub(super) struct Resolved<'n> {
    pub(super) canonical: &'static str,
    pub(super) key: &'n Key,
    /// Owned when two spellings of the key were merged.
    pub(super) node: Cow<'n, Node>,
    pub(super) path: String,
}

/// paerser fills one field from every spelling of its key, so two maps
/// merge; two scalars would silently overwrite, so they are refused.
fn merge_or_refuse(ctx: &mut Ctx, first: &mut Resolved<'_>, key: &Key, value: &Node, path: &str) {
    if let (Value::Map(a), Value::Map(b)) = (&first.node.value, &value.value) {
        let mut merged = a.clone();
        merged.extend(b.iter().cloned());
        first.node = Cow::Owned(Node {
            value: Value::Map(merged),
            pos: first.node.pos,
        });
        return;
    }
    ctx.error(
        path,
        key.pos,
        format!(
            "duplicate key {:?} (keys are case-insensitive; first set as {:?} on line {})",
            key.name, first.key.name, first.key.pos.line
        ),
    );
}

/// Resolves a map's keys against a struct's fields and its key table:
/// unknown keys are errors with a did-you-mean, listed ones are reported
/// as their [`Support`] says. Returns the entries to decode, in file order.
pub(super) fn struct_entries<'n>(
    ctx: &mut Ctx,
    path: &str,
    entries: &'n [(Key, Node)],
    name: &str,
    fields: &'static [&'static str],
) -> Vec<Resolved<'n>> {
    let keys: Spec = ctx.table(name).map_or(&[], |t| t.keys);
    // Resolved entries, and whether each is a field to decode.
    let mut out: Vec<(Resolved<'n>, bool)> = Vec::new();
    for (key, value) in entries {
        let kpath = child(path, &key.name);
        let field = fields.iter().find(|f| f.eq_ignore_ascii_case(&key.name));
        let listed = keys.iter().find(|(n, _)| n.eq_ignore_ascii_case(&key.name));
        let Some(canonical) = field.copied().or(listed.map(|(n, _)| *n)) else {
            let listed_only = keys
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| !fields.iter().any(|f| f.eq_ignore_ascii_case(n)));
            let hint = suggest(&key.name, fields.iter().copied().chain(listed_only));
            ctx.error(&kpath, key.pos, format!("unknown key {:?}{hint}", key.name));
            continue;
        };
        let resolved = Resolved {
            canonical,
            key,
            node: Cow::Borrowed(value),
            path: kpath,
        };
        if let Some((_, Support::Error(why))) = listed {
            let message = if why.is_empty() {
                "not supported yet".to_owned()
            } else {
                format!("not supported yet: {why}")
            };
            ctx.error(&resolved.path, key.pos, message);
            // Still decoded when it is a field (its presence may count),
            // once; a refused key is never a duplicate.
            if field.is_some() && !out.iter().any(|(r, _)| r.canonical == canonical) {
                out.push((resolved, true));
            }
            continue;
        }
        if let Some((first, _)) = out.iter_mut().find(|(r, _)| r.canonical == canonical) {
            merge_or_refuse(ctx, first, key, value, &resolved.path);
            continue;
        }
        if let Some((_, Support::Warn(why))) = listed {
            ctx.warn(&resolved.path, key.pos, ignored(why));
        }
        out.push((resolved, field.is_some()));
    }
    out.into_iter()
        .filter_map(|(r, decode)| decode.then_some(r))
        .collect()
}

/// Entries of a map of user-chosen names (routers, services,
/// entrypoints...). Names are case-sensitive; the same name twice can only
/// come from merging two spellings of the parent key, and two maps under
/// it merge too.
pub(super) fn named_entries<'n>(
    ctx: &mut Ctx,
    path: &str,
    node: &'n Node,
) -> Vec<(&'n Key, Cow<'n, Node>)> {
    let entries = match &node.value {
        Value::Map(entries) => entries,
        Value::Null => return Vec::new(),
        other => {
            ctx.error(path, node.pos, expected("a map", other));
            return Vec::new();
        }
    };
    let mut out: Vec<(&'n Key, Cow<'n, Node>)> = Vec::with_capacity(entries.len());
    let mut index: HashMap<&'n str, usize> = HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        let Some(&i) = index.get(key.name.as_str()) else {
            index.insert(&key.name, out.len());
            out.push((key, Cow::Borrowed(value)));
            continue;
        };
        let first = &mut out[i].1;
        if let (Value::Map(a), Value::Map(b)) = (&first.value, &value.value) {
            let mut merged = a.clone();
            merged.extend(b.iter().cloned());
            *first = Cow::Owned(Node {
                value: Value::Map(merged),
                pos: first.pos,
            });
        } else {
            ctx.error(
                &child(path, &key.name),
                key.pos,
                format!("{:?} is defined twice", key.name),
            );
        }
    }
    out
}

/// Resolves the keys of a map naming one type of an enum of types: the
/// variant it names, or `None` after saying why not (no type, two types,
/// only unknown or unbuilt ones).
pub(super) fn enum_type<'n>(
    ctx: &mut Ctx,
    path: &str,
    key_pos: Pos,
    entries: &'n [(Key, Node)],
    variants: &'static [&'static str],
    keys: Spec,
    noun: &str,
) -> Option<Resolved<'n>> {
    if entries.is_empty() {
        ctx.error(path, key_pos, format!("{noun} has no type"));
        return None;
    }
    let mut chosen: Vec<Resolved<'n>> = Vec::new();
    for (key, value) in entries {
        let kpath = child(path, &key.name);
        if let Some(variant) = variants.iter().find(|n| n.eq_ignore_ascii_case(&key.name)) {
            if let Some(first) = chosen.iter_mut().find(|c| c.canonical == *variant) {
                merge_or_refuse(ctx, first, key, value, &kpath);
            } else {
                chosen.push(Resolved {
                    canonical: variant,
                    key,
                    node: Cow::Borrowed(value),
                    path: kpath,
                });
            }
            continue;
        }
        match keys.iter().find(|(n, _)| n.eq_ignore_ascii_case(&key.name)) {
            Some((listed, Support::Error(why))) => {
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                };
                let message = format!("{noun} type {listed:?} is not supported yet{why}");
                ctx.error(&kpath, key.pos, message);
            }
            Some((_, Support::Warn(why))) => ctx.warn(&kpath, key.pos, ignored(why)),
            Some((_, Support::Silent)) => {}
            None => {
                let candidates = variants.iter().copied().chain(keys.iter().map(|(n, _)| *n));
                let hint = suggest(&key.name, candidates);
                let message = format!("unknown {noun} type {:?}{hint}", key.name);
                ctx.error(&kpath, key.pos, message);
            }
        }
    }
    let only = chosen.pop();
    if only.is_some() && !chosen.is_empty() {
        ctx.error(
            path,
            key_pos,
            format!("a {noun} must have exactly one type"),
        );
        return None;
    }
    only
}
