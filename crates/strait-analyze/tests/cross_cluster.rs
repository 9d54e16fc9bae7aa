//! One application across the clusters of examples/multicluster, with one cluster's copy
//! set up differently from the other's.

use std::path::{Path, PathBuf};

use strait_analyze::{Options, analyze};
use strait_model::BuildOptions;

/// A copy of examples/multicluster with `edit` applied to the text of `file`.
fn mesh_with(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/multicluster");
    let dir = tempfile::tempdir().expect("tempdir");
    for rel in [
        "mesh.yaml",
        "cluster1/istio-system.yaml",
        "cluster1/sample.yaml",
        "cluster2/istio-system.yaml",
        "cluster2/sample.yaml",
    ] {
        let to: PathBuf = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        let text = std::fs::read_to_string(src.join(rel)).expect("example");
        let text = if rel == file { edit(&text) } else { text };
        std::fs::write(&to, text).expect("write");
    }
    dir
}

fn messages(code: &str, dir: &Path) -> Vec<String> {
    let input = strait_api::read_input(&[dir.to_path_buf()]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    let report = analyze(&mesh, &diags, &Options::default());
    report
        .findings
        .iter()
        .filter(|f| f.code == code)
        .map(|f| f.message.clone())
        .collect()
}

#[test]
fn the_example_is_clean() {
    let dir = mesh_with("", str::to_string);
    assert!(messages("STR0601", dir.path()).is_empty());
    assert!(messages("STR0116", dir.path()).is_empty());
}

#[test]
fn a_namespace_injected_in_one_network_only_leaves_the_other_unreachable() {
    let dir = mesh_with("cluster2/sample.yaml", |t| {
        t.replacen("    istio-injection: enabled\n", "", 1)
    });
    let found = messages("STR0601", dir.path());
    assert!(
        found.iter().any(|m| m.contains("helloworld-v2")
            && m.contains("injected pods in cluster cluster1 (network network1)")),
        "{found:#?}"
    );
}

#[test]
fn pods_whose_service_is_only_in_the_other_cluster() {
    let dir = mesh_with("cluster1/sample.yaml", |t| {
        // Drop the helloworld Service of cluster1, keep its Deployment.
        let docs: Vec<&str> = t
            .split("\n---\n")
            .filter(|d| !(d.contains("kind: Service\n") && d.contains("name: helloworld\n")))
            .collect();
        docs.join("\n---\n")
    });
    let found = messages("STR0116", dir.path());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("Service sample/helloworld of cluster cluster2"),
        "{found:#?}"
    );
}
