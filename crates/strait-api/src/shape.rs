//! The shape of a serde type: for every field, what kind of value it takes (a string, an
//! integer of some width, one of an enum's names, a list, a map, a nested struct, anything).
//! `strait install` turns it into the OpenAPI schemas of the CustomResourceDefinitions it
//! renders, so the schema the API server enforces is, by construction, the one strait's own
//! loader accepts: no copy of Istio's CRDs to keep in step with.
//!
//! How: the same probing as [`crate::fields`]. The type is deserialized from a probe that
//! follows a plan of field names (each struct on the way is shown a map holding only the next
//! field) and, at the end of the plan, notes which `deserialize_*` method the value asks for,
//! through options, lists and maps. A value that asks for `deserialize_any` (free-form JSON,
//! untagged enums, hand-written impls) is offered sample values, one run each, and its shape is
//! what it accepted: everything is free-form, an integer and a string is int-or-string.

use std::cell::{Cell, RefCell};

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use crate::fields::{MapKey, Stop, stop};

/// Deepest nesting of structs followed; below it a struct is free-form.
const MAX_DEPTH: usize = 12;

/// What a value of a type may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    Bool,
    /// An integer that fits the bounds (inclusive).
    Integer {
        min: i64,
        max: u64,
    },
    Number,
    String,
    /// One of these names (an `istio_enum!`, or any enum of unit variants).
    Enum(Vec<&'static str>),
    /// An integer or a string (Kubernetes' `int-or-string`).
    IntOrString,
    List(Box<Shape>),
    /// An object with arbitrary keys, each value of this shape.
    Map(Box<Shape>),
    /// An object with these fields, in declaration order. `name` is the Rust type's.
    Struct {
        name: &'static str,
        fields: Vec<(&'static str, Shape)>,
    },
    /// Anything at all: free-form JSON, a part of an API strait reads past, or a struct that
    /// contains itself (the inner occurrence).
    Any,
}

/// The shape of `T`.
pub fn shape_of<T: DeserializeOwned>() -> Shape {
    shape_at::<T>(&mut Vec::new(), 0)
}

fn shape_at<T: DeserializeOwned>(plan: &mut Vec<&'static str>, depth: usize) -> Shape {
    let (wraps, terminal) = probe::<T>(plan, Sample::None);
    let mut shape = match terminal {
        Terminal::Leaf(shape) => shape,
        Terminal::Struct { name, fields } if depth < MAX_DEPTH => {
            let fields = fields
                .iter()
                .map(|&field| {
                    plan.push(field);
                    let s = shape_at::<T>(plan, depth + 1);
                    plan.pop();
                    (field, s)
                })
                .collect();
            Shape::Struct { name, fields }
        }
        Terminal::Struct { .. } | Terminal::Recursive => Shape::Any,
        Terminal::Anything => {
            let accepts = |s: Sample| probe::<T>(plan, s).1 == Terminal::Accepted;
            let int = accepts(Sample::Int);
            let string = accepts(Sample::Str);
            let object = accepts(Sample::Map) || accepts(Sample::Seq);
            match (int, string, object) {
                (true, true, false) => Shape::IntOrString,
                (false, true, false) => Shape::String,
                (true, false, false) => Shape::Integer {
                    min: i64::MIN,
                    max: u64::MAX,
                },
                _ => Shape::Any,
            }
        }
        Terminal::Accepted | Terminal::Rejected | Terminal::Unknown => Shape::Any,
    };
    for wrap in wraps.into_iter().rev() {
        shape = match wrap {
            Wrap::List => Shape::List(Box::new(shape)),
            Wrap::Map => Shape::Map(Box::new(shape)),
        };
    }
    shape
}

/// A value offered to a type that asks for `deserialize_any`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sample {
    None,
    Int,
    Str,
    Map,
    Seq,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrap {
    List,
    Map,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Terminal {
    Leaf(Shape),
    Struct {
        name: &'static str,
        fields: &'static [&'static str],
    },
    Recursive,
    Anything,
    /// The sample offered was accepted (or not) by the innermost value holding it.
    Accepted,
    Rejected,
    Unknown,
}

/// One probing run: the lists and maps around the value at the end of `plan`, and what it is.
fn probe<T: DeserializeOwned>(plan: &[&'static str], sample: Sample) -> (Vec<Wrap>, Terminal) {
    let state = State {
        wraps: RefCell::new(Vec::new()),
        terminal: RefCell::new(Terminal::Unknown),
        sample,
        judged: Cell::new(false),
    };
    // The run ends in an error unless a sample was accepted all the way up; either way the
    // state holds what was learnt.
    let _ = T::deserialize(Probe {
        plan,
        structs: Vec::new(),
        state: &state,
    });
    (state.wraps.into_inner(), state.terminal.into_inner())
}

struct State {
    wraps: RefCell<Vec<Wrap>>,
    terminal: RefCell<Terminal>,
    sample: Sample,
    /// Whether the innermost holder of the sample has judged it already.
    judged: Cell<bool>,
}

impl State {
    /// Called by each holder (struct field, list element, map value) on the way back up: the
    /// first one to return is the innermost, the value the sample was offered to.
    fn judge<X>(&self, at_end: bool, result: &Result<X, Stop>) {
        if at_end && self.sample != Sample::None && !self.judged.replace(true) {
            *self.terminal.borrow_mut() = if result.is_ok() {
                Terminal::Accepted
            } else {
                Terminal::Rejected
            };
        }
    }
}

struct Probe<'a> {
    plan: &'a [&'static str],
    structs: Vec<&'static str>,
    state: &'a State,
}

impl<'a> Probe<'a> {
    fn below(&self, plan: &'a [&'static str]) -> Probe<'a> {
        Probe {
            plan,
            structs: self.structs.clone(),
            state: self.state,
        }
    }

    fn leaf<V>(&self, shape: Shape) -> Result<V, Stop> {
        if self.plan.is_empty() && self.state.sample == Sample::None {
            *self.state.terminal.borrow_mut() = Terminal::Leaf(shape);
        }
        stop()
    }

    fn wrap(&self, w: Wrap) {
        if self.plan.is_empty() && self.state.sample == Sample::None {
            self.state.wraps.borrow_mut().push(w);
        }
    }
}

fn int(min: i64, max: u64) -> Shape {
    Shape::Integer { min, max }
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        if !self.plan.is_empty() {
            return stop();
        }
        match self.state.sample {
            Sample::None => {
                *self.state.terminal.borrow_mut() = Terminal::Anything;
                stop()
            }
            Sample::Int => visitor.visit_u64(8080),
            Sample::Str => visitor.visit_str("sample"),
            Sample::Map => {
                visitor.visit_map(MapDeserializer::new(std::iter::empty::<(String, String)>()))
            }
            Sample::Seq => visitor.visit_seq(SeqDeserializer::new(std::iter::empty::<String>())),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let Some((&next, rest)) = self.plan.split_first() else {
            if self.state.sample == Sample::None {
                let recursive = self.structs.contains(&name);
                *self.state.terminal.borrow_mut() = if recursive {
                    Terminal::Recursive
                } else {
                    Terminal::Struct { name, fields }
                };
            }
            return stop();
        };
        if !fields.contains(&next) {
            return stop();
        }
        self.structs.push(name);
        let value = self.below(rest);
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
        self.wrap(Wrap::List);
        let element = self.below(self.plan);
        visitor.visit_seq(OneElement(Some(element)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.wrap(Wrap::Map);
        let value = self.below(self.plan);
        visitor.visit_map(OneEntry {
            key: Some(MapKey),
            value: Some(value),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.leaf(Shape::Enum(variants.to_vec()))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(Shape::Bool)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(i8::MIN.into(), i8::MAX as u64))
    }

    fn deserialize_i16<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(i16::MIN.into(), i16::MAX as u64))
    }

    fn deserialize_i32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(i32::MIN.into(), i32::MAX as u64))
    }

    fn deserialize_i64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(i64::MIN, i64::MAX as u64))
    }

    fn deserialize_u8<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(0, u8::MAX.into()))
    }

    fn deserialize_u16<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(0, u16::MAX.into()))
    }

    fn deserialize_u32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(0, u32::MAX.into()))
    }

    fn deserialize_u64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(int(0, u64::MAX))
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(Shape::Number)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(Shape::Number)
    }

    fn deserialize_str<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(Shape::String)
    }

    fn deserialize_string<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(Shape::String)
    }

    fn deserialize_char<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(Shape::String)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.leaf(Shape::Any)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

/// A map with one entry; also a struct showing one field.
struct OneEntry<'a, K> {
    key: Option<K>,
    value: Option<Probe<'a>>,
}

impl<'de, K: de::Deserializer<'de, Error = Stop>> de::MapAccess<'de> for OneEntry<'_, K> {
    type Error = Stop;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        self.key.take().map(|k| seed.deserialize(k)).transpose()
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Stop> {
        let Some(v) = self.value.take() else {
            return Err(Stop("no value".into()));
        };
        let (at_end, state) = (v.plan.is_empty(), v.state);
        let r = seed.deserialize(v);
        state.judge(at_end, &r);
        r
    }
}

struct OneElement<'a>(Option<Probe<'a>>);

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        let Some(v) = self.0.take() else {
            return Ok(None);
        };
        let (at_end, state) = (v.plan.is_empty(), v.state);
        let r = seed.deserialize(v);
        state.judge(at_end, &r);
        r.map(Some)
    }
}

#[cfg(test)]
#[path = "shape_tests.rs"]
mod tests;
