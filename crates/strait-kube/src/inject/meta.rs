//! The labels and annotations injection adds to a pod (`reference/istio-multicluster.md` §9.1):
//! the mTLS marker the control plane sends to clients, the canonical service Istio's telemetry
//! names workloads by, the network, the status record that makes injection idempotent, and
//! the scrape annotations that point Prometheus at the proxy's merged metrics.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::config::Config;

pub const TLS_MODE: &str = "security.istio.io/tlsMode";
pub const CANONICAL_NAME: &str = "service.istio.io/canonical-name";
pub const CANONICAL_REVISION: &str = "service.istio.io/canonical-revision";
pub const NETWORK: &str = "topology.istio.io/network";
/// Written by injection; its presence means the pod was injected already.
pub const STATUS: &str = "sidecar.istio.io/status";
pub const REVISION: &str = "istio.io/rev";
/// Which container `kubectl logs`/`exec` pick without `-c`: the application, not the proxy.
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";
pub const DEFAULT_LOGS_CONTAINER: &str = "kubectl.kubernetes.io/default-logs-container";

/// The port and path of the proxy's merged Prometheus endpoint (application metrics merged with
/// the proxy's).
const SCRAPE: [(&str, &str); 3] = [
    ("prometheus.io/scrape", "true"),
    ("prometheus.io/port", "15020"),
    ("prometheus.io/path", "/stats/prometheus"),
];

/// The name of the workload a pod belongs to, as the injector can know it from the pod alone:
/// a Deployment's pod is owned by a ReplicaSet `<deployment>-<pod-template-hash>`; other
/// controllers own their pods directly; a bare pod is its own workload (its name, or its
/// `generateName` without the trailing dash).
pub fn workload_name(meta: &ObjectMeta) -> String {
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .or_else(|| meta.owner_references.iter().flatten().next());
    if let Some(owner) = owner {
        let hash = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"));
        if owner.kind == "ReplicaSet"
            && let Some(hash) = hash
            && let Some(deployment) = owner.name.strip_suffix(&format!("-{hash}"))
        {
            return deployment.to_string();
        }
        return owner.name.clone();
    }
    match (meta.name.as_deref(), meta.generate_name.as_deref()) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(prefix)) => prefix.trim_end_matches('-').to_string(),
        _ => String::new(),
    }
}

/// The labels to add: only those the pod does not set itself, as Istio defaults them.
pub fn labels(meta: &ObjectMeta, config: &Config) -> BTreeMap<String, String> {
    let empty = BTreeMap::new();
    let have = meta.labels.as_ref().unwrap_or(&empty);
    let get = |k: &str| have.get(k).filter(|v| !v.is_empty()).cloned();
    let mut add = BTreeMap::new();
    if have.get(TLS_MODE).map(String::as_str) != Some("istio") {
        add.insert(TLS_MODE.to_string(), "istio".to_string());
    }
    if !have.contains_key(CANONICAL_NAME) {
        let name = get("app.kubernetes.io/name")
            .or_else(|| get("app"))
            .unwrap_or_else(|| workload_name(meta));
        if !name.is_empty() {
            add.insert(CANONICAL_NAME.to_string(), name);
        }
    }
    if !have.contains_key(CANONICAL_REVISION) {
        let revision = get("app.kubernetes.io/version")
            .or_else(|| get("version"))
            .unwrap_or_else(|| "latest".into());
        add.insert(CANONICAL_REVISION.to_string(), revision);
    }
    if !config.network.is_empty() && !have.contains_key(NETWORK) {
        add.insert(NETWORK.to_string(), config.network.clone());
    }
    add
}

/// What injection added, recorded on the pod (`sidecar.istio.io/status`): a later review of
/// the same pod sees it and leaves the pod alone, and operators see what the injector did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectionStatus<'a> {
    pub init_containers: Vec<&'a str>,
    pub containers: Vec<&'a str>,
    pub volumes: Vec<&'a str>,
    pub revision: &'a str,
}

/// The annotations to add: the status, the revision, the default container, and the scrape
/// annotations unless the pod has its own (then Prometheus keeps scraping what the pod says).
pub fn annotations(
    meta: &ObjectMeta,
    config: &Config,
    status: &InjectionStatus<'_>,
    first_app_container: Option<&str>,
) -> BTreeMap<String, String> {
    let empty = BTreeMap::new();
    let have = meta.annotations.as_ref().unwrap_or(&empty);
    let mut add = BTreeMap::new();
    add.insert(
        STATUS.to_string(),
        serde_json::to_string(status).unwrap_or_default(),
    );
    add.insert(REVISION.to_string(), config.revision.clone());
    if let Some(app) = first_app_container {
        for key in [DEFAULT_CONTAINER, DEFAULT_LOGS_CONTAINER] {
            if !have.contains_key(key) {
                add.insert(key.to_string(), app.to_string());
            }
        }
    }
    if !have.contains_key(SCRAPE[0].0) {
        for (k, v) in SCRAPE {
            add.insert(k.to_string(), v.to_string());
        }
    }
    add
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    fn owned(kind: &str, name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                kind: kind.into(),
                name: name.into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            generate_name: Some(format!("{name}-")),
            ..meta(labels)
        }
    }

    #[test]
    fn workload_names_follow_the_owner() {
        let rs = owned(
            "ReplicaSet",
            "sleep-7f6b9c",
            &[("pod-template-hash", "7f6b9c")],
        );
        assert_eq!(workload_name(&rs), "sleep");
        assert_eq!(workload_name(&owned("StatefulSet", "db", &[])), "db");
        assert_eq!(
            workload_name(&owned("ReplicaSet", "bare-rs", &[])),
            "bare-rs"
        );
        let gen_only = ObjectMeta {
            generate_name: Some("worker-".into()),
            ..ObjectMeta::default()
        };
        assert_eq!(workload_name(&gen_only), "worker");
    }

    #[test]
    fn canonical_labels_default_like_istio() {
        let c = Config::new("strait");
        let l = labels(
            &meta(&[("app.kubernetes.io/name", "web"), ("app", "x")]),
            &c,
        );
        assert_eq!(l[CANONICAL_NAME], "web");
        assert_eq!(l[CANONICAL_REVISION], "latest");
        let l = labels(&meta(&[("app", "x"), ("version", "v2")]), &c);
        assert_eq!(
            (l[CANONICAL_NAME].as_str(), l[CANONICAL_REVISION].as_str()),
            ("x", "v2")
        );
        assert!(!l.contains_key(NETWORK));
        let mut c = c;
        c.network = "network1".into();
        let own = labels(&meta(&[(CANONICAL_NAME, "mine"), (NETWORK, "n2")]), &c);
        assert!(!own.contains_key(CANONICAL_NAME) && !own.contains_key(NETWORK));
        assert_eq!(labels(&meta(&[]), &c)[NETWORK], "network1");
    }
}
