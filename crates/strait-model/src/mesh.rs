//! The mesh: every cluster, workload, service and network, and the queries analyzers and the
//! config compiler share.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use strait_api::layout::MeshFile;
use strait_api::yaml::Tree;
use strait_api::{Object, SourceMap};

use crate::cluster::Cluster;
use crate::identity;
use crate::ids::{ClusterId, ObjId, WorkloadId};
use crate::index::Index;
use crate::network::Network;
use crate::selector;
use crate::service::{Registry, ServiceInstance};
use crate::trust::{CaBundle, RemoteSecret};
use crate::workload::Workload;

/// How the input was laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A directory with `mesh.yaml` and one sub-directory per cluster.
    MeshDirectory,
    /// Plain files: one cluster.
    Files,
}

#[derive(Debug)]
pub struct Mesh {
    pub id: Option<String>,
    pub trust_domain: String,
    pub layout: Layout,
    pub clusters: Vec<Cluster>,
    pub workloads: Vec<Workload>,
    pub registry: Registry,
    pub networks: BTreeMap<String, Network>,
    pub ca_bundles: Vec<CaBundle>,
    pub remote_secrets: Vec<RemoteSecret>,
    pub mesh_file: Option<MeshFile>,
    pub mesh_tree: Option<Tree>,
    pub sources: SourceMap,
    /// Built on first use: see [`Mesh::index`].
    pub(crate) index: OnceLock<Index>,
}

/// The label that enrols pods or namespaces in ambient mode.
pub const DATAPLANE_MODE: &str = "istio.io/dataplane-mode";

impl Mesh {
    pub fn cluster(&self, id: ClusterId) -> &Cluster {
        &self.clusters[id.0 as usize]
    }

    pub fn cluster_by_name(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    pub fn object(&self, id: ObjId) -> &Object {
        self.cluster(id.cluster).obj(id.index)
    }

    pub fn workload(&self, id: WorkloadId) -> &Workload {
        &self.workloads[id.0 as usize]
    }

    /// The lookups every proxy's compile shares (istiod's `PushContext`), built on first use
    /// and kept as long as the mesh: a mesh is never changed once built.
    pub fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(self))
    }

    /// Whether `svc` is this mesh's own instance (the index is keyed by its id).
    fn own(&self, svc: &ServiceInstance) -> bool {
        self.registry
            .all()
            .get(svc.id.0 as usize)
            .is_some_and(|s| s.object == svc.object && s.hostname == svc.hostname)
    }

    /// Whether more than one cluster is involved.
    pub fn is_multicluster(&self) -> bool {
        self.clusters.len() > 1
    }

    /// Whether clusters sit on more than one network.
    pub fn is_multinetwork(&self) -> bool {
        let mut nets: Vec<&str> = self.clusters.iter().map(|c| c.network.as_str()).collect();
        nets.sort_unstable();
        nets.dedup();
        nets.len() > 1
    }

    /// The cluster whose control plane (and Istio config) serves `id`: itself for a primary,
    /// its primary for a remote.
    pub fn config_cluster(&self, id: ClusterId) -> ClusterId {
        let c = self.cluster(id);
        match (c.is_primary(), c.primary) {
            (false, Some(p)) => p,
            _ => id,
        }
    }

    /// Primaries: the clusters whose Istio config is live.
    pub fn primaries(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.iter().filter(|c| c.is_primary())
    }

    /// Clusters served by primary `id` (itself and its remotes).
    pub fn served_by(&self, id: ClusterId) -> Vec<ClusterId> {
        self.clusters
            .iter()
            .filter(|c| self.config_cluster(c.id) == id)
            .map(|c| c.id)
            .collect()
    }

    pub fn workloads_in(&self, cluster: ClusterId) -> impl Iterator<Item = &Workload> {
        self.workloads.iter().filter(move |w| w.cluster == cluster)
    }

    /// Workloads that back a service instance: pods its selector selects in its namespace and
    /// cluster (Kubernetes), or WorkloadEntries/pods a ServiceEntry's selector selects.
    pub fn endpoints_of(&self, svc: &ServiceInstance) -> Vec<&Workload> {
        let Some(sel) = &svc.selector else {
            return Vec::new();
        };
        if self.own(svc) {
            return self
                .index()
                .endpoints(svc.id)
                .iter()
                .map(|w| self.workload(*w))
                .collect();
        }
        self.workloads
            .iter()
            .filter(|w| w.cluster == svc.cluster && w.namespace == svc.namespace)
            .filter(|w| selector::map_selects(sel, &w.labels))
            .collect()
    }

    /// Services whose selector selects `w`.
    pub fn services_of(&self, w: &Workload) -> Vec<&ServiceInstance> {
        if self
            .workloads
            .get(w.id.0 as usize)
            .is_some_and(|x| x.object == w.object)
        {
            return self
                .index()
                .services_of(w.id)
                .iter()
                .map(|s| self.registry.get(*s))
                .collect();
        }
        self.registry
            .all()
            .iter()
            .filter(|s| s.cluster == w.cluster && s.namespace == w.namespace)
            .filter(|s| {
                s.selector
                    .as_ref()
                    .is_some_and(|sel| selector::map_selects(sel, &w.labels))
            })
            .collect()
    }

    /// Whether a workload is enrolled in ambient mode (ztunnel carries its traffic, no sidecar
    /// is expected): its own `istio.io/dataplane-mode` label, where `none` opts out, else its
    /// namespace's ([`Mesh::namespace_is_ambient`]).
    pub fn is_ambient(&self, w: &Workload) -> bool {
        match w.labels.get(DATAPLANE_MODE).map(String::as_str) {
            Some("ambient") => true,
            Some(_) => false,
            None => self.namespace_is_ambient(w.cluster, &w.namespace),
        }
    }

    /// Whether a namespace enrols its pods in ambient mode: `istio.io/dataplane-mode=ambient`,
    /// unless sidecar injection is on for it (`istio-injection=enabled` or an `istio.io/rev`),
    /// which wins, as Istio decides.
    pub fn namespace_is_ambient(&self, cluster: ClusterId, namespace: &str) -> bool {
        let Some(n) = self.cluster(cluster).namespaces.get(namespace) else {
            return false;
        };
        let label = |k: &str| n.labels.get(k).map(String::as_str);
        if label(crate::injection::NAMESPACE_INJECTION) == Some("enabled")
            || label("istio.io/rev").is_some_and(|r| !r.is_empty())
        {
            return false;
        }
        label(DATAPLANE_MODE) == Some("ambient")
    }

    /// A workload's SPIFFE identity.
    pub fn identity(&self, w: &Workload) -> String {
        identity::spiffe_id(
            self.cluster(w.cluster).trust_domain(),
            &w.namespace,
            &w.service_account,
        )
    }

    /// Workloads of `cluster` whose labels match `selector` in `namespace` (or any namespace when
    /// it is empty).
    pub fn select<'a>(
        &'a self,
        cluster: ClusterId,
        namespace: &'a str,
        sel: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a Workload> {
        self.workloads
            .iter()
            .filter(move |w| {
                w.cluster == cluster && (namespace.is_empty() || w.namespace == namespace)
            })
            .filter(move |w| selector::map_selects(sel, &w.labels))
    }
}
