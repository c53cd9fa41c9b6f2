//! The serde `Deserializer` over the node tree, with Traefik's key rules
//! (case-insensitive struct keys checked against the fields and the
//! [`Schema`](super::Schema) table, two spellings merged, did-you-mean)
//! and paerser's scalar rules ([`scalar`]).
//!
//! Every problem is recorded in the [`Ctx`] where it is found; a value of
//! the wrong shape is replaced by a neutral one so decoding goes on. Only
//! what cannot be built at all (a missing required field, an item with no
//! type) fails, and then only up to the nearest [`At`](super::At) or
//! [`Named`](super::Named) entry. Never panics on any tree. Key resolution
//! is in `keys`, the accessors handed to visitors in `access`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Visitor};

use super::super::node::{Node, Pos, ScalarKind, Value};
use super::access::{AtDe, DurationParts, EnumDe, MapDe, MapEntry, SeqDe, StructDe};
use super::keys::{self, named_entries, struct_entries};
use super::scalar::{self, expected};
use super::types::{AT, AT_FIELDS, RAW, RawNode, SWITCH};
use super::{Ctx, Spec, child};

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

pub(super) type Result<T> = std::result::Result<T, Error>;

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
pub(super) fn settle<T>(ctx: &mut Ctx, path: &str, pos: Pos, r: Result<T>) -> Result<T> {
    r.map_err(|e| {
        if let Error::Custom(m) = e {
            ctx.error(path, pos, m);
        }
        Error::Reported
    })
}

/// The deserializer for one value of the tree.
pub(super) struct NodeDe<'a> {
    pub(super) ctx: &'a mut Ctx,
    pub(super) node: &'a Node,
    pub(super) path: &'a str,
    /// Where the value's key is written (the item itself in a list).
    pub(super) key_pos: Pos,
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
            // As Traefik's paerser fills a section pointer: `true` (a
            // store's value, a label) creates it with its defaults
            // (`…/middlewares/m/compress` = `true`, a router's `tls`).
            Value::Scalar(_, s) if s.trim().eq_ignore_ascii_case("true") => Vec::new(),
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
        match keys::enum_type(ctx, path, key_pos, entries, variants, keys, noun) {
            Some(only) => v.visit_enum(EnumDe {
                ctx,
                variant: only.canonical,
                key_pos: only.key.pos,
                node: Some(only.node),
                path: only.path,
            }),
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
