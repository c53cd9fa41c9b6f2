//! The serde accessors the node deserializer hands to visitors: a
//! struct's resolved fields, a map of names, a list, the protocol map of
//! `At`, std `Duration`'s two parts, and the chosen variant of an enum.
//!
//! Each value they give out is decoded through [`run`], so a complaint is
//! recorded where it belongs.

use std::borrow::Cow;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

use super::super::node::{Node, Pos, Value};
use super::Ctx;
use super::de::{Error, NodeDe, Result, run, settle};
use super::keys::Resolved;
use super::scalar::expected;
use super::types::AT_FIELDS;

/// The fields of a struct, keys given in their canonical spelling.
pub(super) struct StructDe<'a> {
    pub(super) ctx: &'a mut Ctx,
    pub(super) entries: std::vec::IntoIter<Resolved<'a>>,
    pub(super) current: Option<Resolved<'a>>,
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

pub(super) struct MapEntry<'n> {
    /// The name as a string node at the key's position.
    pub(super) key: Node,
    pub(super) path: String,
    pub(super) value: Cow<'n, Node>,
}

/// A map of user-chosen names; keys decode as strings (or `At<String>`).
pub(super) struct MapDe<'a> {
    pub(super) ctx: &'a mut Ctx,
    pub(super) entries: std::vec::IntoIter<MapEntry<'a>>,
    pub(super) current: Option<MapEntry<'a>>,
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
pub(super) struct SeqDe<'a> {
    pub(super) ctx: &'a mut Ctx,
    pub(super) items: std::vec::IntoIter<(Cow<'a, Node>, String)>,
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
pub(super) struct AtDe<'a> {
    pub(super) de: NodeDe<'a>,
    pub(super) step: usize,
    /// Errors recorded before the value was decoded.
    pub(super) before: usize,
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
pub(super) struct DurationParts(pub(super) Option<u64>, pub(super) Option<u32>);

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
pub(super) struct EnumDe<'a> {
    pub(super) ctx: &'a mut Ctx,
    pub(super) variant: &'static str,
    pub(super) node: Option<Cow<'a, Node>>,
    pub(super) path: String,
    pub(super) key_pos: Pos,
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
