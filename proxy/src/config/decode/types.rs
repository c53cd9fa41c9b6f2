//! The wrapper types a schema uses where a plain Rust type is not enough:
//! a value with its position ([`At`]), a map of user-chosen names
//! ([`Named`]), a section that `true` switches on ([`Switch`]), a value
//! accepted and never looked at ([`Ignored`]), and a subtree kept as it is
//! for later ([`Raw`]).
//!
//! `At`, `Named`, `Switch` and `Raw` talk to the node deserializer through
//! reserved serde names (as `toml::Spanned` does); they decode only there.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::super::node::{Node, Pos};
use super::Ctx;

/// Reserved serde names and fields of the protocol with the deserializer.
pub(super) const AT: &str = "$proxy::config::At";
pub(super) const AT_FIELDS: &[&str] = &[
    "path",
    "line",
    "column",
    "keyLine",
    "keyColumn",
    "value",
    "ok",
];
pub(super) const SWITCH: &str = "$proxy::config::Switch";
pub(super) const RAW: &str = "$proxy::config::Raw";

/// A value with where it was written, for checks made after decoding.
///
/// Decoding never fails for an `At`: if `T` cannot be decoded (the reason
/// is already reported), `value` is `T::default()` and `ok` is false.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    /// Where the value starts (inside the quotes for a quoted string).
    pub(crate) pos: Pos,
    /// Where its key is written; for a list item, the item itself.
    pub(crate) key_pos: Pos,
    /// Its key path as the user spelled it, e.g. `http.routers.api.rule`.
    pub(crate) path: String,
    /// False when an error was reported for this very value (its shape or
    /// its scalar), so later checks should not add a second one. Errors
    /// inside it (an unknown key of a map) do not count.
    pub(crate) ok: bool,
}

impl<T> At<T> {
    /// The value, if it decoded without an error of its own.
    pub(crate) fn ok(&self) -> Option<&T> {
        self.ok.then_some(&self.value)
    }
}

impl At<Vec<At<String>>> {
    /// The strings of a list with where each is written; a list with an
    /// item that is not a string counts as empty (that item is reported).
    pub(crate) fn strings(self) -> Vec<(String, Pos)> {
        if !self.ok || !self.value.iter().all(|item| item.ok) {
            return Vec::new();
        }
        self.value
            .into_iter()
            .map(|item| (item.value, item.pos))
            .collect()
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(AT, AT_FIELDS, AtVisitor(PhantomData))
    }
}

struct AtVisitor<T>(PhantomData<T>);

/// The next entry of the protocol map, in the order of [`AT_FIELDS`].
fn field<'de, A: MapAccess<'de>, T: Deserialize<'de>>(map: &mut A) -> Result<T, A::Error> {
    next_key(map)?;
    map.next_value()
}

fn next_key<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_key::<IgnoredAny>()?
        .map(drop)
        .ok_or_else(|| de::Error::custom("positioned value without its value"))
}

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for AtVisitor<T> {
    type Value = At<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a positioned configuration value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<At<T>, A::Error> {
        let path: String = field(&mut map)?;
        let pos = Pos {
            line: field(&mut map)?,
            column: field(&mut map)?,
        };
        let key_pos = Pos {
            line: field(&mut map)?,
            column: field(&mut map)?,
        };
        next_key(&mut map)?;
        // The deserializer has reported why a value failed; keep going.
        let (value, decoded) = match map.next_value::<T>() {
            Ok(v) => (v, true),
            Err(_) => (T::default(), false),
        };
        let ok: bool = field(&mut map)?;
        Ok(At {
            value,
            pos,
            key_pos,
            path,
            ok: ok && decoded,
        })
    }
}

/// A map whose keys are names the user chose (routers, services,
/// entrypoints): case-sensitive, in file order. The same name twice can
/// only come from two spellings of the parent key; two maps under it merge.
#[derive(Debug)]
pub(crate) struct Named<T>(pub(crate) Vec<Item<T>>);

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named(Vec::new())
    }
}

/// One entry of a [`Named`] map.
#[derive(Debug)]
pub(crate) struct Item<T> {
    /// The name, as written.
    pub(crate) name: String,
    /// Its key path, e.g. `http.routers.api`.
    pub(crate) path: String,
    /// Where the name is written.
    pub(crate) key_pos: Pos,
    /// The decoded value; `None` when it had the wrong shape or could not
    /// be decoded at all (reported). The name is still defined.
    pub(crate) value: Option<T>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Named<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NamedVisitor(PhantomData))
    }
}

struct NamedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NamedVisitor<T> {
    type Value = Named<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Named<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(name) = map.next_key::<At<String>>()? {
            let value: At<Option<T>> = map.next_value()?;
            items.push(Item {
                name: name.value,
                path: name.path,
                key_pos: name.key_pos,
                value: value.value.filter(|_| value.ok),
            });
        }
        Ok(Named(items))
    }
}

/// An optional section that a boolean switches (`ping: true`,
/// `accessLog: false`) or a map configures; an empty value switches it on.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Switch<T> {
    /// `false`.
    #[default]
    Off,
    /// `true` (with `T::default()`), an empty value, or a map.
    On(T),
}

impl<T> Switch<T> {
    /// The section's settings when it is on.
    pub(crate) fn on(self) -> Option<T> {
        match self {
            Switch::Off => None,
            Switch::On(t) => Some(t),
        }
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Switch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(SWITCH, SwitchVisitor(PhantomData))
    }
}

struct SwitchVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for SwitchVisitor<T> {
    type Value = Switch<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean or a map")
    }

    fn visit_bool<E: de::Error>(self, on: bool) -> Result<Switch<T>, E> {
        Ok(if on {
            Switch::On(T::default())
        } else {
            Switch::Off
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Switch<T>, D::Error> {
        T::deserialize(d).map(Switch::On)
    }
}

/// Any value, accepted and not looked at (a refused service type whose
/// presence is all that counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ignored;

impl<'de> Deserialize<'de> for Ignored {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Ignored)
    }
}

/// A subtree kept undecoded, for a key whose shape rules no type states
/// (take it back with [`Ctx::take_raw`], decode parts with `decode_at`).
#[derive(Debug)]
pub(crate) struct Raw(usize);

/// The subtree a [`Raw`] stands for.
#[derive(Debug, Default)]
pub(crate) struct RawNode {
    pub(crate) node: Node,
    pub(crate) path: String,
}

impl Ctx {
    /// Keeps `node` for a [`Raw`].
    pub(super) fn keep_raw(&mut self, node: RawNode) -> usize {
        self.raws.push(node);
        self.raws.len() - 1
    }

    /// The subtree `raw` stands for.
    pub(crate) fn take_raw(&mut self, raw: Raw) -> RawNode {
        self.raws
            .get_mut(raw.0)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(RAW, RawVisitor)
    }
}

struct RawVisitor;

impl Visitor<'_> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration subtree")
    }

    fn visit_u64<E: de::Error>(self, index: u64) -> Result<Raw, E> {
        usize::try_from(index)
            .map(Raw)
            .map_err(|_| E::custom("subtree index out of range"))
    }
}
