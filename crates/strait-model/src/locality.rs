//! Where a workload runs, as istiod reads it: the `topology.istio.io/locality` label (or the
//! legacy `istio-locality`), a WorkloadEntry's `locality`, else the topology labels of the
//! pod's Node. Locality failover and `distribute` compare these.
//!
//! A pod template has no Node yet. Its pods land where the template's `nodeName` or
//! `nodeSelector` puts them, else on any node of the cluster: `mesh.yaml` may say where those
//! are (`locality:` of the cluster), as a real cluster's nodes say it with their labels.

use strait_api::Kind;
use strait_config::Locality;

use crate::mesh::Mesh;
use crate::workload::{Workload, WorkloadKind};

pub const REGION: &str = "topology.kubernetes.io/region";
pub const ZONE: &str = "topology.kubernetes.io/zone";
pub const SUBZONE: &str = "topology.istio.io/subzone";
pub const HOSTNAME: &str = "kubernetes.io/hostname";
/// The labels Kubernetes used before `topology.kubernetes.io`, still read by istiod.
const LEGACY_REGION: &str = "failure-domain.beta.kubernetes.io/region";
const LEGACY_ZONE: &str = "failure-domain.beta.kubernetes.io/zone";

/// The workload's locality; empty parts are unknown.
pub fn of(mesh: &Mesh, w: &Workload) -> Locality {
    if let Some(l) = w
        .label("topology.istio.io/locality")
        .or_else(|| w.label("istio-locality"))
        .filter(|l| !l.is_empty())
    {
        // Labels cannot hold '/': Istio writes `region.zone.subzone` there.
        return Locality::parse(&if l.contains('/') {
            l.to_string()
        } else {
            l.replace('.', "/")
        });
    }
    if let Some(we) = mesh.object(w.object).workload_entry() {
        return Locality::parse(&we.spec.locality);
    }
    let node = |key: &str| node_label(mesh, w, key).flatten();
    let region = node(REGION).or_else(|| node(LEGACY_REGION));
    let zone = node(ZONE).or_else(|| node(LEGACY_ZONE));
    let subzone = node(SUBZONE);
    if region.is_some() || zone.is_some() || subzone.is_some() {
        return Locality {
            region: region.unwrap_or_default(),
            zone: zone.unwrap_or_default(),
            subzone: subzone.unwrap_or_default(),
        };
    }
    if w.kind == WorkloadKind::Pod && node_name(mesh, w).is_some() {
        // A pod on a Node of the input without topology labels: no locality, as in Istio.
        return Locality::default();
    }
    mesh.cluster(w.cluster).locality.clone()
}

/// The Node label `key` of the node a workload's pods run on: `Some(None)` when the node is
/// known (a pod's `spec.nodeName`, a Node of the input) and lacks the label, `None` when the
/// input does not say. A template's `nodeSelector` on the label answers for its pods.
pub fn node_label(mesh: &Mesh, w: &Workload, key: &str) -> Option<Option<String>> {
    let spec = w.pod_spec(mesh.object(w.object))?;
    if let Some(node) = node_name(mesh, w) {
        if key == HOSTNAME {
            return Some(Some(node.to_string()));
        }
        if let Some((_, o)) = mesh.cluster(w.cluster).find(Kind::Node, "", node) {
            return Some(o.label(key).filter(|v| !v.is_empty()).map(str::to_string));
        }
    }
    if w.kind == WorkloadKind::Pod {
        return None;
    }
    spec.node_selector
        .as_ref()
        .and_then(|s| s.get(key))
        .filter(|v| !v.is_empty())
        .map(|v| Some(v.clone()))
}

/// The node a workload's pod is on (`spec.nodeName`), if written.
fn node_name<'m>(mesh: &'m Mesh, w: &Workload) -> Option<&'m str> {
    w.pod_spec(mesh.object(w.object))?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// The workload's labels with those istiod adds for `failoverPriority`: its cluster, network,
/// region, zone, subzone and node name.
pub fn labels(mesh: &Mesh, w: &Workload) -> std::collections::BTreeMap<String, String> {
    let mut out = w.labels.clone();
    let l = of(mesh, w);
    let mut add = |k: &str, v: &str| {
        if !v.is_empty() {
            out.insert(k.to_string(), v.to_string());
        }
    };
    add("topology.istio.io/cluster", &mesh.cluster(w.cluster).name);
    add("topology.istio.io/network", &w.network);
    add(REGION, &l.region);
    add(ZONE, &l.zone);
    add(SUBZONE, &l.subzone);
    if let Some(Some(host)) = node_label(mesh, w, HOSTNAME) {
        add(HOSTNAME, &host);
    }
    out
}
