//! IST0158: running pods whose `istio-proxy` image is not the one their injector injects today,
//! reported once per namespace as istioctl does. This is what a control-plane upgrade leaves
//! behind until the pods are restarted.
//!
//! The rules are istioctl's: the namespace picks the injector (`istio.io/rev`, else
//! `istio-injection=enabled` for the default one), a pod with a
//! `sidecar.istio.io/proxyImage` annotation chose its own image, and an image type
//! (`distroless`, `debug`) from mesh config or the pod's `proxy.istio.io/config` is appended as
//! `-<type>`. Unlike istioctl, an injector whose image cannot be read whole (no hub or tag in
//! its values) decides nothing, and the published variants (`-distroless`, `-debug`) of the
//! injector's image always count as current (see [`KNOWN_VARIANTS`]).

use std::collections::BTreeMap;

use strait_api::{Kind, Pos};
use strait_model::WorkloadKind;

use super::super::util::join;
use super::{injector, workload_proxy};
use crate::catalog::IST0158;
use crate::context::Ctx;

/// Image types Istio publishes. ProxyConfig resources can ask for them per namespace or
/// workload, and strait does not read ProxyConfig: an injector image with one of these suffixes
/// is taken as current whatever the mesh config says, which loses only the rare pod running a
/// variant nobody asked for.
const KNOWN_VARIANTS: &[&str] = &["distroless", "debug"];

/// A pod whose proxy image differs, and where that image is written.
struct Stale {
    pod: String,
    image: String,
    pos: Pos,
}

pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        let images = injector::proxy_images(c);
        if images.is_empty() {
            continue;
        }
        let mesh_type = injector::mesh_image_type(c);
        // The injector each injected namespace uses, keyed by namespace name.
        let mut injected = BTreeMap::new();
        for (id, o) in c.of_kind(Kind::Namespace) {
            let (revision, label) = match o.label("istio.io/rev") {
                Some(rev) => (rev, "istio.io/rev"),
                None if o.label("istio-injection") == Some("enabled") => {
                    ("default", "istio-injection")
                }
                None => continue,
            };
            injected.insert(o.name(), (id, label, injector::config_map_name(revision)));
        }
        let mut stale: BTreeMap<&str, Vec<Stale>> = BTreeMap::new();
        for w in mesh
            .workloads_in(c.id)
            .filter(|w| w.kind == WorkloadKind::Pod)
        {
            let Some((_, _, config_map)) = injected.get(w.namespace.as_str()) else {
                continue;
            };
            let Some(expected) = images.get(config_map) else {
                continue;
            };
            if w.annotations
                .get("sidecar.istio.io/proxyImage")
                .is_some_and(|v| !v.is_empty())
            {
                continue;
            }
            let Some((path, container)) = workload_proxy(mesh, w) else {
                continue;
            };
            let obj = mesh.object(w.object);
            let image = container.image.as_deref().unwrap_or("");
            let variant = injector::annotation_image_type(obj, &w.annotations)
                .or_else(|| mesh_type.clone())
                .filter(|v| v != "default")
                .unwrap_or_default();
            let current = |v: &str| {
                image
                    .strip_prefix(expected.image.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    == Some(v)
            };
            if image == expected.image
                || current(&variant)
                || KNOWN_VARIANTS.iter().any(|v| current(v))
            {
                continue;
            }
            stale.entry(w.namespace.as_str()).or_default().push(Stale {
                pod: w.name.clone(),
                image: image.to_string(),
                pos: obj.locate(&format!("spec.{path}.image")),
            });
        }
        for (ns, pods) in stale {
            let Some((id, label, config_map)) = injected.get(ns) else {
                continue;
            };
            let Some(expected) = images.get(config_map) else {
                continue;
            };
            let listed: Vec<String> = pods
                .iter()
                .map(|p| format!("{} ({})", p.pod, p.image))
                .collect();
            let source = mesh.object(expected.object).display_name();
            let related_at = ctx.pos(expected.object, &expected.field);
            let f = ctx.at(
                IST0158,
                *id,
                &format!("metadata.labels[\"{label}\"]"),
                format!(
                    "pods in namespace {ns} run an istio-proxy image other than {}, the one their injector ({source}) injects now: {}. This usually follows a control-plane upgrade: the pods keep their old proxy until they are recreated, e.g. with `kubectl rollout restart deployment -n {ns}`",
                    expected.image,
                    join(&listed)
                ),
            );
            f.related(
                format!("the injector's proxy image: {}", expected.image),
                related_at,
            );
            for p in pods {
                f.related(format!("pod {} runs {}", p.pod, p.image), p.pos);
            }
        }
    }
}
