//! Pieces every strait pod shares: how it runs (non-root, read-only, nothing to escalate), what
//! it knows about itself (the downward API), and where its trust comes from.

use serde_json::{Value, json};

/// The proxy's and control plane's user and group: Istio's 1337, which traffic capture
/// excludes from redirection, so a proxy's own connections are never looped back to it.
pub const UID: u32 = 1337;

/// The container security context: no root, no privilege escalation, no capabilities, no
/// writes outside the volumes mounted for that purpose.
pub fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "runAsUser": UID,
        "runAsGroup": UID,
        "capabilities": {"drop": ["ALL"]},
    })
}

/// The pod security context: the runtime's default seccomp profile, files owned by 1337.
pub fn pod_security() -> Value {
    json!({
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

fn field(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}})
}

pub fn env(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// Who the pod is, under the names Istio's proxies and istiod read.
pub fn downward_env() -> Vec<Value> {
    vec![
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("INSTANCE_IP", "status.podIP"),
        field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    ]
}

/// A writable scratch directory on a read-only root filesystem.
pub fn scratch_volume() -> (Value, Value) {
    (
        json!({"name": "tmp", "emptyDir": {}}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    )
}

/// What a gateway proxy needs to get its certificate: a service-account token for the
/// audience `istio-ca` (what the control plane's token review expects, as Istio's does), and
/// the mesh's root certificate from the ConfigMap the control plane writes in every namespace.
pub fn proxy_credential_volumes() -> (Vec<Value>, Vec<Value>) {
    let volumes = vec![
        json!({"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}}),
        json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}),
    ];
    let mounts = vec![
        json!({"name": "istio-token", "mountPath": "/var/run/secrets/tokens", "readOnly": true}),
        json!({"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio", "readOnly": true}),
    ];
    (volumes, mounts)
}

pub fn http_probe(path: &str, port: u16, period: u32, failures: u32) -> Value {
    json!({
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 3,
    })
}

/// Requests sized for a small mesh; limits on memory only (a CPU limit throttles the proxy
/// on bursts, which shows up as tail latency, not as a restart anyone would notice).
pub fn resources(cpu: &str, memory: &str, memory_limit: &str) -> Value {
    json!({
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"memory": memory_limit},
    })
}

/// A PodDisruptionBudget keeping one pod of `selector` up through voluntary disruptions
/// (node drains, cluster upgrades).
pub fn pdb(name: &str, component: &str, selector: &Value) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": super::meta(name, component),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}},
    })
}
