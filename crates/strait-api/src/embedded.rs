//! YAML inside YAML: the `mesh` and `meshNetworks` keys of the `istio` ConfigMap hold mesh
//! config as a string. Positions inside a literal block scalar (`mesh: |`) are mapped back to
//! the lines and columns of the containing file, so a typo in mesh config is reported where the
//! user wrote it.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::de::{self, FieldIssueKind, FieldPath};
use crate::diag::{Diagnostic, ObjectRef, Problem, Severity};
use crate::object::Object;
use crate::source::{FileId, Pos, SourceMap};
use crate::yaml::{self, Node, Tree};

/// Types the string at `path` of `obj` (e.g. `data.mesh`) as `T`. `None` when the field is
/// absent; otherwise the value (if it could be typed) and every problem found.
pub fn parse_embedded<T: DeserializeOwned + Default>(
    sources: &SourceMap,
    obj: &Object,
    path: &str,
) -> Option<(Option<T>, Vec<Diagnostic>)> {
    let (node, exact) = de::locate(obj.source.root(), &FieldPath::parse(path));
    if !exact {
        return None;
    }
    let oref = ObjectRef {
        kind: obj.kind.to_string(),
        namespace: obj.namespace().to_string(),
        name: obj.name().to_string(),
    };
    let Some(text) = node.as_str() else {
        let d = Diagnostic::at(
            Problem::InvalidValue,
            Severity::Error,
            node.pos(),
            format!(
                "{path}: expected a string holding YAML, found {}",
                node.describe()
            ),
        )
        .with_object(oref)
        .with_field(path);
        return Some((None, vec![d]));
    };
    let (line_offset, col_offset) = block_offsets(sources, node.pos());
    let (value, mut diags) = type_text::<T>(text, node.pos().file, line_offset, col_offset, path);
    for d in &mut diags {
        d.object = Some(oref.clone());
    }
    Some((value, diags))
}

/// Position of `inner` (a field path such as `networks.n1.endpoints[0]`) inside the YAML held
/// by the string at `path` of `obj`; `None` when either is absent.
pub fn locate_embedded(
    sources: &SourceMap,
    obj: &Object,
    path: &str,
    inner: &str,
) -> Option<crate::source::Pos> {
    let (node, exact) = de::locate(obj.source.root(), &FieldPath::parse(path));
    let text = node.as_str().filter(|_| exact)?;
    let (line_offset, col_offset) = block_offsets(sources, node.pos());
    let parsed = yaml::parse(text, node.pos().file, line_offset, col_offset);
    let doc = Tree::from_node(parsed.documents.first()?).ok()?;
    let (found, _) = de::locate(doc.root(), &FieldPath::parse(inner));
    Some(found.pos())
}

/// Reads a file holding a bare `T` document (a `--mesh-config` file), or a ConfigMap whose
/// `data.<key>` holds it.
pub fn read_typed_file<T: DeserializeOwned + Default>(
    sources: &mut SourceMap,
    path: &Path,
    configmap_key: &str,
) -> (Option<T>, Vec<Diagnostic>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => crate::load::normalise_newlines(&t).into_owned(),
        Err(e) => {
            let d = Diagnostic {
                problem: Problem::Unreadable,
                severity: Severity::Error,
                pos: None,
                path: Some(path.to_path_buf()),
                message: format!("cannot read {}: {e}", path.display()),
                object: None,
                field: None,
            };
            return (None, vec![d]);
        }
    };
    let file = sources.add(path, text.as_str());
    let parsed = yaml::parse(&text, file, 0, 0);
    if let Some(e) = parsed.error {
        let d = Diagnostic::at(
            Problem::Syntax,
            Severity::Error,
            e.pos,
            format!("YAML syntax error: {}", e.message),
        );
        return (None, vec![d]);
    }
    let Some(doc) = parsed.documents.into_iter().next() else {
        return (None, Vec::new());
    };
    if doc.get("kind").and_then(Node::as_str) == Some("ConfigMap") {
        let inner = doc.get("data").and_then(|d| d.get(configmap_key));
        return match inner {
            Some(node) => match node.as_str() {
                Some(t) => {
                    let (lo, co) = block_offsets(sources, node.pos);
                    type_text::<T>(t, file, lo, co, &format!("data.{configmap_key}"))
                }
                None => (None, Vec::new()),
            },
            None => {
                let d = Diagnostic::at(
                    Problem::InvalidValue,
                    Severity::Error,
                    doc.pos,
                    format!("ConfigMap has no data.{configmap_key}"),
                );
                (None, vec![d])
            }
        };
    }
    let (value, issues) = de::from_node_proto::<T>(&doc);
    (value, issues_to_diags(issues, ""))
}

fn type_text<T: DeserializeOwned + Default>(
    text: &str,
    file: FileId,
    line_offset: u32,
    col_offset: u32,
    prefix: &str,
) -> (Option<T>, Vec<Diagnostic>) {
    let parsed = yaml::parse(text, file, line_offset, col_offset);
    if let Some(e) = parsed.error {
        let d = Diagnostic::at(
            Problem::Syntax,
            Severity::Error,
            e.pos,
            format!("YAML syntax error in {prefix}: {}", e.message),
        );
        return (None, vec![d]);
    }
    let Some(doc) = parsed.documents.into_iter().next() else {
        return (Some(T::default()), Vec::new());
    };
    let (value, issues) = de::from_node_proto::<T>(&doc);
    (value, issues_to_diags(issues, prefix))
}

fn issues_to_diags(issues: Vec<de::FieldIssue>, prefix: &str) -> Vec<Diagnostic> {
    issues
        .into_iter()
        .map(|i| {
            let problem = match i.kind {
                FieldIssueKind::UnknownField => Problem::UnknownField,
                FieldIssueKind::InvalidValue => Problem::InvalidValue,
            };
            let field = if prefix.is_empty() {
                i.path.to_string()
            } else {
                format!("{prefix} {}", i.path)
            };
            Diagnostic::at(
                problem,
                Severity::Error,
                i.pos,
                format!("{field}: {}", i.message),
            )
            .with_field(field)
        })
        .collect()
}

/// Line and column offsets of the content of a literal block scalar starting at `at`; for
/// other styles, the scalar's own position (exact for the first line).
fn block_offsets(sources: &SourceMap, at: Pos) -> (u32, u32) {
    let own = (at.line.saturating_sub(1), at.column.saturating_sub(1));
    let Some(file) = sources.get(at.file) else {
        return own;
    };
    let indicator = file
        .line(at.line)
        .and_then(|l| l.chars().nth(at.column.saturating_sub(1) as usize));
    if indicator == Some('|') {
        let indent = (at.line + 1..at.line + 200)
            .filter_map(|n| file.line(n))
            .find(|l| !l.trim().is_empty())
            .map(|l| (l.len() - l.trim_start_matches(' ').len()) as u32)
            .unwrap_or(0);
        (at.line, indent)
    } else {
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::mesh_config::MeshConfig;
    use crate::load::Loader;

    #[test]
    fn positions_inside_a_block_scalar() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    trustDomain: example.org\n    acessLogFile: /dev/stdout\n";
        let mut l = Loader::new();
        l.add_text("cm.yaml", text);
        let loaded = l.finish();
        let (mc, diags) =
            parse_embedded::<MeshConfig>(&loaded.sources, &loaded.objects[0], "data.mesh")
                .expect("present");
        assert_eq!(
            mc.expect("typed").trust_domain.as_deref(),
            Some("example.org")
        );
        assert_eq!(diags.len(), 1);
        let pos = diags[0].pos.expect("pos");
        assert_eq!((pos.line, pos.column), (7, 5));
        assert!(
            diags[0].message.contains("did you mean \"accessLogFile\"?"),
            "{}",
            diags[0].message
        );
    }
}
