//! Where configuration comes from, and which clusters a control plane reads.
//!
//! A control plane reads its own cluster whole (it is the config cluster of itself and its
//! remotes) and, from every other cluster it is entitled to, what istiod reads through a
//! remote secret: that cluster's services, pods and namespaces. It is entitled to its remotes
//! (`mesh.yaml`) and to the clusters its remote secrets name (Secrets labelled
//! `istio/multiCluster=true` in its Istio namespace; every data key is a cluster ID, its value
//! a kubeconfig). Adding or deleting such a Secret adds or removes the cluster at the next
//! load. Reading a cluster goes through [`ClusterSource`]: files of a mesh directory locally
//! ([`Files`]), the Kubernetes API in Kubernetes mode.
//!
//! An update with input errors is rejected whole, reported with file:line, and the last good
//! mesh stays in force.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use strait_api::{Diagnostic, Input, ParseCache, Role, Severity};
use strait_model::{BuildOptions, Mesh};

use crate::hub::Hub;

/// Access to the clusters a control plane reads.
pub trait ClusterSource: Send + Sync + fmt::Debug {
    /// The named clusters (all when `None`) as their API servers show them now, with the
    /// mesh layout (`mesh.yaml`).
    fn read(&self, clusters: Option<&[String]>) -> Input;
    /// Like [`ClusterSource::read`], for a reader that reads again and again: a source that
    /// parses text keeps what it parsed in `cache` and parses only what changed.
    fn read_cached(&self, clusters: Option<&[String]>, cache: &Arc<ParseCache>) -> Input {
        let _ = cache;
        self.read(clusters)
    }
    /// Changes whenever [`ClusterSource::read`] may return something else.
    fn fingerprint(&self) -> Fingerprint;
    /// Whether `cluster` can be read at all, and if not why (shown for remote secrets that
    /// name it).
    fn reachable(&self, cluster: &str) -> Result<(), String>;
}

/// Local mode: a mesh directory (or one cluster's files), plus what `strait up` writes as a
/// kubelet and a cloud would: the pods it started and the addresses of load balancers.
#[derive(Clone, Debug, Default)]
pub struct Files {
    pub paths: Vec<PathBuf>,
    /// Extra files or directories per cluster (the pods a local run starts).
    pub extra: Vec<(String, PathBuf)>,
    /// Load-balancer status per cluster (a JSON file written by `strait up`), applied to the
    /// Services it names as a cloud's load-balancer controller would.
    pub status: Vec<(String, PathBuf)>,
}

impl Files {
    /// Applies the load-balancer status files to what was read.
    fn with_status(&self, mut input: Input) -> Input {
        for (cluster, path) in &self.status {
            let Some(ci) = input.clusters.iter_mut().find(|c| c.name == *cluster) else {
                continue;
            };
            match crate::lb_status::read(path) {
                Ok(status) => crate::lb_status::apply(&status, &mut ci.objects),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "load-balancer status not applied")
                }
            }
        }
        input
    }
}

impl ClusterSource for Files {
    fn read(&self, clusters: Option<&[String]>) -> Input {
        self.with_status(strait_api::read_clusters(
            &self.paths,
            &self.extra,
            clusters,
        ))
    }

    fn read_cached(&self, clusters: Option<&[String]>, cache: &Arc<ParseCache>) -> Input {
        self.with_status(strait_api::read_clusters_cached(
            &self.paths,
            &self.extra,
            clusters,
            cache,
        ))
    }

    fn fingerprint(&self) -> Fingerprint {
        let mut out = Vec::new();
        let all = self
            .paths
            .iter()
            .chain(self.extra.iter().map(|(_, p)| p))
            .chain(self.status.iter().map(|(_, p)| p));
        for p in all {
            walk(p, &mut out, &mut HashSet::new(), 0);
        }
        out.sort();
        out
    }

    fn reachable(&self, cluster: &str) -> Result<(), String> {
        let Some(dir) = self
            .paths
            .iter()
            .find(|p| strait_api::layout::is_mesh_dir(p))
        else {
            return Err("local mode reads other clusters from a mesh directory only".into());
        };
        let cdir = dir.join(cluster);
        let declared = strait_api::read_clusters(&self.paths, &[], Some(&[]))
            .mesh
            .is_some_and(|m| m.clusters.iter().any(|c| c.name == cluster));
        if !declared {
            return Err(format!(
                "no cluster {cluster} in {}: in local mode a remote secret's cluster ID names a cluster of mesh.yaml",
                dir.join(strait_api::layout::MESH_FILE).display()
            ));
        }
        if !cdir.is_dir() {
            return Err(format!("{} does not exist", cdir.display()));
        }
        Ok(())
    }
}

/// What to read: the clusters, and which one this control plane runs in.
#[derive(Clone, Debug)]
pub struct Source {
    pub clusters: Arc<dyn ClusterSource>,
    /// The cluster this control plane runs in. `None`: read every cluster (a single-cluster
    /// mesh, or tools that look at the whole mesh).
    pub own: Option<String>,
}

/// A rejected update: the input errors, rendered `file:line:column: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub errors: Vec<String>,
}

/// A cluster this control plane reads, and why (istioctl's `remote-clusters`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterAccess {
    pub cluster: String,
    /// `own`, `remote` (a remote this control plane serves) or `secret`.
    pub via: &'static str,
    /// For `secret`: the Secret (`namespace/name`) and where it is.
    pub secret: Option<String>,
    /// `synced`, or why the cluster is not read.
    pub status: String,
}

/// A load: the mesh as this control plane sees it, and the clusters it covers.
#[derive(Debug)]
pub struct Loaded {
    pub mesh: Mesh,
    pub clusters: Vec<ClusterAccess>,
}

impl Source {
    /// Local files, every cluster (tools and tests).
    pub fn files(paths: Vec<PathBuf>) -> Source {
        Source {
            clusters: Arc::new(Files {
                paths,
                ..Files::default()
            }),
            own: None,
        }
    }

    /// Reads and builds the mesh. Input errors (syntax, unknown fields, invalid values) reject
    /// the update: a control plane never serves half of what the user wrote.
    pub fn load(&self) -> Result<Loaded, Rejected> {
        self.load_with(None)
    }

    /// [`Source::load`], parsing only what changed since the loads that filled `cache`.
    pub fn load_with(&self, cache: Option<&Arc<ParseCache>>) -> Result<Loaded, Rejected> {
        let read = |clusters: Option<&[String]>| match cache {
            Some(c) => self.clusters.read_cached(clusters, c),
            None => self.clusters.read(clusters),
        };
        let (input, clusters) = match &self.own {
            None => (read(None), Vec::new()),
            Some(own) => self.entitled_input(own, &read),
        };
        let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| render(&mesh, d))
            .collect();
        if errors.is_empty() {
            Ok(Loaded { mesh, clusters })
        } else {
            Err(Rejected { errors })
        }
    }

    /// Reads `own`, finds the clusters it is entitled to, and reads those too.
    fn entitled_input(
        &self,
        own: &str,
        read: &dyn Fn(Option<&[String]>) -> Input,
    ) -> (Input, Vec<ClusterAccess>) {
        let first = read(Some(&[own.to_string()]));
        let mut access = vec![ClusterAccess {
            cluster: own.to_string(),
            via: "own",
            secret: None,
            status: "synced".into(),
        }];
        if let Some(mf) = &first.mesh {
            for c in &mf.clusters {
                if c.role == Role::Remote && c.primary.as_deref() == Some(own) {
                    access.push(ClusterAccess {
                        cluster: c.name.clone(),
                        via: "remote",
                        secret: None,
                        status: "synced".into(),
                    });
                }
            }
        }
        let (own_mesh, _) = strait_model::build(first, &BuildOptions::default());
        let istio_ns = own_mesh
            .cluster_by_name(own)
            .map_or("istio-system", |c| c.istio_namespace.as_str());
        for s in &own_mesh.remote_secrets {
            let o = own_mesh.object(s.object);
            if o.namespace() != istio_ns {
                continue;
            }
            let secret = format!(
                "{}/{} ({})",
                o.namespace(),
                o.name(),
                own_mesh.sources.display(o.source.pos)
            );
            for rc in &s.clusters {
                let mut entry = ClusterAccess {
                    cluster: rc.cluster_id.clone(),
                    via: "secret",
                    secret: Some(secret.clone()),
                    status: "synced".into(),
                };
                if rc.cluster_id == own {
                    // istiod ignores a secret for its own cluster.
                    continue;
                }
                if let Some(prev) = access.iter().find(|a| a.cluster == rc.cluster_id) {
                    if prev.via == "secret" {
                        entry.status = format!(
                            "ignored: cluster {} is already read through {}",
                            rc.cluster_id,
                            prev.secret.as_deref().unwrap_or("another secret")
                        );
                        access.push(entry);
                    }
                    continue;
                }
                if let Some(p) = &rc.problem {
                    entry.status = format!("refused: {p}");
                } else if let Err(e) = self.clusters.reachable(&rc.cluster_id) {
                    entry.status = format!("unreachable: {e}");
                }
                access.push(entry);
            }
        }
        let names: Vec<String> = access
            .iter()
            .filter(|a| a.status == "synced")
            .map(|a| a.cluster.clone())
            .collect();
        (read(Some(&names)), access)
    }

    /// Loads the source, with the fingerprint of what was read: `None` when a file changed
    /// while it was being read (an editor writing in place), so the result may be torn.
    pub fn load_settled(&self) -> (Result<Loaded, Rejected>, Option<Fingerprint>) {
        self.load_settled_with(None)
    }

    /// [`Source::load_settled`] through a parse cache (see [`Source::load_with`]).
    pub fn load_settled_with(
        &self,
        cache: Option<&Arc<ParseCache>>,
    ) -> (Result<Loaded, Rejected>, Option<Fingerprint>) {
        let before = self.fingerprint();
        let result = self.load_with(cache);
        let settled = (self.fingerprint() == before).then_some(before);
        (result, settled)
    }

    /// A fingerprint of everything read: it changes when any input is edited, added or
    /// removed.
    pub fn fingerprint(&self) -> Fingerprint {
        self.clusters.fingerprint()
    }
}

/// Every file below `p` (hidden entries skipped), entering each real directory once: a
/// symlink back into the tree (`ln -s . again`) would otherwise be walked again at every level
/// down to the depth limit, and two such links make that exponential. The loader reports the
/// loop; here it is only not followed.
fn walk(
    p: &Path,
    out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>,
    entered: &mut HashSet<DirId>,
    depth: usize,
) {
    let Ok(meta) = std::fs::metadata(p) else {
        return;
    };
    if meta.is_dir() {
        if depth > 32 || !entered.insert(dir_id(p, &meta)) {
            return;
        }
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    walk(&e.path(), out, entered, depth + 1);
                }
            }
        }
    } else {
        out.push((p.to_path_buf(), meta.len(), meta.modified().ok()));
    }
}

/// A directory's identity whatever path reached it: device and inode.
#[cfg(unix)]
type DirId = (u64, u64);
#[cfg(not(unix))]
type DirId = PathBuf;

#[cfg(unix)]
fn dir_id(_: &Path, meta: &std::fs::Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_id(p: &Path, _: &std::fs::Metadata) -> DirId {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Path, size and modification time of every input file, sorted.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn render(mesh: &Mesh, d: &Diagnostic) -> String {
    match (d.pos, &d.path) {
        (Some(pos), _) => format!("{}: {}", mesh.sources.display(pos), d.message),
        (None, Some(p)) => format!("{}: {}", p.display(), d.message),
        (None, None) => d.message.clone(),
    }
}

/// Watches the source on its own thread (file system calls block) and reloads the hub after
/// every settled change: no further change for [`SETTLE`], so an editor's save-in-several-writes
/// becomes one update. (A load that a write tears anyway is thrown away and read again; see
/// [`Source::load_settled`].)
#[derive(Debug)]
pub struct Watcher {
    stop: Arc<AtomicBool>,
}

/// How long the files must stay unchanged before a change is read. Every change waits this
/// long on top of the poll's detection delay, so it is short: an editor's or `kubectl`'s
/// writes of one save come within milliseconds, and a torn read is caught regardless (istiod
/// debounces for 100 ms, `PILOT_DEBOUNCE_AFTER`). It used to be one more poll interval
/// (200 ms by default).
pub const SETTLE: Duration = Duration::from_millis(30);

impl Watcher {
    pub fn spawn(interval: Duration, hub: Arc<Hub>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    if !hub.changed() {
                        continue;
                    }
                    // Settle: wait until the files stay unchanged for a moment.
                    let mut now = hub.source.fingerprint();
                    loop {
                        std::thread::sleep(SETTLE.min(interval));
                        let again = hub.source.fingerprint();
                        if again == now {
                            break;
                        }
                        now = again;
                    }
                    hub.reload();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the configuration watcher; changes will not apply");
        }
        Watcher { stop }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_is_walked_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().join("cluster1");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(d.join("a.yaml"), "kind: Namespace\n").expect("write");
        std::os::unix::fs::symlink(".", d.join("again")).expect("symlink");
        let mut out = Vec::new();
        walk(&d, &mut out, &mut HashSet::new(), 0);
        let paths: Vec<&PathBuf> = out.iter().map(|(p, _, _)| p).collect();
        assert_eq!(paths, [&d.join("a.yaml")]);
    }
}
