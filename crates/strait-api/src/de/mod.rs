//! A serde `Deserializer` over a spanned [`Node`] tree.
//!
//! Why not deserialize from text directly: we want every problem in an object at once, each
//! with its field path and position, and we want an object with one bad field to still load.
//! So typing runs over the tree; unknown fields are recorded (with a did-you-mean drawn from the
//! field list serde passes to `deserialize_struct`) and skipped; a fatal type error is located,
//! recorded, the offending node pruned, and typing retried ([`from_node`]).

mod error;

use std::cell::RefCell;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

pub use error::{DeError, FieldPath, Seg};

use crate::source::Pos;
use crate::suggest::did_you_mean;
use crate::yaml::{Node, NodeRef, Resolved, Value, ValueRef};

/// A non-fatal or fatal problem with one field of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldIssue {
    pub pos: Pos,
    pub path: FieldPath,
    pub message: String,
    pub kind: FieldIssueKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldIssueKind {
    /// A key the type does not have.
    UnknownField,
    /// A value of the wrong type or an invalid value; the field was dropped.
    InvalidValue,
}

/// Most fatal errors collected from one object before giving up on it.
const MAX_ERRORS_PER_OBJECT: usize = 32;

/// Types `node` as `T`, collecting every field problem. Returns `None` only when even the
/// object's root cannot be typed.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> (Option<T>, Vec<FieldIssue>) {
    from_node_with::<T>(node, false)
}

/// Like [`from_node`], for a document Istio reads with the protobuf JSON mapping (mesh config,
/// meshNetworks, `proxy.istio.io/config`): a field may also be written with its proto name
/// (`registry_service_name` for `registryServiceName`), as istiod accepts it. Custom
/// resources are not read this way: the API server knows only the camelCase names.
pub fn from_node_proto<T: DeserializeOwned>(node: &Node) -> (Option<T>, Vec<FieldIssue>) {
    from_node_with::<T>(node, true)
}

fn from_node_with<T: DeserializeOwned>(
    node: &Node,
    proto_names: bool,
) -> (Option<T>, Vec<FieldIssue>) {
    let mut work: Option<Node> = None;
    let mut issues: Vec<FieldIssue> = Vec::new();
    let mut removed: Vec<FieldPath> = Vec::new();
    loop {
        let tree = work.as_ref().unwrap_or(node);
        let ctx = Ctx {
            proto_names,
            ..Ctx::default()
        };
        let result = T::deserialize(NodeDe::new(tree, None, &ctx, false));
        match result {
            Ok(v) => {
                issues.extend(ctx.issues.into_inner());
                return (Some(v), sort(issues));
            }
            Err(e) => {
                let consequence = e.missing.as_ref().is_some_and(|f| {
                    let mut p = e.path.clone();
                    p.0.push(Seg::Key(f.clone()));
                    removed.contains(&p)
                });
                let pos = e.pos.unwrap_or(tree.pos);
                if !consequence {
                    issues.push(FieldIssue {
                        pos,
                        path: e.path.clone(),
                        message: e.message.clone(),
                        kind: FieldIssueKind::InvalidValue,
                    });
                }
                let failed = issues
                    .iter()
                    .filter(|i| i.kind == FieldIssueKind::InvalidValue)
                    .count();
                if e.path.0.is_empty() || failed >= MAX_ERRORS_PER_OBJECT {
                    issues.extend(ctx.issues.into_inner());
                    return (None, sort(issues));
                }
                let mut pruned = tree.clone();
                if !remove_path(&mut pruned, &e.path.0) {
                    issues.extend(ctx.issues.into_inner());
                    return (None, sort(issues));
                }
                removed.push(e.path);
                work = Some(pruned);
            }
        }
    }
}

fn sort(mut issues: Vec<FieldIssue>) -> Vec<FieldIssue> {
    issues.sort_by_key(|i| i.pos);
    issues.dedup();
    issues
}

fn remove_path(node: &mut Node, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = node;
    for seg in parents {
        let next = match (seg, &mut cur.value) {
            (Seg::Key(k), Value::Map(entries)) => entries
                .iter_mut()
                .rev()
                .find(|(key, _)| key.scalar_text() == Some(k))
                .map(|(_, v)| v),
            (Seg::Index(i), Value::Seq(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, &mut cur.value) {
        (Seg::Key(k), Value::Map(entries)) => {
            let before = entries.len();
            let mut kept = std::mem::take(entries).into_vec();
            kept.retain(|(key, _)| key.scalar_text() != Some(k));
            let removed = kept.len() != before;
            *entries = kept.into_boxed_slice();
            removed
        }
        (Seg::Index(i), Value::Seq(items)) if *i < items.len() => {
            let mut kept = std::mem::take(items).into_vec();
            kept.remove(*i);
            *items = kept.into_boxed_slice();
            true
        }
        _ => false,
    }
}

/// Finds the node at `path`, or the deepest ancestor that exists (and whether it was exact).
pub fn locate<'a>(root: NodeRef<'a>, path: &FieldPath) -> (NodeRef<'a>, bool) {
    let mut cur = root;
    for seg in &path.0 {
        let next = match (seg, cur.value()) {
            (Seg::Key(k), ValueRef::Map(_)) => cur.get(k),
            (Seg::Index(i), ValueRef::Seq(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return (cur, false),
        }
    }
    (cur, true)
}

/// Finds the key node of the last path segment (for pointing at a field name).
pub fn locate_key<'a>(root: NodeRef<'a>, path: &FieldPath) -> Option<NodeRef<'a>> {
    let (last, parents) = path.0.split_last()?;
    let (parent, exact) = locate(root, &FieldPath(parents.to_vec()));
    match (last, exact) {
        (Seg::Key(k), true) => parent.key(k),
        _ => None,
    }
}

#[derive(Default)]
struct Ctx {
    issues: RefCell<Vec<FieldIssue>>,
    /// Whether struct fields may be written with their proto names ([`from_node_proto`]).
    proto_names: bool,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

struct Link<'p> {
    parent: Option<&'p Link<'p>>,
    step: Step<'p>,
}

fn path_of(link: Option<&Link<'_>>) -> FieldPath {
    let mut segs = Vec::new();
    let mut cur = link;
    while let Some(l) = cur {
        segs.push(match l.step {
            Step::Key(k) => Seg::Key(k.to_string()),
            Step::Index(i) => Seg::Index(i),
        });
        cur = l.parent;
    }
    segs.reverse();
    FieldPath(segs)
}

struct NodeDe<'de, 'p> {
    node: &'de Node,
    path: Option<&'p Link<'p>>,
    ctx: &'p Ctx,
    /// Map keys: Kubernetes reads every key as a string, whatever it looks like.
    as_key: bool,
}

impl<'de, 'p> NodeDe<'de, 'p> {
    fn new(node: &'de Node, path: Option<&'p Link<'p>>, ctx: &'p Ctx, as_key: bool) -> Self {
        NodeDe {
            node,
            path,
            ctx,
            as_key,
        }
    }

    fn locate(&self, mut e: DeError) -> DeError {
        if !e.is_located() {
            e.pos = Some(self.node.pos);
            e.path = path_of(self.path);
        }
        e
    }

    fn wrong(&self, expected: &str) -> DeError {
        let found = match &self.node.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Str(t) => format!("the string \"{}\"", shorten(t)),
                Resolved::Null => "null".to_string(),
                r if s.plain && expected.contains("string") => format!(
                    "{} `{}` (YAML reads it as {}; quote it: \"{}\")",
                    r.describe(),
                    s.text,
                    r.describe(),
                    s.text
                ),
                r => format!("{} `{}`", r.describe(), s.text),
            },
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        };
        self.locate(DeError::new(format!("expected {expected}, found {found}")))
    }

    fn scalar(&self) -> Option<Resolved<'de>> {
        match &self.node.value {
            Value::Scalar(s) if self.as_key => Some(Resolved::Str(&s.text)),
            Value::Scalar(s) => Some(s.resolve()),
            _ => None,
        }
    }

    /// Map keys that a type reads as numbers (`portLevelMtls: {8080: ...}` or, from JSON,
    /// `{"8080": ...}`): the text is parsed whatever its quoting.
    fn key_number(&self) -> Option<Resolved<'de>> {
        match &self.node.value {
            Value::Scalar(s) => match s.text.trim().parse::<i64>() {
                Ok(i) => Some(Resolved::Int(i)),
                Err(_) => s.text.trim().parse::<u64>().ok().map(Resolved::UInt),
            },
            _ => None,
        }
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

macro_rules! int_method {
    ($method:ident, $expected:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let r = if self.as_key {
                self.key_number()
            } else {
                self.scalar()
            };
            let out = match r {
                Some(Resolved::Int(i)) => visitor.visit_i64(i),
                Some(Resolved::UInt(u)) => visitor.visit_u64(u),
                _ => return Err(self.wrong($expected)),
            };
            out.map_err(|e| self.locate(e))
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let out = match &self.node.value {
            Value::Scalar(_) => match self.scalar() {
                Some(Resolved::Null) => visitor.visit_unit(),
                Some(Resolved::Bool(b)) => visitor.visit_bool(b),
                Some(Resolved::Int(i)) => visitor.visit_i64(i),
                Some(Resolved::UInt(u)) => visitor.visit_u64(u),
                Some(Resolved::Float(f)) => visitor.visit_f64(f),
                Some(Resolved::Str(s)) => visitor.visit_borrowed_str(s),
                None => unreachable_scalar(),
            },
            Value::Seq(items) => visitor.visit_seq(SeqAccess::new(items, self.path, self.ctx)),
            Value::Map(entries) => {
                visitor.visit_map(MapAccess::new(entries, self.path, self.ctx, None))
            }
        };
        out.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(Resolved::Bool(b)) => visitor.visit_bool(b).map_err(|e| self.locate(e)),
            _ => Err(self.wrong("a boolean (true or false)")),
        }
    }

    int_method!(deserialize_i8, "an integer");
    int_method!(deserialize_i16, "an integer");
    int_method!(deserialize_i32, "an integer");
    int_method!(deserialize_i64, "an integer");
    int_method!(deserialize_u8, "a non-negative integer");
    int_method!(deserialize_u16, "a non-negative integer");
    int_method!(deserialize_u32, "a non-negative integer");
    int_method!(deserialize_u64, "a non-negative integer");

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let out = match self.scalar() {
            Some(Resolved::Int(i)) => visitor.visit_f64(i as f64),
            Some(Resolved::UInt(u)) => visitor.visit_f64(u as f64),
            Some(Resolved::Float(f)) => visitor.visit_f64(f),
            _ => return Err(self.wrong("a number")),
        };
        out.map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(Resolved::Str(s)) => visitor.visit_borrowed_str(s).map_err(|e| self.locate(e)),
            _ => Err(self.wrong("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(Resolved::Str(s)) => visitor
                .visit_borrowed_bytes(s.as_bytes())
                .map_err(|e| self.locate(e)),
            _ => Err(self.wrong("a string")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() && !self.as_key {
            visitor.visit_none().map_err(|e| self.locate(e))
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_unit().map_err(|e| self.locate(e))
        } else {
            Err(self.wrong("null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let out = match &self.node.value {
            Value::Seq(items) => visitor.visit_seq(SeqAccess::new(items, self.path, self.ctx)),
            _ if self.node.is_null() => visitor.visit_seq(SeqAccess::new(&[], self.path, self.ctx)),
            _ => return Err(self.wrong("a list")),
        };
        out.map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let out = match &self.node.value {
            Value::Map(entries) => {
                visitor.visit_map(MapAccess::new(entries, self.path, self.ctx, None))
            }
            _ if self.node.is_null() => {
                visitor.visit_map(MapAccess::new(&[], self.path, self.ctx, None))
            }
            _ => return Err(self.wrong("a mapping")),
        };
        out.map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let out = match &self.node.value {
            Value::Map(entries) => {
                visitor.visit_map(MapAccess::new(entries, self.path, self.ctx, Some(fields)))
            }
            _ if self.node.is_null() => {
                visitor.visit_map(MapAccess::new(&[], self.path, self.ctx, Some(fields)))
            }
            _ => return Err(self.wrong("a mapping")),
        };
        out.map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let out = match &self.node.value {
            Value::Scalar(s) => {
                visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(&*s.text))
            }
            Value::Map(entries) if entries.len() == 1 => visitor.visit_enum(EnumAccess {
                key: &entries[0].0,
                value: &entries[0].1,
                path: self.path,
                ctx: self.ctx,
            }),
            _ => return Err(self.wrong("a string")),
        };
        out.map_err(|e| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar(s) => visitor
                .visit_borrowed_str(&s.text)
                .map_err(|e| self.locate(e)),
            _ => Err(self.wrong("a field name")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

fn unreachable_scalar<T>() -> Result<T, DeError> {
    Err(DeError::new("internal error: scalar without a value"))
}

struct SeqAccess<'de, 'p> {
    items: &'de [Node],
    index: usize,
    path: Option<&'p Link<'p>>,
    ctx: &'p Ctx,
}

impl<'de, 'p> SeqAccess<'de, 'p> {
    fn new(items: &'de [Node], path: Option<&'p Link<'p>>, ctx: &'p Ctx) -> Self {
        SeqAccess {
            items,
            index: 0,
            path,
            ctx,
        }
    }
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.index) else {
            return Ok(None);
        };
        let link = Link {
            parent: self.path,
            step: Step::Index(self.index),
        };
        self.index += 1;
        seed.deserialize(NodeDe::new(node, Some(&link), self.ctx, false))
            .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

struct MapAccess<'de, 'p> {
    entries: &'de [(Node, Node)],
    index: usize,
    path: Option<&'p Link<'p>>,
    ctx: &'p Ctx,
    /// For structs: the known field names, so unknown ones are reported and skipped.
    fields: Option<&'static [&'static str]>,
}

impl<'de, 'p> MapAccess<'de, 'p> {
    fn new(
        entries: &'de [(Node, Node)],
        path: Option<&'p Link<'p>>,
        ctx: &'p Ctx,
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        MapAccess {
            entries,
            index: 0,
            path,
            ctx,
            fields,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAccess<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some((key, _)) = self.entries.get(self.index) {
            if let Some(fields) = self.fields {
                let name = key.scalar_text().unwrap_or("");
                if self.ctx.proto_names
                    && !fields.contains(&name)
                    && let Some(field) = proto_name_of(name, fields)
                {
                    return seed
                        .deserialize(de::value::BorrowedStrDeserializer::new(field))
                        .map(Some);
                }
                if !fields.contains(&name) {
                    let hint = match did_you_mean(name, fields) {
                        Some(s) => format!(", did you mean \"{s}\"?"),
                        None => String::new(),
                    };
                    let mut path = path_of(self.path);
                    path.0.push(Seg::Key(name.to_string()));
                    self.ctx.issues.borrow_mut().push(FieldIssue {
                        pos: key.pos,
                        path,
                        message: format!("unknown field \"{name}\"{hint}"),
                        kind: FieldIssueKind::UnknownField,
                    });
                    self.index += 1;
                    continue;
                }
            }
            return seed
                .deserialize(NodeDe::new(key, self.path, self.ctx, true))
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.entries.get(self.index) else {
            return Err(DeError::new("internal error: value without a key"));
        };
        self.index += 1;
        let link = Link {
            parent: self.path,
            step: Step::Key(key.scalar_text().unwrap_or("")),
        };
        seed.deserialize(NodeDe::new(value, Some(&link), self.ctx, false))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.index)
    }
}

/// The field `name` is the proto name of (`registry_service_name` → `registryServiceName`).
fn proto_name_of(name: &str, fields: &'static [&'static str]) -> Option<&'static str> {
    if !name.contains('_') {
        return None;
    }
    let mut camel = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    fields.iter().copied().find(|f| *f == camel)
}

struct EnumAccess<'de, 'p> {
    key: &'de Node,
    value: &'de Node,
    path: Option<&'p Link<'p>>,
    ctx: &'p Ctx,
}

impl<'de, 'p> de::EnumAccess<'de> for EnumAccess<'de, 'p> {
    type Error = DeError;
    type Variant = NodeDe<'de, 'p>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let v = seed.deserialize(NodeDe::new(self.key, self.path, self.ctx, true))?;
        Ok((v, NodeDe::new(self.value, self.path, self.ctx, false)))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

#[cfg(test)]
mod tests;
