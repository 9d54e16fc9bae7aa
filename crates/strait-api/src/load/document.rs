//! One file's text to objects: documents split and parsed, kinds and apiVersions recognised,
//! bodies typed, every problem a diagnostic with its position.

use std::sync::Arc;

use crate::cache::FileResult;
use crate::de::{FieldIssueKind, FieldPath, Seg};
use crate::diag::{Diagnostic, ObjectRef, Problem, Severity};
use crate::istio::mesh_config::{MeshConfig, MeshNetworks};
use crate::kind::{Kind, Lookup, lookup};
use crate::object::{Body, Object, Source};
use crate::source::{FileId, Pos};
use crate::yaml::{self, Node, Tree, Value};

/// Parses one file, its documents split over up to `threads` threads. Documents are parsed
/// and typed independently of each other, so the parts are parsed apart and joined in order:
/// one large multi-document dump (`kubectl get -A -o yaml`) then uses every core, as a
/// directory of files does.
pub(super) fn parse_file(file: FileId, text: &str, threads: usize) -> FileResult {
    let chunks = yaml::split_documents(text);
    let parts = parts(&chunks, threads);
    if parts.len() <= 1 {
        let mut r = FileResult::default();
        r.parse(file, &chunks);
        return r;
    }
    let results: Vec<FileResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                scope.spawn(|| {
                    let mut r = FileResult::default();
                    r.parse(file, part);
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut out = FileResult::default();
    for r in results {
        out.objects.extend(r.objects);
        out.diagnostics.extend(r.diagnostics);
    }
    out
}

/// Below this many bytes a file is parsed on one thread: a thread costs more than it saves.
const SPLIT_BYTES: usize = 1 << 20;

/// `chunks` cut into at most `threads` consecutive runs of about equal text size, none under
/// [`SPLIT_BYTES`] unless there is only one.
fn parts<'c, 'a>(chunks: &'c [yaml::Chunk<'a>], threads: usize) -> Vec<&'c [yaml::Chunk<'a>]> {
    let total: usize = chunks.iter().map(|c| c.text.len()).sum();
    let n = threads.min(total / SPLIT_BYTES).max(1);
    if n == 1 {
        return vec![chunks];
    }
    let target = total.div_ceil(n);
    let mut out = Vec::with_capacity(n);
    let (mut start, mut size) = (0, 0);
    for (i, c) in chunks.iter().enumerate() {
        size += c.text.len();
        if size >= target && out.len() + 1 < n {
            out.push(&chunks[start..=i]);
            start = i + 1;
            size = 0;
        }
    }
    if start < chunks.len() {
        out.push(&chunks[start..]);
    }
    out
}

impl FileResult {
    fn parse(&mut self, file: FileId, chunks: &[yaml::Chunk]) {
        for chunk in chunks {
            if yaml::is_blank(chunk.text) {
                continue;
            }
            let parsed = yaml::parse(chunk.text, file, chunk.first_line, 0);
            // Every template action starts so; most documents hold none and skip the checks.
            let templated = chunk.text.contains("{{");
            if templated && let Some(t) = unrendered_template(*chunk, &parsed) {
                let pos = Pos::new(file, chunk.first_line + t.line + 1, t.column + 1);
                self.diagnostics.push(Diagnostic::at(
                    Problem::HelmTemplate,
                    Severity::Error,
                    pos,
                    format!(
                        "unrendered template `{}`: this document is a Helm chart template; render it first (`helm template <release> <chart> | strait analyze -`)",
                        t.text
                    ),
                ));
                continue;
            }
            for w in parsed.warnings {
                self.diagnostics.push(Diagnostic::at(
                    Problem::DuplicateKey,
                    Severity::Warning,
                    w.pos,
                    w.message,
                ));
            }
            for doc in parsed.documents {
                self.add_document(file, doc, templated);
            }
            if let Some(e) = parsed.error {
                self.diagnostics.push(Diagnostic::at(
                    Problem::Syntax,
                    Severity::Error,
                    e.pos,
                    format!(
                        "YAML syntax error: {}; this document was skipped",
                        e.message
                    ),
                ));
            }
        }
    }

    /// `templated`: the document's text holds `{{`, so a value may hold a chart's expression.
    fn add_document(&mut self, file: FileId, doc: Node, templated: bool) {
        if doc.is_null() {
            return;
        }
        if !matches!(doc.value, Value::Map(_)) {
            self.diagnostics.push(Diagnostic::at(
                Problem::NotAnObject,
                Severity::Error,
                doc.pos,
                format!(
                    "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                    doc.describe()
                ),
            ));
            return;
        }
        let kind_name = doc.get("kind").and_then(Node::as_str).unwrap_or("");
        let is_list =
            kind_name == "List" || (kind_name.ends_with("List") && doc.get("items").is_some());
        if is_list {
            match doc.get("items").map(|n| &n.value) {
                Some(Value::Seq(items)) => {
                    for item in items {
                        self.add_document(file, item.clone(), templated);
                    }
                }
                None => {}
                Some(_) if doc.get("items").is_some_and(Node::is_null) => {}
                Some(_) => self.diagnostics.push(Diagnostic::at(
                    Problem::NotAnObject,
                    Severity::Error,
                    doc.get("items").map_or(doc.pos, |n| n.pos),
                    format!("`items` of a {kind_name} must be a list"),
                )),
            }
            return;
        }
        self.add_object(file, doc, templated);
    }

    fn add_object(&mut self, file: FileId, doc: Node, templated: bool) {
        let api_version = doc
            .get("apiVersion")
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let kind_name = doc
            .get("kind")
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = doc
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let oref = ObjectRef {
            kind: kind_name.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        if api_version.is_empty() || kind_name.is_empty() {
            let missing = if kind_name.is_empty() {
                "kind"
            } else {
                "apiVersion"
            };
            self.diagnostics.push(
                Diagnostic::at(
                    Problem::NotAnObject,
                    Severity::Error,
                    doc.pos,
                    format!(
                        "not a Kubernetes object: `{missing}` is missing{}",
                        not_an_object_hint(&doc)
                    ),
                )
                .with_object(oref),
            );
            return;
        }
        let kind_pos = doc.get("kind").map_or(doc.pos, |n| n.pos);
        let version_pos = doc.get("apiVersion").map_or(doc.pos, |n| n.pos);
        let (kind, mut tree) = match lookup(&api_version, &kind_name) {
            Lookup::Known(kind) => (kind, doc),
            Lookup::Removed { kind, use_instead } => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::RemovedVersion,
                        Severity::Warning,
                        version_pos,
                        format!(
                            "{api_version} {kind_name} is no longer served by Kubernetes; use {use_instead}"
                        ),
                    )
                    .with_object(oref.clone())
                    .with_field("apiVersion"),
                );
                let mut doc = doc;
                if let Some(v) = doc.get_mut("apiVersion") {
                    *v = Node::scalar(v.pos, use_instead, false);
                }
                (kind, doc)
            }
            Lookup::UnservedVersion { kind, served } => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::UnservedVersion,
                        Severity::Error,
                        version_pos,
                        format!("{kind} is not served at {api_version} (served: {served}); this object was skipped"),
                    )
                    .with_object(oref)
                    .with_field("apiVersion"),
                );
                return;
            }
            Lookup::UnknownKind { suggestion } => {
                let hint = suggestion
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_default();
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::UnknownKind,
                        Severity::Error,
                        kind_pos,
                        format!("unknown kind \"{kind_name}\" in {api_version}{hint}; this object was skipped"),
                    )
                    .with_object(oref)
                    .with_field("kind"),
                );
                return;
            }
            Lookup::NotRead => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::NotRead,
                        Severity::Info,
                        kind_pos,
                        format!("{api_version} {kind_name} is not a kind strait reads; objects of this kind are skipped"),
                    )
                    .with_object(oref),
                );
                return;
            }
        };
        normalise_api_version(&mut tree, kind);
        if templated && let Some((node, field, action)) = helm_value(&tree) {
            self.diagnostics.push(
                Diagnostic::at(
                    Problem::HelmTemplate,
                    Severity::Warning,
                    node.pos,
                    format!(
                        "{field} holds `{action}`, a Helm chart expression: if this comes from a chart, it was not fully rendered (`helm template`); the value was read as it is"
                    ),
                )
                .with_object(oref.clone())
                .with_field(field.to_string()),
            );
        }
        let (body, issues) = Body::from_tree(kind, &tree);
        for issue in issues {
            let (problem, what) = match issue.kind {
                FieldIssueKind::UnknownField => (Problem::UnknownField, ""),
                FieldIssueKind::InvalidValue => (Problem::InvalidValue, "; the field was ignored"),
            };
            self.diagnostics.push(
                Diagnostic::at(
                    problem,
                    Severity::Error,
                    issue.pos,
                    format!("{}: {}{what}", issue.path, issue.message),
                )
                .with_object(oref.clone())
                .with_field(issue.path.to_string()),
            );
        }
        let Some(body) = body else {
            self.diagnostics.push(
                Diagnostic::at(
                    Problem::InvalidValue,
                    Severity::Error,
                    tree.pos,
                    format!("{kind_name} could not be read; this object was skipped"),
                )
                .with_object(oref),
            );
            return;
        };
        let pos = tree.pos;
        let kept = match Tree::from_node(&tree) {
            Ok(kept) => kept,
            Err(e) => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::InvalidValue,
                        Severity::Error,
                        pos,
                        format!("{kind_name} could not be kept: {e}; this object was skipped"),
                    )
                    .with_object(oref),
                );
                return;
            }
        };
        drop(tree);
        let mut object = Object {
            kind,
            api_version,
            body,
            source: Source {
                file,
                pos,
                tree: Arc::new(kept),
            },
        };
        // An IstioOperator is `istioctl install`'s input, which needs no name (istioctl
        // names what it installs); every other object is applied and must have one.
        if object.name().is_empty()
            && object.meta().generate_name.is_none()
            && kind != Kind::IstioOperator
        {
            self.diagnostics.push(
                Diagnostic::at(
                    Problem::MissingName,
                    Severity::Error,
                    object
                        .source
                        .root()
                        .get("metadata")
                        .map_or(pos, |m| m.pos()),
                    format!("{kind} has no metadata.name"),
                )
                .with_object(oref)
                .with_field("metadata.name"),
            );
        }
        if kind.is_namespaced() {
            object.set_default_namespace("default");
        }
        self.objects.push(object);
    }
}

/// The template action that explains why `chunk` is not YAML Kubernetes can read, if it is
/// not: it failed to parse at or after the action, or it parsed only by reading `{{ x }}` as a
/// flow mapping used as a mapping key (`name: {{ .Values.name }}`), which Kubernetes' own
/// reader rejects (its YAML-to-JSON step needs string keys). A document Kubernetes can read is
/// analyzed, whatever its values hold.
fn unrendered_template(
    chunk: yaml::Chunk<'_>,
    parsed: &yaml::Parsed,
) -> Option<yaml::TemplateAction> {
    let broken_at = match &parsed.error {
        Some(e) => e.pos.line,
        None if parsed.documents.iter().any(has_collection_key) => u32::MAX,
        None => return None,
    };
    let t = yaml::find_template(chunk.text)?;
    // An action after the error cannot have caused it.
    (chunk.first_line + t.line < broken_at).then_some(t)
}

/// Whether a mapping below `node` has a key that is itself a mapping or a list. Nesting is
/// bounded by the parser's depth limit, so recursion is safe.
fn has_collection_key(node: &Node) -> bool {
    match &node.value {
        Value::Scalar(_) => false,
        Value::Seq(items) => items.iter().any(has_collection_key),
        Value::Map(entries) => entries
            .iter()
            .any(|(k, v)| !matches!(k.value, Value::Scalar(_)) || has_collection_key(v)),
    }
}

/// The first one-line value holding a Helm chart expression, with its field path. Multi-line
/// values are left alone: they are embedded files (the sidecar injector's templates, scripts),
/// where such text is content.
fn helm_value(tree: &Node) -> Option<(&Node, FieldPath, &str)> {
    /// A field path segment borrowed from the tree: the walk allocates only for a match.
    enum At<'a> {
        Key(&'a str),
        Index(usize),
    }
    fn walk<'a>(node: &'a Node, path: &mut Vec<At<'a>>) -> Option<(&'a Node, &'a str)> {
        match &node.value {
            Value::Scalar(s) if s.text.trim_end().contains('\n') => None,
            Value::Scalar(s) => yaml::find_helm_action(&s.text).map(|a| (node, a)),
            Value::Seq(items) => items.iter().enumerate().find_map(|(i, item)| {
                path.push(At::Index(i));
                let found = walk(item, path);
                if found.is_none() {
                    path.pop();
                }
                found
            }),
            Value::Map(entries) => entries.iter().find_map(|(k, v)| {
                path.push(At::Key(k.scalar_text().unwrap_or_default()));
                let found = walk(v, path);
                if found.is_none() {
                    path.pop();
                }
                found
            }),
        }
    }
    let mut path = Vec::new();
    let (node, action) = walk(tree, &mut path)?;
    let path = path
        .into_iter()
        .map(|at| match at {
            At::Key(k) => Seg::Key(k.to_string()),
            At::Index(i) => Seg::Index(i),
        })
        .collect();
    Some((node, FieldPath(path), action))
}

/// Kubernetes types check `apiVersion` exactly; a removed version has been rewritten above, and
/// Istio kinds accept every served version, so only the canonical one needs to be present.
fn normalise_api_version(tree: &mut Node, kind: Kind) {
    if kind.is_istio() {
        return;
    }
    let canonical = kind.canonical_api_version();
    if let Some(v) = tree.get_mut("apiVersion")
        && v.as_str() != Some(canonical.as_str())
    {
        *v = Node::scalar(v.pos, canonical, false);
    }
}

/// What a document without `apiVersion` and `kind` most likely is, for the error's message:
/// the files people pass to `strait analyze` along with their manifests.
fn not_an_object_hint(doc: &Node) -> &'static str {
    let Value::Map(entries) = &doc.value else {
        return "";
    };
    if entries.is_empty() || doc.get("apiVersion").is_some() || doc.get("kind").is_some() {
        return "";
    }
    if doc.get("networks").is_some() {
        let (v, issues) = crate::de::from_node_proto::<MeshNetworks>(doc);
        if v.is_some() && issues.is_empty() {
            return "; this is a meshNetworks file: pass it with `--mesh-networks FILE`";
        }
    }
    let (v, issues) = crate::de::from_node_proto::<MeshConfig>(doc);
    if v.is_some() && issues.is_empty() {
        return "; this is a mesh config (the `mesh` key of the istio ConfigMap): pass it with `--mesh-config FILE`";
    }
    if doc.get("global").is_some() {
        return "; this looks like a Helm values file: analyze what the chart renders with it (`helm template <release> <chart> -f FILE | strait analyze -`)";
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump over [`SPLIT_BYTES`] several times, with the documents that take the unusual
    /// paths: a syntax error, a duplicate key, a List, an unrendered template, an unknown kind.
    fn dump() -> String {
        let mut text = String::new();
        let mut i = 0;
        while text.len() < 3 * SPLIT_BYTES {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\n  namespace: team{}\nspec:\n  selector:\n    app: a{i}\n  ports:\n  - name: http\n    port: 8080\n",
                i % 7
            ));
            match i % 1000 {
                1 => text.push_str("---\nkind: Service\nmetadata: {name: [\n"),
                2 => text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  name: d\n"),
                3 => text.push_str("---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: l}\n"),
                4 => text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n"),
                5 => text.push_str("---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"),
                _ => {}
            }
            i += 1;
        }
        text
    }

    #[test]
    fn a_split_file_parses_as_one() {
        let text = dump();
        let file = FileId(0);
        let one = parse_file(file, &text, 1);
        assert!(one.objects.len() > 10_000);
        assert!(one.diagnostics.len() > 4);
        for threads in [2, 3, 8] {
            let split = parse_file(file, &text, threads);
            assert_eq!(
                format!("{split:?}"),
                format!("{one:?}"),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn parts_cover_every_document_in_order() {
        let text = dump();
        let chunks = yaml::split_documents(&text);
        assert_eq!(parts(&chunks, 1).len(), 1);
        for threads in [2, 3, 100] {
            let parts = parts(&chunks, threads);
            assert!(parts.len() > 1 && parts.len() <= threads.min(3));
            let joined: Vec<yaml::Chunk> = parts.concat();
            assert_eq!(joined, chunks);
        }
        let small = yaml::split_documents("a: 1\n---\nb: 2\n");
        assert_eq!(parts(&small, 8).len(), 1);
    }
}
