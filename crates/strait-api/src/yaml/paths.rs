//! Field paths with wildcards (`spec.http[].route[].headers.request.set[*]`), found in a
//! spanned tree. Many paths are merged into a tree of steps, so a document is walked once for
//! all of them (a walk per path and object was a third of `strait analyze` on large dumps).

use crate::de::{FieldPath, Seg};
use crate::yaml::{self, NodeRef, Resolved, Tree, ValueRef};

/// One use found: which of the paths it is, where (`spec.http[2].mirror`), and the value when
/// it is a string.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: usize,
    pub at: String,
    pub value: Option<String>,
}

/// Paths merged by their common steps.
#[derive(Debug, Default)]
pub struct Paths<'a> {
    keys: Vec<(&'a str, Paths<'a>)>,
    each: Option<Box<Paths<'a>>>,
    entry: Option<Box<Paths<'a>>>,
    /// The paths (by the caller's index) that end here.
    ends: Vec<usize>,
}

impl<'a> Paths<'a> {
    /// `paths`: each path with the index its hits are reported under.
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

    /// Every place in `tree` where one of the paths is set (not null, not an empty string or
    /// list), in the order of the tree. With `embedded` (a ConfigMap), a string met before a
    /// path ends is read as the YAML it holds (`data.mesh`).
    pub fn find(&self, tree: NodeRef<'_>, embedded: bool) -> Vec<Hit> {
        let mut out = Vec::new();
        self.walk(tree, &mut Vec::new(), embedded, &mut out);
        out
    }

    fn walk(&self, node: NodeRef<'_>, at: &mut Vec<Seg>, embedded: bool, out: &mut Vec<Hit>) {
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
        node: NodeRef<'_>,
        at: &mut Vec<Seg>,
        embedded: bool,
        keys_only: bool,
        out: &mut Vec<Hit>,
    ) {
        match node.value() {
            ValueRef::Map(entries) => {
                for (k, next) in &self.keys {
                    // The last of repeated keys is the one that counts, as `Node::get` reads it.
                    if let Some(v) = node.get(k) {
                        at.push(Seg::Key((*k).to_string()));
                        next.walk(v, at, embedded, out);
                        at.pop();
                    }
                }
                if let Some(next) = self.entry.as_ref().filter(|_| !keys_only) {
                    for (k, v) in entries.entries() {
                        at.push(Seg::Key(k.scalar_text().unwrap_or_default().to_string()));
                        next.walk(v, at, embedded, out);
                        at.pop();
                    }
                }
            }
            ValueRef::Seq(items) => {
                if let Some(next) = self.each.as_ref().filter(|_| !keys_only) {
                    for (i, v) in items.items().enumerate() {
                        at.push(Seg::Index(i));
                        next.walk(v, at, embedded, out);
                        at.pop();
                    }
                }
            }
            ValueRef::Scalar(_) if embedded && !self.keys.is_empty() => {
                let Some(text) = node.as_str() else { return };
                let parsed = yaml::parse(text, node.pos().file, 0, 0);
                if let Some(doc) = parsed
                    .documents
                    .first()
                    .and_then(|d| Tree::from_node(d).ok())
                {
                    self.below(doc.root(), at, false, true, out);
                }
            }
            ValueRef::Scalar(_) => {}
        }
    }
}

/// Whether a value sets its field: null, an empty string and an empty list do not (proto3
/// reads them as unset); an empty map does (a message with its defaults).
fn is_set(node: NodeRef<'_>) -> bool {
    match node.value() {
        ValueRef::Scalar(s) => !matches!(s.resolve(), Resolved::Null | Resolved::Str("")),
        ValueRef::Seq(items) => items.items().len() > 0,
        ValueRef::Map(_) => true,
    }
}

/// One step of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    Key(&'a str),
    /// `[]`: every element of a list.
    Each,
    /// `[*]`: every entry of a map.
    Entry,
}

/// The steps of a path (`spec.http[].route[].headers.request.set[*]`).
pub fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut name = part;
        let mut suffix = Vec::new();
        loop {
            if let Some(n) = name.strip_suffix("[]") {
                suffix.push(Step::Each);
                name = n;
            } else if let Some(n) = name.strip_suffix("[*]") {
                suffix.push(Step::Entry);
                name = n;
            } else {
                break;
            }
        }
        if !name.is_empty() {
            out.push(Step::Key(name));
        }
        out.extend(suffix.into_iter().rev());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    fn hits(paths: &[&str], yaml: &str, embedded: bool) -> Vec<(usize, String, Option<String>)> {
        let parsed = yaml::parse(yaml, FileId(0), 0, 0);
        let tree = Tree::from_node(&parsed.documents[0]).expect("small");
        let merged = Paths::new(paths.iter().enumerate().map(|(i, p)| (*p, i)));
        merged
            .find(tree.root(), embedded)
            .into_iter()
            .map(|h| (h.path, h.at, h.value))
            .collect()
    }

    #[test]
    fn merged_paths_find_each_use_in_tree_order() {
        let doc = "spec:\n  http:\n  - timeout: 1s\n    mirror: {host: a}\n  - timeout: 2s\n";
        let found = hits(&["spec.http[].timeout", "spec.http[].mirror"], doc, false);
        let at: Vec<(usize, &str)> = found.iter().map(|(i, p, _)| (*i, p.as_str())).collect();
        assert_eq!(
            at,
            [
                (0, "spec.http[0].timeout"),
                (1, "spec.http[0].mirror"),
                (0, "spec.http[1].timeout"),
            ]
        );
        assert_eq!(found[0].2.as_deref(), Some("1s"));
        assert_eq!(found[1].2, None, "a map has no string value");
    }

    #[test]
    fn unset_values_and_earlier_duplicates_are_not_uses() {
        let doc = "a: {b: ~, c: '', d: [], e: {}, f: one, f: two}\n";
        let found = hits(&["a.b", "a.c", "a.d", "a.e", "a.f"], doc, false);
        let at: Vec<&str> = found.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(at, ["a.e", "a.f"]);
        assert_eq!(found[1].2.as_deref(), Some("two"), "the later key wins");
    }

    #[test]
    fn map_entries_and_embedded_yaml() {
        let doc = "set:\n  x-a: '1'\n  x-b: '2'\ndata:\n  mesh: |\n    accessLogFile: /tmp/log\n";
        let found = hits(&["set[*]", "data.mesh.accessLogFile"], doc, true);
        let at: Vec<&str> = found.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(at, ["set.x-a", "set.x-b", "data.mesh.accessLogFile"]);
        assert!(
            hits(&["data.mesh.accessLogFile"], doc, false).is_empty(),
            "strings are read as YAML only when asked"
        );
    }
}
