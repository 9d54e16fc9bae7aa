//! Compiling the mesh into what one proxy needs.
//!
//! [`compile`] is the single function that decides a proxy's configuration: the control plane
//! pushes its output, `strait proxy-config` shows it, and the analyzer reasons with the same
//! rules (host resolution, VirtualService selection, DestinationRule merging, PeerAuthentication
//! composition). It is pure: same mesh and proxy in, same config out.

mod clusters;
mod inbound;
mod routes;
pub mod types;

use std::fmt;

pub use types::*;

use crate::ids::ClusterId;
use crate::mesh::Mesh;
use crate::workload::Workload;

/// Which proxy to compile for: a running pod (or WorkloadEntry) of the mesh.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProxyRef {
    pub cluster: String,
    pub namespace: String,
    /// Pod name (WorkloadEntry name for VMs).
    pub pod: String,
}

impl fmt::Display for ProxyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.{}", self.cluster, self.pod, self.namespace)
    }
}

/// Why a proxy cannot be compiled for (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    UnknownCluster(String),
    /// The pod is not (yet) in the control plane's view.
    UnknownProxy(ProxyRef),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::UnknownCluster(c) => write!(f, "no cluster named {c}"),
            CompileError::UnknownProxy(p) => write!(f, "no pod {p} in the mesh"),
        }
    }
}

impl std::error::Error for CompileError {}

/// Compiles the configuration of `proxy`.
pub fn compile(mesh: &Mesh, proxy: &ProxyRef) -> Result<ProxyConfig, CompileError> {
    let cluster = mesh
        .cluster_by_name(&proxy.cluster)
        .ok_or_else(|| CompileError::UnknownCluster(proxy.cluster.clone()))?;
    let w = find_proxy(mesh, cluster.id, proxy)
        .ok_or_else(|| CompileError::UnknownProxy(proxy.clone()))?;
    let config_cluster = mesh.config_cluster(cluster.id);
    let mut out = ProxyConfig {
        mesh: mesh_settings(mesh, w),
        ..ProxyConfig::default()
    };
    let mut needed = routes::compile(mesh, config_cluster, w, &mut out);
    needed.sort();
    needed.dedup();
    clusters::compile(mesh, config_cluster, w, &needed, &mut out);
    inbound::compile(mesh, config_cluster, w, &mut out);
    Ok(out)
}

fn find_proxy<'m>(mesh: &'m Mesh, cluster: ClusterId, p: &ProxyRef) -> Option<&'m Workload> {
    mesh.workloads_in(cluster)
        .filter(|w| w.namespace == p.namespace && w.name == p.pod)
        .find(|w| w.address.is_some())
}

fn mesh_settings(mesh: &Mesh, w: &Workload) -> MeshSettings {
    let c = mesh.cluster(w.cluster);
    let mc = &c.mesh_config;
    let allow_any = mc
        .outbound_traffic_policy
        .as_ref()
        .and_then(|p| p.mode)
        .is_none_or(|m| m != strait_api::istio::mesh_config::MeshOutboundMode::RegistryOnly);
    MeshSettings {
        trust_domain: c.trust_domain().to_string(),
        trust_domain_aliases: mc.trust_domain_aliases.clone(),
        domain: c.domain.clone(),
        allow_any_outbound: allow_any,
        access_log: mc.access_log_file.as_deref().is_some_and(|f| !f.is_empty()),
        node: NodeMeta {
            cluster: c.name.clone(),
            network: w.network.clone(),
            namespace: w.namespace.clone(),
            pod: w.name.clone(),
            workload: workload_name(mesh, w),
            app: w.app().to_string(),
            version: w.version().unwrap_or("").to_string(),
            service_account: w.service_account.clone(),
            identity: mesh.identity(w),
        },
    }
}

/// The workload a pod belongs to: its controller's name when the pod says so (owner references
/// or Istio's `service.istio.io/workload-name` label), else the pod's own name.
pub fn workload_name(mesh: &Mesh, w: &Workload) -> String {
    if let Some(n) = w.label("service.istio.io/workload-name") {
        return n.to_string();
    }
    let obj = mesh.object(w.object);
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true) || !r.name.is_empty())
        .map(|r| match r.kind.as_str() {
            // A ReplicaSet `<deployment>-<hash>` belongs to the Deployment.
            "ReplicaSet" => r
                .name
                .rsplit_once('-')
                .map_or(r.name.clone(), |(d, _)| d.to_string()),
            _ => r.name.clone(),
        })
        .unwrap_or_else(|| w.name.clone())
}

#[cfg(test)]
mod tests;
