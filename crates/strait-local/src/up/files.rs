//! The files a local run writes into its state directory: the pods each control plane sees
//! (what a kubelet would report to the API server), bootstrap tokens, certificates when the
//! manifests bring none, and each sidecar's bootstrap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use strait_proxy::Bootstrap;
use strait_proxy::bootstrap::Ports;

use super::UpError;
use super::plan::{Plan, PodPlan};

/// The runtime Pod object of `p`: its template's labels, annotations and spec, the sidecar
/// container when injected, the owner reference, and a Running status with its address.
pub fn pod_object(p: &PodPlan) -> Value {
    let mut spec = p.spec.clone();
    if p.sidecar
        && let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut)
        && !containers
            .iter()
            .any(|c| c.get("name").and_then(Value::as_str) == Some("istio-proxy"))
    {
        containers.push(json!({"name": "istio-proxy", "image": "strait/proxy"}));
    }
    if let Some(o) = spec.as_object_mut() {
        o.insert("serviceAccountName".into(), json!(p.service_account));
    }
    let mut meta = json!({
        "name": p.name,
        "namespace": p.namespace,
        "labels": p.labels,
        "annotations": p.annotations,
    });
    if let Some(owner) = &p.owner {
        meta["ownerReferences"] = json!([{
            "apiVersion": owner.api_version,
            "kind": owner.kind,
            "name": owner.name,
            "uid": format!("strait-{}", owner.name),
            "controller": true,
        }]);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": "Running",
            "podIP": p.ip.to_string(),
            "podIPs": [{"ip": p.ip.to_string()}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

/// Writes `pods.yaml` for every cluster (one JSON document per pod: JSON is YAML) and
/// returns the path per cluster.
pub fn write_pods(dir: &Path, plan: &Plan) -> Result<BTreeMap<String, PathBuf>, UpError> {
    let mut by_cluster: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in &plan.clusters {
        by_cluster.entry(&c.name).or_default();
    }
    for p in &plan.pods {
        let doc = serde_json::to_string_pretty(&pod_object(p))
            .map_err(|e| UpError::Internal(e.to_string()))?;
        by_cluster.entry(&p.cluster).or_default().push(doc);
    }
    let mut out = BTreeMap::new();
    for (cluster, docs) in by_cluster {
        let path = dir.join("clusters").join(cluster).join("pods.yaml");
        let mut text = String::from("# Pods started by strait up (written, not read by it).\n");
        for d in docs {
            text.push_str("---\n");
            text.push_str(&d);
            text.push('\n');
        }
        write(&path, text.as_bytes())?;
        out.insert(cluster.to_string(), path);
    }
    Ok(out)
}

/// Files written per sidecar and per control plane.
#[derive(Debug, Default)]
pub struct Credentials {
    /// Bootstrap file per pod key.
    pub bootstraps: BTreeMap<String, PathBuf>,
    /// Tokens file per control-plane cluster.
    pub tokens: BTreeMap<String, PathBuf>,
}

/// Writes the bootstrap of every sidecar and one tokens file per control plane.
pub fn write_bootstraps(
    dir: &Path,
    plan: &Plan,
    cert_ttl_seconds: u64,
) -> Result<Credentials, UpError> {
    let mut tokens: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut bootstraps = BTreeMap::new();
    for p in plan.pods.iter().filter(|p| p.sidecar) {
        let cluster = plan
            .clusters
            .iter()
            .find(|c| c.name == p.cluster)
            .ok_or_else(|| UpError::Internal(format!("pod {} in an unplanned cluster", p.key())))?;
        let cp = plan
            .clusters
            .iter()
            .find(|c| c.name == cluster.control_plane_of)
            .and_then(|c| c.control_plane)
            .ok_or_else(|| {
                UpError::Internal(format!("cluster {} has no control plane", cluster.name))
            })?;
        let token = random_token();
        tokens.entry(cluster.control_plane_of.clone()).or_default().insert(
            token.clone(),
            json!({"cluster": p.cluster, "namespace": p.namespace, "service_account": p.service_account}),
        );
        let bs = Bootstrap {
            cluster: p.cluster.clone(),
            namespace: p.namespace.clone(),
            pod: p.name.clone(),
            service_account: p.service_account.clone(),
            trust_domain: cluster.trust_domain.clone(),
            pod_ip: p.ip,
            app_ip: p.app_ip,
            control_plane: cp.grpc,
            control_plane_name: "istiod.istio-system.svc".into(),
            root_cert: root_cert_path(dir, &cluster.control_plane_of),
            token,
            cert_ttl_seconds,
            ports: Ports::default(),
        };
        let path = dir
            .join("pods")
            .join(&p.cluster)
            .join(&p.namespace)
            .join(format!("{}.json", p.name));
        let text = serde_json::to_vec_pretty(&bs).map_err(|e| UpError::Internal(e.to_string()))?;
        write(&path, &text)?;
        bootstraps.insert(p.key(), path);
    }
    let mut token_files = BTreeMap::new();
    for c in plan.clusters.iter().filter(|c| c.control_plane.is_some()) {
        let path = dir.join("clusters").join(&c.name).join("tokens.json");
        let t = tokens.remove(&c.name).unwrap_or_default();
        write(
            &path,
            &serde_json::to_vec_pretty(&t).map_err(|e| UpError::Internal(e.to_string()))?,
        )?;
        token_files.insert(c.name.clone(), path);
    }
    Ok(Credentials {
        bootstraps,
        tokens: token_files,
    })
}

/// Where the control plane of `cluster` writes its trust bundle.
pub fn root_cert_path(dir: &Path, cluster: &str) -> PathBuf {
    dir.join("clusters").join(cluster).join("root-cert.pem")
}

/// 32 random bytes from a CSPRNG, hex: a bearer token nobody can guess.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file (creating its directory) through a rename, so readers never see half of it.
/// Files here may hold keys and tokens: they are readable by the owner only.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), UpError> {
    use std::io::Write;
    let err = |source| UpError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    // A fresh file, never one planted in advance (whose mode and owner would be someone
    // else's): a leftover of ours is removed first, and create_new refuses what remains.
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}
