//! Building a mesh from manifests written into a temporary directory, as the tests of this
//! crate do.

#![allow(dead_code)]

use std::path::Path;

use strait_model::{BuildOptions, Mesh, build};

/// Writes `files` (relative path → text) into a new directory and builds the mesh they make,
/// with whatever diagnostics that gives.
pub fn mesh_with_diagnostics(
    files: &[(&str, &str)],
) -> (tempfile::TempDir, Mesh, Vec<strait_api::Diagnostic>) {
    let dir = tempfile::tempdir().expect("tmp");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap_or(Path::new("."))).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    let (mesh, diags) = build(
        strait_api::read_input(&[dir.path().to_path_buf()]),
        &BuildOptions::default(),
    );
    (dir, mesh, diags)
}

/// The mesh of `files`, which must build without errors.
pub fn mesh(files: &[(&str, &str)]) -> (tempfile::TempDir, Mesh) {
    let (dir, mesh, diags) = mesh_with_diagnostics(files);
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == strait_api::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    (dir, mesh)
}
