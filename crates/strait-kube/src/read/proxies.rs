//! A cluster's proxies as its pods show them: a pod with an `istio-proxy` container has a
//! proxy (injected beside the application, or, alone or with the gateway template, the pod
//! is a gateway). What `proxy-status` expects to see connected, and what a proxy's name
//! (`<pod>.<namespace>`, a workload's name) resolves to.

use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use strait_model::injection::PROXY_CONTAINER;

/// One pod with a proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyPod {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The workload it belongs to, as the injector names it (a Deployment's name, not its
    /// ReplicaSet's).
    pub workload: String,
    pub service_account: String,
    /// `status.podIP`; none before the pod is scheduled.
    pub ip: Option<IpAddr>,
    /// The pod is the proxy (a gateway), rather than an application's sidecar.
    pub gateway: bool,
}

/// Istio's annotation choosing injection templates; `gateway` completes a pod's own proxy.
const TEMPLATES: &str = "inject.istio.io/templates";

/// The pods of `pods` (one cluster's, as listed) that have a proxy, in list order. Pods that
/// finished (`Succeeded`, `Failed`) have none running and are left out.
pub fn proxy_pods(cluster: &str, pods: &[Value]) -> Vec<ProxyPod> {
    pods.iter()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .filter_map(|p| {
            let containers = p["spec"]["containers"].as_array()?;
            let proxy = containers
                .iter()
                .any(|c| c["name"].as_str() == Some(PROXY_CONTAINER));
            if !proxy {
                return None;
            }
            let meta: ObjectMeta = serde_json::from_value(p["metadata"].clone()).ok()?;
            let gateway_template = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(TEMPLATES))
                .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"));
            Some(ProxyPod {
                cluster: cluster.to_string(),
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
                workload: crate::inject::meta::workload_name(&meta),
                service_account: p["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                ip: p["status"]["podIP"].as_str().and_then(|ip| ip.parse().ok()),
                gateway: gateway_template || containers.len() == 1,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_with_a_proxy_are_sidecars_or_gateways() {
        let pods = [
            json!({
                "metadata": {"name": "sleep-7f9c-k2x4q", "namespace": "sample",
                    "labels": {"pod-template-hash": "7f9c"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "sleep-7f9c", "uid": "u", "controller": true}]},
                "spec": {"serviceAccountName": "sleep",
                    "containers": [{"name": "sleep"}, {"name": "istio-proxy"}]},
                "status": {"phase": "Running", "podIP": "10.244.1.7"},
            }),
            json!({
                "metadata": {"name": "istio-eastwestgateway-5d9-abcde", "namespace": "istio-system",
                    "annotations": {"inject.istio.io/templates": "gateway"},
                    "labels": {"pod-template-hash": "5d9"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "istio-eastwestgateway-5d9", "uid": "u", "controller": true}]},
                "spec": {"containers": [{"name": "istio-proxy"}]},
                "status": {"phase": "Pending"},
            }),
            json!({
                "metadata": {"name": "plain", "namespace": "sample"},
                "spec": {"containers": [{"name": "app"}]},
                "status": {"phase": "Running"},
            }),
            json!({
                "metadata": {"name": "job-x", "namespace": "sample"},
                "spec": {"containers": [{"name": "job"}, {"name": "istio-proxy"}]},
                "status": {"phase": "Succeeded"},
            }),
        ];
        let got = proxy_pods("c1", &pods);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            (
                got[0].workload.as_str(),
                got[0].service_account.as_str(),
                got[0].gateway
            ),
            ("sleep", "sleep", false)
        );
        assert_eq!(got[0].ip, Some(IpAddr::from([10, 244, 1, 7])));
        assert_eq!(
            (got[1].workload.as_str(), got[1].gateway, got[1].ip),
            ("istio-eastwestgateway", true, None)
        );
    }
}
