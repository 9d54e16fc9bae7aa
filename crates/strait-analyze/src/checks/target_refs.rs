//! Policies that pick a Gateway API gateway by `selector` (IST0166). Istio attaches policies to
//! a Kubernetes Gateway (gateway.networking.k8s.io) through `targetRef(s)`; a workload selector
//! that happens to match the gateway's pods does not apply the policy to the gateway.
//!
//! Mirrors istioctl's `k8sgateway.SelectorAnalyzer`: an AuthorizationPolicy,
//! RequestAuthentication, Telemetry or WasmPlugin with a `selector` and no `targetRef`, whose labels all
//! appear on a pod (or pod template) in its namespace that carries
//! `gateway.networking.k8s.io/gateway-name` (the label Istio puts on the pods it deploys for a
//! Gateway). An empty selector matches every such pod, as in istioctl. Like istioctl, only the
//! singular `targetRef` exempts a policy (`targetRefs` together with a selector is already a
//! schema error).

use std::collections::{BTreeMap, BTreeSet};

use strait_api::Kind;
use strait_api::istio::{MatchLabels, PolicyTargetReference};
use strait_model::{ClusterId, ObjId};

use super::util;
use crate::catalog::IST0166;
use crate::context::Ctx;

/// The label Istio's gateway deployment controller puts on a Gateway API gateway's pods.
const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    // (cluster, namespace) → labels of its gateway pods.
    let mut gateway_pods: BTreeMap<(ClusterId, &str), Vec<&BTreeMap<String, String>>> =
        BTreeMap::new();
    for c in &mesh.clusters {
        for w in mesh.workloads_in(c.id) {
            if w.labels.contains_key(GATEWAY_NAME) {
                gateway_pods
                    .entry((c.id, w.namespace.as_str()))
                    .or_default()
                    .push(&w.labels);
            }
        }
    }
    if gateway_pods.is_empty() {
        return;
    }
    for kind in [
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
        Kind::Telemetry,
        Kind::WasmPlugin,
    ] {
        for (id, o) in util::objects(mesh, kind) {
            let Some((selector, target_ref)) = policy_selector(o) else {
                continue;
            };
            if target_ref.is_some() {
                continue;
            }
            let Some(selector) = selector else { continue };
            let Some(pods) = gateway_pods.get(&(id.cluster, o.namespace())) else {
                continue;
            };
            let gateways: BTreeSet<&str> = pods
                .iter()
                .filter(|labels| {
                    selector
                        .match_labels
                        .iter()
                        .all(|(k, v)| labels.get(k) == Some(v))
                })
                .filter_map(|labels| labels.get(GATEWAY_NAME).map(String::as_str))
                .collect();
            for gw in gateways {
                report(ctx, id, gw);
            }
        }
    }
}

type Selection<'a> = (&'a Option<MatchLabels>, &'a Option<PolicyTargetReference>);

fn policy_selector(o: &strait_api::Object) -> Option<Selection<'_>> {
    if let Some(p) = o.authorization_policy() {
        return Some((&p.spec.selector, &p.spec.target_ref));
    }
    if let Some(p) = o.request_authentication() {
        return Some((&p.spec.selector, &p.spec.target_ref));
    }
    if let Some(p) = o.wasm_plugin() {
        return Some((&p.spec.selector, &p.spec.target_ref));
    }
    o.telemetry()
        .map(|p| (&p.spec.selector, &p.spec.target_ref))
}

fn report(ctx: &mut Ctx, id: ObjId, gateway: &str) {
    ctx.at(
        IST0166,
        id,
        "spec.selector",
        format!(
            "the selector matches the pods of Kubernetes Gateway {gateway}, but a selector does not attach a policy to a Kubernetes Gateway, so it has no effect there: attach it with targetRefs (kind: Gateway, group: gateway.networking.k8s.io, name: {gateway}) instead"
        ),
    );
}
