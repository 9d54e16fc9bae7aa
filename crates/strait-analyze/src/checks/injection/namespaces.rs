//! Namespaces: IST0102 (not enabled for injection), IST0123 (several injection labels) and
//! IST0148 (injected only because the injector injects every namespace by default).

use strait_api::{Kind, Object};
use strait_model::WorkloadKind;

use super::super::util::join;
use super::{INJECTION_LABELS, injector, is_system_namespace};
use crate::catalog::{IST0102, IST0123, IST0148};
use crate::context::Ctx;

/// Whether a namespace says nothing about sidecar injection, as istioctl judges it: no
/// `istio-injection` value and no `istio.io/rev` label. An `istio.io/dataplane-mode` other than
/// `ambient` does not count: the sidecar webhooks ignore it.
fn unlabelled(o: &Object) -> bool {
    o.label("istio-injection").is_none_or(str::is_empty) && o.label("istio.io/rev").is_none()
}

pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        let by_default = injector::enables_namespaces_by_default(c);
        for (id, o) in c.of_kind(Kind::Namespace) {
            let name = o.name();
            if let Some(message) = conflicting_labels(o) {
                ctx.at_key(IST0123, id, "metadata.labels", message);
            }
            if is_system_namespace(name)
                || name == c.istio_namespace
                || name == "istio-system"
                || o.label("istio.io/dataplane-mode") == Some("ambient")
                || !unlabelled(o)
            {
                continue;
            }
            if by_default {
                ctx.at_key(
                    IST0148,
                    id,
                    "metadata",
                    format!(
                        "namespace {name} has no injection label, but cluster {}'s injector injects every namespace by default (sidecarInjectorWebhook.enableNamespacesByDefault): its pods get sidecars. Label it istio-injection=disabled to keep it out of the mesh, or istio-injection=enabled to say so",
                        c.name
                    ),
                );
                continue;
            }
            let workloads = mesh
                .workloads_in(c.id)
                .filter(|w| w.namespace == name && w.kind != WorkloadKind::WorkloadEntry)
                .count();
            let what = if workloads > 0 {
                format!("its {workloads} workload(s) get no sidecar")
            } else {
                "pods created in it get no sidecar".to_string()
            };
            ctx.at(
                IST0102,
                id,
                "metadata",
                format!(
                    "namespace {name} is not enabled for sidecar injection (no istio-injection or istio.io/rev label), so {what}; if it belongs to the mesh, run `kubectl label namespace {name} istio-injection=enabled`"
                ),
            );
        }
    }
}

/// IST0123: labels that ask for different data planes. `istio-injection=disabled` asks for
/// none, so it conflicts with nothing.
fn conflicting_labels(o: &Object) -> Option<String> {
    let name = o.name();
    let injection = o.label("istio-injection").filter(|v| *v != "disabled");
    let rev = o.label("istio.io/rev");
    let ambient = o.label("istio.io/dataplane-mode").filter(|v| *v != "none");
    let set = [injection.is_some(), rev.is_some(), ambient.is_some()];
    if set.iter().filter(|s| **s).count() < 2 {
        return None;
    }
    let shown: Vec<String> = INJECTION_LABELS
        .iter()
        .filter_map(|l| o.label(l).map(|v| format!("{l}={v}")))
        .collect();
    let effect = match (injection, rev) {
        (Some(i), Some(r)) => format!(
            "istio-injection={i} takes precedence, so the namespace is injected by the default revision, not by revision {r}"
        ),
        _ => "pods get a sidecar, and ambient mode skips pods that have one, so the dataplane-mode label has no effect".to_string(),
    };
    Some(format!(
        "namespace {name} has several injection labels ({}): {effect}. Keep only the one you mean",
        join(&shown)
    ))
}
