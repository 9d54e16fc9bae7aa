//! The control-plane benchmark's mesh: services spread over clusters on their own networks,
//! running pods as the API server shows them (`status.podIP`, phase Running, an injected
//! `istio-proxy` container), and the Istio configuration a team would apply next to its
//! services: a VirtualService and a DestinationRule with two subsets per service, and the
//! root namespace's default Sidecar (`./*`, `istio-system/*`), the scoping Istio recommends
//! at this size.
//!
//! Layout: `mesh/` is a mesh directory (one sub-directory per cluster, one file per namespace:
//! the Namespace, its Services and their Istio config); `pods/<cluster>/<namespace>.yaml` holds the running pods, what `strait up`
//! writes as a kubelet would, one file per namespace so that one pod's change re-reads a
//! hundred pods, not fifty thousand. Every name and address is derived from indices, so runs
//! are comparable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strait_control::source::{Files, Source};

use crate::{CROSS_NETWORK_GATEWAY, eastwest_service, istio_system, remote_secrets};

/// Services per namespace.
pub const SERVICES_PER_NS: usize = 20;
/// Every `SPREAD_EVERY`-th namespace runs in two clusters (namespace sameness: its services
/// have endpoints on two networks, reached through the east-west gateway from the other).
const SPREAD_EVERY: usize = 4;

/// The shape of the generated mesh.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub clusters: usize,
    pub services: usize,
    pub endpoints: usize,
    pub proxies: usize,
}

impl Shape {
    /// The reference mesh (10,000 services, 50,000 endpoints, 3 clusters, 1,000 proxies) scaled.
    pub fn scaled(scale: f64) -> Shape {
        let n = |x: f64| ((x * scale).round() as usize).max(1);
        Shape {
            clusters: 3,
            services: n(10_000.0).max(SERVICES_PER_NS),
            endpoints: n(50_000.0),
            proxies: n(1_000.0),
        }
    }

    pub fn namespaces(&self) -> usize {
        self.services.div_ceil(SERVICES_PER_NS)
    }

    /// Clusters a namespace runs in: its home, and the next one for spread namespaces.
    pub fn clusters_of(&self, ns: usize) -> Vec<usize> {
        let home = ns % self.clusters;
        if self.clusters > 1 && ns.is_multiple_of(SPREAD_EVERY) {
            vec![home, (home + 1) % self.clusters]
        } else {
            vec![home]
        }
    }
}

/// One running pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub cluster: usize,
    pub namespace: String,
    pub name: String,
    pub app: String,
    pub version: &'static str,
    pub ip: String,
}

impl Pod {
    pub fn yaml(&self) -> String {
        let Pod {
            namespace,
            name,
            app,
            version,
            ip,
            ..
        } = self;
        format!(
            "---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{app: {app}, version: {version}, pod-template-hash: 5d8f7c}}
  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: {app}-{version}-5d8f7c, uid: 00000000-0000-0000-0000-000000000000, controller: true}}]
spec:
  serviceAccountName: {app}
  containers:
  - {{name: {app}, image: 'registry.example.com/{app}:{version}', ports: [{{containerPort: 8080}}, {{containerPort: 9090}}]}}
  - {{name: istio-proxy, image: 'docker.io/istio/proxyv2:1.24.0', args: [proxy, sidecar]}}
status:
  phase: Running
  podIP: {ip}
  podIPs: [{{ip: {ip}}}]
"
        )
    }
}

/// A proxy that will open a discovery stream.
#[derive(Clone, Debug)]
pub struct ProxyPod {
    pub namespace: String,
    pub pod: String,
    pub service_account: String,
    pub ip: String,
    pub token: String,
}

/// What was written.
#[derive(Debug)]
pub struct Generated {
    pub mesh_dir: PathBuf,
    /// Per cluster: its pods directory.
    pub pod_dirs: Vec<(String, PathBuf)>,
    /// Per cluster and namespace: the pods in its file.
    pub pods: Vec<Vec<(String, Vec<Pod>)>>,
    pub proxies: Vec<ProxyPod>,
    pub tokens: PathBuf,
    pub files: usize,
    pub bytes: usize,
}

impl Generated {
    /// The files as the control plane reads them, with cluster0 as its own cluster (the one
    /// the proxies run in).
    pub fn source(&self) -> Source {
        Source {
            clusters: Arc::new(Files {
                paths: vec![self.mesh_dir.clone()],
                extra: self.pod_dirs.clone(),
                status: Vec::new(),
            }),
            own: Some("cluster0".into()),
        }
    }

    pub fn pod_file(&self, cluster: usize, ns: &str) -> PathBuf {
        self.pod_dirs[cluster].1.join(format!("{ns}.yaml"))
    }

    /// The file holding a namespace's Services and Istio config in a cluster.
    pub fn config_file(&self, cluster: usize, ns: &str) -> PathBuf {
        self.mesh_dir
            .join(format!("cluster{cluster}"))
            .join(format!("{ns}.yaml"))
    }
}

pub fn ns_name(k: usize) -> String {
    format!("ns{k}")
}

/// Writes the mesh into `dir`.
pub fn write(dir: &Path, shape: Shape) -> anyhow::Result<Generated> {
    let mesh_dir = dir.join("mesh");
    std::fs::create_dir_all(&mesh_dir)?;
    let mut files = 0;
    let mut bytes = 0;
    let mut put = |path: &Path, text: &str| -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
        files += 1;
        bytes += text.len();
        Ok(())
    };
    let mut mesh =
        String::from("# Generated control-plane benchmark mesh.\nmeshID: bench\nclusters:\n");
    for c in 0..shape.clusters {
        writeln!(
            mesh,
            "- name: cluster{c}\n  network: network{c}\n  role: primary"
        )?;
    }
    put(&mesh_dir.join("mesh.yaml"), &mesh)?;

    let namespaces = shape.namespaces();
    // Endpoints per service: the total spread evenly, the first services taking the remainder.
    let per_service = |s: usize| {
        shape.endpoints / shape.services + usize::from(s < shape.endpoints % shape.services)
    };
    let mut pods: Vec<Vec<(String, Vec<Pod>)>> = vec![Vec::new(); shape.clusters];
    // Per cluster: one file of Istio and Kubernetes config per namespace, as a team keeps it.
    let mut config: Vec<Vec<(String, String)>> = vec![Vec::new(); shape.clusters];
    let mut next_ip = vec![0usize; shape.clusters];
    for k in 0..namespaces {
        let ns = ns_name(k);
        let in_clusters = shape.clusters_of(k);
        let mut ns_pods: Vec<Vec<Pod>> = vec![Vec::new(); shape.clusters];
        for c in &in_clusters {
            config[*c].push((
                ns.clone(),
                format!(
                    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {{istio-injection: enabled}}\n"
                ),
            ));
        }
        for i in 0..SERVICES_PER_NS {
            let s = k * SERVICES_PER_NS + i;
            if s >= shape.services {
                break;
            }
            let app = format!("svc{i}");
            for c in &in_clusters {
                if let Some((_, text)) = config[*c].last_mut() {
                    text.push_str(&service_config(&ns, &app));
                }
            }
            for e in 0..per_service(s) {
                // Spread namespaces: two of every five endpoints run in the second cluster.
                let c = if in_clusters.len() > 1 && e % 5 >= 3 {
                    in_clusters[1]
                } else {
                    in_clusters[0]
                };
                let n = next_ip[c];
                next_ip[c] += 1;
                let version = if e % 2 == 0 { "v1" } else { "v2" };
                ns_pods[c].push(Pod {
                    cluster: c,
                    namespace: ns.clone(),
                    name: format!("{app}-{version}-5d8f7c-{e:05}"),
                    app: app.clone(),
                    version,
                    ip: pod_ip(c, n),
                });
            }
        }
        for (c, list) in ns_pods.into_iter().enumerate() {
            if in_clusters.contains(&c) {
                pods[c].push((ns.clone(), list));
            }
        }
    }
    for (c, files) in config.iter().enumerate() {
        let cdir = mesh_dir.join(format!("cluster{c}"));
        put(
            &cdir.join("istio-system.yaml"),
            &control_plane(c, shape.clusters),
        )?;
        for (ns, text) in files {
            put(&cdir.join(format!("{ns}.yaml")), text)?;
        }
    }
    let mut pod_dirs = Vec::new();
    for (c, list) in pods.iter().enumerate() {
        let pdir = dir.join("pods").join(format!("cluster{c}"));
        std::fs::create_dir_all(&pdir)?;
        for (ns, ps) in list {
            let text: String = ps.iter().map(Pod::yaml).collect();
            put(&pdir.join(format!("{ns}.yaml")), &text)?;
        }
        pod_dirs.push((format!("cluster{c}"), pdir));
    }

    // Proxies: pods of cluster0 (the control plane under test serves it), spread evenly.
    let local: Vec<&Pod> = pods[0].iter().flat_map(|(_, ps)| ps).collect();
    let take = shape.proxies.min(local.len());
    let mut proxies = Vec::new();
    let mut tokens = serde_json::Map::new();
    for j in 0..take {
        let p = local[j * local.len() / take];
        let token = format!("tok-{j}");
        tokens.insert(
            token.clone(),
            serde_json::json!({"cluster": "cluster0", "namespace": p.namespace, "service_account": p.app}),
        );
        proxies.push(ProxyPod {
            namespace: p.namespace.clone(),
            pod: p.name.clone(),
            service_account: p.app.clone(),
            ip: p.ip.clone(),
            token,
        });
    }
    let tokens_path = dir.join("tokens.json");
    std::fs::write(&tokens_path, serde_json::to_vec(&tokens)?)?;
    Ok(Generated {
        mesh_dir,
        pod_dirs,
        pods,
        proxies,
        tokens: tokens_path,
        files,
        bytes,
    })
}

/// The `n`-th pod address of cluster `c` (10.c.0.0/16 and up, never .0 or .255).
pub fn pod_ip(c: usize, n: usize) -> String {
    let hi = n / 250;
    format!("10.{}.{}.{}", 10 + c * 10 + hi / 256, hi % 256, n % 250 + 2)
}

/// The pods file of one namespace.
pub fn render_pods(pods: &[Pod]) -> String {
    pods.iter().map(Pod::yaml).collect()
}

fn service_config(ns: &str, app: &str) -> String {
    format!(
        "---
apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {ns}
spec:
  selector: {{app: {app}}}
  clusterIP: 172.20.0.1
  ports:
  - {{name: http, port: 8080}}
  - {{name: grpc-api, port: 9090}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {app}
  namespace: {ns}
spec:
  hosts: [{app}]
  http:
  - match:
    - headers:
        x-canary: {{exact: 'true'}}
    route:
    - destination: {{host: {app}, subset: v2}}
  - timeout: 10s
    retries: {{attempts: 3, perTryTimeout: 3s, retryOn: '5xx,reset'}}
    route:
    - destination: {{host: {app}, subset: v1}}
      weight: 90
    - destination: {{host: {app}, subset: v2}}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {app}
  namespace: {ns}
spec:
  host: {app}
  trafficPolicy:
    connectionPool:
      http: {{http2MaxRequests: 1000}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"
    )
}

fn control_plane(c: usize, clusters: usize) -> String {
    let net = format!("network{c}");
    let public = format!("198.18.{c}.1");
    format!(
        "{head}---
{service}status:
  loadBalancer:
    ingress: [{{ip: {public}}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-eastwestgateway-7f9c4-abcde
  namespace: istio-system
  labels:
    istio: eastwestgateway
    topology.istio.io/network: {net}
  annotations:
    inject.istio.io/templates: gateway
spec:
  containers:
  - name: istio-proxy
    image: docker.io/istio/proxyv2:1.24.0
    env: [{{name: ISTIO_META_REQUESTED_NETWORK_VIEW, value: {net}}}]
status:
  phase: Running
  podIP: 10.{}.255.250
---
{CROSS_NETWORK_GATEWAY}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  egress:
  - hosts: [\"./*\", \"istio-system/*\"]
{secrets}",
        10 + c * 10,
        head = istio_system(c),
        service = eastwest_service(c),
        secrets = remote_secrets(c, clusters),
    )
}
