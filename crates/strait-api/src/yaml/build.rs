//! Turning parser events into a [`Node`] tree.
//!
//! Iterative (an explicit stack), so nesting depth is bounded by a limit rather than by the
//! thread's stack; aliases are expanded with a node budget so a "billion laughs" document is an
//! error, not an out-of-memory kill. Merge keys (`<<`) are applied as Kubernetes' reader does.
//!
//! The budget is relative to the text: without aliases a document cannot have more nodes than
//! bytes (every node is at least one character), so a document whose aliases expand it past
//! [`EXPANSION_PER_BYTE`] nodes per byte of its own text, plus [`EXPANSION_SLACK`], is refused
//! at the alias that crossed the line, the way Kubernetes' reader refuses alias bombs. A node
//! costs about 100 bytes of memory with its text, so a 563-byte bomb is stopped after a few
//! megabytes rather than hundreds.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::node::{Node, Value};
use crate::source::{FileId, Pos};

/// Deepest nesting accepted. Real manifests stay under 20.
pub const MAX_DEPTH: usize = 128;
/// Most nodes one document may expand to (aliases included), however long its text.
pub const MAX_NODES: usize = 2_000_000;
/// Nodes a document may expand to per byte of its text (aliases included).
pub const EXPANSION_PER_BYTE: usize = 2;
/// Nodes any document may expand to whatever its length, so small documents may still share
/// anchors freely (merge keys in a short ConfigMap).
pub const EXPANSION_SLACK: usize = 100_000;

/// A problem found while reading YAML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlIssue {
    pub pos: Pos,
    pub message: String,
}

/// What parsing one chunk of text gave.
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Node>,
    /// Fatal syntax error: documents after it in the chunk are lost.
    pub error: Option<YamlIssue>,
    /// Non-fatal: duplicate keys and the like.
    pub warnings: Vec<YamlIssue>,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder {
    file: FileId,
    line_offset: u32,
    column_offset: u32,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    text_len: usize,
    /// Most nodes this text may expand to (see the module docs).
    budget: usize,
    out: Parsed,
}

/// Most flow closers at their key's indentation one chunk may have (each costs a re-parse).
const MAX_FLOW_CLOSER_FIXES: usize = 64;

/// Parses `text` into documents. Lines are numbered from `line_offset + 1` and columns shifted by
/// `column_offset` (for YAML embedded in a block scalar of another document).
///
/// One departure from the YAML spec, as Kubernetes' reader makes it: a flow collection may
/// close (`]` or `}` first on its line) at the indentation of the key that holds it,
///
/// ```yaml
/// args: [
///   "-a", "b",
/// ]
/// ```
///
/// which the spec (and saphyr) reject and `kubectl apply` takes. Such a closer is read as if
/// indented by one more space; nothing else on its line moves but by that one column.
pub fn parse(text: &str, file: FileId, line_offset: u32, column_offset: u32) -> Parsed {
    let mut patched: Option<String> = None;
    for _ in 0..MAX_FLOW_CLOSER_FIXES {
        let current = patched.as_deref().unwrap_or(text);
        let parsed = parse_strict(current, file, line_offset, column_offset);
        let Some(at) = parsed
            .error_at
            .and_then(|m| flow_closer_at_indent(current, m))
        else {
            return parsed.parsed;
        };
        let mut fixed = String::with_capacity(current.len() + 1);
        fixed.push_str(&current[..at]);
        fixed.push(' ');
        fixed.push_str(&current[at..]);
        patched = Some(fixed);
    }
    parse_strict(
        patched.as_deref().unwrap_or(text),
        file,
        line_offset,
        column_offset,
    )
    .parsed
}

struct Strict {
    parsed: Parsed,
    /// Where the parser stopped on an "invalid indentation" error (0-based line and column).
    error_at: Option<(usize, usize)>,
}

/// The byte offset of a `]` or `}` at (`line`, `col`), 1-based line and 0-based column, when
/// only spaces precede it on its line: a flow closer at its key's indentation.
fn flow_closer_at_indent(text: &str, (line, col): (usize, usize)) -> Option<usize> {
    let start = if line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2)?.0 + 1
    };
    let rest = text.get(start..)?;
    let indent = rest.bytes().take_while(|b| *b == b' ').count();
    (indent == col && matches!(rest.as_bytes().get(indent), Some(b']' | b'}')))
        .then_some(start + indent)
}

fn parse_strict(text: &str, file: FileId, line_offset: u32, column_offset: u32) -> Strict {
    let mut b = Builder {
        file,
        line_offset,
        column_offset,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        text_len: text.len(),
        budget: text
            .len()
            .saturating_mul(EXPANSION_PER_BYTE)
            .saturating_add(EXPANSION_SLACK)
            .min(MAX_NODES),
        out: Parsed::default(),
    };
    let mut error_at = None;
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_event() {
            None => break,
            Some(Err(e)) => {
                let m = e.marker();
                if e.info() == "invalid indentation" {
                    error_at = Some((m.line(), m.col()));
                }
                b.out.error = Some(YamlIssue {
                    pos: b.pos_at(m.line(), m.col()),
                    message: e.info().to_string(),
                });
                break;
            }
            Some(Ok((event, span))) => {
                if let Err(issue) = b.event(event, span) {
                    b.out.error = Some(issue);
                    break;
                }
            }
        }
    }
    Strict {
        parsed: b.out,
        error_at,
    }
}

impl Builder {
    fn pos_at(&self, line: usize, col: usize) -> Pos {
        Pos::new(
            self.file,
            (line as u32).saturating_add(self.line_offset),
            (col as u32).saturating_add(1 + self.column_offset),
        )
    }

    fn pos(&self, span: &Span) -> Pos {
        self.pos_at(span.start.line(), span.start.col())
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlIssue> {
        let pos = self.pos(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !forced_str;
                let node = Node::scalar(pos, text.as_ref(), plain);
                self.finish(node, anchor, 1)
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Seq {
                pos,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.open(Frame::Map {
                pos,
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => {
                    // A boxed slice: no unused capacity, and a smaller node (the tree lives
                    // as long as its object does).
                    self.finish(
                        Node {
                            pos,
                            value: Value::Seq(items.into_boxed_slice()),
                        },
                        anchor,
                        0,
                    )
                }
                _ => Err(self.internal(pos)),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    pos,
                    anchor,
                    entries,
                    ..
                }) => {
                    let entries = self.merge_and_check(entries);
                    self.finish(
                        Node {
                            pos,
                            value: Value::Map(entries.into_boxed_slice()),
                        },
                        anchor,
                        0,
                    )
                }
                _ => Err(self.internal(pos)),
            },
            Event::Alias(id) => {
                let Some((anchored, count)) = self.anchors.get(&id) else {
                    return Err(YamlIssue {
                        pos,
                        message: "alias refers to an unknown anchor".into(),
                    });
                };
                let count = *count;
                // Checked before the copy is made, so a bomb never allocates its expansion.
                if self.nodes.saturating_add(count) > self.budget {
                    return Err(YamlIssue {
                        pos,
                        message: format!(
                            "this alias expands the document past {} nodes, too many for its {} bytes (an alias bomb?); Kubernetes refuses such documents too",
                            self.budget, self.text_len
                        ),
                    });
                }
                let node = anchored.clone();
                self.finish(node, 0, count)
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => Ok(()),
        }
    }

    fn internal(&self, pos: Pos) -> YamlIssue {
        YamlIssue {
            pos,
            message: "unbalanced YAML structure".into(),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), YamlIssue> {
        if self.stack.len() >= MAX_DEPTH {
            let pos = match &frame {
                Frame::Seq { pos, .. } | Frame::Map { pos, .. } => *pos,
            };
            return Err(YamlIssue {
                pos,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Attaches a completed node to its parent (or ends the document).
    fn finish(&mut self, node: Node, anchor: usize, added: usize) -> Result<(), YamlIssue> {
        self.nodes = self.nodes.saturating_add(added.max(1));
        if self.nodes > self.budget {
            return Err(YamlIssue {
                pos: node.pos,
                message: format!(
                    "document expands to more than {} nodes (recursive aliases?)",
                    self.budget
                ),
            });
        }
        if anchor != 0 {
            let count = if added > 1 { added } else { node.count() };
            self.anchors.insert(anchor, (node.clone(), count));
        }
        match self.stack.last_mut() {
            None => {
                self.out.documents.push(node);
                self.anchors.clear();
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }

    /// Applies `<<` merge keys and reports duplicate keys (the later one wins, as in Kubernetes'
    /// non-strict reader, but `kubectl apply` with strict validation rejects them).
    fn merge_and_check(&mut self, entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
        let mut own: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
        let mut merged: Vec<(Node, Node)> = Vec::new();
        for (k, v) in entries {
            if k.scalar_text() == Some("<<") && matches!(&k.value, Value::Scalar(s) if s.plain) {
                match v.value {
                    Value::Map(m) => merged.extend(m),
                    Value::Seq(items) => {
                        for item in items {
                            if let Value::Map(m) = item.value {
                                merged.extend(m);
                            }
                        }
                    }
                    Value::Scalar(_) => self.out.warnings.push(YamlIssue {
                        pos: v.pos,
                        message: "merge key `<<` needs a mapping or a list of mappings".into(),
                    }),
                }
                continue;
            }
            if let Some(name) = k.scalar_text()
                && let Some((first, _)) = own.iter().find(|(ok, _)| ok.scalar_text() == Some(name))
            {
                self.out.warnings.push(YamlIssue {
                    pos: k.pos,
                    message: format!(
                        "duplicate key `{name}` (first at line {}); the later value wins",
                        first.pos.line
                    ),
                });
                own.retain(|(ok, _)| ok.scalar_text() != Some(name));
            }
            own.push((k, v));
        }
        for (k, v) in merged {
            let present = k
                .scalar_text()
                .is_some_and(|name| own.iter().any(|(ok, _)| ok.scalar_text() == Some(name)));
            if !present {
                own.push((k, v));
            }
        }
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let p = parse(text, FileId(0), 0, 0);
        assert!(p.error.is_none(), "{:?}", p.error);
        p.documents.into_iter().next().expect("a document")
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("a:\n  b: [1, x]\n");
        let b = n.get("a").and_then(|a| a.get("b")).expect("b");
        assert_eq!((b.pos.line, b.pos.column), (2, 6));
        let Value::Seq(items) = &b.value else {
            panic!("seq")
        };
        assert_eq!((items[1].pos.line, items[1].pos.column), (2, 10));
    }

    #[test]
    fn a_flow_closer_may_sit_at_its_keys_indentation() {
        let text =
            "spec:\n  args: [\n      \"-a\", \"b\",\n  ]\n  env: {\n    x: 1,\n  }\n  n: 1\n";
        let n = one(text);
        let spec = n.get("spec").expect("spec");
        let Some(Value::Seq(args)) = spec.get("args").map(|a| &a.value) else {
            panic!("args: {spec:?}")
        };
        assert_eq!(args.len(), 2);
        assert_eq!((args[1].pos.line, args[1].pos.column), (3, 13));
        assert!(spec.get("env").and_then(|e| e.get("x")).is_some());
        assert_eq!(spec.get("n").map(|n| n.pos.line), Some(8));
    }

    #[test]
    fn other_indentation_errors_stay_errors() {
        let p = parse("a:\n  b: 1\n c: 2\n", FileId(0), 0, 0);
        assert!(p.error.is_some(), "{p:?}");
        let p = parse("a:\n  b: [1,\n  x: ]\n", FileId(0), 0, 0);
        assert!(p.error.is_some(), "{p:?}");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let p = parse("a: 1\nb: [1, 2\n", FileId(0), 10, 0);
        let e = p.error.expect("error");
        assert!(e.pos.line >= 11, "{e:?}");
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = one("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n");
        let c = n.get("c").expect("c");
        assert_eq!(c.get("x").and_then(Node::scalar_text), Some("1"));
        assert_eq!(c.get("y").and_then(Node::scalar_text), Some("3"));
    }

    #[test]
    fn duplicate_keys_warn() {
        let p = parse("a: 1\na: 2\n", FileId(0), 0, 0);
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(
            p.documents[0].get("a").and_then(Node::scalar_text),
            Some("2")
        );
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let p = parse(&text, FileId(0), 0, 0);
        assert!(p.error.is_some());
    }

    /// The classic nine-level "billion laughs": 9^9 scalars from 300 bytes.
    fn billion_laughs() -> String {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let (p, n) = (w[0], w[1]);
            let refs = vec![format!("*{p}"); 9].join(", ");
            text.push_str(&format!("{n}: &{n} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn alias_bomb_is_refused_at_the_alias() {
        let text = billion_laughs();
        let p = parse(&text, FileId(0), 20, 0);
        let e = p.error.expect("a bomb is an error");
        assert!(e.message.contains("alias bomb"), "{e:?}");
        // Refused at an alias (`*x`) on the line that crossed the budget, with the chunk's
        // line offset applied: never at the anchor it copies.
        let line = text
            .lines()
            .nth((e.pos.line - 21) as usize)
            .expect("the line exists");
        let col = e.pos.column as usize - 1;
        assert_eq!(line.as_bytes().get(col), Some(&b'*'), "{e:?} in {line}");
        assert!(p.documents.is_empty());
    }

    #[test]
    fn expansion_is_bounded_by_text_length() {
        // 2,000 aliases of a 100-node list: 200,000 nodes from 7 kilobytes.
        let mut text = String::from("a: &a [");
        text.push_str(&vec!["x"; 100].join(", "));
        text.push_str("]\nb: [");
        text.push_str(&vec!["*a"; 2_000].join(", "));
        text.push_str("]\n");
        assert!(parse(&text, FileId(0), 0, 0).error.is_some());
        // Ordinary sharing (a merge key used a few times) is well within it.
        let ok = "base: &b {x: 1, y: 2}\nc: {<<: *b}\nd: {<<: *b}\ne: [*b, *b, *b]\n";
        assert!(parse(ok, FileId(0), 0, 0).error.is_none());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = "[".repeat(10_000);
        let p = parse(&text, FileId(0), 0, 0);
        assert!(p.error.is_some());
    }

    #[test]
    fn str_tag_forces_string() {
        let n = one("a: !!str 80\n");
        assert_eq!(n.get("a").and_then(Node::as_str), Some("80"));
    }
}
