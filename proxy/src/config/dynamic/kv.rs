//! The dynamic configuration of a key-value store (etcd, Redis, …) in
//! Traefik's key layout: `<rootKey>/http/routers/<name>/rule`,
//! `<rootKey>/http/services/<name>/loadBalancer/servers/0/url`, … turned
//! into the same positioned [`Node`] tree a file gives, then decoded and
//! isolated exactly as a file is. As Traefik's `pkg/config/kv` does:
//! - only keys under `<rootKey>/http`, `/tcp`, `/udp` and `/tls` count
//!   (case-insensitively); others are ignored;
//! - a key ending in `/<digits>` is an item of a list of plain values:
//!   the items join, in key order, into one comma-separated value of the
//!   parent key (`entryPoints/0`, `entryPoints/1` → `web,websecure`);
//! - a `<digits>` segment elsewhere is an index into a list of sections
//!   (`servers/0/url`), items in key order;
//! - segments match case-insensitively (the first spelling names the key).
//!
//! Every error and warning names the store key it is about
//! (`traefik/http/routers/r/rule`) instead of a line: a node's position
//! holds the index of the first pair under it and its depth.
//!
//! Control plane only: runs per store update, never per request.

use std::path::{Path, PathBuf};

use super::super::error::{ConfigError, ConfigWarning};
use super::super::node::{Key, Node, Pos, ScalarKind, Value};
use super::{FileDraft, Loaded, RuleSyntax, decode_root, finish};

/// The sections of Traefik's dynamic configuration a store is read for.
const SECTIONS: [&str; 4] = ["http", "tcp", "udp", "tls"];

/// Loads the dynamic configuration held by `pairs` (every key under
/// `root_key`, with its value) with a file's error isolation; `source`
/// (e.g. `etcd`) names the store in messages.
pub fn load_kv_isolated(
    source: &str,
    root_key: &str,
    pairs: &[(String, String)],
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Loaded {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let (draft, names) = draft(
        source,
        root_key,
        pairs,
        default_rule_syntax,
        &mut errors,
        &mut warnings,
    );
    let mut loaded = finish(vec![draft], entry_points, errors, warnings);
    names.name(&mut loaded.errors, &mut loaded.warnings);
    loaded
}

/// Decodes the pairs of one store (`source` names it) into its draft,
/// errors and warnings positioned by pair; the [`KeyNames`] that turn
/// those positions into store keys once the draft is merged.
pub(super) fn draft(
    source: &str,
    root_key: &str,
    pairs: &[(String, String)],
    default_rule_syntax: RuleSyntax,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> (FileDraft, KeyNames) {
    let file = Path::new(source);
    let pairs = layout(root_key, pairs);
    let draft = match tree(&pairs) {
        Ok(root) => decode_root(&root, file, default_rule_syntax, errors, warnings),
        Err((at, message)) => {
            errors.push(ConfigError {
                file: file.to_path_buf(),
                key: format!("{root_key}/{}", pairs[at].0.join("/")),
                line: None,
                column: None,
                message,
            });
            FileDraft::default()
        }
    };
    let names = KeyNames {
        file: file.to_path_buf(),
        root_key: root_key.to_owned(),
        pairs,
    };
    (draft, names)
}

/// What names the store key of an error or warning of one store: the
/// position of a node is the index of the first pair under it and its
/// depth.
pub(super) struct KeyNames {
    file: PathBuf,
    root_key: String,
    pairs: Vec<(Vec<String>, String)>,
}

impl KeyNames {
    /// Gives each error and warning of this store its key
    /// (`traefik/http/routers/r/rule`) in place of a line and column.
    pub(super) fn name(&self, errors: &mut [ConfigError], warnings: &mut [ConfigWarning]) {
        let name = |line: &mut Option<u32>, column: &mut Option<u32>, key: &mut String| {
            if let (Some(l), Some(c)) = (line.take(), column.take())
                && let Some((segments, _)) = self.pairs.get(l as usize - 1)
            {
                let depth = (c as usize - 1).min(segments.len());
                *key = std::iter::once(self.root_key.as_str())
                    .chain(segments[..depth].iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join("/");
            }
        };
        for e in errors.iter_mut().filter(|e| e.file == self.file) {
            name(&mut e.line, &mut e.column, &mut e.key);
        }
        for w in warnings.iter_mut().filter(|w| w.file == self.file) {
            name(&mut w.line, &mut w.column, &mut w.key);
        }
    }
}

/// The pairs that count, as Traefik reads them: under one of
/// [`SECTIONS`], plain lists joined, sorted by key; each key split into
/// its segments after the root.
fn layout(root_key: &str, pairs: &[(String, String)]) -> Vec<(Vec<String>, String)> {
    let root = root_key.trim_end_matches('/');
    let mut kept: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| {
            let Some(rest) = k.strip_prefix(root).and_then(|r| r.strip_prefix('/')) else {
                return false;
            };
            SECTIONS.iter().any(|s| {
                rest.get(..s.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s))
            })
        })
        .cloned()
        .collect();
    kept.sort();
    // Items of a plain list (`…/entryPoints/0`) join into their parent.
    let mut out: Vec<(String, String)> = Vec::with_capacity(kept.len());
    let mut lists: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in kept {
        match k.rsplit_once('/') {
            Some((parent, last))
                if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) =>
            {
                match lists.iter_mut().find(|(p, _)| p == parent) {
                    Some((_, items)) => items.push(v),
                    None => lists.push((parent.to_owned(), vec![v])),
                }
            }
            _ => out.push((k, v)),
        }
    }
    for (parent, items) in lists {
        out.retain(|(k, _)| *k != parent);
        out.push((parent, items.join(",")));
    }
    out.sort();
    out.into_iter()
        .map(|(k, v)| {
            let rest = &k[root.len() + 1..];
            let segments = rest
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            (segments, v)
        })
        .collect()
}

/// A tree being built: a section's children by name, or a value.
enum Draft {
    Map(Vec<(String, Pos, Draft)>),
    Leaf(String, Pos),
}

/// The node tree of `pairs`; an error (the pair's index, why) when a key
/// both has a value and keys below it.
fn tree(pairs: &[(Vec<String>, String)]) -> Result<Node, (usize, String)> {
    let mut root = Vec::new();
    for (i, (segments, value)) in pairs.iter().enumerate() {
        insert(&mut root, segments, 0, i, value).map_err(|m| (i, m.to_owned()))?;
    }
    Ok(node(Draft::Map(root), Pos { line: 1, column: 1 }))
}

/// Puts pair `i` (`segments[depth..]`, `value`) under `level`.
fn insert(
    level: &mut Vec<(String, Pos, Draft)>,
    segments: &[String],
    depth: usize,
    i: usize,
    value: &str,
) -> Result<(), &'static str> {
    let seg = &segments[depth];
    let last = depth + 1 == segments.len();
    // Line: the first pair under the node; column: its depth.
    let pos = Pos {
        line: i as u32 + 1,
        column: depth as u32 + 2,
    };
    let at = match level
        .iter()
        .position(|(name, _, _)| name.eq_ignore_ascii_case(seg))
    {
        Some(at) => at,
        None => {
            let node = if last {
                Draft::Leaf(value.to_owned(), pos)
            } else {
                Draft::Map(Vec::new())
            };
            level.push((seg.clone(), pos, node));
            level.len() - 1
        }
    };
    let fresh = level[at].1 == pos;
    match (&mut level[at].2, last) {
        (Draft::Map(children), false) => insert(children, segments, depth + 1, i, value),
        (Draft::Leaf(..), true) if fresh => Ok(()),
        (Draft::Leaf(..), true) => Err("is written twice, spelled differently"),
        _ => Err("has both a value and keys below it"),
    }
}

fn node(d: Draft, pos: Pos) -> Node {
    match d {
        // An empty value is an empty section (`…/routers/r/tls` = "": TLS
        // on; `…/middlewares/m/compress` = ""), or an empty string.
        Draft::Leaf(v, pos) if v.is_empty() => Node {
            value: Value::Null,
            pos,
        },
        Draft::Leaf(v, pos) => Node {
            value: Value::Scalar(ScalarKind::String, v),
            pos,
        },
        // A section whose keys are all indexes is a list, items in key
        // order (as Traefik's `[n]` nodes are).
        Draft::Map(children)
            if !children.is_empty()
                && children
                    .iter()
                    .all(|(k, _, _)| k.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Node {
                value: Value::Seq(children.into_iter().map(|(_, p, d)| node(d, p)).collect()),
                pos,
            }
        }
        Draft::Map(children) => Node {
            value: Value::Map(
                children
                    .into_iter()
                    .map(|(name, p, d)| (Key { name, pos: p }, node(d, p)))
                    .collect(),
            ),
            pos,
        },
    }
}
