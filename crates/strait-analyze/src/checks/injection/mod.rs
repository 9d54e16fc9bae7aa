//! Sidecar injection: namespaces without (or with too many) injection labels, pods that missed
//! their proxy, `image: auto` templates nothing will inject, applications running as the
//! proxy's UID, proxies older than the injector's image, and workloads the mesh routes to or
//! secures that get no sidecar (pitfall (a)).
//!
//! The injection rules mirror Istio's default webhooks (the model's `injection::decide`, which
//! the injector webhook of `strait-kube` calls too): namespace label `istio-injection` beats
//! `istio.io/rev`, a pod label `sidecar.istio.io/inject=false` opts out, host-network pods are
//! never injected. Where the input holds the injector's own configuration (its webhooks, the `istio-sidecar-injector`
//! ConfigMaps), that is read instead, as istioctl does.

mod image_auto;
mod injector;
mod namespaces;
mod pods;
mod proxy_image;
mod uid;
mod without_sidecar;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use strait_api::Kind;
use strait_model::{Mesh, Workload, WorkloadKind, selector};

use crate::context::Ctx;

/// Namespaces Istio never injects and istioctl never analyzes.
pub(super) const SYSTEM_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

pub(super) fn is_system_namespace(ns: &str) -> bool {
    SYSTEM_NAMESPACES.contains(&ns)
}

/// The labels that put a namespace in the mesh (sidecar or ambient).
const INJECTION_LABELS: &[&str] = &["istio-injection", "istio.io/rev", "istio.io/dataplane-mode"];

const OPT_OUT: &str = "sidecar.istio.io/inject";

/// A Pod created by a controller that is itself in the input (a dump of a running cluster holds
/// both): checks report on the controller and skip the pod, so a finding is not repeated per
/// replica.
pub(super) fn is_replica(mesh: &Mesh, w: &Workload) -> bool {
    if w.kind != WorkloadKind::Pod {
        return false;
    }
    let obj = mesh.object(w.object);
    let owners = obj.meta().owner_references.as_deref().unwrap_or_default();
    if owners.is_empty() {
        return false;
    }
    // Its owner is in the input: a ReplicaSet (of a Deployment or its own), a StatefulSet, a
    // DaemonSet, or a Job.
    let cluster = mesh.cluster(w.cluster);
    let owner_in_input = owners.iter().any(|r| {
        let kind = match r.kind.as_str() {
            "ReplicaSet" => Kind::ReplicaSet,
            "StatefulSet" => Kind::StatefulSet,
            "DaemonSet" => Kind::DaemonSet,
            "Job" => Kind::Job,
            _ => return false,
        };
        cluster.find(kind, &w.namespace, &r.name).is_some()
    });
    // Else a controller of the input whose template labels the pod carries (a dump without
    // the ReplicaSets still holds their Deployment).
    owner_in_input
        || (!w.labels.is_empty()
            && mesh.workloads.iter().any(|o| {
                o.kind.is_controller()
                    && o.cluster == w.cluster
                    && o.namespace == w.namespace
                    && !o.labels.is_empty()
                    && selector::map_selects(&o.labels, &w.labels)
            }))
}

/// The `istio-proxy` container of a workload's pods, with its field path relative to the pod
/// spec.
pub(super) fn workload_proxy<'m>(mesh: &'m Mesh, w: &Workload) -> Option<(String, &'m Container)> {
    proxy_container(w.pod_spec(mesh.object(w.object))?)
}

/// The `istio-proxy` container of a pod spec (a regular container, or a native sidecar in
/// `initContainers`), with its field path relative to the pod spec.
pub(super) fn proxy_container(spec: &PodSpec) -> Option<(String, &Container)> {
    if let Some((i, c)) = spec
        .containers
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == "istio-proxy")
    {
        return Some((format!("containers[{i}]"), c));
    }
    spec.init_containers
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, c)| c.name == "istio-proxy")
        .map(|(i, c)| (format!("initContainers[{i}]"), c))
}

/// Whether the pod explicitly opts out of injection (label, or the deprecated annotation).
pub(super) fn opts_out(w: &Workload) -> bool {
    w.label(OPT_OUT)
        .or_else(|| w.annotations.get(OPT_OUT).map(String::as_str))
        == Some("false")
}

pub fn run(ctx: &mut Ctx) {
    namespaces::check(ctx);
    pods::check(ctx);
    image_auto::check(ctx);
    uid::check(ctx);
    proxy_image::check(ctx);
    without_sidecar::check(ctx);
}

/// Every container of a pod spec with its field path relative to the pod spec, init
/// containers last.
fn containers(spec: &PodSpec) -> impl Iterator<Item = (String, &Container)> {
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("initContainers[{i}]"), c));
    spec.containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("containers[{i}]"), c))
        .chain(init)
}
