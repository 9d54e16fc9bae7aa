//! Kustomize directories. A `kustomization.yaml` is not a Kubernetes object, and the patches
//! it names are fragments of objects (a Deployment with only `spec.replicas`, a JSON patch
//! list), not manifests: read as manifests they are errors (no `kind`, required fields
//! missing) and duplicates of the objects they patch. The walk reads the kustomization first,
//! and reports it and each of its patch files as skipped (Info), naming where the patch is
//! listed; the resources it lists are ordinary manifests and are read as usual.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::source::FileId;
use crate::yaml::{self, Node, Value};

/// The names kustomize reads in a directory.
pub(super) const FILE_NAMES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The files a kustomization names that are not manifests, each with the message that says
/// what it is (`a patch listed at kustomization.yaml:4: ...`), by canonical path.
pub(crate) fn fragments(kustomization: &Path, text: &str) -> HashMap<PathBuf, String> {
    let dir = kustomization.parent().unwrap_or(Path::new("."));
    let name = kustomization
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed = yaml::parse(text, FileId(0), 0, 0);
    let mut out = HashMap::new();
    let Some(root) = parsed.documents.first() else {
        return out;
    };
    let mut add = |node: &Node, what: &str| {
        let Some(rel) = node.as_str().filter(|s| !s.is_empty() && !s.contains('\n')) else {
            return;
        };
        let path = dir.join(rel);
        let key = std::fs::canonicalize(&path).unwrap_or(path);
        out.entry(key).or_insert_with(|| {
            format!(
                "{what} listed at {name}:{}: a fragment of an object, not a manifest, so it is not analyzed; analyze the output of `kustomize build` to check the objects it patches",
                node.pos.line
            )
        });
    };
    // Lists of file names.
    for (field, what) in [
        ("patchesStrategicMerge", "a strategic-merge patch"),
        ("configurations", "a transformer configuration"),
    ] {
        for item in seq(root.get(field)) {
            add(item, what);
        }
    }
    // Lists of entries with a `path`.
    for (field, what) in [
        ("patches", "a patch"),
        ("patchesJson6902", "a JSON 6902 patch"),
        ("replacements", "a replacement"),
    ] {
        for item in seq(root.get(field)) {
            if let Some(p) = item.get("path") {
                add(p, what);
            }
        }
    }
    if let Some(p) = root.get("openapi").and_then(|o| o.get("path")) {
        add(p, "an OpenAPI schema");
    }
    out
}

fn seq(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_of_every_form_are_named_with_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = dir.path().join("kustomization.yaml");
        let text = "resources:\n- app.yaml\npatches:\n- path: replicas.yaml\n- patch: |-\n    inline\npatchesStrategicMerge:\n- memory.yaml\npatchesJson6902:\n- target: {kind: Deployment}\n  path: ops.yaml\n";
        let found = fragments(&k, text);
        let at = |f: &str| found.get(&dir.path().join(f)).cloned().unwrap_or_default();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(at("replicas.yaml").starts_with("a patch listed at kustomization.yaml:4: "));
        assert!(
            at("memory.yaml")
                .starts_with("a strategic-merge patch listed at kustomization.yaml:8: ")
        );
        assert!(at("ops.yaml").starts_with("a JSON 6902 patch listed at kustomization.yaml:11: "));
        assert!(!found.contains_key(&dir.path().join("app.yaml")));
    }

    #[test]
    fn anything_else_names_nothing() {
        let k = Path::new("/nonexistent/kustomization.yaml");
        assert!(fragments(k, "").is_empty());
        assert!(fragments(k, "- a\n- b\n").is_empty());
        assert!(fragments(k, "patches: 3\n").is_empty());
        assert!(fragments(k, ": : :\n").is_empty());
    }
}
