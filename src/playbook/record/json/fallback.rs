//! Reading one NDJSON record with `serde_json` alone, through a visitor seeded by the
//! [`PathTree`]: the path the extractor (`extract.rs`) falls back to for anything it cannot
//! vouch for, and the oracle it is tested against.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use super::paths::{lookup_json, PathTree};
use crate::playbook::record::value::Val;

/// [`parse_json_line`](super::parse_json_line) by `serde_json` alone, with a visitor seeded by the tree: the reference
/// the fast path is tested against.
pub fn parse_json_line_serde<'de>(
    line: &'de str,
    tree: &PathTree,
    slots: &mut [Option<Val<'de>>],
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(line);
    MapSeed { node: tree, slots }.deserialize(&mut de)?;
    de.end()
}

struct MapSeed<'t, 's, 'de> {
    node: &'t PathTree,
    slots: &'s mut [Option<Val<'de>>],
}

impl<'de> DeserializeSeed<'de> for MapSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! ignore_scalars {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<(), E> { Ok(()) })*
    };
}

impl<'de> Visitor<'de> for MapSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    ignore_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Unused>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(StrSeed)? {
            match self.node.find(&key) {
                None => {
                    map.next_value::<Unused>()?;
                }
                Some(child) if child.slot.is_some() => {
                    let value = map.next_value_seed(ValSeed)?;
                    if let (Val::Json(json), false) = (&value, child.inner.is_empty()) {
                        for (path, slot) in &child.inner {
                            self.slots[*slot] = lookup_json(json, path).map(Val::from_json);
                        }
                    }
                    self.slots[child.slot.expect("checked")] = Some(value);
                }
                Some(child) => map.next_value_seed(MapSeed {
                    node: child,
                    slots: &mut *self.slots,
                })?,
            }
        }
        Ok(())
    }
}

/// A value the playbook does not use, read as strictly as `serde_json::Value` reads it (numbers
/// in range, escapes that make characters, nesting within its limit) and then dropped:
/// `IgnoredAny` would skip what `Value` refuses, and a record kept whole for `filtered` must
/// parse as a `Value` (issue 10, item 14).
struct Unused;

impl<'de> Deserialize<'de> for Unused {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Unused, D::Error> {
        d.deserialize_any(UnusedVisitor)
    }
}

struct UnusedVisitor;

impl<'de> Visitor<'de> for UnusedVisitor {
    type Value = Unused;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Unused, E> {
        Ok(Unused)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Unused, E> {
        Ok(Unused)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Unused, E> {
        Ok(Unused)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Unused, E> {
        Ok(Unused)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Unused, E> {
        Ok(Unused)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Unused, E> {
        Ok(Unused)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unused, A::Error> {
        while seq.next_element::<Unused>()?.is_some() {}
        Ok(Unused)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unused, A::Error> {
        while map.next_entry::<Unused, Unused>()?.is_some() {}
        Ok(Unused)
    }
}

/// A string, borrowed from the input when it has no escapes.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// Any JSON value as a [`Val`], strings borrowed when possible.
pub(super) struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Val::Num(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Json::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Val::Json)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Json::deserialize(de::value::MapAccessDeserializer::new(map)).map(Val::Json)
    }
}
