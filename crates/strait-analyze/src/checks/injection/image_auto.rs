//! IST0146: a controller template with an `image: auto` istio-proxy container that nothing will
//! inject (the gateway charts rely on the injector to fill in the image).
//!
//! When the input holds Istio's mutating webhooks, the decision is istioctl's: some webhook
//! whose name ends in `istio.io` must select both the namespace's labels and the pod template's
//! labels. Without them, strait assumes the webhooks a default install creates.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use strait_model::{Workload, selector};

use super::{OPT_OUT, injector, is_system_namespace, opts_out, workload_proxy};
use crate::catalog::IST0146;
use crate::context::Ctx;

/// Whether a pod would be injected; when not, why.
enum Verdict {
    Yes,
    No(String),
}

/// The decision of Istio's default webhooks, from labels alone. Unlike the model's verdict, an
/// `istio-proxy` container already in the template does not count: with `image: auto` it is a
/// placeholder the injector has to fill in. A namespace missing from the input is taken as
/// unlabelled, as istioctl takes it.
fn default_webhooks(
    ns: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    w: &Workload,
    by_default: bool,
) -> Verdict {
    if w.host_network {
        return Verdict::No("pods on the host network are never injected".into());
    }
    if opts_out(w) {
        return Verdict::No("the pod opts out with sidecar.istio.io/inject=false".into());
    }
    if is_system_namespace(ns) {
        return Verdict::No(format!("namespace {ns} is never injected"));
    }
    let pod_opt_in = w.label(OPT_OUT) == Some("true") || w.label("istio.io/rev").is_some();
    let empty = BTreeMap::new();
    let labels = ns_labels.unwrap_or(&empty);
    match labels.get("istio-injection").map(String::as_str) {
        Some("enabled") => return Verdict::Yes,
        Some(other) if !other.is_empty() => {
            return Verdict::No(format!("namespace {ns} has istio-injection={other}"));
        }
        _ => {}
    }
    if labels.contains_key("istio.io/rev") || pod_opt_in || by_default {
        return Verdict::Yes;
    }
    let namespace = if ns_labels.is_some() {
        format!("namespace {ns} has no istio-injection or istio.io/rev label")
    } else {
        format!("namespace {ns} is not in the input, so it is taken as unlabelled")
    };
    Verdict::No(format!(
        "{namespace} and the pod template has no sidecar.istio.io/inject=true or istio.io/rev label; add one"
    ))
}

/// istioctl's decision when the webhooks are known: one must select both label sets.
fn webhooks(
    hooks: &[&MutatingWebhook],
    ns: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    w: &Workload,
) -> Verdict {
    let empty = BTreeMap::new();
    let ns_map = ns_labels.unwrap_or(&empty);
    let selects = |s: Option<&_>, l| s.is_none_or(|s| selector::label_selector_matches(s, l));
    if hooks.iter().any(|h| {
        selects(h.namespace_selector.as_ref(), ns_map)
            && selects(h.object_selector.as_ref(), &w.labels)
    }) {
        return Verdict::Yes;
    }
    let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
    let namespace = if ns_labels.is_some() {
        format!("namespace {ns}")
    } else {
        format!("namespace {ns} (not in the input, taken as unlabelled)")
    };
    Verdict::No(format!(
        "none of Istio's injection webhooks ({}) selects both {namespace} and the pod template's labels; label them so one does",
        names.join(", ")
    ))
}

pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in &mesh.workloads {
        if !w.kind.is_controller() {
            continue;
        }
        let Some((path, container)) = workload_proxy(mesh, w) else {
            continue;
        };
        let obj = mesh.object(w.object);
        if container.image.as_deref() != Some("auto") {
            continue;
        }
        let c = mesh.cluster(w.cluster);
        let ns_labels = c
            .namespaces
            .get(&w.namespace)
            .filter(|n| n.object.is_some() || !n.labels.is_empty())
            .map(|n| &n.labels);
        let hooks = injector::istio_webhooks(c);
        let verdict = if hooks.is_empty() {
            let by_default = injector::enables_namespaces_by_default(c);
            default_webhooks(&w.namespace, ns_labels, w, by_default)
        } else {
            webhooks(&hooks, &w.namespace, ns_labels, w)
        };
        let Verdict::No(reason) = verdict else {
            continue;
        };
        ctx.at(
            IST0146,
            w.object,
            &format!("{}.{path}.image", w.pod_spec_path()),
            format!(
                "{} {}/{} uses `image: auto` for istio-proxy, but its pods will not be injected ({reason}); they will fail to pull the image \"auto\". Enable injection for them or set a real image",
                obj.kind, w.namespace, w.name
            ),
        );
    }
}
