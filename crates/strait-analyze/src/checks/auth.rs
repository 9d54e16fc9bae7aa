//! Authorization checks: AuthorizationPolicies that select no proxied workload (IST0127) or name
//! source namespaces that do not exist (IST0101), and istiod fetching JWKS from any address
//! (IST0175).
//!
//! Selectors are matched against the workloads the manifests define (pods and pod templates),
//! so a policy is only judged where the manifests show its namespace's workloads.

use std::collections::{BTreeMap, BTreeSet};

use strait_api::Kind;
use strait_api::istio::security::AuthorizationPolicySpec;
use strait_model::workload::WorkloadIndex;
use strait_model::{ClusterId, Injection, Mesh, ObjId, Workload, selector};

use super::util::{self, join};
use crate::catalog::{IST0101, IST0127, IST0175, STR0304};
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in mesh.primaries() {
        let served = mesh.served_by(c.id);
        let workloads = WorkloadIndex::new(
            mesh.workloads
                .iter()
                .filter(|w| served.contains(&w.cluster)),
        );
        for (id, o) in util::in_cluster(mesh, c.id, Kind::AuthorizationPolicy) {
            let Some(ap) = o.authorization_policy() else {
                continue;
            };
            check_selector(ctx, c.id, &workloads, id, o.namespace(), &ap.spec);
        }
        check_jwks_fetching(ctx, c.id);
        check_implicit_namespace(ctx, c.id);
    }
    check_source_namespaces(ctx);
}

/// Whether something may enforce a policy on `w`. Unknown injection (the namespace is not in
/// the manifests) and WorkloadEntries (the VM may run a proxy) get the benefit of the doubt.
fn may_enforce(mesh: &Mesh, w: &Workload) -> bool {
    match &w.sidecar {
        Injection::NotInjected(_) => mesh.is_ambient(w),
        _ => true,
    }
}

/// IST0127: a policy whose selector (or namespace) reaches no workload with a proxy.
fn check_selector(
    ctx: &mut Ctx,
    cluster: ClusterId,
    workloads: &WorkloadIndex,
    id: ObjId,
    ns: &str,
    spec: &AuthorizationPolicySpec,
) {
    let mesh = ctx.mesh;
    if spec.target_ref.is_some() || !spec.target_refs.is_empty() {
        return;
    }
    let root = mesh.cluster(cluster).root_namespace();
    let served = mesh.served_by(cluster);
    let within = (ns != root).then_some(ns);
    let candidates: &[&Workload] = match within {
        Some(ns) => workloads.in_namespace(ns),
        None => workloads.all(),
    };
    let scope = if ns == root {
        "in any namespace (it is in the root namespace)".to_string()
    } else {
        format!("in namespace {ns}")
    };
    let sel = spec
        .selector
        .as_ref()
        .map(|s| &s.match_labels)
        .filter(|m| !m.is_empty());
    if candidates.is_empty() {
        no_workloads(ctx, &served, id, ns, root, sel, &scope);
        return;
    }
    let Some(sel) = sel else {
        if ns == root || candidates.iter().any(|w| may_enforce(mesh, w)) {
            return;
        }
        let names: Vec<String> = candidates.iter().take(3).map(|w| w.name.clone()).collect();
        ctx.at(
            IST0127,
            id,
            "metadata.name",
            format!(
                "this namespace-wide policy applies to no proxy: none of the workloads in namespace {ns} ({}) has a sidecar, so nothing enforces it; enable injection for the namespace or enroll it in ambient mode",
                join(&names)
            ),
        );
        return;
    };
    let matched: Vec<&Workload> = workloads.select(within, sel).collect();
    if matched.is_empty() && !unseen_pods_may_match(mesh, &served, ns, root, sel) {
        ctx.at(
            IST0127,
            id,
            "spec.selector.matchLabels",
            format!(
                "selector {} matches no workload {scope}, so the policy protects nothing; fix the labels to match the pods it is meant for",
                selector::describe(sel)
            ),
        );
        return;
    }
    if matched.is_empty() || matched.iter().any(|w| may_enforce(mesh, w)) {
        return;
    }
    let names: Vec<String> = matched
        .iter()
        .take(3)
        .map(|w| format!("{}/{}", w.namespace, w.name))
        .collect();
    let reason = match &matched[0].sidecar {
        Injection::NotInjected(r) => r.clone(),
        _ => String::new(),
    };
    ctx.at(
        IST0127,
        id,
        "spec.selector.matchLabels",
        format!(
            "selector {} matches only workloads without a proxy ({}: {reason}), so nothing enforces the policy and every request is let through; inject a sidecar into them",
            selector::describe(sel),
            join(&names)
        ),
    );
}

/// IST0127 where the input shows no workload at all in the policy's reach, as istioctl reports
/// for a namespace without pods. The input is the whole world (Info under `--partial`), but a
/// Service that selects pods no manifest defines (an Argo Rollout, say) shows they exist.
fn no_workloads(
    ctx: &mut Ctx,
    served: &[ClusterId],
    id: ObjId,
    ns: &str,
    root: &str,
    sel: Option<&BTreeMap<String, String>>,
    scope: &str,
) {
    let mesh = ctx.mesh;
    match sel {
        // A selector-less policy in the root namespace is a mesh-wide default.
        None if ns == root => {}
        None => {
            let unseen =
                mesh.registry.all().iter().any(|s| {
                    served.contains(&s.cluster) && s.namespace == ns && s.selector.is_some()
                });
            if unseen {
                return;
            }
            ctx.not_found(
                IST0127,
                id,
                "metadata.name",
                format!(
                    "this namespace-wide policy applies to no workload: namespace {ns} has none, so the policy protects nothing; put it in the namespace of the workloads it is meant for"
                ),
            );
        }
        Some(sel) => {
            if unseen_pods_may_match(mesh, served, ns, root, sel) {
                return;
            }
            ctx.not_found(
                IST0127,
                id,
                "spec.selector.matchLabels",
                format!(
                    "selector {} matches no workload {scope}: there are none, so the policy protects nothing; put it in the namespace of the workloads it is meant for",
                    selector::describe(sel)
                ),
            );
        }
    }
}

/// Whether pods the manifests do not define (a Service selects them, but no workload here
/// has their labels: an Argo Rollout, a CronJob, another repository) may match `sel`.
fn unseen_pods_may_match(
    mesh: &Mesh,
    served: &[ClusterId],
    ns: &str,
    root: &str,
    sel: &BTreeMap<String, String>,
) -> bool {
    mesh.registry.all().iter().any(|s| {
        served.contains(&s.cluster)
            && (ns == root || s.namespace == ns)
            && s.selector
                .as_ref()
                .is_some_and(|ss| selector::plausibly_same_pods(ss, sel))
            && mesh.endpoints_of(s).is_empty()
    })
}

/// Istio's namespace pattern: `*`, `*suffix`, `prefix*` or an exact (case-insensitive) name.
fn namespace_matches(pattern: &str, ns: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return ns.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return ns.starts_with(prefix);
    }
    pattern.eq_ignore_ascii_case(ns)
}

/// Every namespace the manifests show to exist, in any cluster: Namespace objects, namespaces
/// that hold objects, the Istio and root namespaces, and Kubernetes' own.
fn known_namespaces(mesh: &Mesh) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in &mesh.clusters {
        out.extend(c.namespaces.keys().cloned());
        out.insert(c.istio_namespace.clone());
        out.insert(c.root_namespace().to_string());
        out.extend(
            c.objects
                .iter()
                .map(|o| o.namespace().to_string())
                .filter(|n| !n.is_empty()),
        );
    }
    out.extend(mesh.workloads.iter().map(|w| w.namespace.clone()));
    out
}

/// IST0101: `source.namespaces` / `notNamespaces` entries naming no namespace that exists.
fn check_source_namespaces(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let known = known_namespaces(mesh);
    for (id, o) in util::objects(mesh, Kind::AuthorizationPolicy) {
        // Only judge clusters whose manifests define their namespaces.
        if mesh.cluster(id.cluster).namespaces.is_empty() {
            continue;
        }
        let Some(ap) = o.authorization_policy() else {
            continue;
        };
        for (i, rule) in ap.spec.rules.iter().enumerate() {
            for (j, from) in rule.from.iter().enumerate() {
                let Some(src) = &from.source else { continue };
                let lists = [
                    ("namespaces", &src.namespaces),
                    ("notNamespaces", &src.not_namespaces),
                ];
                for (field, list) in lists {
                    for (k, pattern) in list.iter().enumerate() {
                        if known.iter().any(|ns| namespace_matches(pattern, ns)) {
                            continue;
                        }
                        let what = if pattern.contains('*') {
                            "matches no namespace"
                        } else {
                            "names a namespace that does not exist"
                        };
                        let effect = if field == "namespaces" {
                            "this source never matches, so the rule never allows (or denies) anything from it"
                        } else {
                            "the exclusion has no effect"
                        };
                        ctx.at(
                            IST0101,
                            id,
                            &format!("spec.rules[{i}].from[{j}].source.{field}[{k}]"),
                            format!("referenced namespace not found: \"{pattern}\" {what} in the manifests of any cluster; {effect}; check the spelling"),
                        );
                    }
                }
            }
        }
    }
}

/// IST0175: RequestAuthentications make istiod fetch JWKS, and nothing restricts where from.
fn check_jwks_fetching(ctx: &mut Ctx, cluster: ClusterId) {
    let mesh = ctx.mesh;
    let c = mesh.cluster(cluster);
    let fetching: Vec<String> = util::in_cluster(mesh, cluster, Kind::RequestAuthentication)
        .filter(|(_, o)| {
            o.request_authentication()
                .is_some_and(|ra| ra.spec.jwt_rules.iter().any(|r| r.jwks.is_empty()))
        })
        .map(|(_, o)| format!("{}/{}", o.namespace(), o.name()))
        .collect();
    if fetching.is_empty() {
        return;
    }
    let operator_sets = c.operators().any(|(_, op)| {
        op.spec
            .value_str("pilot.env.BLOCKED_CIDRS_IN_JWKS_URIS")
            .is_some()
            || op
                .spec
                .components
                .as_ref()
                .and_then(|comp| comp.pilot.as_ref())
                .and_then(|p| p.k8s.as_ref())
                .is_some_and(|k| k.env.iter().any(|e| e.name == "BLOCKED_CIDRS_IN_JWKS_URIS"))
    });
    if operator_sets {
        return;
    }
    let mut shown: Vec<String> = fetching.iter().take(5).cloned().collect();
    if fetching.len() > 5 {
        shown.push(format!("{} more", fetching.len() - 5));
    }
    for (id, o) in c.of_kind(Kind::Deployment) {
        if !(o.name().starts_with("istiod") || o.label("app") == Some("istiod")) {
            continue;
        }
        let Some(spec) = o.deployment().and_then(|d| d.spec.template.spec.as_ref()) else {
            continue;
        };
        let set = spec.containers.iter().any(|ct| {
            ct.env.iter().flatten().any(|e| {
                e.name == "BLOCKED_CIDRS_IN_JWKS_URIS"
                    && (e.value.as_deref().is_some_and(|v| !v.is_empty()) || e.value_from.is_some())
            })
        });
        if set {
            continue;
        }
        let container = spec
            .containers
            .iter()
            .position(|ct| ct.name == "discovery")
            .unwrap_or(0);
        let path = if spec
            .containers
            .get(container)
            .is_some_and(|ct| ct.env.is_some())
        {
            format!("spec.template.spec.containers[{container}].env")
        } else {
            format!("spec.template.spec.containers[{container}]")
        };
        ctx.at(
            IST0175,
            id,
            &path,
            format!(
                "istiod fetches JSON Web Key Sets for {} RequestAuthentication(s) ({}) from whatever URI they name, internal and cloud-metadata addresses included; set BLOCKED_CIDRS_IN_JWKS_URIS on istiod (e.g. \"169.254.169.254/32,10.0.0.0/8\") so a policy author cannot make istiod call them",
                fetching.len(),
                join(&shown)
            ),
        );
    }
}

/// STR0304: a selector-less security policy whose manifest states no namespace. It applies to
/// the namespace `kubectl apply` happens to target (`default` unless `-n`), which is rarely what
/// a policy named like a mesh-wide default means.
fn check_implicit_namespace(ctx: &mut Ctx, cluster: ClusterId) {
    let mesh = ctx.mesh;
    let root = mesh.cluster(cluster).root_namespace().to_string();
    for kind in [
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
    ] {
        for (id, o) in util::in_cluster(mesh, cluster, kind) {
            let tree = o.source.root();
            let stated = tree
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .is_some();
            let spec = tree.get("spec");
            let selector = ["selector", "targetRefs", "targetRef"]
                .iter()
                .any(|field| spec.and_then(|s| s.get(field)).is_some());
            if stated || selector {
                continue;
            }
            ctx.at_key(
                STR0304,
                id,
                "metadata",
                format!(
                    "{} {} names no namespace, so it applies only to the namespace it is applied in ({} unless `kubectl apply -n` says otherwise), not to the mesh. Set metadata.namespace: {root} for a mesh-wide policy, or the namespace you mean",
                    kind,
                    o.name(),
                    o.namespace()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::namespace_matches;

    #[test]
    fn namespace_patterns_like_istio() {
        assert!(namespace_matches("*", "anything"));
        assert!(namespace_matches("*-prod", "shop-prod"));
        assert!(namespace_matches("team-*", "team-a"));
        assert!(namespace_matches("Shop", "shop"));
        assert!(!namespace_matches("team-*", "other"));
        assert!(!namespace_matches("*-prod", "shop-staging"));
    }
}
