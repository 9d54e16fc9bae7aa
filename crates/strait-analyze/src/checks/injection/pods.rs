//! Running pods: IST0103 (no proxy although the namespace asks for one) and IST0147 (still
//! holding the `image: auto` placeholder).

use strait_model::WorkloadKind;

use super::{containers, is_system_namespace, opts_out, proxy_container};
use crate::catalog::{IST0103, IST0147};
use crate::context::Ctx;

/// IST0103 (running pods without their proxy) and IST0147 (pods still holding `image: auto`).
pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in mesh
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Pod)
    {
        let obj = mesh.object(w.object);
        let Some(spec) = w.pod_spec(obj) else {
            continue;
        };
        for (path, c) in containers(spec) {
            if c.image.as_deref() == Some("auto") {
                ctx.at(
                    IST0147,
                    w.object,
                    &format!("spec.{path}.image"),
                    format!(
                        "container {} of pod {}/{} still has `image: auto`: the injector never ran for this pod, so the image cannot be pulled and the pod will not start. Check that the namespace or pod is selected by the injection webhook and recreate the pod",
                        c.name, w.namespace, w.name
                    ),
                );
            }
        }
        let phase = obj
            .pod()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let ns_enabled = mesh
            .cluster(w.cluster)
            .namespaces
            .get(&w.namespace)
            .and_then(|n| n.labels.get("istio-injection"))
            .is_some_and(|v| v == "enabled");
        if !ns_enabled
            || is_system_namespace(&w.namespace)
            || w.host_network
            || opts_out(w)
            || w.gateway.is_some()
        {
            continue;
        }
        if proxy_container(spec).is_some() {
            continue;
        }
        ctx.at_key(
            IST0103,
            w.object,
            "spec.containers",
            format!(
                "pod {}/{} has no istio-proxy container although namespace {} has istio-injection=enabled: it was created before the label was set, or injection failed. It is outside the mesh until it is recreated (e.g. `kubectl rollout restart` its controller)",
                w.namespace, w.name, w.namespace
            ),
        );
    }
}
