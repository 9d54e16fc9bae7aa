//! The running mesh a command looks at (`proxy-status`, `proxy-config`, `check sync`), and
//! the one thing that differs between a local run and clusters: how its parts' HTTP ports are
//! reached. A local run's control planes and proxies answer on loopback addresses (from their
//! network's namespace in namespace mode). A cluster's are read through its API server's pod
//! proxy: the control plane's debug port (15014) on its `app=istiod` pod, a proxy's admin port
//! (15000) on its pod. The mesh's shape comes as a [`State`] either way (a local run's own;
//! for clusters, built from their pods with a proxy), so names, tables and checks are one code.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::StatusCode;
use strait_api::Kind;
use strait_kube::read::{self, ClusterClient, Listed, pod_proxy, proxies};
use strait_local::up::state::{self, ClusterState, LbState, PodState, State};

use crate::cli::{ClusterArgs, StateArg};

/// How long a local part has to answer.
const LOCAL_ANSWER: Duration = Duration::from_secs(5);
/// How long a cluster's part has to answer: one more hop, through the API server.
const CLUSTER_ANSWER: Duration = Duration::from_secs(15);
/// The control plane's debug port (istiod's monitoring port).
const DEBUG_PORT: u16 = 15014;
/// A proxy's admin port.
const ADMIN_PORT: u16 = 15000;

/// A running mesh: its shape, and how to reach its parts.
pub(crate) struct Running {
    pub st: State,
    parts: Parts,
}

enum Parts {
    Local,
    Clusters {
        clients: Vec<ClusterClient>,
        /// Cluster → its control plane's running pods (replicas), in the Istio namespace,
        /// ready ones first.
        control_planes: BTreeMap<String, Vec<String>>,
        istio_namespace: String,
    },
}

/// A control plane to ask, by the cluster it runs in.
pub(crate) struct ControlPlane {
    pub cluster: String,
    /// Where it answers, for messages: an address, or `<namespace>/<pod>`.
    pub at: String,
    /// Against clusters: the replica's pod.
    pod: Option<String>,
}

impl Running {
    /// The mesh the command line names: clusters when `--kubeconfig`/`--context` are given,
    /// else the local run of `--state`.
    pub(crate) fn open(
        state: &StateArg,
        clusters: &ClusterArgs,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Running> {
        super::cluster_target::not_both(state.state.as_deref(), clusters)?;
        if clusters.given() {
            return runtime.block_on(async {
                let clients = super::cluster_target::connect(clusters).await?;
                Running::clusters(clients, &clusters.istio_namespace).await
            });
        }
        let dir = state.state.clone().unwrap_or_else(state::default_dir);
        Ok(Running::local(State::load(&dir)?))
    }

    pub(crate) fn local(st: State) -> Running {
        Running {
            st,
            parts: Parts::Local,
        }
    }

    /// The mesh of `clients`' clusters: each one's network and role from its Istio namespace,
    /// its pods with a proxy, its control plane pod (none in a remote cluster).
    pub(crate) async fn clusters(
        clients: Vec<ClusterClient>,
        istio_namespace: &str,
    ) -> anyhow::Result<Running> {
        let looked =
            futures::future::join_all(clients.iter().map(|c| look(c, istio_namespace))).await;
        let mut st = State {
            pid: 0,
            mesh: Default::default(),
            mode: Default::default(),
            networks: Vec::new(),
            clusters: Vec::new(),
            pods: Vec::new(),
            load_balancers: Vec::new(),
            public_netns: None,
        };
        let mut control_planes = BTreeMap::new();
        for l in looked {
            let l = l?;
            let network = l.decl.network.clone().unwrap_or_default();
            st.clusters.push(ClusterState {
                name: l.decl.name.clone(),
                network: network.clone(),
                control_plane_of: match (l.control_plane.is_empty(), &l.decl.primary) {
                    (false, _) | (true, None) => l.decl.name.clone(),
                    (true, Some(primary)) => primary.clone(),
                },
                control_plane: None,
            });
            st.pods
                .extend(l.proxies.into_iter().map(|p| pod_state(p, &network)));
            for (namespace, name, addresses, ports) in l.load_balancers {
                st.load_balancers
                    .extend(addresses.into_iter().map(|address| LbState {
                        cluster: l.decl.name.clone(),
                        namespace: namespace.clone(),
                        name: name.clone(),
                        network: network.clone(),
                        address,
                        ports: ports.clone(),
                    }));
            }
            if !l.control_plane.is_empty() {
                control_planes.insert(l.decl.name, l.control_plane);
            }
        }
        Ok(Running {
            st,
            parts: Parts::Clusters {
                clients,
                control_planes,
                istio_namespace: istio_namespace.to_string(),
            },
        })
    }

    /// The control planes to ask, in cluster order.
    pub(crate) fn control_planes(&self) -> Vec<ControlPlane> {
        match &self.parts {
            Parts::Local => self
                .st
                .clusters
                .iter()
                .filter_map(|c| {
                    Some(ControlPlane {
                        cluster: c.name.clone(),
                        at: c.control_plane.as_ref()?.debug.to_string(),
                        pod: None,
                    })
                })
                .collect(),
            // The first replica of each cluster (replicas come grouped by cluster).
            Parts::Clusters { .. } => {
                let mut first = self.control_plane_replicas();
                first.dedup_by(|later, kept| later.cluster == kept.cluster);
                first
            }
        }
    }

    /// Every control plane replica, in cluster order: each serves the proxies connected to
    /// it, so a question about every proxy (`/debug/syncz`) asks them all. Locally one per
    /// cluster.
    pub(crate) fn control_plane_replicas(&self) -> Vec<ControlPlane> {
        match &self.parts {
            Parts::Local => self.control_planes(),
            Parts::Clusters {
                control_planes,
                istio_namespace,
                ..
            } => self
                .st
                .clusters
                .iter()
                .flat_map(|c| {
                    control_planes
                        .get(&c.name)
                        .into_iter()
                        .flatten()
                        .map(|pod| ControlPlane {
                            cluster: c.name.clone(),
                            at: format!("{istio_namespace}/{pod}"),
                            pod: Some(pod.clone()),
                        })
                })
                .collect(),
        }
    }

    /// `GET path` on the debug port of the control plane `cp` (that replica).
    pub(crate) async fn replica_get(
        &self,
        cp: &ControlPlane,
        path: &str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        match (&self.parts, &cp.pod) {
            (
                Parts::Clusters {
                    clients,
                    istio_namespace,
                    ..
                },
                Some(pod),
            ) => {
                let c = client(clients, &cp.cluster)?;
                Ok(
                    pod_proxy::get(c, istio_namespace, pod, DEBUG_PORT, path, CLUSTER_ANSWER)
                        .await?,
                )
            }
            _ => self.control_plane_get(&cp.cluster, path).await,
        }
    }

    /// `GET path` on the debug port of `cluster`'s control plane.
    pub(crate) async fn control_plane_get(
        &self,
        cluster: &str,
        path: &str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        match &self.parts {
            Parts::Local => {
                let cp = self
                    .st
                    .clusters
                    .iter()
                    .find(|c| c.name == cluster)
                    .and_then(|c| c.control_plane.as_ref())
                    .with_context(|| format!("cluster {cluster} runs no control plane"))?;
                Ok(strait_local::fetch::get_from(
                    &self.st.vantage_of_cluster(cluster),
                    cp.debug,
                    path,
                    LOCAL_ANSWER,
                )
                .await?)
            }
            Parts::Clusters {
                clients,
                control_planes,
                istio_namespace,
            } => {
                let pod = control_planes.get(cluster).and_then(|p| p.first()).with_context(|| {
                    format!("cluster {cluster} runs no control plane (no app=istiod pod in {istio_namespace})")
                })?;
                let c = client(clients, cluster)?;
                Ok(
                    pod_proxy::get(c, istio_namespace, pod, DEBUG_PORT, path, CLUSTER_ANSWER)
                        .await?,
                )
            }
        }
    }

    /// `GET path` on `pod`'s proxy admin port.
    pub(crate) async fn proxy_get(
        &self,
        pod: &PodState,
        path: &str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        match &self.parts {
            Parts::Local => {
                Ok(
                    strait_local::fetch::get_from(&pod.vantage(), pod.admin(), path, LOCAL_ANSWER)
                        .await?,
                )
            }
            Parts::Clusters { clients, .. } => {
                let c = client(clients, &pod.cluster)?;
                Ok(pod_proxy::get(
                    c,
                    &pod.namespace,
                    &pod.name,
                    ADMIN_PORT,
                    path,
                    CLUSTER_ANSWER,
                )
                .await?)
            }
        }
    }

    /// The configuration a cluster's proxies are compiled from, to place rules by file:line:
    /// a local run's mesh directory; for clusters, the Istio routing resources of `cluster`'s
    /// config cluster, read from its API server (positions are `kube://` documents). `None`
    /// when it cannot be read (the caller says the position is unknown).
    pub(crate) async fn routing_input(&self, cluster: &str) -> Option<strait_api::Input> {
        match &self.parts {
            Parts::Local => Some(strait_api::read_input(std::slice::from_ref(&self.st.mesh))),
            Parts::Clusters {
                clients,
                istio_namespace,
                ..
            } => {
                const ROUTING: &[Kind] = &[Kind::VirtualService, Kind::Namespace];
                let c = client(clients, cluster).ok()?;
                let opts = read::ReadOptions {
                    istio_namespace: istio_namespace.clone(),
                    kinds: ROUTING,
                    ..read::ReadOptions::default()
                };
                read::read(std::slice::from_ref(c), &opts)
                    .await
                    .ok()
                    .map(|r| r.input)
            }
        }
    }

    /// Whether the mesh runs on this machine (requests can be sent from inside it).
    pub(crate) fn is_local(&self) -> bool {
        matches!(self.parts, Parts::Local)
    }

    /// Where `pod`'s admin port answers, for messages.
    pub(crate) fn proxy_at(&self, pod: &PodState) -> String {
        match &self.parts {
            Parts::Local => pod.admin().to_string(),
            Parts::Clusters { .. } => {
                format!(
                    "{}/{}/{}:{ADMIN_PORT}",
                    pod.cluster, pod.namespace, pod.name
                )
            }
        }
    }
}

fn client<'a>(clients: &'a [ClusterClient], cluster: &str) -> anyhow::Result<&'a ClusterClient> {
    clients
        .iter()
        .find(|c| c.name == cluster)
        .with_context(|| format!("no client for cluster {cluster}"))
}

/// What one cluster says of itself.
struct Looked {
    decl: strait_api::layout::ClusterDecl,
    proxies: Vec<proxies::ProxyPod>,
    /// Its control plane's running pods; empty in a remote cluster.
    control_plane: Vec<String>,
    /// LoadBalancer Services with their public addresses (hostnames resolved, as the
    /// control plane resolves a gateway's).
    load_balancers: Vec<(String, String, Vec<IpAddr>, Vec<u16>)>,
}

async fn look(c: &ClusterClient, istio_namespace: &str) -> anyhow::Result<Looked> {
    const PAGE: u32 = 500;
    let namespace = match read::list(c, Kind::Namespace, PAGE).await? {
        Listed::Items(items) => items
            .into_iter()
            .find(|n| n["metadata"]["name"].as_str() == Some(istio_namespace)),
        Listed::Skipped(note) => {
            warn(&note.to_string());
            None
        }
    };
    let proxies = match read::list(c, Kind::Pod, PAGE).await? {
        Listed::Items(pods) => proxies::proxy_pods(&c.name, &pods),
        Listed::Skipped(note) => {
            warn(&format!(
                "{note}; the proxies of cluster {} cannot be named or expected",
                c.name
            ));
            Vec::new()
        }
    };
    let control_plane = pod_proxy::control_planes(c, istio_namespace).await?;
    let load_balancers = match read::list(c, Kind::Service, PAGE).await? {
        Listed::Items(services) => public_addresses(&services).await,
        Listed::Skipped(note) => {
            warn(&note.to_string());
            Vec::new()
        }
    };
    Ok(Looked {
        decl: strait_kube::objects::declare(&c.name, namespace.as_ref(), None),
        proxies,
        control_plane,
        load_balancers,
    })
}

/// Each LoadBalancer Service's `(namespace, name, addresses, ports)`: the addresses its
/// status reports, a hostname (EKS's load balancers) resolved by DNS.
async fn public_addresses(
    services: &[serde_json::Value],
) -> Vec<(String, String, Vec<IpAddr>, Vec<u16>)> {
    let mut out = Vec::new();
    for svc in services
        .iter()
        .filter(|s| s["spec"]["type"] == "LoadBalancer")
    {
        let mut addresses = Vec::new();
        for ingress in svc["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(ip) = ingress["ip"].as_str().and_then(|ip| ip.parse().ok()) {
                addresses.push(ip);
            } else if let Some(host) = ingress["hostname"].as_str()
                && let Ok(found) = tokio::net::lookup_host((host, 0)).await
            {
                addresses.extend(found.map(|a| a.ip()));
            }
        }
        let ports = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_u64().and_then(|p| u16::try_from(p).ok()))
            .collect();
        out.push((
            svc["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            svc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            addresses,
            ports,
        ));
    }
    out
}

fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "warning: {line}");
}

/// A pod with a proxy as the rest of the CLI knows pods. Its address is the pod's (unknown
/// before it is scheduled); nothing here runs as a local process.
fn pod_state(p: proxies::ProxyPod, network: &str) -> PodState {
    let ip = p.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    PodState {
        cluster: p.cluster,
        namespace: p.namespace,
        name: p.name,
        workload: p.workload,
        service_account: p.service_account,
        network: network.to_string(),
        ip,
        app_ip: ip,
        app: None,
        ports: Vec::new(),
        sidecar: true,
        gateway: p.gateway,
        netns: None,
        proxy_pid: None,
        app_pids: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
