//! Kubernetes Services as the mesh reads them: port names that give no protocol (IST0118,
//! IST0150), and workloads behind several Services that disagree about one port (IST0116 on
//! the protocol, IST0137 on the port number), reported on the Service port that disagrees and,
//! as istioctl reports them, on the Deployment.

mod deployments;
mod port_names;
mod shared_ports;

use std::collections::BTreeMap;

use strait_model::service::Port;

use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    port_names::check(ctx);
    shared_ports::check(ctx);
    deployments::check(ctx);
}

/// Field path of a port's name (or its number when it has none).
fn port_path(p: &Port) -> String {
    if p.name.is_empty() {
        format!("spec.ports[{}].port", p.index)
    } else {
        format!("spec.ports[{}].name", p.index)
    }
}

/// Objects of Istio's own installation, which istioctl leaves out of its Service and
/// Deployment checks: labelled `istio` (any value) or `release=istio`.
fn is_control_plane(labels: &BTreeMap<String, String>) -> bool {
    labels.contains_key("istio") || labels.get("release").is_some_and(|v| v == "istio")
}
