//! Sidecar injection: namespaces without (or with too many) injection labels, pods that missed
//! their proxy, `image: auto` templates nothing will inject, and workloads the mesh routes to or
//! secures that get no sidecar (pitfall (a)).
//!
//! The injection rules mirror Istio's default webhooks (see the model's `workload::injection`):
//! namespace label `istio-injection` beats `istio.io/rev`, a pod label
//! `sidecar.istio.io/inject=false` opts out, host-network pods are never injected.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec};
use strait_api::istio::security::{MtlsMode, PeerAuthenticationSpec};
use strait_api::{Kind, Object};
use strait_model::workload::NamespaceInfo;
use strait_model::{Injection, Mesh, ServiceId, Workload, WorkloadKind, selector};

use super::util::{self, join};
use crate::catalog::{IST0102, IST0103, IST0123, IST0146, IST0147, IST0148, STR0601};
use crate::context::Ctx;
use crate::finding::Level;

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
    if w.kind != WorkloadKind::Pod || w.labels.is_empty() {
        return false;
    }
    let owned = mesh
        .object(w.object)
        .meta()
        .owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty());
    owned
        && mesh.workloads.iter().any(|o| {
            matches!(
                o.kind,
                WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
            ) && o.cluster == w.cluster
                && o.namespace == w.namespace
                && !o.labels.is_empty()
                && selector::map_selects(&o.labels, &w.labels)
        })
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
    check_namespaces(ctx);
    check_pods(ctx);
    check_image_auto(ctx);
    check_workloads_without_sidecar(ctx);
}

/// IST0102, IST0123 and IST0148.
fn check_namespaces(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        for (id, o) in c.of_kind(Kind::Namespace) {
            let name = o.name();
            let present: Vec<String> = INJECTION_LABELS
                .iter()
                .filter_map(|l| o.label(l).map(|v| format!("{l}={v}")))
                .collect();
            if let Some(message) = conflicting_labels(o) {
                ctx.at_key(IST0123, id, "metadata.labels", message);
            }
            if is_system_namespace(name) || name == c.istio_namespace || !present.is_empty() {
                continue;
            }
            if c.inject_by_default {
                ctx.at_key(
                    IST0148,
                    id,
                    "metadata",
                    format!(
                        "namespace {name} has no injection label, but cluster {}'s injector injects every namespace by default (sidecarInjectorWebhook.enableNamespacesByDefault): its pods get sidecars. Label it istio-injection=disabled to keep it out of the mesh, or istio-injection=enabled to say so",
                        c.name
                    ),
                );
                continue;
            }
            let workloads = mesh
                .workloads_in(c.id)
                .filter(|w| w.namespace == name && w.kind != WorkloadKind::WorkloadEntry)
                .count();
            let what = if workloads > 0 {
                format!("its {workloads} workload(s) get no sidecar")
            } else {
                "pods created in it get no sidecar".to_string()
            };
            ctx.at(
                IST0102,
                id,
                "metadata",
                format!(
                    "namespace {name} is not enabled for sidecar injection (no istio-injection or istio.io/rev label), so {what}; if it belongs to the mesh, run `kubectl label namespace {name} istio-injection=enabled`"
                ),
            );
        }
    }
}

/// IST0123: labels that ask for different data planes. `istio-injection=disabled` asks for
/// none, so it conflicts with nothing.
fn conflicting_labels(o: &Object) -> Option<String> {
    let name = o.name();
    let injection = o.label("istio-injection").filter(|v| *v != "disabled");
    let rev = o.label("istio.io/rev");
    let ambient = o.label("istio.io/dataplane-mode").filter(|v| *v != "none");
    let set = [injection.is_some(), rev.is_some(), ambient.is_some()];
    if set.iter().filter(|s| **s).count() < 2 {
        return None;
    }
    let shown: Vec<String> = INJECTION_LABELS
        .iter()
        .filter_map(|l| o.label(l).map(|v| format!("{l}={v}")))
        .collect();
    let effect = match (injection, rev) {
        (Some(i), Some(r)) => format!(
            "istio-injection={i} takes precedence, so the namespace is injected by the default revision, not by revision {r}"
        ),
        _ => "pods get a sidecar, and ambient mode skips pods that have one, so the dataplane-mode label has no effect".to_string(),
    };
    Some(format!(
        "namespace {name} has several injection labels ({}): {effect}. Keep only the one you mean",
        join(&shown)
    ))
}

/// IST0103 (running pods without their proxy) and IST0147 (pods still holding `image: auto`).
fn check_pods(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in mesh
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Pod)
    {
        let obj = mesh.object(w.object);
        let Some(spec) = w.pod_spec(obj) else {
            continue;
        };
        for (path, c) in containers(spec) {
            if c.image.as_deref() == Some("auto") {
                ctx.at(
                    IST0147,
                    w.object,
                    &format!("spec.{path}.image"),
                    format!(
                        "container {} of pod {}/{} still has `image: auto`: the injector never ran for this pod, so the image cannot be pulled and the pod will not start. Check that the namespace or pod is selected by the injection webhook and recreate the pod",
                        c.name, w.namespace, w.name
                    ),
                );
            }
        }
        let phase = obj
            .pod()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let ns_enabled = mesh
            .cluster(w.cluster)
            .namespaces
            .get(&w.namespace)
            .and_then(|n| n.labels.get("istio-injection"))
            .is_some_and(|v| v == "enabled");
        if !ns_enabled
            || is_system_namespace(&w.namespace)
            || w.host_network
            || opts_out(w)
            || w.gateway.is_some()
        {
            continue;
        }
        if proxy_container(spec).is_some() {
            continue;
        }
        ctx.at_key(
            IST0103,
            w.object,
            "spec.containers",
            format!(
                "pod {}/{} has no istio-proxy container although namespace {} has istio-injection=enabled: it was created before the label was set, or injection failed. It is outside the mesh until it is recreated (e.g. `kubectl rollout restart` its controller)",
                w.namespace, w.name, w.namespace
            ),
        );
    }
}

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

/// Whether the default webhooks would inject a pod, judged from labels alone. Unlike the
/// model's verdict, an `istio-proxy` container already in the template does not count: with
/// `image: auto` it is a placeholder the injector has to fill in.
enum Verdict {
    Yes,
    No(String),
    Unknown,
}

fn would_inject(ns: Option<&NamespaceInfo>, w: &Workload, by_default: bool) -> Verdict {
    if w.host_network {
        return Verdict::No("pods on the host network are never injected".into());
    }
    if opts_out(w) {
        return Verdict::No("the pod opts out with sidecar.istio.io/inject=false".into());
    }
    let pod_opt_in = w.label(OPT_OUT) == Some("true") || w.label("istio.io/rev").is_some();
    let Some(ns) = ns else {
        return if pod_opt_in {
            Verdict::Yes
        } else {
            Verdict::Unknown
        };
    };
    if is_system_namespace(&ns.name) {
        return Verdict::No(format!("namespace {} is never injected", ns.name));
    }
    match ns.labels.get("istio-injection").map(String::as_str) {
        Some("enabled") => return Verdict::Yes,
        Some(other) => {
            return Verdict::No(format!("namespace {} has istio-injection={other}", ns.name));
        }
        None => {}
    }
    if ns.labels.contains_key("istio.io/rev") || pod_opt_in || by_default {
        return Verdict::Yes;
    }
    Verdict::No(format!(
        "namespace {} has no istio-injection or istio.io/rev label and the pod no sidecar.istio.io/inject=true label",
        ns.name
    ))
}

/// IST0146: a controller template with an `image: auto` istio-proxy container that nothing
/// will inject.
fn check_image_auto(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in &mesh.workloads {
        if !matches!(
            w.kind,
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
        ) {
            continue;
        }
        let obj = mesh.object(w.object);
        let Some(spec) = w.pod_spec(obj) else {
            continue;
        };
        let Some((path, c)) = proxy_container(spec) else {
            continue;
        };
        if c.image.as_deref() != Some("auto") {
            continue;
        }
        let c = mesh.cluster(w.cluster);
        let Verdict::No(reason) =
            would_inject(c.namespaces.get(&w.namespace), w, c.inject_by_default)
        else {
            continue;
        };
        ctx.at(
            IST0146,
            w.object,
            &format!("{}.{path}.image", w.pod_spec_path()),
            format!(
                "{} {}/{} uses `image: auto` for istio-proxy, but its pods will not be injected ({reason}); they will fail to pull the image \"auto\". Enable injection for them (e.g. label the pod template sidecar.istio.io/inject=\"true\") or set a real image",
                obj.kind, w.namespace, w.name
            ),
        );
    }
}

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
                .chain(r.mirror.iter())
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

fn requires_mtls(spec: &PeerAuthenticationSpec) -> bool {
    spec.mode() == Some(MtlsMode::Strict)
        || spec
            .port_level_mtls
            .values()
            .any(|m| m.mode == Some(MtlsMode::Strict))
}

/// STR0601: a workload without sidecar that the mesh routes to, secures, or surrounds.
fn check_workloads_without_sidecar(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let traffic = traffic_dependents(mesh);
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
