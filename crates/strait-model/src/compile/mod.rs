//! Compiling the mesh into what one proxy needs.
//!
//! [`compile`] is the single function that decides a proxy's configuration: the control plane
//! pushes its output, `strait proxy-config` shows it, and the analyzer reasons with the same
//! rules (host resolution, VirtualService selection, DestinationRule merging, PeerAuthentication
//! composition). It is pure: same mesh and proxy in, same config out.

mod authz;
pub mod changes;
mod clusters;
mod gateway;
mod inbound;
mod locality_lb;
mod routes;
pub mod split_horizon;
pub mod tracing;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use authz::{
    GATEWAY_CLASS_LABEL, GATEWAY_NAME_LABEL, applies as policy_applies, condition_key, target_refs,
    targets,
};
pub use changes::{Changes, Footprint};
pub use strait_config::{authz::*, gateway::*, types::*};

use crate::ids::ClusterId;
use crate::mesh::Mesh;
use crate::scope::Scope;
use crate::service::{ServiceInstance, ServiceSource};
use crate::workload::Workload;
use split_horizon::{GatewayAddr, Gateways};

/// What the control plane learns while it runs, which compiling takes besides the mesh:
/// addresses it resolved for gateways known by hostname (cloud load balancers), and gateway
/// addresses that stopped answering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Runtime {
    /// Hostname → the addresses it resolved to, last good answer.
    pub resolved: BTreeMap<String, Vec<String>>,
    /// `(address, port)` of network gateways found not answering.
    pub unhealthy: BTreeSet<(String, u32)>,
    /// JWKS documents fetched from RequestAuthentication `jwksUri`s, by URI; a URI not here
    /// has not been fetched (yet), and its issuer's tokens are refused.
    pub jwks: BTreeMap<String, String>,
}

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

/// Compiles the configuration of `proxy`: a sidecar's outbound services, upstream clusters
/// (endpoints as its network sees them) and inbound ports, or a gateway's listeners.
pub fn compile(mesh: &Mesh, rt: &Runtime, proxy: &ProxyRef) -> Result<ProxyConfig, CompileError> {
    let cluster = mesh
        .cluster_by_name(&proxy.cluster)
        .ok_or_else(|| CompileError::UnknownCluster(proxy.cluster.clone()))?;
    let w = find_proxy(mesh, cluster.id, proxy)
        .ok_or_else(|| CompileError::UnknownProxy(proxy.clone()))?;
    let config_cluster = mesh.config_cluster(cluster.id);
    let mut out = ProxyConfig {
        mesh: mesh_settings(mesh, config_cluster, w),
        ..ProxyConfig::default()
    };
    let gateways = network_gateways(mesh, rt);
    let view = network_view(mesh, w);
    let site = locality_lb::Site {
        locality: crate::locality::of(mesh, w),
        labels: crate::locality::labels(mesh, w),
    };
    let at = clusters::Vantage {
        network: &w.network,
        view: &view,
        gateways: &gateways,
        site: &site,
    };
    let mut needed = if w.gateway.is_some() {
        out.mesh.node.role = ProxyRole::Gateway;
        let (needed, sni_dnat) = gateway::compile(mesh, config_cluster, w, &mut out);
        clusters::compile(
            mesh,
            config_cluster,
            w,
            &sni_dnat,
            clusters::ClusterKind::SniDnat,
            &at,
            &mut out,
        );
        needed
    } else {
        let scope = scope_of(mesh, config_cluster, w);
        routes::compile(mesh, config_cluster, w, &scope, &mut out)
    };
    needed.sort();
    needed.dedup();
    clusters::compile(
        mesh,
        config_cluster,
        w,
        &needed,
        clusters::ClusterKind::Outbound,
        &at,
        &mut out,
    );
    if w.gateway.is_none() {
        inbound::compile(mesh, config_cluster, w, &mut out);
    }
    authz::compile(mesh, config_cluster, rt, w, &mut out);
    Ok(out)
}

/// What sidecar `w` can reach: its Sidecar resource's egress hosts (see [`crate::scope`]).
pub fn scope_of(mesh: &Mesh, config: ClusterId, w: &Workload) -> Scope {
    mesh.index()
        .routing(config)
        .map_or(Scope::All, |r| r.scope_for(w))
}

/// The service instances `host` resolves to for a proxy in `viewer`: Kubernetes Services of
/// every cluster the control plane reads (namespace sameness), but ServiceEntries only from
/// the config cluster, as istiod reads Istio resources from its config cluster alone.
pub(crate) fn visible_services<'m>(
    mesh: &'m Mesh,
    config: ClusterId,
    host: &str,
    viewer: &str,
) -> Vec<&'m ServiceInstance> {
    mesh.registry
        .resolve(host, viewer)
        .into_iter()
        .filter(|s| from_config_cluster(s, config))
        .collect()
}

/// Whether a service instance is one the config cluster's control plane uses.
pub(crate) fn from_config_cluster(s: &ServiceInstance, config: ClusterId) -> bool {
    s.source != ServiceSource::ServiceEntry || s.cluster == config
}

/// Every network gateway address the control plane knows, hostnames resolved.
fn network_gateways(mesh: &Mesh, rt: &Runtime) -> Gateways {
    let mut all = Vec::new();
    for net in mesh.networks.values() {
        for g in &net.gateways {
            let cluster = mesh.cluster(g.cluster).name.clone();
            for a in &g.addresses {
                let ips: Vec<String> = if a.parse::<std::net::IpAddr>().is_ok() {
                    vec![a.clone()]
                } else {
                    rt.resolved.get(a).cloned().unwrap_or_default()
                };
                for ip in ips {
                    all.push(GatewayAddr {
                        network: g.network.clone(),
                        cluster: cluster.clone(),
                        unhealthy: rt.unhealthy.contains(&(ip.clone(), g.port)),
                        address: ip,
                        port: g.port,
                    });
                }
            }
        }
    }
    Gateways::new(all)
}

/// A proxy's requested network view (`ISTIO_META_REQUESTED_NETWORK_VIEW` in its container's
/// environment, comma-separated): an east-west gateway asks for its own network so it only
/// ever forwards to pods there.
pub fn network_view(mesh: &Mesh, w: &Workload) -> Vec<String> {
    let obj = mesh.object(w.object);
    let Some(spec) = w.pod_spec(obj) else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == "ISTIO_META_REQUESTED_NETWORK_VIEW")
        .and_then(|e| e.value.as_deref())
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn find_proxy<'m>(mesh: &'m Mesh, cluster: ClusterId, p: &ProxyRef) -> Option<&'m Workload> {
    mesh.workloads_in(cluster)
        .filter(|w| w.namespace == p.namespace && w.name == p.pod)
        .find(|w| w.address.is_some())
}

/// Mesh-wide settings come from the config cluster's mesh config: a remote's proxies run with
/// their primary's (its trust domain, access logging, outbound policy), as istiod serves them.
fn mesh_settings(mesh: &Mesh, config: ClusterId, w: &Workload) -> MeshSettings {
    let own = mesh.cluster(w.cluster);
    let c = mesh.cluster(config);
    let mc = &c.mesh_config;
    let allow_any = mc
        .outbound_traffic_policy
        .as_ref()
        .and_then(|p| p.mode)
        .is_none_or(|m| m != strait_api::istio::mesh_config::MeshOutboundMode::RegistryOnly);
    MeshSettings {
        trust_domain: c.trust_domain().to_string(),
        trust_domain_aliases: mc.trust_domain_aliases.clone(),
        domain: own.domain.clone(),
        allow_any_outbound: allow_any,
        access_log: mc.access_log_file.as_deref().is_some_and(|f| !f.is_empty()),
        access_log_encoding: match mc.access_log_encoding.as_deref() {
            Some("JSON") => AccessLogEncoding::Json,
            _ => AccessLogEncoding::Text,
        },
        access_log_stderr: mc.access_log_file.as_deref() == Some("/dev/stderr"),
        path_normalization: path_normalization(mc),
        tracing: tracing::settings(mesh, config, w),
        node: NodeMeta {
            role: ProxyRole::Sidecar,
            cluster: own.name.clone(),
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

fn path_normalization(mc: &strait_api::istio::mesh_config::MeshConfig) -> PathNormalization {
    use strait_api::istio::mesh_config::PathNormalizationMode as M;
    match mc.path_normalization.as_ref().and_then(|p| p.normalization) {
        Some(M::Off) => PathNormalization::None,
        None | Some(M::Default | M::Base) => PathNormalization::Base,
        Some(M::MergeSlashes) => PathNormalization::MergeSlashes,
        Some(M::DecodeAndMergeSlashes) => PathNormalization::DecodeAndMergeSlashes,
    }
}
