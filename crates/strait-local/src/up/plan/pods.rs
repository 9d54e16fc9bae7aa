//! Pods: one per workload replica, named as Kubernetes names them, with the app a workload's
//! image stands for and the proxy Istio would run (a sidecar, or the gateway itself).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;
use strait_model::{Mesh, Workload, WorkloadKind};

use super::PlanError;
use crate::apps::{AppKind, image_version};

#[derive(Clone, Debug)]
pub struct PodPlan {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The controller's name (Deployment, StatefulSet, DaemonSet, gateway component) or the
    /// pod's.
    pub workload: String,
    pub owner: Option<Owner>,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The pod spec, as JSON (the manifest's; a gateway component's proxy container for an
    /// IstioOperator gateway), to which the sidecar container is added.
    pub spec: serde_json::Value,
    /// The network the pod is physically on: its cluster's (a pod label naming another
    /// network changes what the control plane believes, not where the pod runs).
    pub network: String,
    /// The network Istio gives the pod (what the injector labels it with): the pod's label,
    /// else what the cluster's manifests state; empty when they state none.
    pub istio_network: String,
    pub ip: IpAddr,
    pub app_ip: IpAddr,
    pub app: Option<AppKind>,
    pub version: String,
    /// Ports the app listens on.
    pub ports: Vec<u16>,
    /// Services that select the pod, as `(name.namespace, service port)`.
    pub services: Vec<(String, u16)>,
    /// The pod runs a proxy: a sidecar, or (with `gateway`) the gateway itself.
    pub proxy: bool,
    pub gateway: bool,
}

#[derive(Clone, Debug)]
pub struct Owner {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub name: String,
}

impl PodPlan {
    /// `<cluster>/<namespace>/<pod>`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.cluster, self.namespace, self.name)
    }

    /// Whether it has a sidecar in front of an app.
    pub fn sidecar(&self) -> bool {
        self.proxy && !self.gateway
    }
}

/// Why a workload is not run locally, if it is not.
pub(super) fn skip_reason(mesh: &Mesh, w: &Workload) -> Option<&'static str> {
    match w.kind {
        WorkloadKind::WorkloadEntry => {
            return Some("a WorkloadEntry names a VM, which runs elsewhere");
        }
        // A Pod that already ran (it has an address) is a dump of a live cluster, not a spec.
        WorkloadKind::Pod if w.address.is_some() => {
            return Some("a Pod dumped from a running cluster");
        }
        // Local mode runs long-lived workloads; a Job's pods run once, to completion.
        WorkloadKind::Job | WorkloadKind::CronJob => {
            return Some(
                "Jobs and CronJobs run to completion; strait up runs long-lived workloads",
            );
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
    // A gateway an IstioOperator installs is also in the manifests as a Deployment of the
    // same name when someone rendered it: run that one.
    if w.kind == WorkloadKind::OperatorGateway
        && mesh.workloads_in(w.cluster).any(|o| {
            o.kind == WorkloadKind::Deployment && o.name == w.name && o.namespace == w.namespace
        })
    {
        return Some("its Deployment in the manifests is run instead");
    }
    None
}

fn hash_suffix(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    let mut n = h.finish();
    (0..len)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
            n /= ALPHABET.len() as u64;
            c as char
        })
        .collect()
}

/// A pod name as Kubernetes forms it: `<deployment>-<template hash>-<5 chars>`,
/// `<statefulset>-<ordinal>`, `<daemonset>-<5 chars>`, `<replicaset>-<5 chars>`. The template hash covers the pod
/// template, so editing it rolls new pods (new names) as a Deployment would; unchanged, names
/// are stable across restarts of `strait up`.
fn pod_name(cluster: &str, w: &Workload, template: &str, replica: u32) -> (String, Option<Owner>) {
    let base = format!("{cluster}/{}/{}", w.namespace, w.name);
    match w.kind {
        WorkloadKind::Deployment | WorkloadKind::OperatorGateway => {
            let rs = format!(
                "{}-{}",
                w.name,
                hash_suffix(&format!("{base}\n{template}"), 10)
            );
            let name = format!("{rs}-{}", hash_suffix(&format!("{rs}/{replica}"), 5));
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
        WorkloadKind::ReplicaSet => (
            format!(
                "{}-{}",
                w.name,
                hash_suffix(&format!("{base}/{replica}"), 5)
            ),
            Some(Owner {
                kind: "ReplicaSet",
                api_version: "apps/v1",
                name: w.name.clone(),
            }),
        ),
        WorkloadKind::DaemonSet => (
            format!(
                "{}-{}",
                w.name,
                hash_suffix(&format!("{base}/{replica}"), 5)
            ),
            Some(Owner {
                kind: "DaemonSet",
                api_version: "apps/v1",
                name: w.name.clone(),
            }),
        ),
        _ => (w.name.clone(), None),
    }
}

/// The pod spec of an IstioOperator gateway: its proxy container with the component's
/// environment (`ISTIO_META_REQUESTED_NETWORK_VIEW` among it).
fn operator_gateway_spec(mesh: &Mesh, w: &Workload) -> serde_json::Value {
    let env: Vec<serde_json::Value> = mesh
        .object(w.object)
        .istio_operator()
        .and_then(|op| {
            op.spec
                .installed_gateways()
                .into_iter()
                .find(|g| g.name == w.name)
        })
        .and_then(|g| g.k8s)
        .map(|k| {
            k.env
                .iter()
                .map(|e| json!({"name": e.name, "value": e.value.clone().unwrap_or_default()}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "serviceAccountName": w.service_account,
        "containers": [{"name": "istio-proxy", "image": "auto", "env": env}],
    })
}

/// Replica `replica` of workload `w`, without addresses yet.
pub(super) fn pod(
    mesh: &Mesh,
    w: &Workload,
    cluster: &str,
    replica: u32,
) -> Result<PodPlan, PlanError> {
    let obj = mesh.object(w.object);
    let spec = w.pod_spec(obj);
    let gateway = w.gateway.is_some();
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
    let mut app = if gateway {
        None
    } else {
        AppKind::from_image(image, &w.annotations).map_err(|e| PlanError::App {
            workload: format!("{cluster}/{}/{}", w.namespace, w.name),
            reason: e.to_string(),
        })?
    };
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
    if gateway {
        // The gateway proxy serves its own ports from its configuration; no app runs.
        ports.clear();
    }
    // Any other image becomes the echo app on its ports: it answers every request and says
    // who answered, which is what a mesh needs to show.
    if app.is_none() && !gateway && !ports.is_empty() {
        app = Some(AppKind::Echo);
    }
    let version = image_version(image)
        .map(str::to_string)
        .or_else(|| w.version().map(str::to_string))
        .unwrap_or_else(|| "v1".to_string());
    let spec = if w.kind == WorkloadKind::OperatorGateway {
        operator_gateway_spec(mesh, w)
    } else {
        spec.and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_else(|| json!({}))
    };
    let template = format!("{:?}{:?}{spec}", w.labels, w.annotations);
    let (name, owner) = pod_name(cluster, w, &template, replica);
    let mut labels = w.labels.clone();
    if let Some(o) = owner.as_ref().filter(|o| o.kind == "ReplicaSet")
        && let Some((_, hash)) = o.name.rsplit_once('-')
    {
        labels.insert("pod-template-hash".into(), hash.to_string());
    }
    let unset = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    Ok(PodPlan {
        cluster: cluster.to_string(),
        namespace: w.namespace.clone(),
        name,
        workload: w.name.clone(),
        owner,
        service_account: w.service_account.clone(),
        labels,
        annotations: w.annotations.clone(),
        spec,
        network: mesh.cluster(w.cluster).network.clone(),
        istio_network: w.network.clone(),
        ip: unset,
        app_ip: unset,
        app,
        version,
        ports: ports.into_iter().collect(),
        services,
        proxy: w.sidecar.has_proxy(),
        gateway,
    })
}
