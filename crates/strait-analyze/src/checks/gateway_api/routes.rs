//! Gateway API routes (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute): parents that do not exist
//! (IST0101) or take the route on no listener (STR0207, with the reason istiod would write in
//! the route's status), and backends that do not exist, lack a port the Service has (IST0101),
//! lack the port the API server requires (STR0016), or sit in another namespace with no
//! ReferenceGrant permitting them (STR0208). Routes whose every parent is another
//! controller's are not Istio's and are left alone.

use std::collections::BTreeSet;

use strait_api::gateway_api::routes::BackendRef;
use strait_api::{Kind, Object};
use strait_model::gateway_api::{self as gapi, Class, Parent, Refusal};
use strait_model::{Cluster, ObjId};

use crate::catalog::{IST0101, STR0016, STR0207, STR0208};
use crate::context::Ctx;

pub(super) fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in mesh.primaries() {
        for kind in gapi::ROUTE_KINDS {
            for (id, o) in c.of_kind(kind) {
                let Some(route) = gapi::route(o) else {
                    continue;
                };
                parents(ctx, c, id, o, &route);
                if !gapi::route_is_istio(mesh, c, o) {
                    continue;
                }
                for (path, b) in &route.backends {
                    backend(ctx, c, id, o, path, b);
                }
            }
        }
    }
}

fn parents(ctx: &mut Ctx, c: &Cluster, id: ObjId, o: &Object, route: &gapi::Route) {
    for (j, p) in route.parents.iter().enumerate() {
        let field = format!("spec.parentRefs[{j}]");
        match gapi::parent(ctx.mesh, c, o.namespace(), p) {
            Parent::Missing { kind, name } => {
                ctx.not_found(
                    IST0101,
                    id,
                    &field,
                    format!("Referenced {kind} {name} not found"),
                );
            }
            Parent::Gateway(_, gw_obj, Class::Istio) => {
                let Some(gw) = gw_obj.kube_gateway() else {
                    continue;
                };
                let attached = gapi::attach(
                    c,
                    &gw.spec,
                    gw_obj.namespace(),
                    o.kind,
                    o.namespace(),
                    route.hostnames,
                    p,
                );
                if let Err(refusal) = attached {
                    let (why, reason) = explain(&refusal, o);
                    ctx.at(
                        STR0207,
                        id,
                        &field,
                        format!(
                            "Gateway {}/{} takes this route on no listener: {why}; istiod reports it as {reason} and serves nothing of it there",
                            gw_obj.namespace(),
                            gw_obj.name()
                        ),
                    );
                }
            }
            Parent::Gateway(..) | Parent::Mesh(_) | Parent::Unsupported => {}
        }
    }
}

/// What a refusal means, and the condition reason istiod writes for it.
fn explain(r: &Refusal, route: &Object) -> (String, &'static str) {
    match r {
        Refusal::NoSuchListener(what) => (what.clone(), "NoMatchingParent"),
        Refusal::Namespace { listener, from } => (
            format!(
                "listener \"{listener}\" allows routes from namespaces \"{from}\", which excludes {}",
                route.namespace()
            ),
            "NotAllowedByListeners",
        ),
        Refusal::RouteKind { listener, allowed } => (
            format!(
                "listener \"{listener}\" takes {}, not {}",
                if allowed.is_empty() {
                    "no route kind".to_string()
                } else {
                    allowed.join(", ")
                },
                route.kind
            ),
            "NotAllowedByListeners",
        ),
        Refusal::Hostname { listener, hostname } => (
            format!("no hostname of the route falls under listener \"{listener}\"'s {hostname}"),
            "NoMatchingListenerHostname",
        ),
    }
}

fn backend(ctx: &mut Ctx, c: &Cluster, id: ObjId, o: &Object, path: &str, b: &BackendRef) {
    let ns = b.namespace.as_deref().unwrap_or(o.namespace());
    let (group, kind) = (b.group_or_default(), b.kind_or_default());
    let target = match (group, kind) {
        ("" | "core", "Service") => Kind::Service,
        ("networking.istio.io", "ServiceEntry") => Kind::ServiceEntry,
        // Hostnames, InferencePools and other implementations' kinds are not checked.
        _ => return,
    };
    if target == Kind::Service && b.port.is_none() {
        ctx.at(
            STR0016,
            id,
            path,
            format!(
                "backend Service {ns}/{} has no port; a Service backend must name one: the API server rejects this {}",
                b.name, o.kind
            ),
        );
    }
    let found: Vec<&Object> = if target == Kind::Service {
        gapi::services(ctx.mesh, ns, &b.name)
            .into_iter()
            .map(|(_, o)| o)
            .collect()
    } else {
        c.find(target, ns, &b.name)
            .into_iter()
            .map(|(_, o)| o)
            .collect()
    };
    if found.is_empty() {
        ctx.not_found(
            IST0101,
            id,
            path,
            format!("Referenced backend {kind} {ns}/{} not found", b.name),
        );
        return;
    }
    if ns != o.namespace()
        && !gapi::reference_granted(c, o.kind, o.namespace(), ns, (group, kind, &b.name))
    {
        ctx.at(
            STR0208,
            id,
            path,
            format!(
                "backend {kind} {ns}/{} is in another namespace and no ReferenceGrant in {ns} lets {}s in {} send to it: requests routed to it fail with 500",
                b.name,
                o.kind,
                o.namespace()
            ),
        );
        return;
    }
    let Some(port) = b.port.filter(|_| target == Kind::Service) else {
        return;
    };
    // The ports of the Service in every cluster that has it.
    let ports: BTreeSet<i32> = found
        .iter()
        .filter_map(|o| o.service()?.spec.as_ref())
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| p.port)
        .collect();
    if !ports.contains(&(port as i32)) {
        let have: Vec<String> = ports.iter().map(i32::to_string).collect();
        ctx.at(
            IST0101,
            id,
            &format!("{path}.port"),
            format!(
                "Referenced backend Service {ns}/{} has no port {port} (it has {})",
                b.name,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ),
        );
    }
}
