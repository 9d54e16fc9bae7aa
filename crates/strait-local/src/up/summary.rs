//! What `strait up` prints once the mesh is up: networks, control planes, load balancers,
//! pods, and a first command to try.

use std::path::Path;

use super::plan::Plan;
use crate::apps::AppKind;

pub(super) fn text(plan: &Plan, dir: &Path) -> String {
    let mut out = String::from("mesh is up\n");
    for n in &plan.networks {
        let name = if n.name.is_empty() {
            "(one network)"
        } else {
            &n.name
        };
        let clusters: Vec<&str> = plan
            .clusters
            .iter()
            .filter(|c| c.network == n.name)
            .map(|c| c.name.as_str())
            .collect();
        let ranges: Vec<String> = n.ranges.iter().map(ToString::to_string).collect();
        let ns = n
            .netns
            .as_deref()
            .map(|ns| format!(", namespace {ns}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  network {name}: clusters {} ({}{ns})\n",
            clusters.join(", "),
            ranges.join(" ")
        ));
    }
    for c in &plan.clusters {
        if let Some(cp) = c.control_plane {
            out.push_str(&format!(
                "  {}: control plane {} (debug http://{}/debug/syncz)\n",
                c.name, cp.grpc, cp.debug
            ));
        } else if let Some(d) = &c.discovery {
            out.push_str(&format!(
                "  {}: remote of {}, its proxies reach it at {} through {}\n",
                c.name, c.control_plane_of, d.addr, d.via
            ));
        }
    }
    for lb in &plan.load_balancers {
        let ports: Vec<String> = lb.ports.iter().map(|(p, _)| p.to_string()).collect();
        out.push_str(&format!(
            "  load balancer {}/{}/{}: {} ports {}\n",
            lb.cluster,
            lb.namespace,
            lb.name,
            lb.address,
            ports.join(",")
        ));
    }
    let width = plan.pods.iter().map(|p| p.key().len()).max().unwrap_or(0);
    out.push_str(&format!(
        "  {:width$}  {:<15} {:<10} {}\n",
        "POD", "ADDRESS", "PROXY", "APP"
    ));
    for p in &plan.pods {
        let app = match (p.app, p.ports.as_slice()) {
            (Some(a), []) | (Some(a @ AppKind::Sleep), _) => a.as_str().to_string(),
            (Some(a), ports) => format!(
                "{} :{}",
                a.as_str(),
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            (None, _) => "-".to_string(),
        };
        let proxy = match (p.proxy, p.gateway) {
            (true, true) => "gateway",
            (true, false) => "sidecar",
            (false, _) => "none",
        };
        out.push_str(&format!(
            "  {:width$}  {:<15} {:<10} {app}\n",
            p.key(),
            p.ip.to_string(),
            proxy
        ));
    }
    out.push_str(&format!("state: {}\n", super::state::file(dir).display()));
    if let Some(example) = example_exec(plan) {
        out.push_str(&format!("try:   {example}\n"));
    }
    out.push_str("Ctrl-C stops everything.");
    out
}

/// A first command to try: a client workload calling a service in its cluster.
fn example_exec(plan: &Plan) -> Option<String> {
    let client = plan
        .pods
        .iter()
        .find(|p| p.sidecar() && p.app == Some(AppKind::Sleep))
        .or_else(|| plan.pods.iter().find(|p| p.sidecar()))?;
    let (server, (service, port)) = plan
        .pods
        .iter()
        .filter(|p| p.workload != client.workload && p.cluster == client.cluster && !p.gateway)
        .find_map(|p| p.services.first().map(|s| (p, s)))?;
    let path = if server.app == Some(AppKind::Helloworld) {
        "/hello"
    } else {
        "/"
    };
    Some(format!(
        "strait exec {}/{}/{} -- curl -sS {service}:{port}{path}",
        client.cluster, client.namespace, client.workload
    ))
}
