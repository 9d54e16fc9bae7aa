//! Which pods get a sidecar: Istio's injection selection, as one function over plain Kubernetes
//! data (namespace labels, pod labels, annotations and spec) so that the analyzer's prediction
//! and the injector webhook's decision cannot drift apart. The model calls [`decide`] for every
//! pod template of the manifests; `strait-kube`'s webhook calls it for every pod it is sent.
//!
//! The rules are those of Istio's default `MutatingWebhookConfiguration` and of the webhook's
//! own checks (`reference/istio-multicluster.md` §9.1): namespace label `istio-injection` beats
//! `istio.io/rev`; with neither, the pod's own `istio.io/rev` or `sidecar.istio.io/inject=true`
//! label selects it; the pod label `sidecar.istio.io/inject` beats the deprecated annotation of
//! the same name; host-network pods and Kubernetes' own namespaces are never injected.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;

use crate::workload::Injection;

/// The pod label (and deprecated annotation) that opts a pod in or out.
pub const INJECT: &str = "sidecar.istio.io/inject";
/// The namespace label of the default revision's injector (`enabled` / `disabled`).
pub const NAMESPACE_INJECTION: &str = "istio-injection";
/// The namespace or pod label naming the revision whose injector serves it.
pub const REVISION: &str = "istio.io/rev";
/// The annotation naming the injection templates (`sidecar`, `gateway`, comma-separated).
pub const TEMPLATES: &str = "inject.istio.io/templates";
/// The name of the proxy container, which the injector adds (or fills in for `image: auto`).
pub const PROXY_CONTAINER: &str = "istio-proxy";

/// Namespaces Istio's injector never injects, whatever their labels.
const NEVER_INJECTED: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// Whether Istio's injector leaves namespace `ns` alone whatever its labels (Kubernetes' own).
pub fn never_injected(ns: &str) -> bool {
    NEVER_INJECTED.contains(&ns)
}

/// The injector that is asked: one revision's webhook, or any injector of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injector<'a> {
    /// The revision this injector serves. `None` stands for every installed revision: the
    /// analyzer asks "will some injector inject this pod", since manifests rarely say which
    /// revisions run.
    pub revision: Option<&'a str>,
    /// Whether this injector is the default revision: it alone serves
    /// `istio-injection=enabled`, `sidecar.istio.io/inject=true` without `istio.io/rev`, and
    /// the `default` tag.
    pub default_revision: bool,
    /// Whether namespaces without any injection label are injected
    /// (`sidecarInjectorWebhook.enableNamespacesByDefault`; the default revision only).
    pub by_default: bool,
}

impl Injector<'_> {
    /// Any injector of a cluster, the analyzer's question.
    pub fn any(by_default: bool) -> Injector<'static> {
        Injector {
            revision: None,
            default_revision: true,
            by_default,
        }
    }

    /// Whether this injector serves pods that ask for revision `rev`.
    fn serves(&self, rev: &str) -> bool {
        match self.revision {
            None => true,
            Some(own) => own == rev || (rev == "default" && self.default_revision),
        }
    }

    fn name(&self) -> &str {
        self.revision.unwrap_or("default")
    }
}

/// A namespace as the injector sees it.
#[derive(Clone, Copy, Debug)]
pub struct Namespace<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// A pod (or pod template) as the injector sees it.
#[derive(Clone, Copy, Debug)]
pub struct Pod<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub spec: Option<&'a PodSpec>,
}

/// The pod's `istio-proxy` container, if it is a real proxy: `image: auto` is a placeholder the
/// injector fills in (the gateway template), not a proxy yet.
pub fn has_proxy(spec: Option<&PodSpec>) -> bool {
    spec.is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == PROXY_CONTAINER && c.image.as_deref() != Some("auto"))
    })
}

/// Whether the pod asks for the `gateway` template: its proxy is its main container, which the
/// injector only completes.
pub fn wants_gateway_template(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(TEMPLATES)
        .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
}

/// Decides whether `injector` injects `pod` in namespace `ns` (`None`: the namespace's labels are
/// unknown, so only the pod's own labels can decide), and why.
pub fn decide(ns: Option<Namespace<'_>>, pod: Pod<'_>, injector: Injector<'_>) -> Injection {
    if has_proxy(pod.spec) {
        return Injection::Injected("the pod has an istio-proxy container".into());
    }
    if pod.spec.is_some_and(|s| s.host_network == Some(true)) {
        return Injection::NotInjected("pods on the host network are never injected".into());
    }
    let labels = pod.labels;
    let pod_label = labels.get(INJECT).map(String::as_str);
    let pod_opt = pod_label.or(pod.annotations.get(INJECT).map(String::as_str));
    if pod_opt == Some("false") {
        return Injection::NotInjected(
            "the pod opts out with sidecar.istio.io/inject=false".into(),
        );
    }
    let pod_rev = labels.get(REVISION).map(String::as_str);
    let by_pod = || match (pod_label, pod_rev) {
        (_, Some(rev)) if injector.serves(rev) => Some(Injection::Injected(format!(
            "the pod has label istio.io/rev={rev}"
        ))),
        (_, Some(rev)) => Some(Injection::NotInjected(format!(
            "the pod has label istio.io/rev={rev}, which revision {} does not serve",
            injector.name()
        ))),
        (Some("true"), None) if injector.default_revision => Some(Injection::Injected(
            "the pod has label sidecar.istio.io/inject=true".into(),
        )),
        _ => None,
    };
    let Some(ns) = ns else {
        return by_pod().unwrap_or(Injection::Unknown);
    };
    if never_injected(ns.name) {
        return Injection::NotInjected(format!("namespace {} is never injected", ns.name));
    }
    match ns.labels.get(NAMESPACE_INJECTION).map(String::as_str) {
        Some("enabled") if injector.default_revision => {
            return Injection::Injected(format!(
                "namespace {} has istio-injection=enabled",
                ns.name
            ));
        }
        Some("enabled") => {
            return Injection::NotInjected(format!(
                "namespace {} has istio-injection=enabled, which the default revision serves, not revision {}",
                ns.name,
                injector.name()
            ));
        }
        Some(other) => {
            return Injection::NotInjected(format!(
                "namespace {} has istio-injection={other}",
                ns.name
            ));
        }
        None => {}
    }
    if let Some(rev) = ns.labels.get(REVISION) {
        return if injector.serves(rev) {
            Injection::Injected(format!("namespace {} has istio.io/rev={rev}", ns.name))
        } else {
            Injection::NotInjected(format!(
                "namespace {} has istio.io/rev={rev}, which revision {} does not serve",
                ns.name,
                injector.name()
            ))
        };
    }
    if let Some(verdict) = by_pod() {
        return verdict;
    }
    if ns.labels.get("istio.io/dataplane-mode").map(String::as_str) == Some("ambient") {
        return Injection::NotInjected(format!("namespace {} is in ambient mode", ns.name));
    }
    if injector.by_default && injector.default_revision {
        return Injection::Injected("the injector injects every namespace by default".into());
    }
    Injection::NotInjected(format!(
        "namespace {} has no istio-injection or istio.io/rev label and the pod no sidecar.istio.io/inject=true label",
        ns.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn verdict(ns: &[(&str, &str)], pod: &[(&str, &str)], injector: Injector<'_>) -> bool {
        let (ns, labels, none) = (map(ns), map(pod), BTreeMap::new());
        let ns = Namespace {
            name: "app",
            labels: &ns,
        };
        let pod = Pod {
            labels: &labels,
            annotations: &none,
            spec: None,
        };
        matches!(decide(Some(ns), pod, injector), Injection::Injected(_))
    }

    #[test]
    fn revisions_serve_only_their_own_pods() {
        let canary = Injector {
            revision: Some("canary"),
            default_revision: false,
            by_default: false,
        };
        let default = Injector {
            revision: Some("stable"),
            default_revision: true,
            by_default: false,
        };
        let enabled = [("istio-injection", "enabled")];
        assert!(verdict(&enabled, &[], default));
        assert!(!verdict(&enabled, &[], canary));
        // istio-injection wins over istio.io/rev.
        let both = [("istio-injection", "enabled"), ("istio.io/rev", "canary")];
        assert!(!verdict(&both, &[], canary));
        assert!(verdict(&[("istio.io/rev", "canary")], &[], canary));
        assert!(!verdict(&[("istio.io/rev", "canary")], &[], default));
        assert!(verdict(&[("istio.io/rev", "default")], &[], default));
        assert!(verdict(&[], &[("istio.io/rev", "canary")], canary));
        assert!(verdict(
            &[],
            &[("sidecar.istio.io/inject", "true")],
            default
        ));
        assert!(!verdict(
            &[],
            &[("sidecar.istio.io/inject", "true")],
            canary
        ));
        // The namespace's revision wins over the pod's.
        assert!(!verdict(
            &[("istio.io/rev", "stable")],
            &[("istio.io/rev", "canary")],
            canary
        ));
    }

    #[test]
    fn by_default_is_the_default_revisions_setting() {
        let any = Injector::any(true);
        assert!(verdict(&[], &[], any));
        assert!(!verdict(&[("istio-injection", "disabled")], &[], any));
        assert!(!verdict(
            &[],
            &[],
            Injector {
                revision: Some("canary"),
                default_revision: false,
                by_default: true,
            }
        ));
    }

    #[test]
    fn pod_label_beats_the_deprecated_annotation() {
        let (ns, labels, ann) = (
            map(&[("istio-injection", "enabled")]),
            map(&[("sidecar.istio.io/inject", "true")]),
            map(&[("sidecar.istio.io/inject", "false")]),
        );
        let pod = Pod {
            labels: &labels,
            annotations: &ann,
            spec: None,
        };
        let ns = Namespace {
            name: "app",
            labels: &ns,
        };
        assert!(matches!(
            decide(Some(ns), pod, Injector::any(false)),
            Injection::Injected(_)
        ));
    }
}
