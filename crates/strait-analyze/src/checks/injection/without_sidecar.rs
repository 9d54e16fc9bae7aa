//! STR0601: workloads without a sidecar that the mesh routes to, secures, or surrounds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use strait_api::Kind;
use strait_api::istio::security::{MtlsMode, PeerAuthenticationSpec};
use strait_model::{Injection, Mesh, ServiceId, ServiceInstance, Workload, selector};

use super::super::util::{self, join};
use super::{OPT_OUT, is_replica, is_system_namespace, opts_out};
use crate::catalog::STR0601;
use crate::context::Ctx;
use crate::finding::Level;

/// What in the mesh relies on a workload: descriptions, strongest first.
#[derive(Default)]
struct Dependents {
    /// Routing, destination rules and policies that name it.
    strong: Vec<String>,
    /// Injected neighbours in its namespace.
    neighbours: Vec<String>,
}

/// For each service instance, the VirtualServices routing to it and DestinationRules for it.
fn traffic_dependents(mesh: &Mesh) -> BTreeMap<ServiceId, BTreeSet<String>> {
    let mut out: BTreeMap<ServiceId, BTreeSet<String>> = BTreeMap::new();
    for (id, o, vs) in util::virtual_services(mesh) {
        let s = &vs.spec;
        let http = s.http.iter().flat_map(|r| {
            r.route
                .iter()
                .filter_map(|d| d.destination.as_ref())
                .chain(r.mirror.as_deref())
                .chain(r.mirrors.iter().filter_map(|m| m.destination.as_ref()))
        });
        let l4 = s
            .tls
            .iter()
            .flat_map(|r| r.route.iter())
            .chain(s.tcp.iter().flat_map(|r| r.route.iter()))
            .filter_map(|d| d.destination.as_ref());
        for d in http.chain(l4) {
            for inst in util::resolve(mesh, id, &d.host) {
                out.entry(inst.id)
                    .or_default()
                    .insert(format!("{} routes to it", o.display_name()));
            }
        }
    }
    for c in &mesh.clusters {
        for (id, o) in c.of_kind(Kind::DestinationRule) {
            let Some(dr) = o.destination_rule() else {
                continue;
            };
            if dr.spec.host.is_empty() || dr.spec.host.starts_with('*') {
                continue;
            }
            for inst in util::resolve(mesh, id, &dr.spec.host) {
                out.entry(inst.id)
                    .or_default()
                    .insert(format!("{} sets its traffic policy", o.display_name()));
            }
        }
    }
    out
}

/// Policies that need a proxy on `w` to be enforced: AuthorizationPolicies and
/// RequestAuthentications, and STRICT PeerAuthentications (a PERMISSIVE or DISABLE one that
/// selects a workload is how an exemption is written, not a dependency). Selector-based ones
/// always count; namespace-wide ones only when `namespace_wide` (a deliberate opt-out is not
/// expected to follow its namespace's defaults). Mesh-wide policies never count: they apply to
/// whatever is in the mesh, and do not by themselves say this workload should be.
fn policies_for(mesh: &Mesh, w: &Workload, namespace_wide: bool) -> Vec<String> {
    let config = mesh.cluster(mesh.config_cluster(w.cluster));
    let root = config.root_namespace();
    let mut out = Vec::new();
    for kind in [
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
    ] {
        for (_, o) in config.of_kind(kind) {
            let sel = match kind {
                Kind::PeerAuthentication => match o.peer_authentication() {
                    Some(p) if requires_mtls(&p.spec) => p.spec.selector.as_ref(),
                    _ => continue,
                },
                Kind::AuthorizationPolicy => match o.authorization_policy() {
                    Some(p) if p.spec.target_ref.is_none() && p.spec.target_refs.is_empty() => {
                        p.spec.selector.as_ref()
                    }
                    _ => continue,
                },
                _ => match o.request_authentication() {
                    Some(p) if p.spec.target_ref.is_none() && p.spec.target_refs.is_empty() => {
                        p.spec.selector.as_ref()
                    }
                    _ => continue,
                },
            };
            let labels = sel.map(|s| &s.match_labels).filter(|l| !l.is_empty());
            let applies = match labels {
                Some(l) => {
                    let ns_ok = o.namespace() == w.namespace
                        || (kind == Kind::AuthorizationPolicy && o.namespace() == root);
                    ns_ok && selector::map_selects(l, &w.labels)
                }
                None => namespace_wide && o.namespace() == w.namespace && o.namespace() != root,
            };
            if applies {
                let how = if labels.is_some() {
                    "selects it"
                } else {
                    "applies to its whole namespace"
                };
                out.push(format!("{} {how}", o.display_name()));
            }
        }
    }
    out
}

/// Service instances by host name, in meshes of several clusters (empty otherwise).
fn instances_by_host(mesh: &Mesh) -> HashMap<&str, Vec<&ServiceInstance>> {
    let mut out: HashMap<&str, Vec<&ServiceInstance>> = HashMap::new();
    if mesh.is_multicluster() {
        for s in mesh.registry.all() {
            out.entry(s.hostname.as_str()).or_default().push(s);
        }
    }
    out
}

/// The same services in other clusters, where their pods run sidecars: the service is in the
/// mesh there, and this workload is the odd one out. Across networks it is worse: other
/// networks reach a cluster only through its east-west gateway, which carries mTLS only, so
/// istiod drops endpoints there that have no sidecar and their clients never reach these pods.
fn injected_elsewhere(
    mesh: &Mesh,
    w: &Workload,
    by_host: &HashMap<&str, Vec<&ServiceInstance>>,
) -> Vec<String> {
    let here = mesh.cluster(w.cluster);
    let mut out = Vec::new();
    for svc in mesh.services_of(w) {
        for other in by_host.get(svc.hostname.as_str()).into_iter().flatten() {
            if other.cluster == w.cluster
                || !mesh
                    .endpoints_of(other)
                    .iter()
                    .any(|e| matches!(e.sidecar, Injection::Injected(_)))
            {
                continue;
            }
            let there = mesh.cluster(other.cluster);
            let across = !here.network.is_empty()
                && !there.network.is_empty()
                && here.network != there.network;
            out.push(if across {
                format!(
                    "Service {}/{} has injected pods in cluster {} (network {}), whose clients reach this cluster only through its east-west gateway, which carries mTLS only: they never reach these pods",
                    svc.namespace, svc.name, there.name, there.network
                )
            } else {
                format!(
                    "Service {}/{} has injected pods in cluster {}: its clients there send these pods plaintext, and its policies do not apply here",
                    svc.namespace, svc.name, there.name
                )
            });
        }
    }
    out
}

fn requires_mtls(spec: &PeerAuthenticationSpec) -> bool {
    spec.mode() == Some(MtlsMode::Strict)
        || spec
            .port_level_mtls
            .values()
            .any(|m| m.mode == Some(MtlsMode::Strict))
}

/// STR0601: a workload without sidecar that the mesh routes to, secures, or surrounds.
pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let traffic = traffic_dependents(mesh);
    let by_host = instances_by_host(mesh);
    for w in &mesh.workloads {
        let Injection::NotInjected(reason) = &w.sidecar else {
            continue;
        };
        let cluster = mesh.cluster(w.cluster);
        if w.gateway.is_some()
            || is_system_namespace(&w.namespace)
            || w.namespace == cluster.istio_namespace
            || mesh.is_ambient(w)
            || is_replica(mesh, w)
        {
            continue;
        }
        let mut deps = Dependents::default();
        let mut seen = BTreeSet::new();
        for svc in mesh.services_of(w) {
            for d in traffic.get(&svc.id).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    deps.strong
                        .push(format!("{d} (Service {}/{})", svc.namespace, svc.name));
                }
            }
        }
        deps.strong.extend(injected_elsewhere(mesh, w, &by_host));
        let ns_label = cluster
            .namespaces
            .get(&w.namespace)
            .and_then(|n| n.labels.get("istio-injection"));
        let deliberate = opts_out(w) || w.host_network || ns_label.is_some_and(|v| v != "enabled");
        deps.strong.extend(policies_for(mesh, w, !deliberate));
        if !deliberate {
            deps.neighbours = mesh
                .workloads_in(w.cluster)
                .filter(|o| o.namespace == w.namespace && o.id != w.id && o.gateway.is_none())
                .filter(|o| matches!(o.sidecar, Injection::Injected(_)) && !is_replica(mesh, o))
                .map(|o| o.name.clone())
                .collect();
        }
        if deps.strong.is_empty() && deps.neighbours.is_empty() {
            continue;
        }
        report_without_sidecar(ctx, w, reason, &deps, ns_label.map(String::as_str));
    }
}

fn report_without_sidecar(
    ctx: &mut Ctx,
    w: &Workload,
    reason: &str,
    deps: &Dependents,
    ns_label: Option<&str>,
) {
    let mesh = ctx.mesh;
    let obj = mesh.object(w.object);
    let meta = w.pod_meta_path();
    let (field, fix) = if w.label(OPT_OUT) == Some("false") {
        (
            format!("{meta}.labels[\"{OPT_OUT}\"]"),
            format!("remove the {OPT_OUT}=false label if it should be in the mesh"),
        )
    } else if w.annotations.get(OPT_OUT).is_some_and(|v| v == "false") {
        (
            format!("{meta}.annotations[\"{OPT_OUT}\"]"),
            format!("remove the {OPT_OUT}: \"false\" annotation if it should be in the mesh"),
        )
    } else if w.host_network {
        (
            format!("{}.hostNetwork", w.pod_spec_path()),
            "pods on the host network cannot have a sidecar; run it on the pod network".to_string(),
        )
    } else if ns_label.is_some() {
        (
            meta,
            format!(
                "set the label to enabled: `kubectl label namespace {} istio-injection=enabled --overwrite`",
                w.namespace
            ),
        )
    } else {
        (
            meta,
            format!(
                "`kubectl label namespace {} istio-injection=enabled` (or label the pod template sidecar.istio.io/inject=\"true\")",
                w.namespace
            ),
        )
    };
    let who = format!("{} {}/{}", obj.kind, w.namespace, w.name);
    let message = if deps.strong.is_empty() {
        format!(
            "the pods of {who} get no sidecar ({reason}) while other workloads in its namespace do ({}): its traffic with them is plaintext and mesh policies do not apply to it; {fix}",
            join(&deps.neighbours)
        )
    } else {
        format!(
            "the pods of {who} get no sidecar ({reason}), yet the mesh depends on it: {}. Without a sidecar it cannot accept mTLS or enforce policy: calls to it travel in plaintext, policies meant for it are not enforced, and clients that require ISTIO_MUTUAL fail; {fix}",
            join(&deps.strong)
        )
    };
    let f = ctx.at(STR0601, w.object, &field, message);
    if deps.strong.is_empty() {
        f.level(Level::Info);
    }
}
