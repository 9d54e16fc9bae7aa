//! Authorization as the proxies enforce it: rules whose HTTP-only fields meet a port that
//! carries no HTTP (STR0305), ALLOW rules no caller of the mesh can satisfy (STR0306),
//! policies that also select workloads without a proxy (STR0307), and methods in lower case,
//! which match no request (STR0308).
//!
//! A policy selects what the proxies' own compiler says it selects
//! ([`strait_model::compile::policy_applies`]), targetRefs to gateways included, so the
//! analyzer and the enforcement agree. On a TCP port Istio (and strait) cannot see hosts,
//! methods, paths, headers or JWTs: an ALLOW rule naming one never matches there, and a DENY
//! rule matches without it, which can mean every connection.

mod identities;
mod methods;
mod ports;

use identities::{Identities, check_unsatisfiable};
use methods::check_method_case;
use ports::check_http_on_tcp;

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::istio::security::{AuthorizationAction, AuthorizationPolicySpec};
use strait_model::compile::{policy_applies, target_refs};
use strait_model::workload::WorkloadIndex;
use strait_model::{ClusterId, Injection, Mesh, ObjId, Workload};

use super::injection::{is_replica, is_system_namespace};
use super::util::{self, join};
use crate::catalog::STR0307;
use crate::context::Ctx;

/// An AuthorizationPolicy of one control plane and the workloads it applies to (pods that
/// are replicas of a controller in the input are left out: the controller stands for them).
pub(super) struct Policy<'m> {
    id: ObjId,
    spec: &'m AuthorizationPolicySpec,
    action: AuthorizationAction,
    selected: Vec<&'m Workload>,
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let ids = Identities::of(mesh);
    // Once: a replica test looks at every workload.
    let replicas: Vec<bool> = mesh.workloads.iter().map(|w| is_replica(mesh, w)).collect();
    for c in mesh.primaries() {
        let policies = policies(mesh, c.id, &replicas);
        for p in &policies {
            check_without_sidecar(ctx, p);
            check_method_case(ctx, p);
            let targets: Vec<&Workload> = p
                .selected
                .iter()
                .copied()
                .filter(|w| enforced(mesh, w))
                .collect();
            if targets.is_empty() {
                continue;
            }
            if matches!(
                p.action,
                AuthorizationAction::Allow | AuthorizationAction::Deny
            ) {
                check_http_on_tcp(ctx, c.id, p, &targets, &policies);
            }
            if p.action == AuthorizationAction::Allow {
                check_unsatisfiable(ctx, c.id, p, &targets, &ids);
            }
        }
    }
}

fn policies<'m>(mesh: &'m Mesh, cluster: ClusterId, replicas: &[bool]) -> Vec<Policy<'m>> {
    let root = mesh.cluster(cluster).root_namespace();
    let served = mesh.served_by(cluster);
    let workloads = WorkloadIndex::new(
        mesh.workloads
            .iter()
            .filter(|w| served.contains(&w.cluster) && !replicas[w.id.0 as usize]),
    );
    util::in_cluster(mesh, cluster, Kind::AuthorizationPolicy)
        .filter_map(|(id, o)| {
            let spec = &o.authorization_policy()?.spec;
            let refs = target_refs(spec.target_ref.as_ref(), &spec.target_refs);
            let sel = spec.selector.as_ref().map(|s| &s.match_labels);
            // A policy applies only in its own namespace unless it is in the root one, and
            // without targetRefs only to what its selector selects.
            let scope = (o.namespace() != root).then_some(o.namespace());
            let candidates: Vec<&Workload> = match sel {
                Some(sel) if refs.is_empty() => workloads.select(scope, sel).collect(),
                _ => match scope {
                    Some(ns) => workloads.in_namespace(ns).to_vec(),
                    None => workloads.all().to_vec(),
                },
            };
            let selected = candidates
                .into_iter()
                .filter(|w| policy_applies(root, o.namespace(), sel, &refs, w))
                .collect();
            Some(Policy {
                id,
                spec,
                action: spec.action.unwrap_or(AuthorizationAction::Allow),
                selected,
            })
        })
        .collect()
}

/// Whether a proxy may enforce policy for `w`: unknown injection (namespace not in the
/// manifests), WorkloadEntries and ambient workloads get the benefit of the doubt, as in IST0127.
fn enforced(mesh: &Mesh, w: &Workload) -> bool {
    match &w.sidecar {
        Injection::NotInjected(_) => mesh.is_ambient(w),
        _ => true,
    }
}

/// Where a finding about the policy's selection points.
fn selection_field(spec: &AuthorizationPolicySpec) -> &'static str {
    if spec
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty())
    {
        "spec.selector.matchLabels"
    } else if !spec.target_refs.is_empty() {
        "spec.targetRefs"
    } else if spec.target_ref.is_some() {
        "spec.targetRef"
    } else {
        "metadata.name"
    }
}

/// Up to `max` names, then how many more.
pub(super) fn some_of(mut names: Vec<String>, max: usize) -> String {
    let more = names.len().saturating_sub(max);
    names.truncate(max);
    if more > 0 {
        names.push(format!("{more} more"));
    }
    join(&names)
}

/// STR0307: a policy that reaches workloads with a proxy and others without one. (Only
/// workloads without one: IST0127.)
fn check_without_sidecar(ctx: &mut Ctx, p: &Policy) {
    let mesh = ctx.mesh;
    let mut bare: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for w in &p.selected {
        let Injection::NotInjected(why) = &w.sidecar else {
            continue;
        };
        // Istio's own namespace and Kubernetes' run no sidecars by design.
        if mesh.is_ambient(w)
            || is_system_namespace(&w.namespace)
            || w.namespace == mesh.cluster(w.cluster).istio_namespace
        {
            continue;
        }
        bare.entry(why)
            .or_default()
            .push(format!("{}/{}", w.namespace, w.name));
    }
    if bare.is_empty() || !p.selected.iter().any(|w| enforced(mesh, w)) {
        return;
    }
    let count: usize = bare.values().map(Vec::len).sum();
    let listed: Vec<String> = bare
        .iter()
        .map(|(why, names)| format!("{} ({why})", some_of(names.clone(), 4)))
        .collect();
    let it = if count == 1 { "it" } else { "them" };
    let effect = match p.action {
        AuthorizationAction::Deny => format!(": what it denies reaches {it}"),
        AuthorizationAction::Allow => format!(": callers it does not allow reach {it}"),
        _ => String::new(),
    };
    let field = selection_field(p.spec);
    let narrow = if field == "metadata.name" {
        ""
    } else {
        ", or narrow the policy to the workloads it is meant for"
    };
    ctx.at(
        STR0307,
        p.id,
        field,
        format!(
            "{count} of the {} workloads this policy applies to {} no sidecar: {}. Only a proxy enforces an AuthorizationPolicy, so requests to {it} are not checked against this one{effect}; inject a sidecar into {it} (or enroll {it} in ambient mode){narrow}",
            p.selected.len(),
            if count == 1 { "has" } else { "have" },
            listed.join("; ")
        ),
    );
}
