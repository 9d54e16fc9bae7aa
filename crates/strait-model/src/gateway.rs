//! Istio's rules for Gateway resources: which gateway proxies a Gateway configures, and which
//! VirtualServices bind to it. One implementation, used by the compiler (what a gateway
//! serves) and the analyzer (what a Gateway reaches).

use strait_api::Kind;
use strait_api::Object;
use strait_api::istio::gateway::GatewaySpec;

use crate::ids::{ClusterId, ObjId};
use crate::mesh::Mesh;
use crate::selector;
use crate::service::{ServiceInstance, ServiceType};
use crate::workload::Workload;

/// Whether istiod matches Gateway selectors only in the Gateway's own namespace
/// (`PILOT_SCOPE_GATEWAY_TO_NAMESPACE`, set on istiod by an IstioOperator or its Deployment).
pub fn scoped_to_namespace(mesh: &Mesh, cluster: ClusterId) -> bool {
    let c = mesh.cluster(cluster);
    let truthy = |v: &str| v.eq_ignore_ascii_case("true") || v == "1";
    let from_operator = c.operators().any(|(_, op)| {
        op.spec
            .value("pilot.env.PILOT_SCOPE_GATEWAY_TO_NAMESPACE")
            .is_some_and(|v| v.as_bool() == Some(true) || v.as_str().is_some_and(truthy))
    });
    let from_istiod = c.of_kind(Kind::Deployment).any(|(_, o)| {
        (o.name().starts_with("istiod") || o.label("app") == Some("istiod"))
            && o.deployment()
                .and_then(|d| d.spec.template.spec.as_ref())
                .is_some_and(|s| {
                    s.containers.iter().any(|ct| {
                        ct.env.iter().flatten().any(|e| {
                            e.name == "PILOT_SCOPE_GATEWAY_TO_NAMESPACE"
                                && e.value.as_deref().is_some_and(truthy)
                        })
                    })
                })
    });
    from_operator || from_istiod
}

/// Whether a Gateway in `gateway_ns` with `spec` selects workload `w`: its selector's labels
/// are a subset of the pod's, in any namespace unless gateways are scoped to their own.
pub fn selects(spec: &GatewaySpec, gateway_ns: &str, scoped: bool, w: &Workload) -> bool {
    (!scoped || w.namespace == gateway_ns) && selector::map_selects(&spec.selector, &w.labels)
}

/// The Gateways of the config cluster `config` that configure gateway proxy `w`, oldest
/// first (Istio's order when servers conflict), then by namespace and name.
pub fn gateways_of<'m>(
    mesh: &'m Mesh,
    config: ClusterId,
    w: &Workload,
) -> Vec<(ObjId, &'m Object, &'m GatewaySpec)> {
    let scoped = scoped_to_namespace(mesh, config);
    let mut out: Vec<(ObjId, &Object, &GatewaySpec)> = mesh
        .cluster(config)
        .of_kind(Kind::Gateway)
        .filter_map(|(id, o)| o.gateway().map(|g| (id, o, &g.spec)))
        .filter(|(_, o, spec)| selects(spec, o.namespace(), scoped, w))
        .collect();
    out.sort_by(|a, b| {
        let key = |o: &Object| {
            (
                o.meta().creation_timestamp.clone(),
                o.namespace().to_string(),
                o.name().to_string(),
            )
        };
        key(a.1).cmp(&key(b.1))
    });
    out
}

/// `namespace/name` or `name` (relative to `ns`) as a (namespace, name) pair.
pub fn split_ref<'a>(reference: &'a str, ns: &'a str) -> (&'a str, &'a str) {
    match reference.split_once('/') {
        Some((n, name)) => (n, name),
        None => (ns, reference),
    }
}

/// Whether a gateway reference list of a VirtualService in `vs_ns` names the Gateway
/// `gw_ns/gw_name`. References are `name` (the VirtualService's namespace) or
/// `namespace/name`; `mesh` means the sidecars.
pub fn names_gateway(refs: &[String], vs_ns: &str, gw_ns: &str, gw_name: &str) -> bool {
    refs.iter()
        .filter(|g| g.as_str() != "mesh")
        .any(|g| split_ref(g, vs_ns) == (gw_ns, gw_name))
}

/// The control plane's port for proxies (xDS and certificates).
pub const CONTROL_PLANE_PORT: u32 = 15012;

/// How a primary publishes its control plane to remote clusters on other networks (Istio's
/// `expose-istiod`): a LoadBalancer Service with port 15012 in front of gateway pods, and a
/// Gateway on those pods with a server on the Service's target port.
#[derive(Debug)]
pub enum ControlPlaneExposure<'m> {
    /// No LoadBalancer Service of the cluster publishes port 15012.
    NotPublished,
    /// A Service publishes it, but no Gateway on its pods serves that port: the gateway
    /// refuses the connections.
    NotServed(&'m ServiceInstance),
    /// Published and served.
    Served(&'m ServiceInstance),
}

/// How `cluster` publishes its control plane (see [`ControlPlaneExposure`]).
pub fn control_plane_exposure(mesh: &Mesh, cluster: ClusterId) -> ControlPlaneExposure<'_> {
    let published: Vec<&ServiceInstance> = mesh
        .registry
        .all()
        .iter()
        .filter(|s| {
            s.cluster == cluster
                && s.service_type == Some(ServiceType::LoadBalancer)
                && s.port(CONTROL_PLANE_PORT).is_some()
        })
        .collect();
    match published.iter().find(|s| serves_control_plane(mesh, s)) {
        Some(s) => ControlPlaneExposure::Served(s),
        None => match published.first() {
            Some(s) => ControlPlaneExposure::NotServed(s),
            None => ControlPlaneExposure::NotPublished,
        },
    }
}

/// Whether a Gateway of the Service's cluster serves the control plane's port on the gateway
/// pods behind `svc` (at the Service's target port for 15012).
pub fn serves_control_plane(mesh: &Mesh, svc: &ServiceInstance) -> bool {
    let config = mesh.config_cluster(svc.cluster);
    let target = svc
        .port(CONTROL_PLANE_PORT)
        .map(|p| p.target_number().unwrap_or(p.number))
        .unwrap_or(CONTROL_PLANE_PORT);
    mesh.workloads_in(svc.cluster)
        .filter(|w| w.gateway.is_some() && w.namespace == svc.namespace)
        .filter(|w| {
            svc.selector
                .as_ref()
                .is_some_and(|sel| selector::map_selects(sel, &w.labels))
        })
        .any(|w| {
            gateways_of(mesh, config, w)
                .iter()
                .flat_map(|(_, _, g)| g.servers.iter())
                .any(|s| {
                    s.port
                        .as_ref()
                        .is_some_and(|p| p.number == target || p.number == CONTROL_PLANE_PORT)
                })
        })
}
