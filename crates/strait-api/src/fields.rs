//! Every field path of a serde type, read from what its `Deserialize` impl asks for, so a list
//! of a kind's fields can never fall behind the type (strait-model's field-coverage test holds
//! each one to "acted on or reported").
//!
//! How: a probing `Deserializer` answers `deserialize_struct` by learning the field names serde
//! passes it (already renamed), then stops the run with an error. To see inside one field the
//! type is deserialized again from the top, following a plan of field names: each struct on the
//! way is shown a map holding only the next field of the plan (spec structs are
//! `#[serde(default)]`, and a missing required field is only noticed after its value has been
//! probed). Options are looked through; a sequence shows one element (`[]`) and a map one entry
//! (`[*]`). Everything else is a leaf: scalars, enums, tuples, and any type that asks for
//! `deserialize_any` (`serde_json::Value`, untagged enums, hand-written impls).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// Deepest nesting of structs followed; below it a field is a leaf.
const MAX_DEPTH: usize = 12;

/// Every field path of `T`, parents before their children, in declaration order: `name`,
/// `http[].route[].destination.host`, `labels[*]` has none (a map of strings), and so on. A
/// struct that contains itself is followed once: the inner occurrence is a leaf.
pub fn field_paths<T: DeserializeOwned>() -> Vec<String> {
    let mut out = Vec::new();
    explore::<T>(&mut Vec::new(), &mut out);
    out
}

fn explore<T: DeserializeOwned>(plan: &mut Vec<&'static str>, out: &mut Vec<String>) {
    let found = RefCell::new(None);
    // The run always ends in an error: the probe stops it once it has seen what it wanted.
    let _ = T::deserialize(Probe {
        plan,
        path: String::new(),
        structs: Vec::new(),
        found: &found,
    });
    let Some(Found { path, fields }) = found.into_inner() else {
        return;
    };
    for field in fields {
        out.push(join(&path, field));
        plan.push(field);
        explore::<T>(plan, out);
        plan.pop();
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// A struct at the end of a plan, to be explored further.
struct Found {
    path: String,
    fields: &'static [&'static str],
}

#[derive(Debug)]
pub(crate) struct Stop(pub(crate) String);

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Stop(msg.to_string())
    }
}

pub(crate) fn stop<T>() -> Result<T, Stop> {
    Err(Stop("probe done".into()))
}

struct Probe<'a> {
    /// Field names still to follow.
    plan: &'a [&'static str],
    /// Where this value is (`http[].route`).
    path: String,
    /// Structs enclosing this value, outermost first.
    structs: Vec<&'static str>,
    found: &'a RefCell<Option<Found>>,
}

impl<'a> Probe<'a> {
    fn below(&self, plan: &'a [&'static str], path: String) -> Probe<'a> {
        Probe {
            plan,
            path,
            structs: self.structs.clone(),
            found: self.found,
        }
    }
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        stop()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let Some((&next, rest)) = self.plan.split_first() else {
            let recursive = self.structs.contains(&name) || self.structs.len() >= MAX_DEPTH;
            if !recursive {
                *self.found.borrow_mut() = Some(Found {
                    path: self.path,
                    fields,
                });
            }
            return stop();
        };
        if !fields.contains(&next) {
            return stop();
        }
        self.structs.push(name);
        let value = self.below(rest, join(&self.path, next));
        visitor.visit_map(OneEntry {
            key: Some(next.into_deserializer()),
            value: Some(value),
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        let element = self.below(self.plan, format!("{}[]", self.path));
        visitor.visit_seq(OneElement(Some(element)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        let value = self.below(self.plan, format!("{}[*]", self.path));
        visitor.visit_map(OneEntry {
            key: Some(MapKey),
            value: Some(value),
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// A map with one entry; also a struct showing one field.
struct OneEntry<K, V> {
    key: Option<K>,
    value: Option<V>,
}

impl<'de, K, V> de::MapAccess<'de> for OneEntry<K, V>
where
    K: de::Deserializer<'de, Error = Stop>,
    V: de::Deserializer<'de, Error = Stop>,
{
    type Error = Stop;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        self.key.take().map(|k| seed.deserialize(k)).transpose()
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Stop> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => stop(),
        }
    }
}

struct OneElement<'a>(Option<Probe<'a>>);

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        self.0.take().map(|v| seed.deserialize(v)).transpose()
    }
}

/// The key of a map's one entry: `"*"`, or 0 for maps keyed by numbers (ports).
pub(crate) struct MapKey;

impl<'de> de::Deserializer<'de> for MapKey {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_str("*")
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_u64(0)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_u64(0)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_u64(0)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_u64(0)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_i64(0)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_i64(0)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_i64(0)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_i64(0)
    }

    serde::forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        #[serde(rename = "match")]
        matches: Vec<Inner>,
        maybe_inner: Option<Inner>,
        by_name: BTreeMap<String, Inner>,
        by_port: BTreeMap<u32, Inner>,
        tree: Option<Tree>,
        free: Option<serde_json::Value>,
        mode: Option<Mode>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Inner {
        host_name: String,
        ports: Vec<u32>,
    }

    /// Recursive, with a required field: still probed, and followed once.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
        next: Option<Box<Tree>>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Mode {
        On,
        Off,
    }

    #[test]
    fn every_path_renamed_and_nested() {
        let expected = [
            "match",
            "match[].hostName",
            "match[].ports",
            "maybeInner",
            "maybeInner.hostName",
            "maybeInner.ports",
            "byName",
            "byName[*].hostName",
            "byName[*].ports",
            "byPort",
            "byPort[*].hostName",
            "byPort[*].ports",
            "tree",
            "tree.label",
            "tree.children",
            "tree.next",
            "free",
            "mode",
        ];
        assert_eq!(field_paths::<Outer>(), expected);
    }

    #[test]
    fn non_structs_have_no_fields() {
        assert!(field_paths::<String>().is_empty());
        assert!(field_paths::<Vec<u32>>().is_empty());
        assert!(field_paths::<serde_json::Value>().is_empty());
    }
}
