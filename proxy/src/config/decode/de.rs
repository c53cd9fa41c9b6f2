//! The serde `Deserializer` over the node tree, with Traefik's key rules
//! (case-insensitive struct keys checked against the fields and the
//! [`Schema`](super::Schema) table, two spellings merged, did-you-mean)
//! and paerser's scalar rules ([`scalar`]).
//!
//! Every problem is recorded in the [`Ctx`] where it is found; a value of
//! the wrong shape is replaced by a neutral one so decoding goes on. Only
//! what cannot be built at all (a missing required field, an item with no
//! type) fails, and then only up to the nearest [`At`](super::At) or
//! [`Named`](super::Named) entry. Never panics on any tree.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::super::node::{Key, Node, Pos, ScalarKind, Value};
use super::scalar::{self, expected};
use super::types::{AT, AT_FIELDS, RAW, RawNode, SWITCH};
use super::{Ctx, Spec, Support, child, suggest};

/// Go's `int` is 64-bit signed: no integer Traefik reads is larger.
const GO_INT_MAX: u64 = i64::MAX as u64;

/// Why a value could not be built.
#[derive(Debug)]
pub(super) enum Error {
    /// Already recorded in the context.
    Reported,
    /// A complaint of a `Deserialize` impl, recorded by [`run`] at the
    /// value it was decoding.
    Custom(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Reported => f.write_str("reported"),
            Error::Custom(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        Error::Custom(format!("missing key {field:?}"))
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Decodes `seed` from `node` at key path `path`, and records a complaint
/// of the seed's own `Deserialize` impl at that value.
pub(super) fn run<'de, S: DeserializeSeed<'de>>(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    key_pos: Pos,
    seed: S,
) -> Result<S::Value> {
    let r = seed.deserialize(NodeDe {
        ctx: &mut *ctx,
        node,
        path,
        key_pos,
    });
    settle(ctx, path, node.pos, r)
}

/// Records a complaint not yet recorded at the value it is about.
fn settle<T>(ctx: &mut Ctx, path: &str, pos: Pos, r: Result<T>) -> Result<T> {
    r.map_err(|e| {
        if let Error::Custom(m) = e {
            ctx.error(path, pos, m);
        }
        Error::Reported
    })
}

/// The deserializer for one value of the tree.
struct NodeDe<'a> {
    ctx: &'a mut Ctx,
    node: &'a Node,
    path: &'a str,
    /// Where the value's key is written (the item itself in a list).
    key_pos: Pos,
}

impl NodeDe<'_> {
    /// The value read by `parse`, or `neutral` after reporting why not.
    fn parsed<T>(
        &mut self,
        parse: impl FnOnce(&Value) -> std::result::Result<T, String>,
        neutral: T,
    ) -> T {
        match parse(&self.node.value) {
            Ok(v) => v,
            Err(m) => {
                self.ctx.error(self.path, self.node.pos, m);
                neutral
            }
        }
    }

    fn uint(&mut self, max: u64) -> u64 {
        self.parsed(|v| scalar::uint(v, max.min(GO_INT_MAX)), 0)
    }

    fn int(&mut self, min: i64, max: i64) -> i64 {
        self.parsed(|v| scalar::int(v, min, max), 0)
    }
}

macro_rules! unsigned {
    ($($method:ident $visit:ident $t:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
            let n = self.uint(u64::try_from(<$t>::MAX).unwrap_or(u64::MAX));
            v.$visit(<$t>::try_from(n).unwrap_or_default())
        }
    )*};
}

macro_rules! signed {
    ($($method:ident $visit:ident $t:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
            let min = i64::try_from(<$t>::MIN).unwrap_or(i64::MIN);
            let max = i64::try_from(<$t>::MAX).unwrap_or(i64::MAX);
            let n = self.int(min, max);
            v.$visit(<$t>::try_from(n).unwrap_or_default())
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = Error;

    /// Self-describing: the shape and scalar kind as written in the file.
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match &self.node.value {
            Value::Map(_) => self.deserialize_map(v),
            Value::Seq(_) => self.deserialize_seq(v),
            Value::Null => v.visit_unit(),
            Value::Scalar(ScalarKind::Bool, s) => v.visit_bool(s == "true"),
            Value::Scalar(ScalarKind::Integer, s) => match (s.parse::<i64>(), s.parse::<u64>()) {
                (Ok(n), _) => v.visit_i64(n),
                (_, Ok(n)) => v.visit_u64(n),
                _ => v.visit_str(s),
            },
            Value::Scalar(ScalarKind::Float, s) => match s.parse::<f64>() {
                Ok(f) => v.visit_f64(f),
                Err(_) => v.visit_str(s),
            },
            Value::Scalar(ScalarKind::String, s) => v.visit_str(s),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let b = self.parsed(scalar::boolean, false);
        v.visit_bool(b)
    }

    unsigned! {
        deserialize_u8 visit_u8 u8;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
        deserialize_u128 visit_u128 u128;
    }

    signed! {
        deserialize_i8 visit_i8 i8;
        deserialize_i16 visit_i16 i16;
        deserialize_i32 visit_i32 i32;
        deserialize_i64 visit_i64 i64;
        deserialize_i128 visit_i128 i128;
    }

    fn deserialize_f32<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let f = self.parsed(scalar::float, 0.0);
        v.visit_f32(f as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let f = self.parsed(scalar::float, 0.0);
        v.visit_f64(f)
    }

    fn deserialize_char<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let c = self.parsed(
            |value| {
                let s = scalar::string(value)?;
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(c),
                    _ => Err(format!("expected a single character, found {s:?}")),
                }
            },
            ' ',
        );
        v.visit_char(c)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_string(v)
    }

    fn deserialize_string<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let s = self.parsed(scalar::string, String::new());
        v.visit_string(s)
    }

    fn deserialize_bytes<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value> {
        let s = self.parsed(scalar::string, String::new());
        v.visit_byte_buf(s.into_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_bytes(v)
    }

    /// A key that is present is `Some`, even with an empty value: paerser
    /// reads an empty value as the field's empty text.
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value> {
        if name == SWITCH {
            return match &self.node.value {
                Value::Map(_) | Value::Null => v.visit_newtype_struct(self),
                Value::Scalar(..) => {
                    let on = self.parsed(scalar::boolean, false);
                    v.visit_bool(on)
                }
                Value::Seq(_) => {
                    let message = expected("a map", &self.node.value);
                    self.ctx.error(self.path, self.node.pos, message);
                    v.visit_bool(false)
                }
            };
        }
        if name == RAW {
            let index = self.ctx.keep_raw(RawNode {
                node: self.node.clone(),
                path: self.path.to_owned(),
            });
            return v.visit_u64(index as u64);
        }
        v.visit_newtype_struct(self)
    }

    /// A sequence; one string is a comma-separated list (paerser's rule),
    /// and an empty value is an empty list.
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        let NodeDe {
            ctx, node, path, ..
        } = self;
        let items: Vec<(Cow<'_, Node>, String)> = match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (Cow::Borrowed(item), format!("{path}[{i}]")))
                .collect(),
            // The items of a comma list share the list's key and position.
            Value::Scalar(_, s) => scalar::list_items(s)
                .map(|item| {
                    let node = Node {
                        value: Value::Scalar(ScalarKind::String, item.to_owned()),
                        pos: node.pos,
                    };
                    (Cow::Owned(node), path.to_owned())
                })
                .collect(),
            Value::Null => Vec::new(),
            Value::Map(_) => {
                ctx.error(path, node.pos, expected("a list", &node.value));
                Vec::new()
            }
        };
        v.visit_seq(SeqDe {
            ctx,
            items: items.into_iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(v)
    }

    /// A map of user-chosen names: case-sensitive keys.
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        let NodeDe {
            ctx, node, path, ..
        } = self;
        let entries = named_entries(ctx, path, node)
            .into_iter()
            .map(|(key, value)| MapEntry {
                key: Node {
                    value: Value::Scalar(ScalarKind::String, key.name.clone()),
                    pos: key.pos,
                },
                path: child(path, &key.name),
                value,
            })
            .collect::<Vec<_>>();
        v.visit_map(MapDe {
            ctx,
            entries: entries.into_iter(),
            current: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        if name == AT && fields == AT_FIELDS {
            return v.visit_map(AtDe {
                before: self.ctx.errors.len(),
                de: self,
                step: 0,
            });
        }
        let NodeDe {
            ctx, node, path, ..
        } = self;
        if name == "Duration" && fields == ["secs", "nanos"] {
            // std's Duration: read a Go duration and hand over its parts.
            let d = match scalar::duration(&node.value) {
                Ok(d) => d,
                Err(m) => {
                    ctx.error(path, node.pos, m);
                    Duration::ZERO
                }
            };
            return v.visit_seq(DurationParts(Some(d.as_secs()), Some(d.subsec_nanos())));
        }
        let entries = match &node.value {
            Value::Map(entries) => struct_entries(ctx, path, entries, name, fields),
            Value::Null => Vec::new(),
            other => {
                ctx.error(path, node.pos, expected("a map", other));
                Vec::new()
            }
        };
        v.visit_map(StructDe {
            ctx,
            entries: entries.into_iter(),
            current: None,
        })
    }

    /// An enum of types, registered with a key table (a middleware is one
    /// of ~25): a map with one key naming the type. Any other enum: a unit
    /// variant named by a string, or a map with one key naming a variant.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        let NodeDe {
            ctx,
            node,
            path,
            key_pos,
        } = self;
        let table = ctx.table(name);
        let (keys, noun): (Spec, &str) = table.map_or((&[], "value"), |t| (t.keys, t.noun));
        let entries = match &node.value {
            // An enum of types (it has a key table) is always a map.
            Value::Scalar(_, s) if table.is_none() => {
                let Some(variant) = variants.iter().find(|n| n.eq_ignore_ascii_case(s.trim()))
                else {
                    return Err(Error::Custom(format!(
                        "unknown {noun} {s:?} (expected {})",
                        one_of(variants)
                    )));
                };
                return v.visit_enum(EnumDe {
                    ctx,
                    variant,
                    node: None,
                    path: path.to_owned(),
                    key_pos,
                });
            }
            Value::Map(entries) => &entries[..],
            Value::Null => &[],
            other => return Err(Error::Custom(expected("a map", other))),
        };
        if entries.is_empty() {
            ctx.error(path, key_pos, format!("{noun} has no type"));
            return Err(Error::Reported);
        }
        let mut chosen: Vec<Resolved<'_>> = Vec::new();
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
        match chosen.pop() {
            Some(only) if chosen.is_empty() => v.visit_enum(EnumDe {
                ctx,
                variant: only.canonical,
                key_pos: only.key.pos,
                node: Some(only.node),
                path: only.path,
            }),
            Some(_) => {
                ctx.error(
                    path,
                    key_pos,
                    format!("a {noun} must have exactly one type"),
                );
                Err(Error::Reported)
            }
            None => Err(Error::Reported),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_string(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_unit()
    }
}

/// `"a", "b" or "c"`.
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.split_last() {
        None => "nothing".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn ignored(why: &str) -> String {
    if why.is_empty() {
        "not supported yet; ignored".to_owned()
    } else {
        format!("not supported yet; ignored ({why})")
    }
}

// === struct keys ===

/// A key of a struct (or enum) resolved to its canonical spelling.
struct Resolved<'n> {
    canonical: &'static str,
    key: &'n Key,
    /// Owned when two spellings of the key were merged.
    node: Cow<'n, Node>,
    path: String,
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
fn struct_entries<'n>(
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
fn named_entries<'n>(ctx: &mut Ctx, path: &str, node: &'n Node) -> Vec<(&'n Key, Cow<'n, Node>)> {
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

// === accessors ===

/// The fields of a struct, keys given in their canonical spelling.
struct StructDe<'a> {
    ctx: &'a mut Ctx,
    entries: std::vec::IntoIter<Resolved<'a>>,
    current: Option<Resolved<'a>>,
}

impl<'de> MapAccess<'de> for StructDe<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        let canonical = entry.canonical;
        self.current = Some(entry);
        seed.deserialize(IntoDeserializer::<Error>::into_deserializer(canonical))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let entry = self.current.take().ok_or(Error::Reported)?;
        run(self.ctx, &entry.node, &entry.path, entry.key.pos, seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct MapEntry<'n> {
    /// The name as a string node at the key's position.
    key: Node,
    path: String,
    value: Cow<'n, Node>,
}

/// A map of user-chosen names; keys decode as strings (or `At<String>`).
struct MapDe<'a> {
    ctx: &'a mut Ctx,
    entries: std::vec::IntoIter<MapEntry<'a>>,
    current: Option<MapEntry<'a>>,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        let key = run(self.ctx, &entry.key, &entry.path, entry.key.pos, seed)?;
        self.current = Some(entry);
        Ok(Some(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let entry = self.current.take().ok_or(Error::Reported)?;
        run(self.ctx, &entry.value, &entry.path, entry.key.pos, seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// The items of a list, with their paths.
struct SeqDe<'a> {
    ctx: &'a mut Ctx,
    items: std::vec::IntoIter<(Cow<'a, Node>, String)>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        let Some((node, path)) = self.items.next() else {
            return Ok(None);
        };
        run(self.ctx, &node, &path, node.pos, seed).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The protocol map of [`At`](super::At): see [`AT_FIELDS`].
struct AtDe<'a> {
    de: NodeDe<'a>,
    step: usize,
    /// Errors recorded before the value was decoded.
    before: usize,
}

impl<'de> MapAccess<'de> for AtDe<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match AT_FIELDS.get(self.step) {
            Some(name) => seed
                .deserialize(IntoDeserializer::<Error>::into_deserializer(*name))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let de = &mut self.de;
        let step = self.step;
        self.step += 1;
        match step {
            0 => seed.deserialize(IntoDeserializer::<Error>::into_deserializer(
                de.path.to_owned(),
            )),
            1 => seed.deserialize(seed_u32(de.node.pos.line)),
            2 => seed.deserialize(seed_u32(de.node.pos.column)),
            3 => seed.deserialize(seed_u32(de.key_pos.line)),
            4 => seed.deserialize(seed_u32(de.key_pos.column)),
            5 => {
                self.before = de.ctx.errors.len();
                run(de.ctx, de.node, de.path, de.key_pos, seed)
            }
            _ => {
                let ok = de.ctx.errors[self.before..]
                    .iter()
                    .all(|e| e.key != de.path);
                seed.deserialize(IntoDeserializer::<Error>::into_deserializer(ok))
            }
        }
    }
}

fn seed_u32(n: u32) -> de::value::U32Deserializer<Error> {
    n.into_deserializer()
}

/// The two fields of std's `Duration`, for its visitor.
struct DurationParts(Option<u64>, Option<u32>);

impl<'de> SeqAccess<'de> for DurationParts {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        if let Some(secs) = self.0.take() {
            return seed
                .deserialize(IntoDeserializer::<Error>::into_deserializer(secs))
                .map(Some);
        }
        match self.1.take() {
            Some(nanos) => seed.deserialize(seed_u32(nanos)).map(Some),
            None => Ok(None),
        }
    }
}

/// The chosen variant of an enum, and its value (none for a unit variant
/// named by a string).
struct EnumDe<'a> {
    ctx: &'a mut Ctx,
    variant: &'static str,
    node: Option<Cow<'a, Node>>,
    path: String,
    key_pos: Pos,
}

impl<'de, 'a> EnumAccess<'de> for EnumDe<'a> {
    type Error = Error;
    type Variant = EnumDe<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, EnumDe<'a>)> {
        let variant =
            seed.deserialize(IntoDeserializer::<Error>::into_deserializer(self.variant))?;
        Ok((variant, self))
    }
}

impl EnumDe<'_> {
    /// The variant's value as a node (an empty one for a unit variant).
    fn with_node<T>(self, f: impl FnOnce(NodeDe<'_>) -> Result<T>) -> Result<T> {
        let node = self.node.unwrap_or_default();
        let r = f(NodeDe {
            ctx: &mut *self.ctx,
            node: &node,
            path: &self.path,
            key_pos: self.key_pos,
        });
        settle(self.ctx, &self.path, node.pos, r)
    }
}

impl<'de> VariantAccess<'de> for EnumDe<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        match self.node.as_deref().map(|n| &n.value) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Map(m)) if m.is_empty() => Ok(()),
            Some(other) => {
                let pos = self.node.as_ref().map_or(Pos::default(), |n| n.pos);
                self.ctx.error(&self.path, pos, expected("nothing", other));
                Err(Error::Reported)
            }
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        let node = self.node.unwrap_or_default();
        run(self.ctx, &node, &self.path, self.key_pos, seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value> {
        self.with_node(|de| de::Deserializer::deserialize_seq(de, v))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        self.with_node(|de| de::Deserializer::deserialize_struct(de, "", fields, v))
    }
}

// === schema names ===

/// The name `T`'s derived `Deserialize` gives the deserializer (a struct's
/// or enum's name): what a key table is registered under.
pub(super) fn serde_name<T: DeserializeOwned>() -> &'static str {
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

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        ProbeError(None)
    }
}

impl<'de> de::Deserializer<'de> for NameProbe {
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
