//! Sidecar (the resource) checks: selectors that select nothing, workloads claimed by several
//! Sidecars, several namespace-wide Sidecars, and the deprecated egress proxy.
//!
//! A proxy takes exactly one Sidecar: the one selecting it, else its namespace's selector-less
//! one, else the root namespace's. When two qualify, istiod picks the oldest, which a manifest
//! cannot tell, so the outcome is effectively arbitrary.

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::istio::sidecar::SidecarSpec;
use strait_model::{ClusterId, Mesh, ObjId, Workload, WorkloadId, selector};

use super::util;
use crate::catalog::{IST0002, IST0101, IST0110, IST0111, IST0167};
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    // Per config cluster and namespace: the selector-less Sidecars.
    let mut namespace_wide: BTreeMap<(ClusterId, String), Vec<ObjId>> = BTreeMap::new();
    // Per workload: the Sidecars whose selector picks it.
    let mut claims: BTreeMap<WorkloadId, Vec<ObjId>> = BTreeMap::new();
    for (id, o) in util::objects(mesh, Kind::Sidecar) {
        let Some(sc) = o.sidecar() else { continue };
        check_deprecated(ctx, id, &sc.spec);
        let labels = sc
            .spec
            .workload_selector
            .as_ref()
            .map(|s| &s.labels)
            .filter(|l| !l.is_empty());
        check_ambient(ctx, id, o.namespace(), labels);
        let Some(labels) = labels else {
            namespace_wide
                .entry((mesh.config_cluster(id.cluster), o.namespace().to_string()))
                .or_default()
                .push(id);
            continue;
        };
        let candidates = workloads_in_scope(mesh, id, o.namespace());
        let selected: Vec<&Workload> = candidates
            .iter()
            .copied()
            .filter(|w| selector::map_selects(labels, &w.labels))
            .collect();
        for w in &selected {
            claims.entry(w.id).or_default().push(id);
        }
        if selected.is_empty() {
            let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            ctx.not_found(
                IST0101,
                id,
                "spec.workloadSelector.labels",
                format!(
                    "referenced selector not found: no workload in namespace {} has {} ({} there), so this Sidecar configures no proxy; fix the labels or remove the Sidecar",
                    o.namespace(),
                    wanted.join(", "),
                    count(candidates.len())
                ),
            );
        }
    }
    report_conflicts(ctx, &claims);
    report_namespace_wide(ctx, &namespace_wide);
}

/// IST0167: a Sidecar resource configures sidecar proxies only; ambient workloads have none.
fn check_ambient(
    ctx: &mut Ctx,
    id: ObjId,
    ns: &str,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) {
    let mesh = ctx.mesh;
    let scope = workloads_in_scope(mesh, id, ns);
    let targets: Vec<&Workload> = scope
        .iter()
        .copied()
        .filter(|w| labels.is_none_or(|l| selector::map_selects(l, &w.labels)))
        .collect();
    let ambient_ns = mesh.namespace_is_ambient(id.cluster, ns);
    let all_ambient = !targets.is_empty() && targets.iter().all(|w| mesh.is_ambient(w));
    if (labels.is_none() && ambient_ns) || all_ambient {
        let what = if labels.is_none() {
            format!("namespace {ns} runs in ambient mode")
        } else {
            let verb = if targets.len() == 1 { "runs" } else { "run" };
            format!(
                "the {} it selects {verb} in ambient mode",
                count(targets.len())
            )
        };
        ctx.at_key(
            IST0167,
            id,
            if labels.is_some() { "spec.workloadSelector" } else { "spec" },
            format!(
                "this Sidecar has no effect: {what}, where no sidecar proxy exists to configure (ztunnel and waypoints ignore Sidecar resources)"
            ),
        );
    }
}

/// Workloads a Sidecar in `ns` can select: its namespace, in every cluster its control plane
/// serves.
fn workloads_in_scope<'m>(mesh: &'m Mesh, id: ObjId, ns: &str) -> Vec<&'m Workload> {
    let served = mesh.served_by(mesh.config_cluster(id.cluster));
    mesh.workloads
        .iter()
        .filter(|w| w.namespace == ns && served.contains(&w.cluster))
        .collect()
}

/// IST0110: one finding per Sidecar, naming the Sidecars it competes with and one workload.
fn report_conflicts(ctx: &mut Ctx, claims: &BTreeMap<WorkloadId, Vec<ObjId>>) {
    let mesh = ctx.mesh;
    // Sidecar -> (other Sidecar -> workloads both select).
    let mut rivals: BTreeMap<ObjId, BTreeMap<ObjId, Vec<WorkloadId>>> = BTreeMap::new();
    for (w, sidecars) in claims {
        if sidecars.len() < 2 {
            continue;
        }
        for a in sidecars {
            for b in sidecars.iter().filter(|b| *b != a) {
                rivals
                    .entry(*a)
                    .or_default()
                    .entry(*b)
                    .or_default()
                    .push(*w);
            }
        }
    }
    for (id, others) in rivals {
        let names: Vec<String> = others
            .keys()
            .map(|o| mesh.object(*o).display_name())
            .collect();
        let mut shared: Vec<WorkloadId> = others.values().flatten().copied().collect();
        shared.sort_unstable();
        shared.dedup();
        let first = shared
            .first()
            .map(|w| describe(mesh, *w))
            .unwrap_or_default();
        let more = if shared.len() > 1 {
            format!(" and {} more", shared.len() - 1)
        } else {
            String::new()
        };
        let f = ctx.at(
            IST0110,
            id,
            "spec.workloadSelector.labels",
            format!(
                "this Sidecar and {} both select {first}{more}; a proxy uses only one Sidecar and which one wins is not defined by the manifests; make the selectors disjoint or merge the resources",
                util::join(&names)
            ),
        );
        for o in others.keys() {
            let pos = ctx_pos(mesh, *o);
            f.related("also selects the workload", pos);
        }
    }
}

/// IST0111: several selector-less Sidecars in one namespace.
fn report_namespace_wide(
    ctx: &mut Ctx,
    namespace_wide: &BTreeMap<(ClusterId, String), Vec<ObjId>>,
) {
    let mesh = ctx.mesh;
    for ((_, ns), ids) in namespace_wide {
        if ids.len() < 2 {
            continue;
        }
        for id in ids {
            let others: Vec<String> = ids
                .iter()
                .filter(|o| *o != id)
                .map(|o| mesh.object(*o).display_name())
                .collect();
            let f = ctx.at(
                IST0111,
                *id,
                "metadata.name",
                format!(
                    "namespace {ns} has several Sidecars without workloadSelector (this one and {}); only one namespace default can apply and which one does is undefined; merge them, or give all but one a workloadSelector",
                    util::join(&others)
                ),
            );
            for o in ids.iter().filter(|o| *o != id) {
                f.related("another selector-less Sidecar", ctx_pos(mesh, *o));
            }
        }
    }
}

fn ctx_pos(mesh: &Mesh, id: ObjId) -> strait_api::Pos {
    mesh.object(id).source.pos
}

fn describe(mesh: &Mesh, w: WorkloadId) -> String {
    let w = mesh.workload(w);
    let o = mesh.object(w.object);
    format!("{} {}/{}", o.kind, w.namespace, w.name)
}

/// IST0002: the egress proxy setting.
fn check_deprecated(ctx: &mut Ctx, id: ObjId, spec: &SidecarSpec) {
    if spec
        .outbound_traffic_policy
        .as_ref()
        .is_some_and(|p| p.egress_proxy.is_some())
    {
        ctx.at_key(
            IST0002,
            id,
            "spec.outboundTrafficPolicy.egressProxy",
            "outboundTrafficPolicy.egressProxy is a hidden, unsupported field that istioctl reports as deprecated and may stop working in any release; send external traffic through an egress gateway (ServiceEntry, Gateway and VirtualService) instead",
        );
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 workload".to_string()
    } else {
        format!("{n} workloads")
    }
}
