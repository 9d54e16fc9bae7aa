//! IST0173: DestinationRule subsets that select no endpoint of their host.
//!
//! istioctl matches each subset's labels against every pod (augmented with node topology
//! labels); we match them against the endpoints of the host itself, which is stricter and names
//! what the workloads do carry.

use std::collections::{BTreeMap, BTreeSet};

use strait_api::istio::destination_rule::DestinationRuleSpec;
use strait_api::istio::service_entry::Resolution;
use strait_model::locality::node_label;
use strait_model::{Layout, Mesh, ObjId, ServiceInstance, ServiceSource, Workload};

use super::super::util::fqdn;
use crate::catalog::IST0173;
use crate::context::Ctx;

/// IST0173: subsets whose labels select none of the workloads behind the host.
pub(super) fn check(
    ctx: &mut Ctx,
    id: ObjId,
    spec: &DestinationRuleSpec,
    services: &[&ServiceInstance],
) {
    let mesh = ctx.mesh;
    if spec.subsets.is_empty() {
        return;
    }
    if services.iter().all(|s| host_is_endpoint(s)) {
        unlabelled_endpoints(ctx, id, spec);
        return;
    }
    // Services and ServiceEntries with a selector show us their workloads; selector-less ones
    // (and inline ServiceEntry endpoints) get endpoints we cannot see. A host served by several
    // (one Service in each cluster, or a Service and a ServiceEntry) is judged on all of them.
    if services
        .iter()
        .any(|s| s.selector.is_none() || s.endpoint_count > 0)
    {
        return;
    }
    let mut endpoints: Vec<&Workload> =
        services.iter().flat_map(|s| mesh.endpoints_of(s)).collect();
    endpoints.sort_by_key(|w| w.id.0);
    endpoints.dedup_by_key(|w| w.id.0);
    let full = fqdn(mesh, id, &spec.host);
    if endpoints.is_empty() {
        no_workloads(ctx, id, spec, services, &full);
        return;
    }
    for (i, subset) in spec.subsets.iter().enumerate() {
        if subset.labels.is_empty()
            || endpoints
                .iter()
                .any(|w| subset_selects(mesh, &subset.labels, w))
        {
            continue;
        }
        let wanted: Vec<String> = subset.labels.iter().map(|(k, v)| label(k, v)).collect();
        ctx.at(
            IST0173,
            id,
            &format!("spec.subsets[{i}].labels"),
            format!(
                "subset {} selects no workload of {full}: none of its {} has {}{}; requests routed to this subset fail with 503 (no healthy upstream)",
                if subset.name.is_empty() { "(unnamed)" } else { &subset.name },
                plural(endpoints.len(), "workload"),
                wanted.join(", "),
                what_they_have(mesh, &subset.labels, &endpoints),
            ),
        );
    }
}

/// A DNS ServiceEntry with neither endpoints nor a workload selector: istiod makes its host
/// name the one endpoint, with no labels (pilot `convertServiceEntryToInstances`).
fn host_is_endpoint(s: &ServiceInstance) -> bool {
    s.source == ServiceSource::ServiceEntry
        && s.selector.is_none()
        && s.endpoint_count == 0
        && matches!(
            s.resolution,
            Some(Resolution::Dns | Resolution::DnsRoundRobin)
        )
}

/// IST0173 for subsets of a host whose only endpoint is its unlabelled host name: a subset with
/// labels of the workload's own (not the topology labels istiod may add) selects nothing.
fn unlabelled_endpoints(ctx: &mut Ctx, id: ObjId, spec: &DestinationRuleSpec) {
    let full = fqdn(ctx.mesh, id, &spec.host);
    for (i, subset) in spec.subsets.iter().enumerate() {
        let own: Vec<String> = subset
            .labels
            .iter()
            .filter(|(k, _)| !is_topology(k))
            .map(|(k, v)| label(k, v))
            .collect();
        if own.is_empty() {
            continue;
        }
        ctx.at(
            IST0173,
            id,
            &format!("spec.subsets[{i}].labels"),
            format!(
                "subset {} selects nothing: {full} is a DNS ServiceEntry without endpoints, whose only endpoint is its host name and carries no labels, so nothing has {}; requests routed to this subset fail with 503 (no healthy upstream); list the endpoints with their labels in the ServiceEntry, or drop the subset",
                if subset.name.is_empty() { "(unnamed)" } else { &subset.name },
                own.join(", "),
            ),
        );
    }
}

fn is_topology(k: &str) -> bool {
    matches!(
        k,
        "topology.istio.io/cluster"
            | "topology.istio.io/network"
            | "topology.kubernetes.io/region"
            | "topology.kubernetes.io/zone"
            | "topology.istio.io/subzone"
            | "kubernetes.io/hostname"
    )
}

/// No workload runs behind the host at all, so every subset (even one without labels) selects
/// nothing, as istioctl reports. The input is the whole world (Info under `--partial`).
fn no_workloads(
    ctx: &mut Ctx,
    id: ObjId,
    spec: &DestinationRuleSpec,
    services: &[&ServiceInstance],
    full: &str,
) {
    let selectors: Vec<String> = services
        .iter()
        .filter_map(|s| s.selector.as_ref())
        .map(|sel| {
            sel.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let field = if subset.labels.is_empty() {
            format!("spec.subsets[{i}].name")
        } else {
            format!("spec.subsets[{i}].labels")
        };
        ctx.not_found(
            IST0173,
            id,
            &field,
            format!(
                "subset {} selects no workload of {full}: no workload matches its selector {}, so requests routed to this subset fail with 503 (no healthy upstream); deploy the workloads or fix the service selector",
                if subset.name.is_empty() { "(unnamed)" } else { &subset.name },
                selectors.join(" or "),
            ),
        );
    }
}

/// Istio matches subset labels against pod labels plus the topology labels it adds itself
/// (cluster, network, region, zone, node). Cluster and network we know when the mesh layout
/// states them; region, zone, subzone and hostname come from the pod's Node when the input
/// holds it (a dump), else a subset using them gets the benefit of the doubt.
/// Istio never adds one of them with an empty value, so an empty value matches only a pod
/// that carries the label itself, empty (istioctl's "empty topology labels" case).
fn subset_selects(mesh: &Mesh, labels: &BTreeMap<String, String>, w: &Workload) -> bool {
    labels.iter().all(|(k, v)| match k.as_str() {
        _ if v.is_empty() => w.labels.get(k).is_some_and(String::is_empty),
        // Cluster names are only known from mesh.yaml; a plain directory's is a placeholder.
        "topology.istio.io/cluster" if mesh.layout == Layout::MeshDirectory => {
            &mesh.cluster(w.cluster).name == v
        }
        "topology.istio.io/network" if !w.network.is_empty() => &w.network == v,
        "topology.kubernetes.io/region"
        | "topology.kubernetes.io/zone"
        | "topology.istio.io/subzone"
        | "kubernetes.io/hostname"
            if node_label(mesh, w, k).is_some() =>
        {
            node_label(mesh, w, k).flatten().as_deref() == Some(v.as_str())
        }
        "topology.istio.io/cluster"
        | "topology.istio.io/network"
        | "topology.kubernetes.io/region"
        | "topology.kubernetes.io/zone"
        | "topology.istio.io/subzone"
        | "kubernetes.io/hostname" => true,
        _ => w.labels.get(k) == Some(v),
    })
}

/// `(they have version=v1, version=v2)`: the values the workloads carry for the subset's keys.
fn what_they_have(
    mesh: &Mesh,
    labels: &BTreeMap<String, String>,
    endpoints: &[&Workload],
) -> String {
    let mut seen = BTreeSet::new();
    for w in endpoints {
        for k in labels.keys() {
            let v = match k.as_str() {
                "topology.istio.io/cluster" => Some(mesh.cluster(w.cluster).name.clone()),
                _ => w
                    .labels
                    .get(k)
                    .cloned()
                    .or_else(|| node_label(mesh, w, k).flatten()),
            };
            if let Some(v) = v {
                seen.insert(label(k, &v));
            }
        }
    }
    if seen.is_empty() {
        String::new()
    } else {
        format!(
            " (they have {})",
            seen.into_iter().collect::<Vec<_>>().join(", ")
        )
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `key=value`, with an empty value written `key=""` so it stays visible.
fn label(k: &str, v: &str) -> String {
    if v.is_empty() {
        format!("{k}=\"\"")
    } else {
        format!("{k}={v}")
    }
}
