//! The spanned tree a loaded object keeps, in a compact form.
//!
//! A [`Node`] tree is what parsing gives and typing reads; it costs a 40-byte node plus a heap
//! string per scalar and a heap slice per collection. Every object keeps its tree for as long
//! as the run lasts (findings locate fields in it), so on a large dump the trees were a quarter
//! of the memory. A [`Tree`] holds the same document as one slice of 16-byte slots and one
//! string with every scalar's text; [`NodeRef`] reads it the way a `&Node` is read.
//!
//! Slots are laid out breadth first: a collection's children are contiguous (a mapping's as
//! key, value, key, value), so a child is found by indexing.

use std::collections::VecDeque;
use std::fmt;

use super::node::{Node, Resolved, Value, resolve_scalar};
use crate::source::{FileId, Pos};

const TAG_SHIFT: u32 = 30;
const PLAIN: u32 = 1 << 29;
const LEN_MASK: u32 = PLAIN - 1;
const SCALAR: u32 = 0;
const SEQ: u32 = 1;
const MAP: u32 = 2;

/// One node: where it starts, what it is and where its text or children are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    line: u32,
    column: u32,
    /// Byte offset of a scalar's text in [`Tree::text`], or index of a collection's first child.
    start: u32,
    /// Tag (two bits), the plain-scalar bit, then the text length or the number of items or
    /// entries.
    meta: u32,
}

impl Slot {
    fn tag(self) -> u32 {
        self.meta >> TAG_SHIFT
    }

    fn len(self) -> usize {
        (self.meta & LEN_MASK) as usize
    }
}

/// A document too large for the compact form (a scalar or collection over half a gigabyte, or
/// more than four gigabytes of text); such a document is refused, not truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge;

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the document is too large to keep (a value over 512 MiB, or over 4 GiB of text in all)")
    }
}

/// A document's spanned tree, compact (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub struct Tree {
    file: FileId,
    slots: Box<[Slot]>,
    text: Box<str>,
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tree")
            .field("file", &self.file)
            .field("nodes", &self.slots.len())
            .finish()
    }
}

impl Tree {
    /// The compact form of `node`'s tree.
    pub fn from_node(node: &Node) -> Result<Tree, TooLarge> {
        // Sized up front: the tree is built once per object, and growing then shrinking both
        // buffers copied each of them about twice.
        let (nodes, text_len) = node.size();
        let mut slots = Vec::with_capacity(nodes);
        slots.push(slot_of(node));
        let mut text = String::with_capacity(text_len);
        let mut queue: VecDeque<(usize, &Node)> = VecDeque::from([(0, node)]);
        while let Some((i, n)) = queue.pop_front() {
            let (start, len) = match &n.value {
                Value::Scalar(s) => {
                    let start = text.len();
                    text.push_str(&s.text);
                    (start, s.text.len())
                }
                Value::Seq(items) => {
                    let start = slots.len();
                    for item in items.iter() {
                        queue.push_back((slots.len(), item));
                        slots.push(slot_of(item));
                    }
                    (start, items.len())
                }
                Value::Map(entries) => {
                    let start = slots.len();
                    for (k, v) in entries.iter() {
                        queue.push_back((slots.len(), k));
                        slots.push(slot_of(k));
                        queue.push_back((slots.len(), v));
                        slots.push(slot_of(v));
                    }
                    (start, entries.len())
                }
            };
            let start = u32::try_from(start).map_err(|_| TooLarge)?;
            let len = u32::try_from(len)
                .ok()
                .filter(|l| *l <= LEN_MASK)
                .ok_or(TooLarge)?;
            slots[i].start = start;
            slots[i].meta |= len;
        }
        Ok(Tree {
            file: node.pos.file,
            slots: slots.into_boxed_slice(),
            text: text.into_boxed_str(),
        })
    }

    /// The document's root node.
    pub fn root(&self) -> NodeRef<'_> {
        NodeRef {
            tree: self,
            slot: &self.slots[0],
        }
    }

    pub fn file(&self) -> FileId {
        self.file
    }

    /// The same tree with its positions in `file` (the file's index moved).
    pub fn refiled(&self, file: FileId) -> Tree {
        Tree {
            file,
            ..self.clone()
        }
    }
}

fn slot_of(n: &Node) -> Slot {
    let (tag, plain) = match &n.value {
        Value::Scalar(s) => (SCALAR, s.plain),
        Value::Seq(_) => (SEQ, false),
        Value::Map(_) => (MAP, false),
    };
    Slot {
        line: n.pos.line,
        column: n.pos.column,
        start: 0,
        meta: (tag << TAG_SHIFT) | if plain { PLAIN } else { 0 },
    }
}

/// A node of a [`Tree`], read like a `&Node`.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    tree: &'a Tree,
    slot: &'a Slot,
}

impl fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_node().fmt(f)
    }
}

/// What a [`NodeRef`] holds.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    Scalar(ScalarRef<'a>),
    Seq(Children<'a>),
    Map(Children<'a>),
}

/// A scalar's text as written and whether it was plain (see [`super::Scalar`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalarRef<'a> {
    pub text: &'a str,
    pub plain: bool,
}

impl<'a> ScalarRef<'a> {
    pub fn resolve(self) -> Resolved<'a> {
        resolve_scalar(self.text, self.plain)
    }
}

/// A collection's children: a list's items, or a mapping's keys and values in turn.
#[derive(Clone, Copy)]
pub struct Children<'a> {
    tree: &'a Tree,
    slots: &'a [Slot],
}

impl fmt::Debug for Children<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items()).finish()
    }
}

impl<'a> Children<'a> {
    fn node(&self, slot: &'a Slot) -> NodeRef<'a> {
        NodeRef {
            tree: self.tree,
            slot,
        }
    }

    /// A list's items.
    pub fn items(self) -> impl DoubleEndedIterator<Item = NodeRef<'a>> + ExactSizeIterator {
        self.slots.iter().map(move |s| self.node(s))
    }

    /// A mapping's entries, in the order written.
    pub fn entries(
        self,
    ) -> impl DoubleEndedIterator<Item = (NodeRef<'a>, NodeRef<'a>)> + ExactSizeIterator {
        self.slots
            .chunks_exact(2)
            .map(move |kv| (self.node(&kv[0]), self.node(&kv[1])))
    }

    /// The `i`th item of a list.
    pub fn get(self, i: usize) -> Option<NodeRef<'a>> {
        self.slots.get(i).map(|s| self.node(s))
    }

    /// The `i`th entry of a mapping.
    pub fn entry(self, i: usize) -> Option<(NodeRef<'a>, NodeRef<'a>)> {
        let k = self.slots.get(2 * i)?;
        let v = self.slots.get(2 * i + 1)?;
        Some((self.node(k), self.node(v)))
    }
}

impl<'a> NodeRef<'a> {
    pub fn pos(self) -> Pos {
        Pos::new(self.tree.file, self.slot.line, self.slot.column)
    }

    pub fn value(self) -> ValueRef<'a> {
        let start = self.slot.start as usize;
        let len = self.slot.len();
        match self.slot.tag() {
            SCALAR => ValueRef::Scalar(ScalarRef {
                text: self.tree.text.get(start..start + len).unwrap_or(""),
                plain: self.slot.meta & PLAIN != 0,
            }),
            tag => {
                let count = if tag == MAP { len * 2 } else { len };
                let children = Children {
                    tree: self.tree,
                    slots: self.tree.slots.get(start..start + count).unwrap_or(&[]),
                };
                if tag == MAP {
                    ValueRef::Map(children)
                } else {
                    ValueRef::Seq(children)
                }
            }
        }
    }

    pub fn scalar(self) -> Option<ScalarRef<'a>> {
        match self.value() {
            ValueRef::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A list's items (none when this is not a list).
    pub fn items(self) -> impl DoubleEndedIterator<Item = NodeRef<'a>> + ExactSizeIterator {
        let slots = match self.value() {
            ValueRef::Seq(c) => c.slots,
            _ => &[],
        };
        Children {
            tree: self.tree,
            slots,
        }
        .items()
    }

    /// A mapping's entries (none when this is not a mapping).
    pub fn entries(
        self,
    ) -> impl DoubleEndedIterator<Item = (NodeRef<'a>, NodeRef<'a>)> + ExactSizeIterator {
        let slots = match self.value() {
            ValueRef::Map(c) => c.slots,
            _ => &[],
        };
        Children {
            tree: self.tree,
            slots,
        }
        .entries()
    }

    /// The scalar's text when this node is a scalar resolving to a string.
    pub fn as_str(self) -> Option<&'a str> {
        match self.scalar()?.resolve() {
            Resolved::Str(v) => Some(v),
            _ => None,
        }
    }

    /// The raw text of any scalar (for map keys, which Kubernetes always reads as strings).
    pub fn scalar_text(self) -> Option<&'a str> {
        self.scalar().map(|s| s.text)
    }

    pub fn is_null(self) -> bool {
        self.scalar().is_some_and(|s| s.resolve() == Resolved::Null)
    }

    /// Looks up a key of a mapping node (the last of repeated keys, as typing reads it).
    pub fn get(self, key: &str) -> Option<NodeRef<'a>> {
        self.lookup(key).map(|(_, v)| v)
    }

    /// The key node of `key` in a mapping (for pointing at a field name).
    pub fn key(self, key: &str) -> Option<NodeRef<'a>> {
        self.lookup(key).map(|(k, _)| k)
    }

    fn lookup(self, key: &str) -> Option<(NodeRef<'a>, NodeRef<'a>)> {
        self.entries()
            .rev()
            .find(|(k, _)| k.scalar_text() == Some(key))
    }

    /// A short noun for the node's type, for messages.
    pub fn describe(self) -> &'static str {
        match self.value() {
            ValueRef::Scalar(s) => s.resolve().describe(),
            ValueRef::Seq(_) => "a list",
            ValueRef::Map(_) => "a mapping",
        }
    }

    /// This subtree as a [`Node`] tree (for typing part of a kept document again).
    pub fn to_node(self) -> Node {
        let value = match self.value() {
            ValueRef::Scalar(s) => return Node::scalar(self.pos(), s.text, s.plain),
            ValueRef::Seq(c) => Value::Seq(c.items().map(NodeRef::to_node).collect()),
            ValueRef::Map(c) => Value::Map(
                c.entries()
                    .map(|(k, v)| (k.to_node(), v.to_node()))
                    .collect(),
            ),
        };
        Node {
            pos: self.pos(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn tree(text: &str) -> (Node, Tree) {
        let node = parse(text, FileId(3), 0, 0).documents.remove(0);
        let tree = Tree::from_node(&node).expect("small");
        (node, tree)
    }

    #[test]
    fn round_trips_every_node_and_position() {
        let doc = "a: 1\nb:\n  - x\n  - {c: 'two', d: [3, 4]}\n  - |\n    block\ne: ~\n";
        let (node, tree) = tree(doc);
        assert_eq!(tree.root().to_node(), node);
        assert_eq!(tree.file(), FileId(3));
    }

    #[test]
    fn reads_like_a_node() {
        let (_, tree) = tree("k: v\nk: w\nn: 80\nq: '80'\nl: [a, b]\nm: {}\nz: ~\n");
        let root = tree.root();
        assert_eq!(
            root.get("k").and_then(NodeRef::as_str),
            Some("w"),
            "last key wins"
        );
        assert_eq!(root.get("n").and_then(NodeRef::as_str), None);
        assert_eq!(root.get("n").and_then(NodeRef::scalar_text), Some("80"));
        assert_eq!(root.get("q").and_then(NodeRef::as_str), Some("80"));
        assert!(root.get("z").is_some_and(NodeRef::is_null));
        let l = root.get("l").expect("list");
        let items: Vec<_> = l.items().filter_map(NodeRef::as_str).collect();
        assert_eq!(items, ["a", "b"]);
        assert_eq!(l.describe(), "a list");
        assert_eq!(root.get("m").map(NodeRef::describe), Some("a mapping"));
        assert_eq!(root.get("m").map(|m| m.entries().len()), Some(0));
        assert_eq!(root.key("q").map(|k| k.pos().line), Some(4));
        assert_eq!(root.get("l").and_then(|l| l.get("a")).map(|_| ()), None);
        assert_eq!(
            root.entries().len(),
            6,
            "the parser keeps one of repeated keys"
        );
    }
}
