//! From a pod to the patch that injects it: decide (with the model's [`decide`], the very
//! function `strait analyze` predicts with), then build the additions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use strait_model::Injection;
use strait_model::injection::{self, Injector, Namespace, decide};

use super::config::Config;
use super::meta::{self, InjectionStatus};
use super::patch::Patch;
use super::sidecar;

/// What the injector does with a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Injection already happened (a status annotation, or a real `istio-proxy`): a review of
    /// an injected pod must change nothing.
    AlreadyInjected(String),
    /// Not selected, and why.
    Skip(String),
    /// Add the sidecar and the capture init container.
    Sidecar(String),
    /// Complete the pod's own `istio-proxy` (`image: auto`) as a gateway.
    Gateway(String),
}

/// What answering a review produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Unchanged(String),
    Patched { patch: Patch, warnings: Vec<String> },
}

/// Which way `config`'s injector goes for `pod` in `namespace` (the review's namespace: a pod
/// made by a controller has none of its own yet).
pub fn decision(pod: &Pod, namespace: &str, config: &Config) -> Decision {
    let empty = BTreeMap::new();
    let meta = &pod.metadata;
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    if annotations.contains_key(meta::STATUS) {
        return Decision::AlreadyInjected(format!("the pod has a {} annotation", meta::STATUS));
    }
    let namespace = if namespace.is_empty() {
        meta.namespace.as_deref().unwrap_or_default()
    } else {
        namespace
    };
    // A namespace the config does not list: the API server's namespaceSelector already chose
    // it (that is why the webhook is called), so only the pod's own labels can still say no,
    // as in Istio's webhook. Kubernetes' own namespaces are never injected.
    let live = config.live.snapshot();
    let labels = live
        .as_ref()
        .and_then(|l| l.get(namespace))
        .or_else(|| config.namespaces.get(namespace));
    let ns = match labels {
        Some(labels) => Some(Namespace {
            name: namespace,
            labels,
        }),
        None if injection::never_injected(namespace) => Some(Namespace {
            name: namespace,
            labels: &empty,
        }),
        None => None,
    };
    let verdict = decide(
        ns,
        injection::Pod {
            labels: meta.labels.as_ref().unwrap_or(&empty),
            annotations,
            spec: pod.spec.as_ref(),
        },
        Injector {
            revision: Some(&config.revision),
            default_revision: config.default_revision,
            by_default: config.inject_by_default,
        },
    );
    let why = match verdict {
        Injection::Injected(why) if injection::has_proxy(pod.spec.as_ref()) => {
            return Decision::AlreadyInjected(why);
        }
        Injection::Injected(why) => why,
        Injection::Unknown => format!(
            "the webhook's namespaceSelector chose namespace {namespace}, which the injector config does not list"
        ),
        Injection::NotInjected(why) => return Decision::Skip(why),
        // `decide` answers Injected, NotInjected or Unknown only.
        Injection::Gateway | Injection::External => {
            return Decision::Skip("not a pod the injector completes".into());
        }
    };
    if injection::wants_gateway_template(annotations) {
        Decision::Gateway(why)
    } else {
        Decision::Sidecar(why)
    }
}

/// The patch that injects `pod`, or why it stays as it is.
pub fn mutate(pod: &Pod, namespace: &str, config: &Config) -> Outcome {
    match decision(pod, namespace, config) {
        Decision::AlreadyInjected(why) => Outcome::Unchanged(format!("already injected: {why}")),
        Decision::Skip(why) => Outcome::Unchanged(why),
        Decision::Sidecar(_) => sidecar_patch(pod, config),
        Decision::Gateway(_) => gateway_patch(pod, config),
    }
}

fn to_values<T: serde::Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

/// Whether the pod runs to completion (a Job's, or `restartPolicy` other than Always): a
/// regular sidecar container keeps it from ever completing.
fn runs_to_completion(pod: &Pod) -> bool {
    let owned_by_job = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.kind == "Job");
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    owned_by_job || matches!(policy, Some("Never" | "OnFailure"))
}

/// Native sidecar or regular container: the cluster's support, and the pod's
/// `sidecar.istio.io/nativeSidecar` annotation, as Istio reads it.
fn native(pod: &Pod, config: &Config, warnings: &mut Vec<String>) -> bool {
    let asked = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("sidecar.istio.io/nativeSidecar"))
        .map(String::as_str);
    match asked {
        Some("false") => false,
        Some("true") if !config.native_sidecars() => {
            warnings.push(format!(
                "strait injector: the pod asks for a native sidecar, but the injector is configured for Kubernetes {} (native sidecars need 1.29); the proxy is a regular container",
                config.kubernetes_version
            ));
            false
        }
        _ => config.native_sidecars(),
    }
}

fn sidecar_patch(pod: &Pod, config: &Config) -> Outcome {
    let mut warnings = Vec::new();
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let workload = meta::workload_name(&pod.metadata);
    let resources = sidecar::resources(annotations, &mut warnings);
    let native = native(pod, config, &mut warnings);
    if !native && runs_to_completion(pod) {
        warnings.push(
            "strait injector: the proxy is a regular container, so this run-to-completion pod (a Job's) will not complete while the proxy runs: its Job never finishes. Use Kubernetes 1.29+ native sidecars (kubernetes_version in the injector config), or opt the pod out with sidecar.istio.io/inject: \"false\"".into(),
        );
    }
    let proxy = sidecar::proxy(config, &workload, resources.clone(), native);
    let init = sidecar::init(config, annotations, resources);
    let spec = pod.spec.as_ref();
    let volumes = sidecar::volumes();
    let status = InjectionStatus {
        init_containers: if native {
            vec![sidecar::INIT, sidecar::PROXY]
        } else {
            vec![sidecar::INIT]
        },
        containers: if native { vec![] } else { vec![sidecar::PROXY] },
        volumes: volumes.iter().map(|v| v.name.as_str()).collect(),
        revision: &config.revision,
    };
    let first_app = spec
        .and_then(|s| s.containers.first())
        .map(|c| c.name.as_str());

    let mut patch = Patch::default();
    let (labels, annotations_have) = (
        pod.metadata.labels.as_ref(),
        pod.metadata.annotations.as_ref(),
    );
    patch.add_entries(
        "/metadata/labels",
        labels,
        &meta::labels(&pod.metadata, config),
    );
    patch.add_entries(
        "/metadata/annotations",
        annotations_have,
        &meta::annotations(&pod.metadata, config, &status, first_app),
    );
    let init_count = spec.and_then(|s| s.init_containers.as_ref().map(Vec::len));
    let mut inits = vec![init];
    if native {
        // After istio-init (the rules must exist before the proxy takes traffic) and before
        // the application's own init containers, which may need the mesh.
        inits.push(proxy.clone());
    }
    patch.insert("/spec/initContainers", init_count, to_values(inits), true);
    if !native {
        let count = spec.map(|s| s.containers.len());
        patch.insert("/spec/containers", count, to_values(vec![proxy]), false);
    }
    let volume_count = spec.and_then(|s| s.volumes.as_ref().map(Vec::len));
    patch.insert("/spec/volumes", volume_count, to_values(volumes), false);
    Outcome::Patched { patch, warnings }
}

/// The `gateway` template: the pod brings its own `istio-proxy` with `image: auto`; the injector
/// fills in the image, the command and the bootstrap environment, and adds no init container
/// (a gateway's traffic is addressed to it, nothing to capture).
fn gateway_patch(pod: &Pod, config: &Config) -> Outcome {
    let Some((index, container)) = pod.spec.as_ref().and_then(|s| {
        s.containers
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == sidecar::PROXY)
    }) else {
        return Outcome::Unchanged(
            "the gateway template needs an istio-proxy container with image: auto, and the pod has none".into(),
        );
    };
    let mut patch = Patch::default();
    let base = format!("/spec/containers/{index}");
    patch.add(format!("{base}/image"), &config.image);
    if container.args.as_ref().is_none_or(Vec::is_empty) {
        patch.add(format!("{base}/args"), sidecar::proxy_args());
    }
    let workload = meta::workload_name(&pod.metadata);
    let have: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    let env: Vec<_> = sidecar::bootstrap_env(config, &workload, "gateway")
        .into_iter()
        .filter(|e| !have.contains(&e.name.as_str()))
        .collect();
    patch.insert(
        &format!("{base}/env"),
        container.env.as_ref().map(Vec::len),
        to_values(env),
        false,
    );
    let have_mounts: Vec<&str> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.as_str())
        .collect();
    let mounts: Vec<_> = sidecar::mounts()
        .into_iter()
        .filter(|m| !have_mounts.contains(&m.name.as_str()))
        .collect();
    patch.insert(
        &format!("{base}/volumeMounts"),
        container.volume_mounts.as_ref().map(Vec::len),
        to_values(mounts),
        false,
    );
    let spec_volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    let volumes: Vec<_> = sidecar::volumes()
        .into_iter()
        .filter(|v| !spec_volumes.is_some_and(|have| have.iter().any(|h| h.name == v.name)))
        .collect();
    let names: Vec<String> = volumes.iter().map(|v| v.name.clone()).collect();
    patch.insert(
        "/spec/volumes",
        spec_volumes.map(Vec::len),
        to_values(volumes),
        false,
    );
    let status = InjectionStatus {
        init_containers: vec![],
        containers: vec![sidecar::PROXY],
        volumes: names.iter().map(String::as_str).collect(),
        revision: &config.revision,
    };
    patch.add_entries(
        "/metadata/labels",
        pod.metadata.labels.as_ref(),
        &meta::labels(&pod.metadata, config),
    );
    patch.add_entries(
        "/metadata/annotations",
        pod.metadata.annotations.as_ref(),
        &meta::annotations(&pod.metadata, config, &status, None),
    );
    Outcome::Patched {
        patch,
        warnings: Vec::new(),
    }
}
