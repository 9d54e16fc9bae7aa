//! Where table paths are set in an object as written. The paths of one kind are merged into a
//! tree of steps, so each object's YAML is walked once for all of them (a walk per path and
//! object was a third of `strait analyze` on large dumps).

use strait_api::Object;
use strait_api::de::{FieldPath, Seg};
use strait_api::yaml::{self, Node, Resolved, Value};

use super::{Step, steps};

/// One use found: which of the paths it is, where (`spec.http[2].mirror`), and the value when
/// it is a string.
pub(super) struct Hit {
    pub path: usize,
    pub at: String,
    pub value: Option<String>,
}

/// Table paths merged by their common steps.
#[derive(Default)]
pub(super) struct Paths<'a> {
    keys: Vec<(&'a str, Paths<'a>)>,
    each: Option<Box<Paths<'a>>>,
    entry: Option<Box<Paths<'a>>>,
    /// The paths (by the caller's index) that end here.
    ends: Vec<usize>,
}

impl<'a> Paths<'a> {
    /// `paths`: each table path with the index its hits are reported under.
    pub fn new(paths: impl IntoIterator<Item = (&'a str, usize)>) -> Paths<'a> {
        let mut root = Paths::default();
        for (path, index) in paths {
            root.insert(&steps(path), index);
        }
        root
    }

    fn insert(&mut self, steps: &[Step<'a>], index: usize) {
        let Some((step, rest)) = steps.split_first() else {
            self.ends.push(index);
            return;
        };
        let next = match step {
            Step::Key(k) => match self.keys.iter().position(|(have, _)| have == k) {
                Some(i) => &mut self.keys[i].1,
                None => {
                    self.keys.push((k, Paths::default()));
                    let last = self.keys.len() - 1;
                    &mut self.keys[last].1
                }
            },
            Step::Each => self.each.get_or_insert_with(Box::default),
            Step::Entry => self.entry.get_or_insert_with(Box::default),
        };
        next.insert(rest, index);
    }

    /// Every use of the paths in `o`, in the order of its tree. In a ConfigMap, a string met
    /// before a path ends is read as the YAML it holds (`data.mesh`).
    pub fn find(&self, o: &Object) -> Vec<Hit> {
        let mut out = Vec::new();
        let embedded = o.kind == strait_api::Kind::ConfigMap;
        self.walk(&o.source.tree, &mut Vec::new(), embedded, &mut out);
        out
    }

    fn walk(&self, node: &Node, at: &mut Vec<Seg>, embedded: bool, out: &mut Vec<Hit>) {
        if !self.ends.is_empty() && is_set(node) {
            let path = FieldPath(at.clone()).to_string();
            for &i in &self.ends {
                out.push(Hit {
                    path: i,
                    at: path.clone(),
                    value: node.as_str().map(str::to_string),
                });
            }
        }
        self.below(node, at, embedded, false, out);
    }

    /// The paths' next steps from `node` (the steps that end at it are `walk`'s). `keys_only`
    /// follows named keys alone: a ConfigMap string is read as YAML only for a key step.
    fn below(
        &self,
        node: &Node,
        at: &mut Vec<Seg>,
        embedded: bool,
        keys_only: bool,
        out: &mut Vec<Hit>,
    ) {
        match &node.value {
            Value::Map(entries) => {
                for (k, next) in &self.keys {
                    // The last of repeated keys is the one that counts, as `Node::get` reads it.
                    if let Some(v) = node.get(k) {
                        at.push(Seg::Key((*k).to_string()));
                        next.walk(v, at, embedded, out);
                        at.pop();
                    }
                }
                if let Some(next) = self.entry.as_ref().filter(|_| !keys_only) {
                    for (k, v) in entries {
                        at.push(Seg::Key(k.scalar_text().unwrap_or_default().to_string()));
                        next.walk(v, at, embedded, out);
                        at.pop();
                    }
                }
            }
            Value::Seq(items) => {
                if let Some(next) = self.each.as_ref().filter(|_| !keys_only) {
                    for (i, v) in items.iter().enumerate() {
                        at.push(Seg::Index(i));
                        next.walk(v, at, embedded, out);
                        at.pop();
                    }
                }
            }
            Value::Scalar(_) if embedded && !self.keys.is_empty() => {
                let Some(text) = node.as_str() else { return };
                let parsed = yaml::parse(text, node.pos.file, 0, 0);
                if let Some(doc) = parsed.documents.first() {
                    self.below(doc, at, false, true, out);
                }
            }
            Value::Scalar(_) => {}
        }
    }
}

/// Whether a value sets its field: null, an empty string and an empty list do not (proto3
/// reads them as unset); an empty map does (a message with its defaults).
fn is_set(node: &Node) -> bool {
    match &node.value {
        Value::Scalar(s) => !matches!(s.resolve(), Resolved::Null | Resolved::Str("")),
        Value::Seq(items) => !items.is_empty(),
        Value::Map(_) => true,
    }
}
