//! AuthorizationPolicy and RequestAuthentication: what strait cannot check, and how each
//! case fails closed instead.

use strait_api::Kind;
use strait_api::istio::PolicyTargetReference;

use super::NotApplied;
use crate::ids::ObjId;
use crate::mesh::Mesh;

/// Security policy strait enforces only in part: what it cannot check, and how it fails
/// closed instead.
pub(super) fn report(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    use strait_api::istio::security::AuthorizationAction;
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::AuthorizationPolicy) {
            let Some(p) = o.authorization_policy() else {
                continue;
            };
            let p = &p.spec;
            target_refs(
                id,
                o.namespace(),
                c.root_namespace(),
                p.selector.is_some(),
                p.target_ref.as_ref(),
                &p.target_refs,
                out,
            );
            let action = p.action.unwrap_or(AuthorizationAction::Allow);
            if action == AuthorizationAction::Custom {
                out.push(NotApplied::new(
                    id,
                    "spec.action".into(),
                    "CUSTOM (an external authorizer) is not supported: every request to the workloads it selects is denied (fail closed)",
                ));
            }
            for (i, r) in p.rules.iter().enumerate() {
                let fail = if action == AuthorizationAction::Allow {
                    "this ALLOW rule never matches (fail closed)"
                } else {
                    "left out of this rule, which then matches more (fail closed)"
                };
                for (j, f) in r.from.iter().enumerate() {
                    if f.source.as_ref().is_some_and(|s| {
                        !s.trust_domains.is_empty() || !s.not_trust_domains.is_empty()
                    }) {
                        out.push(NotApplied::new(
                            id,
                            format!("spec.rules[{i}].from[{j}].source.trustDomains"),
                            &format!("not checked: {fail}"),
                        ));
                    }
                }
                for (j, t) in r.to.iter().enumerate() {
                    let Some(op) = &t.operation else { continue };
                    for (field, list) in [("ports", &op.ports), ("notPorts", &op.not_ports)] {
                        for (k, v) in list.iter().enumerate() {
                            if !v.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n)) {
                                out.push(NotApplied::new(
                                    id,
                                    format!("spec.rules[{i}].to[{j}].operation.{field}[{k}]"),
                                    &format!("{v:?} is not a port number: {fail}"),
                                ));
                            }
                        }
                    }
                }
                for (j, cond) in r.when.iter().enumerate() {
                    if crate::compile::condition_key(&cond.key).is_none() {
                        out.push(NotApplied::new(
                            id,
                            format!("spec.rules[{i}].when[{j}].key"),
                            &format!("{:?} is not a condition strait knows: {fail}", cond.key),
                        ));
                    }
                }
            }
        }
        for (id, o) in c.of_kind(Kind::RequestAuthentication) {
            let Some(ra) = o.request_authentication() else {
                continue;
            };
            target_refs(
                id,
                o.namespace(),
                c.root_namespace(),
                ra.spec.selector.is_some(),
                ra.spec.target_ref.as_ref(),
                &ra.spec.target_refs,
                out,
            );
        }
    }
}

/// Target references a policy names that select no proxy strait runs.
fn target_refs(
    id: ObjId,
    namespace: &str,
    root: &str,
    has_selector: bool,
    one: Option<&PolicyTargetReference>,
    many: &[PolicyTargetReference],
    out: &mut Vec<NotApplied>,
) {
    let (field, refs): (&str, Vec<&PolicyTargetReference>) = match one {
        Some(r) => ("spec.targetRef", vec![r]),
        None => ("spec.targetRefs", many.iter().collect()),
    };
    if has_selector && !refs.is_empty() {
        out.push(NotApplied::new(
            id,
            field.into(),
            "Istio rejects a policy with both a selector and targetRefs: strait applies it to the workloads of both, so that neither is left unenforced",
        ));
    }
    for (k, r) in refs.iter().enumerate() {
        let path = if one.is_some() {
            field.to_string()
        } else {
            format!("{field}[{k}]")
        };
        let gateway_api = r.group.is_empty() || r.group == "gateway.networking.k8s.io";
        let what = match r.kind.as_str() {
            "Gateway" if gateway_api && !r.namespace.is_empty() && r.namespace != namespace => {
                format!(
                    "a Gateway in namespace {:?} cannot be targeted from {namespace:?}: this reference selects nothing",
                    r.namespace
                )
            }
            "Gateway" if gateway_api => continue,
            "GatewayClass" if gateway_api && namespace == root => continue,
            "GatewayClass" if gateway_api => format!(
                "a GatewayClass is targeted from the root namespace ({root}) only: this reference selects nothing"
            ),
            kind => format!(
                "{kind} {:?} is a waypoint's target (ambient mode), and strait runs no waypoints: no proxy enforces this reference",
                r.name
            ),
        };
        out.push(NotApplied::new(id, path, &what));
    }
}
