//! The webhook decides as `strait analyze` predicts: for every pod template of a table of
//! manifests, the model's verdict (what the analyzer reports on) equals the webhook's decision
//! for the same pod, namespace labels and injector settings.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use strait_kube::inject::{Config, Decision, decision};
use strait_model::{BuildOptions, Injection, Mesh, build};

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: injected, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: revved, labels: {istio.io/rev: canary}}
---
apiVersion: v1
kind: Namespace
metadata: {name: both, labels: {istio-injection: disabled, istio.io/rev: canary}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: v1
kind: Namespace
metadata: {name: mesh-free, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
"#;

/// (name, namespace, pod labels, pod annotations, extra spec, expected injection)
const WORKLOADS: &[(&str, &str, &str, &str, &str, bool)] = &[
    ("plain-app", "injected", "{app: a}", "{}", "", true),
    (
        "label-out",
        "injected",
        "{app: b, sidecar.istio.io/inject: \"false\"}",
        "{}",
        "",
        false,
    ),
    (
        "annotation-out",
        "injected",
        "{app: c}",
        "{sidecar.istio.io/inject: \"false\"}",
        "",
        false,
    ),
    (
        "host-net",
        "injected",
        "{app: d}",
        "{}",
        "hostNetwork: true",
        false,
    ),
    ("rev-ns", "revved", "{app: e}", "{}", "", true),
    (
        "disabled-wins",
        "both",
        "{app: f, sidecar.istio.io/inject: \"true\"}",
        "{}",
        "",
        false,
    ),
    (
        "pod-opt-in",
        "plain",
        "{app: g, sidecar.istio.io/inject: \"true\"}",
        "{}",
        "",
        true,
    ),
    (
        "pod-rev",
        "plain",
        "{app: h, istio.io/rev: canary}",
        "{}",
        "",
        true,
    ),
    ("nothing", "plain", "{app: i}", "{}", "", false),
    (
        "label-beats-annotation",
        "plain",
        "{app: j, sidecar.istio.io/inject: \"true\"}",
        "{sidecar.istio.io/inject: \"false\"}",
        "",
        true,
    ),
    (
        "ambient",
        "mesh-free",
        "{app: k, sidecar.istio.io/inject: \"true\"}",
        "{}",
        "",
        true,
    ),
    ("ambient-plain", "mesh-free", "{app: k2}", "{}", "", false),
    (
        "system",
        "kube-system",
        "{app: l, sidecar.istio.io/inject: \"true\"}",
        "{}",
        "",
        false,
    ),
];

fn manifests() -> String {
    let mut out = MANIFESTS.to_string();
    for (name, ns, labels, annotations, extra, _) in WORKLOADS {
        out.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: x}}}}\n  template:\n    metadata:\n      labels: {labels}\n      annotations: {annotations}\n    spec:\n      {extra}\n      containers: [{{name: app, image: example/app}}]\n"
        ));
    }
    // Already injected, in a namespace nothing selects: it has its proxy.
    out.push_str("---\napiVersion: v1\nkind: Pod\nmetadata: {name: injected-by-hand, namespace: plain, labels: {app: m}}\nspec:\n  containers: [{name: app, image: a}, {name: istio-proxy, image: strait}]\n");
    // A Job in an injected namespace.
    out.push_str("---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate, namespace: injected}\nspec:\n  template:\n    metadata: {labels: {app: migrate}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: app, image: m}]\n");
    out
}

fn mesh() -> (tempfile::TempDir, Mesh) {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("all.yaml"), manifests()).expect("write");
    let (mesh, diags) = build(
        strait_api::read_input(&[dir.path().to_path_buf()]),
        &BuildOptions::default(),
    );
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == strait_api::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    (dir, mesh)
}

/// Whether the pod ends up with a proxy after `config`'s webhook.
fn webhook_injects(pod: &Pod, namespace: &str, config: &Config) -> bool {
    match decision(pod, namespace, config) {
        Decision::Sidecar(_) | Decision::Gateway(_) | Decision::AlreadyInjected(_) => true,
        Decision::Skip(_) => false,
    }
}

#[test]
fn the_webhook_decides_as_the_model_predicts() {
    let (_dir, mesh) = mesh();
    let cluster = &mesh.clusters[0];
    // The cluster runs two revisions: the default one and `canary`. The model asks "will some
    // injector inject this pod"; the webhooks answer one revision each.
    let mut default = Config::new("strait");
    default.inject_by_default = cluster.inject_by_default;
    default.namespaces = cluster
        .namespaces
        .iter()
        .map(|(name, ns)| (name.clone(), ns.labels.clone()))
        .collect::<BTreeMap<_, _>>();
    let mut canary = default.clone();
    canary.revision = "canary".into();
    canary.default_revision = false;

    let mut seen = 0;
    for w in &mesh.workloads {
        let obj = mesh.object(w.object);
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(w.name.clone()),
                labels: Some(w.labels.clone()),
                annotations: Some(w.annotations.clone()),
                ..ObjectMeta::default()
            },
            spec: w.pod_spec(obj).cloned(),
            status: None,
        };
        let model = match &w.sidecar {
            Injection::Injected(_) => true,
            Injection::NotInjected(_) => false,
            other => panic!("{}: unexpected model verdict {other:?}", w.name),
        };
        let webhook = webhook_injects(&pod, &w.namespace, &default)
            || webhook_injects(&pod, &w.namespace, &canary);
        assert_eq!(
            webhook, model,
            "{}/{}: model {:?}",
            w.namespace, w.name, w.sidecar
        );
        if let Some(expected) = WORKLOADS
            .iter()
            .find(|row| row.0 == w.name)
            .map(|row| row.5)
        {
            assert_eq!(model, expected, "{}: {:?}", w.name, w.sidecar);
        }
        seen += 1;
    }
    assert_eq!(seen, WORKLOADS.len() + 2, "every workload compared");
}
