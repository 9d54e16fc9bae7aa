//! East-west gateways and the Gateway resources that open them.

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::istio::gateway::ServerTlsMode;
use strait_model::gateway::{CONTROL_PLANE_PORT, ControlPlaneExposure, control_plane_exposure};
use strait_model::network::{DEFAULT_GATEWAY_PORT, GatewayOrigin, NETWORK_LABEL};
use strait_model::{Cluster, ClusterId, GatewayRole, ObjId, ServiceSource, host, selector};

use crate::catalog::{IST0126, STR0101, STR0102, STR0114, STR0115};
use crate::checks::util;
use crate::context::Ctx;
use crate::finding::Resource;

pub fn run(ctx: &mut Ctx) {
    gateways_per_network(ctx);
    auto_passthrough(ctx);
    control_plane_reach(ctx);
    unreachable_gateways(ctx);
    mesh_networks_registries(ctx);
}

/// Networks that hold clusters, when there is more than one.
fn multinetwork(ctx: &Ctx) -> bool {
    ctx.mesh.is_multinetwork()
        || ctx
            .mesh
            .clusters
            .iter()
            .any(|c| c.mesh_networks.networks.len() > 1)
}

/// STR0101: a network other networks must reach has no east-west gateway.
fn gateways_per_network(ctx: &mut Ctx) {
    if !multinetwork(ctx) {
        return;
    }
    let mesh = ctx.mesh;
    for net in mesh.networks.values() {
        if net.id.is_empty() || net.clusters.is_empty() || !net.gateways.is_empty() {
            continue;
        }
        let names: Vec<String> = net
            .clusters
            .iter()
            .map(|c| mesh.cluster(*c).name.clone())
            .collect();
        let first = net.clusters[0];
        let fallback = mesh.cluster(first).facts.istio_namespace_object;
        ctx.on_cluster(
            STR0101,
            first,
            fallback,
            format!(
                "network {} ({}) has no east-west gateway: no Service labelled {NETWORK_LABEL}={} exposes port {DEFAULT_GATEWAY_PORT} and meshNetworks lists no gateway for it, so other networks get this network's pod IPs, which they cannot route to. Deploy an east-west gateway for {} (istio: eastwestgateway, port 15443)",
                net.id,
                util::join(&names),
                net.id,
                net.id
            ),
        );
    }
}

/// Labels of the east-west gateway pods of `c`: from gateway workloads, else from the
/// selectors of network gateway Services.
fn eastwest_labels(ctx: &Ctx, c: &Cluster) -> Vec<(BTreeMap<String, String>, ObjId, u32)> {
    let mesh = ctx.mesh;
    let mut out = Vec::new();
    for net in mesh.networks.values() {
        for g in &net.gateways {
            if g.cluster != c.id {
                continue;
            }
            if let GatewayOrigin::Service(sid) = &g.origin {
                let s = mesh.registry.get(*sid);
                if let Some(sel) = &s.selector {
                    out.push((sel.clone(), s.object, g.port));
                }
            }
        }
    }
    if out.is_empty() {
        for w in mesh.workloads_in(c.id) {
            if w.gateway == Some(GatewayRole::EastWest) {
                out.push((w.labels.clone(), w.object, DEFAULT_GATEWAY_PORT));
            }
        }
    }
    out
}

/// STR0115: a remote on another network than its primary reaches the primary's control plane
/// only through a load balancer the primary publishes port 15012 on, with a Gateway on the
/// pods behind it serving that port (Istio's expose-istiod).
fn control_plane_reach(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for r in &mesh.clusters {
        let Some(p) = r.primary.map(|id| mesh.cluster(id)) else {
            continue;
        };
        if r.is_primary() || r.network.is_empty() || p.network.is_empty() || r.network == p.network
        {
            continue;
        }
        let fallback = r.facts.istio_namespace_object;
        match control_plane_exposure(mesh, p.id) {
            ControlPlaneExposure::Served(_) => {}
            ControlPlaneExposure::NotPublished => {
                ctx.on_cluster(
                    STR0115,
                    r.id,
                    fallback,
                    format!(
                        "cluster {} is a remote on network {} and its proxies reach their control plane in {} (network {}) through a load balancer there, but no LoadBalancer Service of {} publishes port {CONTROL_PLANE_PORT}: they cannot fetch configuration or certificates, so its pods never become ready. Add a tls-istiod port {CONTROL_PLANE_PORT} to {}'s east-west gateway Service and apply Istio's expose-istiod Gateway and VirtualService there",
                        r.name, r.network, p.name, p.network, p.name, p.name
                    ),
                );
            }
            ControlPlaneExposure::NotServed(svc) => {
                let index = svc
                    .ports
                    .iter()
                    .position(|port| port.number == CONTROL_PLANE_PORT)
                    .unwrap_or(0);
                ctx.at(
                    STR0115,
                    svc.object,
                    &format!("spec.ports[{index}]"),
                    format!(
                        "this Service publishes port {CONTROL_PLANE_PORT} for the proxies of remote cluster {}, but no Gateway on its pods serves that port (Istio's expose-istiod: a PASSTHROUGH server on {CONTROL_PLANE_PORT} and a TLS VirtualService to istiod): the gateway refuses their connections, so the remote's pods never become ready",
                        r.name
                    ),
                );
            }
        }
    }
}

/// STR0102: the control plane serving a cluster with an east-west gateway has no Gateway with
/// an AUTO_PASSTHROUGH server selecting it (or its hosts/port do not fit).
fn auto_passthrough(ctx: &mut Ctx) {
    if !multinetwork(ctx) {
        return;
    }
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        let config = mesh.config_cluster(c.id);
        let config_name = mesh.cluster(config).name.clone();
        for (labels, gw_obj, port) in eastwest_labels(ctx, c) {
            let probe = format!("svc.default.svc.{}", c.domain);
            let mut selecting = Vec::new();
            let mut fits = false;
            for (gid, o) in util::in_cluster(mesh, config, Kind::Gateway) {
                let Some(g) = o.gateway() else { continue };
                if g.spec.selector.is_empty() || !selector::map_selects(&g.spec.selector, &labels) {
                    continue;
                }
                for (i, s) in g.spec.servers.iter().enumerate() {
                    let auto =
                        s.tls.as_ref().and_then(|t| t.mode) == Some(ServerTlsMode::AutoPassthrough);
                    if !auto {
                        continue;
                    }
                    selecting.push((gid, i));
                    let port_ok = s.port.as_ref().is_some_and(|p| p.number == port);
                    let hosts_ok = s
                        .hosts
                        .iter()
                        .any(|h| host::subset_of(&probe, &host::ScopedHost::parse(h).host));
                    if port_ok && hosts_ok {
                        fits = true;
                    }
                }
            }
            if fits {
                continue;
            }
            let where_ = if config == c.id {
                format!("cluster {config_name}")
            } else {
                format!(
                    "its primary {config_name} (remote {}'s gateway is configured by {config_name}'s control plane)",
                    c.name
                )
            };
            let labels_txt = labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            if let Some((gid, i)) = selecting.first().copied() {
                ctx.at(
                    STR0102,
                    gid,
                    &format!("spec.servers[{i}]"),
                    format!(
                        "this AUTO_PASSTHROUGH server does not open cluster {}'s east-west gateway for mesh traffic: it must listen on port {port} with hosts covering *.{} (e.g. \"*.local\")",
                        c.name, c.domain
                    ),
                );
            } else {
                let fallback = Some(gw_obj);
                ctx.on_cluster(
                    STR0102,
                    c.id,
                    fallback,
                    format!(
                        "the east-west gateway of cluster {} ({labels_txt}) has no Gateway with an AUTO_PASSTHROUGH server on port {port} in {where_}: it refuses cross-network connections. Apply a Gateway selecting it with `tls: {{mode: AUTO_PASSTHROUGH}}` and hosts [\"*.local\"]",
                        c.name
                    ),
                );
            }
        }
    }
}

/// STR0114: a network gateway no other network can reach.
fn unreachable_gateways(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for net in mesh.networks.values() {
        for g in &net.gateways {
            if g.reachable {
                continue;
            }
            match &g.origin {
                GatewayOrigin::Service(sid) => {
                    let s = mesh.registry.get(*sid);
                    if s.source == ServiceSource::Operator {
                        continue;
                    }
                    let ty = s.service_type.as_ref().map_or("ClusterIP", |t| t.name());
                    ctx.at(
                        STR0114,
                        s.object,
                        "spec.type",
                        format!(
                            "Service {}/{} is network {}'s gateway, but it is of type {ty} with no externalIPs: nothing outside cluster {} can reach it. Use type LoadBalancer (or NodePort with traffic.istio.io/nodeSelector)",
                            s.namespace,
                            s.name,
                            net.id,
                            mesh.cluster(s.cluster).name
                        ),
                    );
                }
                GatewayOrigin::MeshNetworks { cluster, .. } => {
                    let c: ClusterId = *cluster;
                    let fallback = istio_configmap(ctx, c);
                    ctx.on_cluster(
                        STR0114,
                        c,
                        fallback,
                        format!(
                            "meshNetworks of cluster {} names a gateway for network {} through a registry service that is not in the manifests, so its address is unknown",
                            mesh.cluster(c).name,
                            net.id
                        ),
                    );
                }
            }
        }
    }
}

fn istio_configmap(ctx: &Ctx, c: ClusterId) -> Option<ObjId> {
    let cl = ctx.mesh.cluster(c);
    cl.find(Kind::ConfigMap, &cl.istio_namespace, "istio")
        .map(|(id, _)| id)
}

/// IST0126: meshNetworks `fromRegistry` names a registry that does not exist.
fn mesh_networks_registries(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let mut known: Vec<String> = vec!["Kubernetes".into(), "External".into(), "Mock".into()];
    known.extend(mesh.clusters.iter().map(|c| c.name.clone()));
    for s in &mesh.remote_secrets {
        known.extend(s.clusters.iter().map(|r| r.cluster_id.clone()));
    }
    // Named once each (a plain directory's cluster is called Kubernetes too).
    let mut seen = std::collections::BTreeSet::new();
    known.retain(|k| seen.insert(k.clone()));
    for c in &mesh.clusters {
        for (net_name, net) in &c.mesh_networks.networks {
            for (i, e) in net.endpoints.iter().enumerate() {
                let Some(reg) = &e.from_registry else {
                    continue;
                };
                if known.iter().any(|k| k == reg) {
                    continue;
                }
                let msg = format!(
                    "meshNetworks network {net_name} takes endpoints from registry \"{reg}\", which is neither a cluster of the mesh nor a remote secret's cluster; endpoints of that cluster get no network. Known: {}",
                    util::join(&known)
                );
                // istioctl reports it on the mesh networks themselves, a `MeshNetworks`
                // resource it names `<istio namespace>/meshnetworks`; the position is where
                // they are written.
                let resource = Resource {
                    kind: "MeshNetworks".into(),
                    namespace: c.istio_namespace.clone(),
                    name: "meshnetworks".into(),
                    cluster: c.name.clone(),
                };
                let f = match istio_configmap(ctx, c.id) {
                    Some(cm) => {
                        let inner = format!("networks.{net_name}.endpoints[{i}].fromRegistry");
                        match strait_api::embedded::locate_embedded(
                            &mesh.sources,
                            mesh.object(cm),
                            "data.meshNetworks",
                            &inner,
                        ) {
                            Some(pos) => ctx.at_pos(IST0126, cm, pos, msg),
                            None => ctx.at(IST0126, cm, "data.meshNetworks", msg),
                        }
                    }
                    None => match c.operators().next().map(|(id, _)| id) {
                        Some(op) => ctx.at(
                            IST0126,
                            op,
                            &format!("spec.values.global.meshNetworks.{net_name}.endpoints[{i}]"),
                            msg,
                        ),
                        None => ctx.on_cluster(IST0126, c.id, None, msg),
                    },
                };
                f.resource = Some(resource);
            }
        }
    }
}
