//! Lookups several checks share.

use strait_api::istio::virtual_service::VirtualServiceSpec;
use strait_api::{IstioObject, Kind, Object};
use strait_model::{ClusterId, Mesh, ObjId, ServiceInstance, host};

/// Objects of `kind` in every cluster.
pub fn objects(mesh: &Mesh, kind: Kind) -> impl Iterator<Item = (ObjId, &Object)> {
    mesh.clusters.iter().flat_map(move |c| c.of_kind(kind))
}

/// Objects of `kind` in one cluster.
pub fn in_cluster(
    mesh: &Mesh,
    cluster: ClusterId,
    kind: Kind,
) -> impl Iterator<Item = (ObjId, &Object)> {
    mesh.cluster(cluster).of_kind(kind)
}

/// VirtualServices everywhere, typed.
pub fn virtual_services(
    mesh: &Mesh,
) -> impl Iterator<Item = (ObjId, &Object, &IstioObject<VirtualServiceSpec>)> {
    objects(mesh, Kind::VirtualService)
        .filter_map(|(id, o)| o.virtual_service().map(|v| (id, o, v)))
}

/// A host written in `obj`, fully qualified the way istiod would.
pub fn fqdn(mesh: &Mesh, obj: ObjId, host: &str) -> String {
    let o = mesh.object(obj);
    host::fqdn(host, o.namespace(), &mesh.cluster(obj.cluster).domain)
}

pub use strait_model::gateway::split_ref;

/// Whether gateway references in `gateways` include the sidecar mesh (empty means only it).
pub fn binds_mesh(gateways: &[String]) -> bool {
    gateways.is_empty() || gateways.iter().any(|g| g == "mesh")
}

/// Services a destination host resolves to, seen from `obj`'s namespace.
pub fn resolve<'m>(mesh: &'m Mesh, obj: ObjId, host: &str) -> Vec<&'m ServiceInstance> {
    let ns = mesh.object(obj).namespace().to_string();
    mesh.registry.resolve(&fqdn(mesh, obj, host), &ns)
}

/// Human join: `a, b and c`.
pub fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The service `host` (written in `obj`) was probably meant to name, when it is a truncated
/// Kubernetes name such as `reviews.bookinfo` that istiod takes literally.
pub fn truncated_service(mesh: &Mesh, obj: ObjId, host: &str) -> Option<String> {
    let domain = &mesh.cluster(obj.cluster).domain;
    host::truncated_service_name(host, domain, |full| {
        mesh.registry.by_host(full).next().is_some()
    })
}
