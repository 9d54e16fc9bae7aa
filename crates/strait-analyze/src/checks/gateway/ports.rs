//! IST0162: a Gateway server port that no Service of the gateway pods exposes.
//!
//! istioctl's `gateway.IngressGatewayPortAnalyzer` takes every pod the Gateway's selector
//! matches (gateway proxy or not) and the Services selecting it in its namespace; a TCP
//! Service port counts, and so does its numeric `targetPort` (an absent `targetPort` is the
//! port itself). A server port outside that set is reported, and so is every server port when
//! no Service selects the pods at all. We also resolve a named `targetPort` through the pod's
//! container ports, where istioctl only counts the Service port.

use std::collections::BTreeSet;

use strait_model::service::TargetPort;
use strait_model::{Mesh, ServiceInstance, ServiceSource, Workload, WorkloadKind};

use super::Gw;
use crate::catalog::IST0162;
use crate::checks::util::join;
use crate::context::Ctx;

/// Whether a Service port carries TCP (Kubernetes' default when `protocol` is absent).
fn is_tcp(mesh: &Mesh, s: &ServiceInstance, index: usize) -> bool {
    if s.source != ServiceSource::Kubernetes {
        return true;
    }
    let protocol = mesh
        .object(s.object)
        .service()
        .and_then(|svc| svc.spec.as_ref())
        .and_then(|spec| spec.ports.as_ref())
        .and_then(|ports| ports.get(index))
        .and_then(|p| p.protocol.clone());
    protocol.is_none_or(|p| p.eq_ignore_ascii_case("TCP"))
}

/// What the Services of a Gateway's pods expose.
#[derive(Default)]
struct Exposed {
    /// TCP service ports and the ports they target.
    tcp: BTreeSet<u32>,
    /// Service ports for another protocol (UDP, SCTP), which cannot reach a Gateway server.
    other: BTreeSet<u32>,
    /// `namespace/name` of the Services.
    services: BTreeSet<String>,
}

/// Adds what the Services selecting `w` expose.
fn service_ports(mesh: &Mesh, w: &Workload, exposed: &mut Exposed) {
    let Exposed {
        tcp: out,
        other,
        services: names,
    } = exposed;
    for s in mesh.services_of(w) {
        if !matches!(
            s.source,
            ServiceSource::Kubernetes | ServiceSource::Operator
        ) {
            continue;
        }
        names.insert(format!("{}/{}", s.namespace, s.name));
        for p in &s.ports {
            if !is_tcp(mesh, s, p.index) {
                other.insert(p.number);
                continue;
            }
            out.insert(p.number);
            match &p.target {
                Some(TargetPort::Number(n)) => {
                    out.insert(*n);
                }
                Some(TargetPort::Name(n)) => {
                    let obj = mesh.object(w.object);
                    let resolved = w.pod_spec(obj).and_then(|spec| {
                        spec.containers
                            .iter()
                            .flat_map(|c| c.ports.iter().flatten())
                            .find(|cp| cp.name.as_deref() == Some(n.as_str()))
                            .map(|cp| cp.container_port.max(0) as u32)
                    });
                    out.extend(resolved);
                }
                // The operator's default gateway Service maps 80 and 443 to 8080 and 8443.
                None if s.source == ServiceSource::Operator && matches!(p.number, 80 | 443) => {
                    out.insert(p.number + 8000);
                }
                None => {}
            }
        }
    }
}

pub(super) fn check(ctx: &mut Ctx, g: &Gw) {
    let mesh = ctx.mesh;
    let pods: Vec<&Workload> = g
        .matched
        .iter()
        .copied()
        .filter(|w| w.kind != WorkloadKind::WorkloadEntry)
        .collect();
    if pods.is_empty() {
        return;
    }
    let mut exposed = Exposed::default();
    for w in &pods {
        service_ports(mesh, w, &mut exposed);
    }
    let Exposed {
        tcp: ports,
        other,
        services,
    } = exposed;
    // A host-network gateway listens on the node's address; it needs no Service.
    if services.is_empty() && pods.iter().all(|w| w.host_network) {
        return;
    }
    let (problem, fix) = if services.is_empty() {
        let shown: Vec<String> = pods
            .iter()
            .take(3)
            .map(|w| format!("{}/{}", w.namespace, w.name))
            .collect();
        (
            format!("no Service selects the gateway pods {}", join(&shown)),
            "add a Service for the pods with this port",
        )
    } else {
        let shown: Vec<String> = services.iter().take(3).cloned().collect();
        let list: Vec<String> = ports.iter().map(u32::to_string).collect();
        (
            format!(
                "it is neither a port nor a target port of the gateway's Service {} (TCP ports {})",
                join(&shown),
                list.join(", ")
            ),
            "add the port to the Service, or use one of its ports",
        )
    };
    for (i, s) in g.spec.servers.iter().enumerate() {
        let Some(port) = &s.port else { continue };
        if port.number == 0 || ports.contains(&port.number) {
            continue;
        }
        let non_tcp = if other.contains(&port.number) {
            ", which has it only for UDP or SCTP while a Gateway server takes TCP"
        } else {
            ""
        };
        ctx.at(
            IST0162,
            g.id,
            &format!("spec.servers[{i}].port.number"),
            format!(
                "port {} is not exposed: {problem}{non_tcp}; the listener exists but nothing outside the pod can reach it; {fix}",
                port.number,
            ),
        );
    }
}
