//! Decoding the positioned [`Node`] tree into derived structs: the one
//! place that knows Traefik's key and scalar rules, so that a schema is a
//! plain `#[derive(Deserialize)]` struct and nothing more.
//!
//! [`decode`] runs a schema's serde `Deserialize` over a node with the
//! deserializer in [`de`], which
//! - matches keys case-insensitively against the struct's fields, as
//!   Traefik's paerser does, merges two spellings of one map-valued key,
//!   and refuses two spellings of one scalar;
//! - reads every leaf as paerser does ([`scalar`]): `"true"` or `1` for a
//!   bool, numbers from strings, a comma-separated string for a list, Go
//!   durations (plain `std::time::Duration` fields);
//! - records every problem in the [`Ctx`] with file, key path, line and
//!   column, and keeps going: a value of the wrong shape is reported and
//!   replaced by a neutral one (`false`, `0`, empty), so one pass reports
//!   every error of a file. A decoded model is only used when the file has
//!   no error at all.
//!
//! A key Traefik knows that a struct does not decode is listed, with how it
//! is treated ([`Support`]), in the struct's [`Schema`] table; the table is
//! registered in its section's `SCHEMAS` list so the deserializer finds it
//! by the struct's serde name. A key in neither the fields nor the table is
//! an error with a did-you-mean. [`types`] has the wrappers a schema uses
//! for positions ([`At`]), user-named maps ([`Named`]), sections that can
//! be switched on with `true` ([`Switch`]), ignored values ([`Ignored`])
//! and the raw node ([`Raw`]).
//!
//! Must not know any particular Traefik key; the schemas bring their own.

mod access;
mod de;
mod keys;
mod scalar;
mod types;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self as serde_de, DeserializeOwned, Visitor};

use super::error::{ConfigError, ConfigWarning, Origin};
use super::node::{Node, Pos};

pub(crate) use scalar::uint;
pub(crate) use types::{At, Ignored, Named, Raw, Switch};

/// How a key Traefik knows, but the struct does not decode, is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// Accepted and ignored without a word (e.g. `global.checkNewVersion`).
    Silent,
    /// Accepted, ignored, with a warning; the text says what that means.
    Warn(&'static str),
    /// Refused: ignoring it would serve traffic differently or less safely
    /// than asked. The text says why.
    Error(&'static str),
}

/// Keys of one map level that a struct knows besides its fields, spelled
/// as Traefik documents them. For an enum of types (middlewares), the
/// types known but not built yet.
pub(crate) type Spec = &'static [(&'static str, Support)];

/// The key table of a derived struct or enum.
///
/// A key listed here that is also a field is reported *and* decoded (a
/// warned `api` section whose `insecure` is still read; a refused service
/// type whose presence still counts).
pub(crate) trait Schema {
    /// The keys (for an enum: the types) known besides the fields.
    const KEYS: Spec;
    /// For an enum of types: what one item is called in messages
    /// ("middleware has no type").
    const NOUN: &'static str = "value";
}

/// One registered [`Schema`]: the serde name the deserializer looks it up
/// by, and its table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table {
    name: &'static str,
    keys: Spec,
    noun: &'static str,
}

/// A registration, as the sections list them: `schema::<RouterFile>`.
pub(crate) type Register = fn() -> Table;

/// The registration of `T`; its serde name is read from `T` itself.
pub(crate) fn schema<T: Schema + DeserializeOwned>() -> Table {
    Table {
        name: serde_name::<T>(),
        keys: T::KEYS,
        noun: T::NOUN,
    }
}

/// The name `T`'s derived `Deserialize` gives the deserializer (a struct's
/// or enum's name): what a key table is registered under.
fn serde_name<T: DeserializeOwned>() -> &'static str {
    match T::deserialize(NameProbe) {
        Err(ProbeError(Some(name))) => name,
        _ => {
            debug_assert!(
                false,
                "{} is not a struct or enum",
                std::any::type_name::<T>()
            );
            ""
        }
    }
}

struct NameProbe;

#[derive(Debug)]
struct ProbeError(Option<&'static str>);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("name probe")
    }
}

impl std::error::Error for ProbeError {}

impl serde_de::Error for ProbeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        ProbeError(None)
    }
}

impl<'de> serde_de::Deserializer<'de> for NameProbe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> std::result::Result<V::Value, ProbeError> {
        Err(ProbeError(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        _v: V,
    ) -> std::result::Result<V::Value, ProbeError> {
        Err(ProbeError(Some(name)))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        _v: V,
    ) -> std::result::Result<V::Value, ProbeError> {
        Err(ProbeError(Some(name)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

/// Collects diagnostics for one file, and holds what the deserializer
/// needs while it runs (the key tables, nodes kept by [`Raw`]).
pub(crate) struct Ctx {
    pub(crate) file: PathBuf,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<ConfigWarning>,
    tables: Vec<Table>,
    raws: Vec<types::RawNode>,
}

impl Ctx {
    /// A context for `file`, knowing the key tables of `schemas`.
    pub(crate) fn new(file: &Path, schemas: &[&[Register]]) -> Self {
        Ctx {
            file: file.to_path_buf(),
            errors: Vec::new(),
            warnings: Vec::new(),
            tables: schemas.iter().flat_map(|s| s.iter().map(|f| f())).collect(),
            raws: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, key: &str, pos: Pos, message: impl Into<String>) {
        let (line, column) = split_pos(pos);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            key: key.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Whether an error was recorded at `path` or under it.
    pub(crate) fn has_error_under(&self, path: &str) -> bool {
        self.errors.iter().any(|e| {
            e.key.strip_prefix(path).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
            })
        })
    }

    pub(crate) fn warn(&mut self, key: &str, pos: Pos, message: impl Into<String>) {
        let (line, column) = split_pos(pos);
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            key: key.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn origin(&self, pos: Pos) -> Origin {
        Origin {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
        }
    }

    fn table(&self, name: &str) -> Option<Table> {
        self.tables.iter().find(|t| t.name == name).copied()
    }
}

fn split_pos(pos: Pos) -> (Option<u32>, Option<u32>) {
    if pos.line == 0 {
        (None, None)
    } else {
        (Some(pos.line), Some(pos.column))
    }
}

/// Decodes a whole file's tree into `T`. `None` only when `T` itself could
/// not be built (the reason is in `ctx.errors`).
pub(crate) fn decode<T: DeserializeOwned>(ctx: &mut Ctx, root: &Node) -> Option<T> {
    decode_at(ctx, root, "", root.pos)
}

/// Decodes `node`, found at key path `path` (whose key is at `key_pos`),
/// into `T`: for a subtree kept as [`Raw`] and decoded later.
pub(crate) fn decode_at<T: DeserializeOwned>(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    key_pos: Pos,
) -> Option<T> {
    de::run(ctx, node, path, key_pos, std::marker::PhantomData).ok()
}

/// `parent.child` key path; sequence items use `[i]`.
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// ` (did you mean "x"?)` for the closest candidate within edit distance 2
/// (case-insensitive), or an empty string. The first of equally close
/// candidates wins.
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for cand in candidates {
        let d = levenshtein(&lower, &cand.to_lowercase());
        if d <= 2 && d < lower.chars().count().max(1) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    match best {
        Some((_, c)) => format!(" (did you mean {c:?}?)"),
        None => String::new(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("servce", ["service", "rule"]),
            " (did you mean \"service\"?)"
        );
        assert_eq!(
            suggest("RULE", ["service", "rule"]),
            " (did you mean \"rule\"?)"
        );
        assert_eq!(suggest("zzzzzz", ["service", "rule"]), "");
        assert_eq!(suggest("ab", ["xy"]), "");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
