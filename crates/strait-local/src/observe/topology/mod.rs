//! What the running mesh is made of, for a picture of it: networks, the clusters on them, the
//! gateways with their public addresses, and the workloads (a service's versions) with the
//! services they serve.
//!
//! Where things run comes from the state file `strait up` keeps (`up.json`); what a workload
//! *is* (its version, its services, whether it is an ingress or an east-west gateway) comes
//! from the mesh model of the manifests, as the control planes read them, so the picture
//! uses the labels and selectors the proxies are configured from.

use std::collections::BTreeMap;

use serde::Serialize;
use strait_model::{GatewayRole, Mesh};

use crate::up::state::State;

/// What the manifests say about a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadInfo {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// Its `app` label (Istio's canonical service, else the workload name).
    pub app: String,
    /// Its `version` label; empty when it has none.
    pub version: String,
    /// Hosts of the services that select it.
    pub services: Vec<String>,
    /// `ingress`, `egress` or `east-west` for a gateway.
    pub gateway: Option<&'static str>,
}

/// The workloads of the mesh model, by what the manifests say.
pub fn workload_info(mesh: &Mesh) -> Vec<WorkloadInfo> {
    mesh.workloads
        .iter()
        .map(|w| {
            let label = |k: &str| w.labels.get(k).cloned().unwrap_or_default();
            let app = Some(label("app")).filter(|a| !a.is_empty());
            WorkloadInfo {
                cluster: mesh.cluster(w.cluster).name.clone(),
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                app: app.unwrap_or_else(|| w.name.clone()),
                version: label("version"),
                services: mesh
                    .services_of(w)
                    .iter()
                    .map(|s| s.hostname.clone())
                    .collect(),
                gateway: w.gateway.map(|g| match g {
                    GatewayRole::Ingress => "ingress",
                    GatewayRole::Egress => "egress",
                    GatewayRole::EastWest => "east-west",
                }),
            }
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Topology {
    pub networks: Vec<NetworkView>,
    pub clusters: Vec<ClusterView>,
    pub gateways: Vec<GatewayView>,
    pub workloads: Vec<WorkloadView>,
    /// Every service host with the workloads (`<cluster>/<namespace>/<workload>`) behind it.
    pub services: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkView {
    pub name: String,
    pub clusters: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub network: String,
    /// The cluster whose control plane configures this one (itself for a primary).
    pub config_cluster: String,
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GatewayView {
    /// `<cluster>/<namespace>/<workload>`, as in traffic edges.
    pub key: String,
    pub cluster: String,
    pub namespace: String,
    pub workload: String,
    pub network: String,
    /// `east-west`, `ingress`, `egress`, or `gateway` when neither the manifests nor the
    /// ports say.
    pub kind: &'static str,
    /// Public `address:port`s of the load balancers in front of it.
    pub addresses: Vec<String>,
    pub pods: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadView {
    pub key: String,
    pub cluster: String,
    pub namespace: String,
    pub workload: String,
    pub network: String,
    pub app: String,
    pub version: String,
    pub services: Vec<String>,
    pub pods: usize,
    pub sidecar: bool,
}

/// The east-west port of a gateway's load balancer (Istio's `tls` port for cross-network
/// mTLS), which tells an east-west gateway from an ingress when the manifests do not.
const EAST_WEST_PORT: u16 = 15443;

/// The mesh as `st` runs it, described by `info` (from [`workload_info`]).
pub fn topology(st: &State, info: &[WorkloadInfo]) -> Topology {
    let clusters: Vec<ClusterView> = st
        .clusters
        .iter()
        .map(|c| ClusterView {
            name: c.name.clone(),
            network: c.network.clone(),
            config_cluster: c.control_plane_of.clone(),
            primary: c.control_plane_of == c.name,
        })
        .collect();
    let mut networks: Vec<NetworkView> = st
        .networks
        .iter()
        .map(|n| NetworkView {
            name: n.name.clone(),
            clusters: Vec::new(),
        })
        .collect();
    for c in &clusters {
        match networks.iter_mut().find(|n| n.name == c.network) {
            Some(n) => n.clusters.push(c.name.clone()),
            None => networks.push(NetworkView {
                name: c.network.clone(),
                clusters: vec![c.name.clone()],
            }),
        }
    }

    // Pods grouped by workload, in the state file's order.
    let mut groups: Vec<(String, Vec<&crate::up::state::PodState>)> = Vec::new();
    for p in &st.pods {
        let key = format!("{}/{}/{}", p.cluster, p.namespace, p.workload);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, pods)) => pods.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    let mut gateways = Vec::new();
    let mut workloads = Vec::new();
    let mut services: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, pods) in groups {
        let p = pods[0];
        let about = info
            .iter()
            .find(|i| i.cluster == p.cluster && i.namespace == p.namespace && i.name == p.workload);
        let hosts = about.map(|i| i.services.clone()).unwrap_or_default();
        if p.gateway {
            // Its load balancers: Services that select it, else one named after it.
            let lbs: Vec<_> = st
                .load_balancers
                .iter()
                .filter(|l| l.cluster == p.cluster && l.namespace == p.namespace)
                .filter(|l| {
                    let host = format!("{}.{}.svc.", l.name, l.namespace);
                    hosts.iter().any(|h| h.starts_with(&host)) || l.name == p.workload
                })
                .collect();
            let kind = about.and_then(|i| i.gateway).unwrap_or_else(|| {
                if lbs.iter().any(|l| l.ports.contains(&EAST_WEST_PORT)) {
                    "east-west"
                } else {
                    "gateway"
                }
            });
            gateways.push(GatewayView {
                key,
                cluster: p.cluster.clone(),
                namespace: p.namespace.clone(),
                workload: p.workload.clone(),
                network: p.network.clone(),
                kind,
                addresses: lbs
                    .iter()
                    .flat_map(|l| {
                        l.ports
                            .iter()
                            .map(move |port| format!("{}:{port}", l.address))
                    })
                    .collect(),
                pods: pods.len(),
            });
            continue;
        }
        for h in &hosts {
            services.entry(h.clone()).or_default().push(key.clone());
        }
        workloads.push(WorkloadView {
            key,
            cluster: p.cluster.clone(),
            namespace: p.namespace.clone(),
            workload: p.workload.clone(),
            network: p.network.clone(),
            app: about.map_or_else(|| p.workload.clone(), |i| i.app.clone()),
            version: about.map(|i| i.version.clone()).unwrap_or_default(),
            services: hosts,
            pods: pods.len(),
            sidecar: p.sidecar,
        });
    }
    Topology {
        networks,
        clusters,
        gateways,
        workloads,
        services,
    }
}

#[cfg(test)]
mod tests;
