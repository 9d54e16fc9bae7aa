//! STR0205: a Gateway host that no VirtualService bound to the Gateway routes. Envoy answers
//! 404 (or, for TLS and TCP servers, closes the connection); the classic cause is a
//! VirtualService with the right host but no `gateways:` entry.

use strait_api::Kind;
use strait_api::istio::gateway::ServerTlsMode;
use strait_model::{ClusterId, ObjId, gateway, host};

use crate::catalog::STR0205;
use crate::checks::util;
use crate::context::Ctx;

pub(super) fn check(ctx: &mut Ctx, cluster: ClusterId) {
    let mesh = ctx.mesh;
    let vss: Vec<(
        ObjId,
        &str,
        &strait_api::istio::virtual_service::VirtualServiceSpec,
    )> = util::virtual_services(mesh)
        .filter(|(id, _, _)| id.cluster == cluster)
        .map(|(id, o, vs)| (id, o.namespace(), &vs.spec))
        .collect();
    for (gid, o) in util::in_cluster(mesh, cluster, Kind::Gateway) {
        let Some(gw) = o.gateway() else { continue };
        let (gw_ns, gw_name) = (o.namespace(), o.name());
        for (i, server) in gw.spec.servers.iter().enumerate() {
            let tls = server.tls.as_ref();
            let mode = tls.and_then(|t| t.mode);
            // Passthrough to every mesh service needs no VirtualService, and a redirecting
            // server answers by itself.
            if mode == Some(ServerTlsMode::AutoPassthrough) || tls.is_some_and(|t| t.https_redirect)
            {
                continue;
            }
            for (j, entry) in server.hosts.iter().enumerate() {
                let scoped = host::ScopedHost::parse(entry);
                let bound = |(_, ns, vs): &&(
                    ObjId,
                    &str,
                    &strait_api::istio::virtual_service::VirtualServiceSpec,
                )| {
                    gateway::names_gateway(&vs.gateways, ns, gw_ns, gw_name)
                        && scoped.allows_namespace(ns, gw_ns)
                        && vs.hosts.iter().any(|h| host::matches(h, &scoped.host))
                };
                if vss.iter().any(|v| bound(&v)) {
                    continue;
                }
                let unbound: Vec<String> =
                    vss.iter()
                        .filter(|(_, ns, vs)| {
                            !gateway::names_gateway(&vs.gateways, ns, gw_ns, gw_name)
                                && vs.hosts.iter().any(|h| {
                                    host::matches(h, &scoped.host) && !host::is_wildcard(h)
                                })
                        })
                        .map(|(vid, _, _)| mesh.object(*vid).display_name())
                        .collect();
                let hint = match unbound.first().filter(|_| !host::is_wildcard(&scoped.host)) {
                    Some(name) => format!(
                        "; {name} has this host but is not bound to the gateway: add `gateways: [{gw_ns}/{gw_name}]` to it"
                    ),
                    None => format!(
                        "; bind a VirtualService with this host to it (`gateways: [{gw_ns}/{gw_name}]`)"
                    ),
                };
                let port = server.port.as_ref().map_or(0, |p| p.number);
                let outcome = if matches!(mode, Some(ServerTlsMode::Passthrough))
                    || server.port.as_ref().is_some_and(|p| {
                        matches!(
                            p.protocol.to_ascii_uppercase().as_str(),
                            "TCP" | "TLS" | "MONGO" | "REDIS" | "MYSQL"
                        )
                    }) {
                    "connections are closed"
                } else {
                    "requests get 404"
                };
                ctx.at(
                    STR0205,
                    gid,
                    &format!("spec.servers[{i}].hosts[{j}]"),
                    format!(
                        "gateway {gw_ns}/{gw_name} serves \"{entry}\" on port {port}, but no VirtualService bound to it routes that host, so {outcome}{hint}"
                    ),
                );
            }
        }
    }
}
