//! The files a local run writes into its state directory, as the parts of a real cluster
//! would report or provide them:
//! - per cluster, the objects a kubelet, `istioctl install` and the cloud add to what the
//!   user applied (`runtime.yaml`: the running Pods with their addresses, the control plane's
//!   Pod and Service, the Services of IstioOperator gateways) and the load balancers'
//!   addresses (`lb-status.json`);
//! - bootstrap tokens per control plane, a bootstrap per proxy, the network table per
//!   network, and certificates when the manifests bring none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use strait_control::lb_status::LbStatus;
use strait_model::Mesh;
use strait_model::compile::ProxyRole;
use strait_proxy::Bootstrap;
use strait_proxy::bootstrap::Ports;

use super::UpError;
use super::plan::{ClusterPlan, Plan, PodPlan};

/// The runtime Pod object of `p`: its template's labels, annotations and spec, the sidecar
/// container when injected, the owner reference, and a Running status with its address.
pub fn pod_object(p: &PodPlan) -> Value {
    let mut spec = p.spec.clone();
    if p.sidecar()
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
    let mut labels = p.labels.clone();
    if !p.istio_network.is_empty() {
        // What the injector writes on every pod of a cluster whose network Istio knows.
        labels
            .entry(strait_model::network::NETWORK_LABEL.to_string())
            .or_insert_with(|| p.istio_network.clone());
    }
    let mut meta = json!({
        "name": p.name,
        "namespace": p.namespace,
        "labels": labels,
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

/// The control plane of a primary as its cluster shows it: an `istiod` Pod (so Gateways can
/// route to it, as `expose-istiod` does) and, unless the manifests have one, the `istiod`
/// Service istioctl installs.
fn control_plane_objects(mesh: &Mesh, c: &ClusterPlan) -> Vec<Value> {
    let Some(cp) = c.control_plane else {
        return Vec::new();
    };
    let Some(mc) = mesh.cluster_by_name(&c.name) else {
        return Vec::new();
    };
    let ns = mc.istio_namespace.clone();
    let mut out = vec![json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "istiod-strait",
            "namespace": ns,
            "labels": {"app": "istiod", "istio": "pilot"},
        },
        "spec": {"containers": [{"name": "discovery", "image": "strait"}]},
        "status": {
            "phase": "Running",
            "podIP": cp.grpc.ip().to_string(),
            "podIPs": [{"ip": cp.grpc.ip().to_string()}],
        },
    })];
    let host = format!("istiod.{ns}.svc.{}", mc.domain);
    if mesh.registry.by_host(&host).all(|s| s.cluster != mc.id) {
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "istiod", "namespace": ns, "labels": {"app": "istiod"}},
            "spec": {
                "selector": {"app": "istiod"},
                "ports": [
                    {"name": "https-dns", "port": 15012},
                    {"name": "http-monitoring", "port": 15014},
                ],
            },
        }));
    }
    out
}

/// What to pass a control plane for one cluster: its runtime objects and its load balancers.
#[derive(Debug, Default)]
pub struct Runtime {
    pub objects: BTreeMap<String, PathBuf>,
    pub lb_status: BTreeMap<String, PathBuf>,
}

/// Writes `runtime.yaml` and `lb-status.json` for every cluster.
pub fn write_runtime(dir: &Path, mesh: &Mesh, plan: &Plan) -> Result<Runtime, UpError> {
    let mut docs: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut status: BTreeMap<&str, LbStatus> = BTreeMap::new();
    for c in &plan.clusters {
        docs.entry(&c.name)
            .or_default()
            .extend(control_plane_objects(mesh, c));
        status.entry(&c.name).or_default();
    }
    for p in &plan.pods {
        docs.entry(&p.cluster).or_default().push(pod_object(p));
    }
    for lb in &plan.load_balancers {
        if let Some(op) = &lb.from_operator {
            let ports: Vec<Value> = op
                .ports
                .iter()
                .map(|(name, port, target)| json!({"name": name, "port": port, "targetPort": target}))
                .collect();
            docs.entry(&lb.cluster).or_default().push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": lb.name, "namespace": lb.namespace, "labels": op.labels},
                "spec": {"type": "LoadBalancer", "selector": op.selector, "ports": ports},
            }));
        }
        status.entry(&lb.cluster).or_default().services.insert(
            format!("{}/{}", lb.namespace, lb.name),
            vec![lb.address.to_string()],
        );
    }
    let mut out = Runtime::default();
    for (cluster, objects) in docs {
        let path = dir.join("clusters").join(cluster).join("runtime.yaml");
        let mut text = String::from(
            "# What the cluster runs, as its API server would show it (written by strait up).\n",
        );
        for o in objects {
            text.push_str("---\n");
            text.push_str(
                &serde_json::to_string_pretty(&o).map_err(|e| UpError::Internal(e.to_string()))?,
            );
            text.push('\n');
        }
        write(&path, text.as_bytes())?;
        out.objects.insert(cluster.to_string(), path);
    }
    for (cluster, s) in status {
        let path = dir.join("clusters").join(cluster).join("lb-status.json");
        write(
            &path,
            &serde_json::to_vec_pretty(&s).map_err(|e| UpError::Internal(e.to_string()))?,
        )?;
        out.lb_status.insert(cluster.to_string(), path);
    }
    Ok(out)
}

/// The network table of each network (no source address: each part gets its own).
pub fn write_reach(dir: &Path, plan: &Plan) -> Result<BTreeMap<String, PathBuf>, UpError> {
    let mut out = BTreeMap::new();
    for (k, n) in plan.networks.iter().enumerate() {
        let mut table = plan.reach(&n.name, std::net::IpAddr::from([0, 0, 0, 0]));
        table.source = None;
        table.pod.clear();
        let path = dir.join("networks").join(format!("{k}.json"));
        write(
            &path,
            &serde_json::to_vec_pretty(&table).map_err(|e| UpError::Internal(e.to_string()))?,
        )?;
        out.insert(n.name.clone(), path);
    }
    Ok(out)
}

/// Files written per proxy and per control plane.
#[derive(Debug, Default)]
pub struct Credentials {
    /// Bootstrap file per pod key.
    pub bootstraps: BTreeMap<String, PathBuf>,
    /// Tokens file per control-plane cluster.
    pub tokens: BTreeMap<String, PathBuf>,
}

/// Writes the bootstrap of every proxy and one tokens file per control plane. Tokens of pods
/// that keep running are kept, so a rewrite (a Deployment scaled) never cuts a proxy off.
pub fn write_bootstraps(
    dir: &Path,
    plan: &Plan,
    cert_ttl_seconds: u64,
    previous: &BTreeMap<String, String>,
) -> Result<(Credentials, BTreeMap<String, String>), UpError> {
    let mut tokens: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut issued = BTreeMap::new();
    let mut bootstraps = BTreeMap::new();
    for p in plan.pods.iter().filter(|p| p.proxy) {
        let cluster = plan
            .cluster(&p.cluster)
            .ok_or_else(|| UpError::Internal(format!("pod {} in an unplanned cluster", p.key())))?;
        let primary = plan.cluster(&cluster.control_plane_of).ok_or_else(|| {
            UpError::Internal(format!("cluster {} has no control plane", cluster.name))
        })?;
        let Some(cp) = primary.control_plane else {
            return Err(UpError::Internal(format!(
                "cluster {} has no control plane",
                primary.name
            )));
        };
        // A cluster whose proxies cannot reach their control plane still gets bootstraps
        // (pointing at the control plane itself): they wait, as they would in a cluster.
        let discovery = cluster.discovery.as_ref().map_or(cp.grpc, |d| d.addr);
        let token = previous.get(&p.key()).cloned().unwrap_or_else(random_token);
        issued.insert(p.key(), token.clone());
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
            control_plane: discovery.into(),
            control_plane_name: "istiod.istio-system.svc".into(),
            root_cert: root_cert_path(dir, &cluster.control_plane_of),
            token,
            token_file: None,
            cert_ttl_seconds,
            ports: Ports::default(),
            role: if p.gateway {
                ProxyRole::Gateway
            } else {
                ProxyRole::Sidecar
            },
            reach: {
                let mut r = plan.reach(&p.network, p.ip);
                if p.app_ip != p.ip {
                    r.pod.push(p.app_ip);
                }
                r
            },
            // Local mode has no iptables: apps use the sidecar as their HTTP proxy.
            capture: false,
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
    Ok((
        Credentials {
            bootstraps,
            tokens: token_files,
        },
        issued,
    ))
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
