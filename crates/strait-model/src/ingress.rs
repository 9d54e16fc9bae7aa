//! Which Kubernetes Ingresses Istio serves through its ingress gateway, decided as istiod
//! decides it: the `kubernetes.io/ingress.class` annotation against the mesh config's
//! `ingressClass`, else the controller of the IngressClass `spec.ingressClassName` names, else
//! `ingressControllerMode` (STRICT by default: an Ingress without a class is not Istio's).

use strait_api::Kind;

use crate::ObjId;
use crate::mesh::Mesh;

/// The controller name of IngressClasses Istio serves.
pub const ISTIO_CONTROLLER: &str = "istio.io/ingress-controller";
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Whether istiod would serve the Ingress `id` (with the mesh config of its cluster's primary).
pub fn served_by_istio(mesh: &Mesh, id: ObjId) -> bool {
    let o = mesh.object(id);
    let Some(ingress) = o.ingress() else {
        return false;
    };
    let mc = &mesh.cluster(mesh.config_cluster(id.cluster)).mesh_config;
    let class = if mc.ingress_class.is_empty() {
        "istio"
    } else {
        mc.ingress_class.as_str()
    };
    let mode = mc.ingress_controller_mode.as_deref().unwrap_or("STRICT");
    if let Some(annotated) = o.annotation(CLASS_ANNOTATION) {
        return matches!(mode, "STRICT" | "DEFAULT") && annotated == class;
    }
    let named = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let controller = named.and_then(|name| {
        let (_, c) = mesh
            .cluster(id.cluster)
            .find(Kind::IngressClass, "", name)?;
        c.ingress_class()?.spec.as_ref()?.controller.clone()
    });
    match controller {
        Some(c) => c == ISTIO_CONTROLLER,
        // No class, or one the input does not define: the mode decides.
        None => mode == "DEFAULT",
    }
}
