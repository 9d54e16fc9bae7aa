//! What an input path means: a mesh directory (`mesh.yaml` plus one sub-directory of manifests
//! per cluster) or plain files and directories forming one cluster.
//!
//! ```yaml
//! meshID: mesh1
//! trustDomain: cluster.local
//! clusters:
//! - name: cluster1
//!   network: network1
//!   role: primary          # primary | remote
//!   locality: us-west-2/us-west-2a   # region/zone/subzone of the cluster's nodes (optional)
//! - name: cluster2
//!   network: network2
//!   role: remote
//!   primary: cluster1      # a remote's control plane lives in this primary
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::cache::ParseCache;
use crate::de;
use crate::de::FieldIssueKind;
use crate::diag::{Diagnostic, Problem, Severity};
use crate::load::{Loaded, Loader};
use crate::object::Object;
use crate::source::Pos;
use crate::yaml;

/// Istio's cluster ID when none is configured (`global.multiCluster.clusterName` unset).
pub const DEFAULT_CLUSTER_NAME: &str = "Kubernetes";
/// The file that makes a directory a mesh.
pub const MESH_FILE: &str = "mesh.yaml";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs its own control plane (istiod).
    #[default]
    Primary,
    /// Its proxies are configured by a primary's control plane.
    Remote,
}

/// `mesh.yaml`, as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MeshFile {
    #[serde(rename = "meshID")]
    pub mesh_id: Option<String>,
    pub trust_domain: Option<String>,
    pub clusters: Vec<ClusterDecl>,
}

/// One cluster of `mesh.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClusterDecl {
    pub name: String,
    /// Network ID; empty means "the same network as every other empty one".
    pub network: Option<String>,
    pub role: Role,
    /// For a remote: the primary whose control plane serves it.
    pub primary: Option<String>,
    /// The cluster's DNS domain (default `cluster.local`).
    pub domain: Option<String>,
    /// Where the cluster's nodes run, `region[/zone[/subzone]]`: the locality of pods that
    /// name no Node of the input and carry no locality label (a real cluster's nodes carry
    /// `topology.kubernetes.io/region` and `zone`).
    pub locality: Option<String>,
}

/// A cluster's manifests and declared facts.
#[derive(Debug)]
pub struct ClusterInput {
    pub name: String,
    /// From `mesh.yaml`, when the input is a mesh directory.
    pub decl: Option<ClusterDecl>,
    /// Where the cluster is declared in `mesh.yaml`.
    pub decl_pos: Option<Pos>,
    pub dir: Option<PathBuf>,
    pub objects: Vec<Object>,
}

/// Everything read from the command line's paths.
#[derive(Debug)]
pub struct Input {
    pub loaded: Loaded,
    pub mesh: Option<MeshFile>,
    /// The `mesh.yaml` document, for locating its fields.
    pub mesh_tree: Option<yaml::Tree>,
    pub clusters: Vec<ClusterInput>,
}

/// Reads `paths`: one mesh directory, or any number of files/directories/`-` making up one
/// cluster.
pub fn read_input(paths: &[PathBuf]) -> Input {
    read_input_with(paths, &[])
}

/// Like [`read_input`], with extra files or directories added to named clusters (the pods a
/// local run starts, say), read with the same loader so every position stays exact.
pub fn read_input_with(paths: &[PathBuf], extra: &[(String, PathBuf)]) -> Input {
    read_clusters(paths, extra, None)
}

/// Like [`read_input_with`], reading only the named clusters of a mesh directory (all of them
/// when `only` is `None`): what a control plane reads is its own cluster and those it is
/// entitled to, not every directory next to them. Plain files are one cluster and always read.
pub fn read_clusters(
    paths: &[PathBuf],
    extra: &[(String, PathBuf)],
    only: Option<&[String]>,
) -> Input {
    read_with(Loader::new(), paths, extra, only)
}

/// Like [`read_clusters`], parsing only the files whose text is not what `cache` holds (a
/// reader that loads the same files again and again; see [`ParseCache`]).
pub fn read_clusters_cached(
    paths: &[PathBuf],
    extra: &[(String, PathBuf)],
    only: Option<&[String]>,
    cache: &Arc<ParseCache>,
) -> Input {
    read_with(Loader::with_cache(cache.clone()), paths, extra, only)
}

fn read_with(
    mut loader: Loader,
    paths: &[PathBuf],
    extra: &[(String, PathBuf)],
    only: Option<&[String]>,
) -> Input {
    let mesh_dir = paths.iter().find(|p| is_mesh_dir(p)).cloned();
    match mesh_dir {
        Some(dir) => {
            if paths.len() > 1 {
                loader.push_diagnostic(Diagnostic {
                    problem: Problem::MeshLayout,
                    severity: Severity::Error,
                    pos: None,
                    path: Some(dir.clone()),
                    message: format!(
                        "{} is a mesh directory; it cannot be combined with other inputs",
                        dir.display()
                    ),
                    object: None,
                    field: None,
                });
            }
            read_mesh_dir(loader, &dir, extra, only)
        }
        None => {
            for p in paths {
                loader.add_path(p);
            }
            for (_, p) in extra {
                loader.add_path(p);
            }
            let mut loaded = loader.finish();
            let objects = std::mem::take(&mut loaded.objects);
            Input {
                loaded,
                mesh: None,
                mesh_tree: None,
                clusters: vec![ClusterInput {
                    name: DEFAULT_CLUSTER_NAME.to_string(),
                    decl: None,
                    decl_pos: None,
                    dir: None,
                    objects,
                }],
            }
        }
    }
}

/// A directory is a mesh when its `mesh.yaml` describes clusters rather than being a manifest
/// that happens to have that name.
pub fn is_mesh_dir(dir: &Path) -> bool {
    let file = dir.join(MESH_FILE);
    if !dir.is_dir() || !file.is_file() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(&file) else {
        // Unreadable: treat it as the mesh file it is named as, so the error is reported.
        return true;
    };
    let parsed = yaml::parse(
        &crate::load::normalise_newlines(&text),
        crate::FileId(u32::MAX),
        0,
        0,
    );
    match parsed.documents.first() {
        Some(doc) => doc.get("kind").is_none() && doc.get("clusters").is_some(),
        // Broken YAML in a file called mesh.yaml next to cluster directories: a mesh with a typo.
        None => parsed.error.is_some(),
    }
}

fn layout_error(
    pos: Option<Pos>,
    path: Option<PathBuf>,
    severity: Severity,
    message: String,
) -> Diagnostic {
    Diagnostic {
        problem: Problem::MeshLayout,
        severity,
        pos,
        path,
        message,
        object: None,
        field: None,
    }
}

fn read_mesh_dir(
    mut loader: Loader,
    dir: &Path,
    extra: &[(String, PathBuf)],
    only: Option<&[String]>,
) -> Input {
    let mesh_path = dir.join(MESH_FILE);
    let (mesh, tree) = read_mesh_file(&mut loader, &mesh_path);
    let mesh = mesh.unwrap_or_default();
    let cluster_pos = |i: usize| -> Option<Pos> {
        let t = tree.as_ref()?;
        Some(
            de::locate(t.root(), &de::FieldPath::parse(&format!("clusters[{i}]")))
                .0
                .pos(),
        )
    };
    check_mesh_file(&mut loader, &mesh, &cluster_pos, &mesh_path, tree.as_ref());
    let mut clusters = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, decl) in mesh.clusters.iter().enumerate() {
        if decl.name.is_empty() || !seen.insert(decl.name.clone()) {
            continue;
        }
        if only.is_some_and(|o| !o.contains(&decl.name)) {
            continue;
        }
        let cdir = dir.join(&decl.name);
        let range = if cdir.is_dir() {
            let r = loader.add_path(&cdir);
            let mut end = r.end;
            for (_, p) in extra.iter().filter(|(c, _)| *c == decl.name) {
                end = loader.add_path(p).end;
            }
            r.start..end
        } else {
            loader.push_diagnostic(layout_error(
                cluster_pos(i),
                None,
                Severity::Warning,
                format!(
                    "cluster {} has no directory {}: it is analyzed with no manifests",
                    decl.name,
                    cdir.display()
                ),
            ));
            0..0
        };
        clusters.push((decl.clone(), cluster_pos(i), cdir, range));
    }
    if only.is_none() {
        warn_stray_entries(&mut loader, dir, &mesh);
    }
    let mut loaded = loader.finish();
    let mut all: Vec<Option<Object>> = std::mem::take(&mut loaded.objects)
        .into_iter()
        .map(Some)
        .collect();
    let clusters = clusters
        .into_iter()
        .map(|(decl, pos, cdir, range)| ClusterInput {
            name: decl.name.clone(),
            objects: range
                .filter_map(|i| all.get_mut(i).and_then(Option::take))
                .collect(),
            decl: Some(decl),
            decl_pos: pos,
            dir: Some(cdir),
        })
        .collect();
    Input {
        loaded,
        mesh: Some(mesh),
        mesh_tree: tree,
        clusters,
    }
}

fn read_mesh_file(loader: &mut Loader, path: &Path) -> (Option<MeshFile>, Option<yaml::Tree>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => crate::load::normalise_newlines(&t).into_owned(),
        Err(e) => {
            loader.push_diagnostic(layout_error(
                None,
                Some(path.to_path_buf()),
                Severity::Error,
                format!("cannot read {}: {e}", path.display()),
            ));
            return (None, None);
        }
    };
    let file = loader.sources_mut().add(path, text.as_str());
    let parsed = yaml::parse(&text, file, 0, 0);
    if let Some(e) = parsed.error {
        loader.push_diagnostic(Diagnostic::at(
            Problem::Syntax,
            Severity::Error,
            e.pos,
            format!("YAML syntax error in {MESH_FILE}: {}", e.message),
        ));
        return (None, None);
    }
    let Some(tree) = parsed.documents.into_iter().next() else {
        loader.push_diagnostic(layout_error(
            None,
            Some(path.to_path_buf()),
            Severity::Error,
            format!("{} is empty", path.display()),
        ));
        return (None, None);
    };
    let (mesh, issues) = de::from_node::<MeshFile>(&tree);
    for issue in issues {
        let problem = match issue.kind {
            FieldIssueKind::UnknownField => Problem::UnknownField,
            FieldIssueKind::InvalidValue => Problem::InvalidValue,
        };
        loader.push_diagnostic(
            Diagnostic::at(
                problem,
                Severity::Error,
                issue.pos,
                format!("{MESH_FILE}: {}: {}", issue.path, issue.message),
            )
            .with_field(issue.path.to_string()),
        );
    }
    (mesh, yaml::Tree::from_node(&tree).ok())
}

fn check_mesh_file(
    loader: &mut Loader,
    mesh: &MeshFile,
    cluster_pos: &dyn Fn(usize) -> Option<Pos>,
    path: &Path,
    tree: Option<&yaml::Tree>,
) {
    if mesh.clusters.is_empty() {
        let pos = tree.map(|t| t.root().pos());
        loader.push_diagnostic(layout_error(
            pos,
            pos.is_none().then(|| path.to_path_buf()),
            Severity::Error,
            format!("{MESH_FILE} declares no clusters"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, c) in mesh.clusters.iter().enumerate() {
        let pos = cluster_pos(i);
        let mut err =
            |m: String| loader.push_diagnostic(layout_error(pos, None, Severity::Error, m));
        if c.name.is_empty() {
            err(format!("clusters[{i}] has no name"));
            continue;
        }
        if !is_dns_label(&c.name) {
            err(format!(
                "cluster name \"{}\" must be a DNS label (lowercase letters, digits and '-', at most 63)",
                c.name
            ));
        }
        if !names.insert(c.name.as_str()) {
            err(format!("cluster {} is declared twice", c.name));
        }
        match (c.role, &c.primary) {
            (Role::Remote, None) => err(format!(
                "remote cluster {} must name its primary (`primary: <cluster>`)",
                c.name
            )),
            (Role::Remote, Some(p)) => match mesh.clusters.iter().find(|o| &o.name == p) {
                None => err(format!(
                    "remote cluster {} names unknown primary {p}",
                    c.name
                )),
                Some(o) if o.role != Role::Primary => err(format!(
                    "cluster {} names {p} as its primary, but {p} is a remote",
                    c.name
                )),
                Some(_) => {}
            },
            (Role::Primary, Some(p)) => err(format!(
                "primary cluster {} names a primary ({p}); only remotes have one",
                c.name
            )),
            (Role::Primary, None) => {}
        }
        if let Some(l) = &c.locality {
            let parts: Vec<&str> = l.split('/').collect();
            if parts.len() > 3 || parts.iter().any(|p| p.trim().is_empty() || p.contains('*')) {
                err(format!(
                    "cluster {} has locality \"{l}\"; write region, region/zone or region/zone/subzone, without wildcards",
                    c.name
                ));
            }
        }
    }
}

fn warn_stray_entries(loader: &mut Loader, dir: &Path, mesh: &MeshFile) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        let Some(name) = entry
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if name.starts_with('.') || name == MESH_FILE {
            continue;
        }
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
        if entry.is_dir() && !mesh.clusters.iter().any(|c| c.name == name) {
            loader.push_diagnostic(layout_error(
                None,
                Some(entry.clone()),
                Severity::Warning,
                format!(
                    "directory {} is not a cluster of {MESH_FILE}; it was not read",
                    entry.display()
                ),
            ));
        } else if entry.is_file() && is_yaml {
            loader.push_diagnostic(layout_error(
                None,
                Some(entry.clone()),
                Severity::Warning,
                format!(
                    "{} is outside every cluster directory; it was not read (move it into <cluster>/)",
                    entry.display()
                ),
            ));
        }
    }
}

/// RFC 1123 label, as Kubernetes names and Istio cluster IDs must be.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_label_run(s)
}

/// Lowercase letters, digits and `-`, starting and ending with a letter or digit.
fn is_label_run(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain, as most Kubernetes object names must be (Kubernetes'
/// `IsDNS1123Subdomain`: at most 253 characters, dot-separated runs of [`is_dns_label`]'s
/// characters).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_run)
}

/// RFC 1035 label, as Service names must be: an RFC 1123 label that starts with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn kubernetes_name_rules() {
        for ok in ["web", "a-1", "2fa"] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "Web", "a_b", "-a", "a-", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_dns1035_label("web-2") && !is_dns1035_label("2fa"));
        for ok in ["istio.default", "sh.helm.release.v1.x.v1", &"a".repeat(100)] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["a..b", ".a", "a.", "A.b", "a_b.c", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }
}
