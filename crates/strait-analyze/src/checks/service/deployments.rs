//! IST0116 and IST0137 on the workload, as istioctl's `deployment.MultiServiceAnalyzer` reports
//! them: for each in-mesh Deployment (and StatefulSet, DaemonSet), the Services of its namespace
//! whose non-empty selector matches its pod template, compared as written:
//!
//! - IST0116: one service port number with different transport protocols (`protocol`, TCP when
//!   unset);
//! - IST0137: one target port (as written; the port itself when unset) under different service
//!   port numbers.
//!
//! istioctl also counts two ports of a single Service (a DNS Service with 53/TCP and 53/UDP);
//! strait needs two Services, as istioctl's message says: one Service listing a port twice is
//! the ordinary way to serve both transports. Waypoints (`gateway.istio.io/managed:
//! istio.io-mesh-controller`) and gateways are skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::ServiceSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use strait_api::{Kind, Object, Pos};
use strait_model::selector::SelectorIndex;
use strait_model::{ClusterId, Injection, Mesh, ObjId};

use super::super::util::join;
use crate::catalog::{IST0116, IST0137};
use crate::context::Ctx;

/// One port of one Service selecting the workload.
struct SvcPort {
    service: String,
    number: i32,
    protocol: String,
    target: String,
    pos: Pos,
}

fn target_of(number: i32, target: Option<&IntOrString>) -> String {
    match target {
        Some(IntOrString::Int(n)) if *n != 0 => n.to_string(),
        Some(IntOrString::String(s)) if !s.is_empty() => s.clone(),
        _ => number.to_string(),
    }
}

fn services(ports: &[&SvcPort]) -> BTreeSet<String> {
    ports.iter().map(|p| p.service.clone()).collect()
}

/// The Services of one namespace of one cluster that have a selector, in object order, with
/// their selectors indexed: a workload looks only at the Services its labels can match, not at
/// every Service of its cluster.
#[derive(Default)]
struct Namespace<'m> {
    services: Vec<(
        ObjId,
        &'m Object,
        &'m ServiceSpec,
        &'m BTreeMap<String, String>,
    )>,
    index: SelectorIndex<'m>,
}

fn namespaces(mesh: &Mesh) -> HashMap<(ClusterId, &str), Namespace<'_>> {
    let mut out: HashMap<(ClusterId, &str), Namespace> = HashMap::new();
    for c in &mesh.clusters {
        for (id, o) in c.of_kind(Kind::Service) {
            let Some(spec) = o.service().and_then(|s| s.spec.as_ref()) else {
                continue;
            };
            let Some(sel) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
                continue;
            };
            out.entry((c.id, o.namespace()))
                .or_default()
                .services
                .push((id, o, spec, sel));
        }
    }
    for ns in out.values_mut() {
        ns.index = SelectorIndex::new(ns.services.iter().map(|s| s.3));
    }
    out
}

pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let namespaces = namespaces(mesh);
    for w in &mesh.workloads {
        if !w.kind.is_controller()
            || !matches!(w.sidecar, Injection::Injected(_))
            || w.gateway.is_some()
        {
            continue;
        }
        let obj = mesh.object(w.object);
        if obj.label("gateway.istio.io/managed") == Some("istio.io-mesh-controller") {
            continue;
        }
        let mut ports = Vec::new();
        let selecting = namespaces
            .get(&(w.cluster, w.namespace.as_str()))
            .map(|ns| {
                ns.index
                    .selecting(&w.labels, |i| ns.services[i].3)
                    .into_iter()
                    .map(|i| &ns.services[i])
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for (id, o, spec, _) in selecting {
            for (i, p) in spec.ports.iter().flatten().enumerate() {
                ports.push(SvcPort {
                    service: format!("{}/{}", o.namespace(), o.name()),
                    number: p.port,
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                    target: target_of(p.port, p.target_port.as_ref()),
                    pos: ctx.pos(*id, &format!("spec.ports[{i}].port")),
                });
            }
        }
        let who = format!("{} {}/{}", obj.kind, w.namespace, w.name);

        let mut by_number: BTreeMap<i32, Vec<&SvcPort>> = BTreeMap::new();
        for p in &ports {
            by_number.entry(p.number).or_default().push(p);
        }
        for (number, uses) in &by_number {
            let protocols: BTreeSet<&str> = uses.iter().map(|p| p.protocol.as_str()).collect();
            if protocols.len() < 2 || services(uses).len() < 2 {
                continue;
            }
            let listed: Vec<String> = uses
                .iter()
                .map(|p| format!("Service {} ({})", p.service, p.protocol))
                .collect();
            let f = ctx.at(
                IST0116,
                w.object,
                "metadata.name",
                format!(
                    "{who} is selected by several Services that use port {number} with different protocols: {}. Istio keys a workload's service ports by number and cannot keep both; give them different port numbers",
                    join(&listed)
                ),
            );
            for p in uses {
                f.related(
                    format!("Service {} port {} ({})", p.service, p.number, p.protocol),
                    p.pos,
                );
            }
        }

        let mut by_target: BTreeMap<&str, Vec<&SvcPort>> = BTreeMap::new();
        for p in &ports {
            by_target.entry(p.target.as_str()).or_default().push(p);
        }
        for (target, uses) in &by_target {
            let numbers: BTreeSet<i32> = uses.iter().map(|p| p.number).collect();
            if numbers.len() < 2 || services(uses).len() < 2 {
                continue;
            }
            let listed: Vec<String> = uses
                .iter()
                .map(|p| format!("Service {} port {}", p.service, p.number))
                .collect();
            let f = ctx.at(
                IST0137,
                w.object,
                "metadata.name",
                format!(
                    "{who} is selected by several Services that send to its target port \"{target}\" from different service ports: {}. The sidecar configures that workload port from one of the Services only, so port-specific settings (VirtualService port matches, DestinationRule portLevelSettings) of the other do not apply. Use the same service port number in each Service",
                    join(&listed)
                ),
            );
            for p in uses {
                f.related(format!("Service {} port {}", p.service, p.number), p.pos);
            }
        }
    }
}
