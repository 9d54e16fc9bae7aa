//! What `strait up` runs for a mesh: a control plane per primary cluster and, per workload
//! replica, a pod with a loopback address, its app, and a sidecar when Istio would inject one.
//!
//! Addresses (second octet `N` from `--net`, cluster index `k`):
//! - control plane of cluster k: `127.N.(16k).2` (ports 15012, 15014);
//! - pods of cluster k: `127.N.(16k+1 .. 16k+15).x`, the mesh address where the sidecar
//!   listens (or the app, without a sidecar);
//! - each pod's app: the pod address with 128 added to the third octet, so every app can
//!   listen on the port its manifest declares.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use strait_model::{Mesh, Workload, WorkloadKind};

use crate::apps::{AppKind, image_version};

/// Clusters one `--net` can hold: 8 blocks of 16 third-octet values below 128.
pub const MAX_CLUSTERS: usize = 8;
/// Pods per cluster: 15 third-octet values of 254 hosts.
pub const MAX_PODS_PER_CLUSTER: usize = 15 * 254;

#[derive(Clone, Debug)]
pub struct Plan {
    pub clusters: Vec<ClusterPlan>,
    pub pods: Vec<PodPlan>,
    /// Workloads not started, with the reason (gateways, the Istio control plane itself).
    pub skipped: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub name: String,
    pub trust_domain: String,
    /// The cluster whose control plane serves this one (itself for a primary).
    pub control_plane_of: String,
    /// Set for primaries: where their control plane listens.
    pub control_plane: Option<ControlPlaneAddrs>,
}

#[derive(Clone, Copy, Debug)]
pub struct ControlPlaneAddrs {
    pub grpc: SocketAddr,
    pub debug: SocketAddr,
}

#[derive(Clone, Debug)]
pub struct PodPlan {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The controller's name (Deployment, StatefulSet, DaemonSet) or the pod's.
    pub workload: String,
    pub owner: Option<Owner>,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The manifest's pod spec, as JSON, to which the sidecar container is added.
    pub spec: serde_json::Value,
    pub ip: IpAddr,
    pub app_ip: IpAddr,
    pub app: Option<AppKind>,
    pub version: String,
    /// Ports the app listens on.
    pub ports: Vec<u16>,
    /// Services that select the pod, as `(name.namespace, service port)`.
    pub services: Vec<(String, u16)>,
    pub sidecar: bool,
}

#[derive(Clone, Debug)]
pub struct Owner {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the mesh has {0} clusters; one local mesh holds at most {MAX_CLUSTERS}")]
    TooManyClusters(usize),
    #[error(
        "cluster {cluster} has {pods} pods; one local mesh holds at most {MAX_PODS_PER_CLUSTER} per cluster"
    )]
    TooManyPods { cluster: String, pods: usize },
    #[error("{workload}: {reason}")]
    App { workload: String, reason: String },
    #[error("the mesh has no workloads to run")]
    Empty,
}

fn v4(net: u8, third: usize, fourth: usize) -> IpAddr {
    // Callers keep `third` below 256 and `fourth` in 1..=254 (checked by the limits above).
    IpAddr::V4(Ipv4Addr::new(127, net, third as u8, fourth as u8))
}

/// Plans the local run of `mesh` on `127.<net>.0.0/16`.
pub fn plan(mesh: &Mesh, net: u8) -> Result<Plan, PlanError> {
    if mesh.clusters.len() > MAX_CLUSTERS {
        return Err(PlanError::TooManyClusters(mesh.clusters.len()));
    }
    let mut clusters = Vec::new();
    let mut pods = Vec::new();
    let mut skipped = Vec::new();
    for (k, c) in mesh.clusters.iter().enumerate() {
        let primary = mesh.cluster(mesh.config_cluster(c.id));
        let control_plane = (primary.id == c.id).then(|| {
            let ip = v4(net, 16 * k, 2);
            ControlPlaneAddrs {
                grpc: SocketAddr::new(ip, 15012),
                debug: SocketAddr::new(ip, 15014),
            }
        });
        clusters.push(ClusterPlan {
            name: c.name.clone(),
            trust_domain: c.trust_domain().to_string(),
            control_plane_of: primary.name.clone(),
            control_plane,
        });
        let mut index = 0usize;
        let mut workloads: Vec<&Workload> = mesh.workloads_in(c.id).collect();
        workloads.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for w in workloads {
            if let Some(why) = skip_reason(w) {
                skipped.push(format!("{}/{}/{}: {why}", c.name, w.namespace, w.name));
                continue;
            }
            for replica in 0..w.replicas {
                if index >= MAX_PODS_PER_CLUSTER {
                    return Err(PlanError::TooManyPods {
                        cluster: c.name.clone(),
                        pods: index + 1,
                    });
                }
                let third = 16 * k + 1 + index / 254;
                let fourth = 1 + index % 254;
                pods.push(pod(
                    mesh,
                    w,
                    &c.name,
                    replica,
                    v4(net, third, fourth),
                    v4(net, third + 128, fourth),
                )?);
                index += 1;
            }
        }
    }
    if pods.is_empty() {
        return Err(PlanError::Empty);
    }
    Ok(Plan {
        clusters,
        pods,
        skipped,
    })
}

fn skip_reason(w: &Workload) -> Option<&'static str> {
    if w.gateway.is_some() {
        return Some("gateways are not run locally yet; in-cluster traffic does not need them");
    }
    match w.kind {
        WorkloadKind::WorkloadEntry => {
            return Some("a WorkloadEntry names a VM, which runs elsewhere");
        }
        WorkloadKind::OperatorGateway => return Some("an operator-installed gateway"),
        // A Pod that already ran (it has an address) is a dump of a live cluster, not a spec.
        WorkloadKind::Pod if w.address.is_some() => {
            return Some("a Pod dumped from a running cluster");
        }
        _ => {}
    }
    let istiod = w.label("app") == Some("istiod") || w.label("istio") == Some("pilot");
    if istiod {
        return Some("the Istio control plane is replaced by strait's");
    }
    if w.host_network {
        return Some("pods on the host network are not run locally");
    }
    None
}

/// A pod name as Kubernetes forms it: `<deployment>-<template hash>-<5 chars>`,
/// `<statefulset>-<ordinal>`, `<daemonset>-<5 chars>`. Deterministic per run input, so names
/// are stable across restarts of `strait up`.
fn pod_name(cluster: &str, w: &Workload, replica: u32) -> (String, Option<Owner>) {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix = |seed: &str, len: usize| {
        let mut h = DefaultHasher::new();
        seed.hash(&mut h);
        let mut n = h.finish();
        (0..len)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
                n /= ALPHABET.len() as u64;
                c as char
            })
            .collect::<String>()
    };
    let base = format!("{cluster}/{}/{}", w.namespace, w.name);
    match w.kind {
        WorkloadKind::Deployment => {
            let rs = format!("{}-{}", w.name, suffix(&base, 10));
            let name = format!("{rs}-{}", suffix(&format!("{base}/{replica}"), 5));
            let owner = Owner {
                kind: "ReplicaSet",
                api_version: "apps/v1",
                name: rs,
            };
            (name, Some(owner))
        }
        WorkloadKind::StatefulSet => (
            format!("{}-{replica}", w.name),
            Some(Owner {
                kind: "StatefulSet",
                api_version: "apps/v1",
                name: w.name.clone(),
            }),
        ),
        WorkloadKind::DaemonSet => (
            format!("{}-{}", w.name, suffix(&format!("{base}/{replica}"), 5)),
            Some(Owner {
                kind: "DaemonSet",
                api_version: "apps/v1",
                name: w.name.clone(),
            }),
        ),
        _ => (w.name.clone(), None),
    }
}

fn pod(
    mesh: &Mesh,
    w: &Workload,
    cluster: &str,
    replica: u32,
    ip: IpAddr,
    app_ip: IpAddr,
) -> Result<PodPlan, PlanError> {
    let obj = mesh.object(w.object);
    let spec = w.pod_spec(obj);
    let containers: Vec<_> = spec
        .map(|s| {
            s.containers
                .iter()
                .filter(|c| c.name != "istio-proxy")
                .collect()
        })
        .unwrap_or_default();
    let image = containers
        .iter()
        .find_map(|c| c.image.as_deref())
        .unwrap_or("");
    let mut app = AppKind::from_image(image, &w.annotations).map_err(|e| PlanError::App {
        workload: format!("{cluster}/{}/{}", w.namespace, w.name),
        reason: e.to_string(),
    })?;
    // Container ports, then the ports the workload's services send to.
    let mut ports: BTreeSet<u16> = containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().is_none_or(|pr| pr == "TCP"))
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    let mut services = Vec::new();
    for svc in mesh.services_of(w) {
        for p in &svc.ports {
            if let Ok(port) = u16::try_from(p.number) {
                services.push((format!("{}.{}", svc.name, svc.namespace), port));
            }
            if let Some(t) =
                strait_model::peer_auth::target_port(mesh, w, p).and_then(|t| u16::try_from(t).ok())
            {
                ports.insert(t);
            }
        }
    }
    ports.remove(&0);
    // Any other image becomes the echo app on its ports: it answers every request and says
    // who answered, which is what a mesh needs to show.
    if app.is_none() && !ports.is_empty() {
        app = Some(AppKind::Echo);
    }
    let version = image_version(image)
        .map(str::to_string)
        .or_else(|| w.version().map(str::to_string))
        .unwrap_or_else(|| "v1".to_string());
    let (name, owner) = pod_name(cluster, w, replica);
    let sidecar = w.sidecar.has_proxy();
    let mut labels = w.labels.clone();
    if let Some(o) = owner.as_ref().filter(|o| o.kind == "ReplicaSet")
        && let Some((_, hash)) = o.name.rsplit_once('-')
    {
        labels.insert("pod-template-hash".into(), hash.to_string());
    }
    Ok(PodPlan {
        cluster: cluster.to_string(),
        namespace: w.namespace.clone(),
        name,
        workload: w.name.clone(),
        owner,
        service_account: w.service_account.clone(),
        labels,
        annotations: w.annotations.clone(),
        spec: spec
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_else(|| serde_json::json!({})),
        ip,
        app_ip: if sidecar { app_ip } else { ip },
        app,
        version,
        ports: ports.into_iter().collect(),
        services,
        sidecar,
    })
}

impl PodPlan {
    /// `<cluster>/<namespace>/<pod>`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.cluster, self.namespace, self.name)
    }
}
