//! The injector's own configuration, where the input holds it. istioctl reads the Helm values
//! the injector renders into its ConfigMaps (`istio-sidecar-injector`, or
//! `istio-sidecar-injector-<revision>`, key `values`, JSON); strait reads those first and falls
//! back on an IstioOperator's values for an install described only by its operator resource.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use strait_api::yaml::{self, NodeRef, Resolved, Tree};
use strait_api::{Kind, Object};
use strait_model::{Cluster, ObjId};

const CONFIG_MAP: &str = "istio-sidecar-injector";

/// The injector ConfigMap a revision's pods are injected from (`default` and none mean the
/// plain name).
pub(super) fn config_map_name(revision: &str) -> String {
    if revision.is_empty() || revision == "default" {
        CONFIG_MAP.to_string()
    } else {
        format!("{CONFIG_MAP}-{revision}")
    }
}

/// The node at a dotted `path` below `node`.
fn at<'a>(node: NodeRef<'a>, path: &str) -> Option<NodeRef<'a>> {
    path.split('.').try_fold(node, |n, key| n.get(key))
}

/// A non-empty scalar's text (a tag such as `1.24` may be written as a number).
fn text<'a>(node: NodeRef<'a>, path: &str) -> Option<&'a str> {
    at(node, path)
        .and_then(NodeRef::scalar_text)
        .filter(|t| !t.is_empty())
}

fn is_true(node: NodeRef<'_>, path: &str) -> bool {
    at(node, path)
        .and_then(NodeRef::scalar)
        .is_some_and(|s| s.resolve() == Resolved::Bool(true))
}

/// Parses the YAML (or JSON) text held by `data.<key>` of a ConfigMap.
fn config_map_doc(o: &Object, key: &str) -> Option<Tree> {
    let text = o.config_map()?.data.as_ref()?.get(key)?;
    parse_doc(o, text)
}

/// The first document of YAML (or JSON) text held by a field of `o`.
fn parse_doc(o: &Object, text: &str) -> Option<Tree> {
    let parsed = yaml::parse(text, o.source.pos.file, 0, 0);
    Tree::from_node(parsed.documents.first()?).ok()
}

/// Whether the injector injects namespaces that carry no injection label: the default
/// revision's ConfigMap sets `sidecarInjectorWebhook.enableNamespacesByDefault`, or an
/// IstioOperator does (the model's reading).
pub(super) fn enables_namespaces_by_default(c: &Cluster) -> bool {
    c.inject_by_default
        || c.of_kind(Kind::ConfigMap)
            .filter(|(_, o)| o.name() == CONFIG_MAP)
            .filter_map(|(_, o)| config_map_doc(o, "values"))
            .any(|v| is_true(v.root(), "sidecarInjectorWebhook.enableNamespacesByDefault"))
}

/// The proxy image an injector puts into pods, and where it is configured.
pub(super) struct InjectorImage {
    pub image: String,
    pub object: ObjId,
    pub field: String,
}

/// `global.proxy.image` as the injection template reads it: an image with a `/` is taken
/// whole, a bare name is completed with `global.hub` and `global.tag`. `None` when a part is
/// missing: the image is then not known from the input.
fn image_from(image: Option<&str>, hub: Option<&str>, tag: Option<&str>) -> Option<String> {
    let image = image.unwrap_or("proxyv2");
    if image.contains('/') {
        return Some(image.to_string());
    }
    Some(format!("{}/{image}:{}", hub?, tag?))
}

/// The proxy image of each injector ConfigMap name, from the ConfigMaps themselves and, for
/// names no ConfigMap holds, from IstioOperators (`spec.revision` names the ConfigMap).
pub(super) fn proxy_images(c: &Cluster) -> BTreeMap<String, InjectorImage> {
    let mut out = BTreeMap::new();
    for (id, o) in c.of_kind(Kind::ConfigMap) {
        if !o.name().starts_with(CONFIG_MAP) {
            continue;
        }
        let Some(values) = config_map_doc(o, "values") else {
            continue;
        };
        let image = image_from(
            text(values.root(), "global.proxy.image"),
            text(values.root(), "global.hub"),
            text(values.root(), "global.tag"),
        );
        if let Some(image) = image {
            out.insert(
                o.name().to_string(),
                InjectorImage {
                    image,
                    object: id,
                    field: "data.values".to_string(),
                },
            );
        }
    }
    for (id, o) in c.of_kind(Kind::IstioOperator) {
        let Some(spec) = o.source.root().get("spec") else {
            continue;
        };
        let revision = text(spec, "revision").unwrap_or("");
        let name = config_map_name(revision);
        if out.contains_key(&name) {
            continue;
        }
        let explicit = text(spec, "values.global.proxy.image");
        let image = image_from(
            explicit,
            text(spec, "values.global.hub").or_else(|| text(spec, "hub")),
            text(spec, "values.global.tag").or_else(|| text(spec, "tag")),
        );
        let field = if explicit.is_some() {
            "spec.values.global.proxy.image"
        } else if text(spec, "values.global.tag").is_some() {
            "spec.values.global.tag"
        } else {
            "spec.tag"
        };
        if let Some(image) = image {
            out.insert(
                name,
                InjectorImage {
                    image,
                    object: id,
                    field: field.to_string(),
                },
            );
        }
    }
    out
}

/// The image variant (`distroless`, `debug`) mesh config asks for
/// (`defaultConfig.image.imageType`), from the `istio` ConfigMap or an IstioOperator's
/// `meshConfig`. ProxyConfig resources can set it too; strait does not read them.
pub(super) fn mesh_image_type(c: &Cluster) -> Option<String> {
    let from_config_map = c
        .of_kind(Kind::ConfigMap)
        .filter(|(_, o)| o.name() == "istio" && o.namespace() == c.istio_namespace)
        .filter_map(|(_, o)| config_map_doc(o, "mesh"))
        .find_map(|m| text(m.root(), "defaultConfig.image.imageType").map(str::to_string));
    from_config_map.or_else(|| {
        c.of_kind(Kind::IstioOperator).find_map(|(_, o)| {
            text(
                o.source.root(),
                "spec.meshConfig.defaultConfig.image.imageType",
            )
            .map(str::to_string)
        })
    })
}

/// The image variant a pod's `proxy.istio.io/config` annotation asks for.
pub(super) fn annotation_image_type(
    o: &Object,
    annotations: &BTreeMap<String, String>,
) -> Option<String> {
    let doc = parse_doc(o, annotations.get("proxy.istio.io/config")?)?;
    text(doc.root(), "image.imageType").map(str::to_string)
}

/// The entries of Istio's mutating webhooks (names ending in `istio.io`, as istioctl selects
/// them) in a cluster.
pub(super) fn istio_webhooks(c: &Cluster) -> Vec<&MutatingWebhook> {
    c.of_kind(Kind::MutatingWebhookConfiguration)
        .filter_map(|(_, o)| o.mutating_webhook())
        .flat_map(|m| m.webhooks.iter().flatten())
        .filter(|h| h.name.ends_with("istio.io"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_map_per_revision() {
        assert_eq!(config_map_name(""), "istio-sidecar-injector");
        assert_eq!(config_map_name("default"), "istio-sidecar-injector");
        assert_eq!(config_map_name("canary"), "istio-sidecar-injector-canary");
    }

    #[test]
    fn proxy_image_as_the_template_builds_it() {
        assert_eq!(
            image_from(Some("proxyv2"), Some("docker.io/istio"), Some("1.30.3")).as_deref(),
            Some("docker.io/istio/proxyv2:1.30.3")
        );
        assert_eq!(
            image_from(None, Some("docker.io/istio"), Some("1.30.3")).as_deref(),
            Some("docker.io/istio/proxyv2:1.30.3")
        );
        assert_eq!(
            image_from(Some("mirror.example/proxy:7"), None, None).as_deref(),
            Some("mirror.example/proxy:7")
        );
        assert_eq!(image_from(Some("proxyv2"), None, Some("1.30.3")), None);
    }
}
