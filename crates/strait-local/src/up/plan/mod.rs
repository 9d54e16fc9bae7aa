//! What `strait up` runs for a mesh: a control plane per primary cluster; per workload replica
//! a pod with its own address, its app, and a proxy when Istio would run one (a sidecar, or
//! the gateway itself); and a public address for every load balancer in front of a gateway.
//!
//! Addresses are allocated per *network*, not per cluster ([`addresses`]): two clusters on one
//! network share its block, as pods of two clusters in one VPC share its routes.

mod addresses;
mod pods;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use strait_model::compile::split_horizon::in_network;
use strait_model::service::{ServiceSource, ServiceType};
use strait_model::{Mesh, Workload, selector};
use strait_net::{Cidr, Reach};

use addresses::Allocator;
pub use addresses::{MAX_NETWORKS, MAX_PODS_PER_NETWORK, Mode, app_ip};
pub use pods::{Owner, PodPlan};

/// The port proxies reach their control plane on.
pub const DISCOVERY_PORT: u16 = 15012;

#[derive(Clone, Debug)]
pub struct Plan {
    pub net: u8,
    pub mode: Mode,
    pub networks: Vec<NetworkPlan>,
    pub clusters: Vec<ClusterPlan>,
    pub pods: Vec<PodPlan>,
    pub load_balancers: Vec<LbPlan>,
    /// Namespace mode: the namespace of the link between networks, where clients outside the
    /// mesh (the internet) stand.
    pub public_netns: Option<String>,
    /// Workloads not started, with the reason (WorkloadEntries, the Istio control plane).
    pub skipped: Vec<String>,
    /// What will not work as written, said before anything starts.
    pub warnings: Vec<String>,
}

/// One network: its address ranges and, in namespace mode, its namespace.
#[derive(Clone, Debug)]
pub struct NetworkPlan {
    /// As the mesh names it (`""`: the mesh declares no networks).
    pub name: String,
    pub ranges: Vec<Cidr>,
    /// Namespace mode: the network's namespace and its address on the link between networks.
    pub netns: Option<String>,
    pub node: Option<IpAddr>,
}

#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub name: String,
    pub network: String,
    pub trust_domain: String,
    /// The cluster whose control plane serves this one (itself for a primary).
    pub control_plane_of: String,
    /// Set for primaries: where their control plane listens.
    pub control_plane: Option<ControlPlaneAddrs>,
    /// Where this cluster's proxies reach their control plane, and how.
    pub discovery: Option<Discovery>,
}

#[derive(Clone, Copy, Debug)]
pub struct ControlPlaneAddrs {
    pub grpc: SocketAddr,
    pub debug: SocketAddr,
}

/// How a cluster's proxies reach their control plane.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub addr: SocketAddr,
    /// For messages: `control plane of cluster1`, `east-west gateway istio-system/... of cluster1`.
    pub via: String,
}

/// A load balancer: a `type: LoadBalancer` Service in front of gateway pods, and the public
/// address the cloud would give it.
#[derive(Clone, Debug)]
pub struct LbPlan {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub network: String,
    pub address: IpAddr,
    /// Service port → target port.
    pub ports: Vec<(u16, u16)>,
    /// Installed by an IstioOperator: the Service object does not exist in the manifests and
    /// the run creates it, as `istioctl install` would.
    pub from_operator: Option<OperatorService>,
}

/// A Service an IstioOperator gateway component creates.
#[derive(Clone, Debug)]
pub struct OperatorService {
    pub labels: BTreeMap<String, String>,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<(String, u16, u16)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the mesh has {0} networks; one local mesh holds at most {MAX_NETWORKS}")]
    TooManyNetworks(usize),
    #[error("network {network} has more than {MAX_PODS_PER_NETWORK} pods")]
    TooManyPods { network: String },
    #[error("network {network} has too many control planes")]
    TooManyControlPlanes { network: String },
    #[error("the mesh has more load balancers than one local mesh can give addresses ({0})")]
    TooManyLoadBalancers(usize),
    #[error("{workload}: {reason}")]
    App { workload: String, reason: String },
    #[error("the mesh has no workloads to run")]
    Empty,
}

impl Plan {
    pub fn network(&self, name: &str) -> Option<&NetworkPlan> {
        self.networks.iter().find(|n| n.name == name)
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterPlan> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The network table of a part in network `name` whose connections leave from `source`
    /// (its pod's address), private listeners open to the processes of whoever runs the mesh.
    pub fn reach(&self, name: &str, source: IpAddr) -> Reach {
        let own = self.network(name);
        Reach {
            network: name.to_string(),
            ranges: own.map(|n| n.ranges.clone()).unwrap_or_default(),
            elsewhere: self
                .networks
                .iter()
                .filter(|n| n.name != name)
                .map(|n| strait_net::NetworkRanges {
                    network: n.name.clone(),
                    ranges: n.ranges.clone(),
                })
                .collect(),
            operator: vec![IpAddr::from([127, 0, 0, 1])],
            pod: vec![source],
            owner: Some(nix::unistd::getuid().as_raw()),
            source: Some(source),
            bind_outside: self.mode == Mode::Loopback,
        }
    }
}

/// Plans the local run of `mesh` on `--net` `net`. With `previous` (the plan running now),
/// every pod, control plane and load balancer that is still there keeps its address.
pub fn plan(mesh: &Mesh, net: u8, mode: Mode, previous: Option<&Plan>) -> Result<Plan, PlanError> {
    let mut alloc = Allocator::new(net, mode);
    let mut kept_pods: HashMap<String, IpAddr> = HashMap::new();
    let mut kept_cps: HashMap<String, SocketAddr> = HashMap::new();
    let mut kept_lbs: HashMap<String, IpAddr> = HashMap::new();
    let mut network_names: Vec<String> = Vec::new();
    if let Some(p) = previous {
        network_names.extend(p.networks.iter().map(|n| n.name.clone()));
        for pod in &p.pods {
            kept_pods.insert(pod.key(), pod.ip);
        }
        for c in &p.clusters {
            if let Some(cp) = c.control_plane {
                kept_cps.insert(c.name.clone(), cp.grpc);
            }
        }
        for lb in &p.load_balancers {
            kept_lbs.insert(lb.key(), lb.address);
        }
    }
    let mut skipped = Vec::new();
    let mut planned: Vec<&Workload> = Vec::new();
    for c in &mesh.clusters {
        let mut ws: Vec<&Workload> = mesh.workloads_in(c.id).collect();
        ws.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for w in ws {
            match pods::skip_reason(mesh, w) {
                Some(why) => skipped.push(format!("{}/{}/{}: {why}", c.name, w.namespace, w.name)),
                None => planned.push(w),
            }
        }
    }
    for n in mesh.clusters.iter().map(|c| c.network.clone()) {
        if !network_names.contains(&n) {
            network_names.push(n);
        }
    }
    if network_names.len() > MAX_NETWORKS {
        return Err(PlanError::TooManyNetworks(network_names.len()));
    }
    let index = |n: &str| network_names.iter().position(|x| x == n).unwrap_or(0);
    // Addresses that stay are taken before any new one is handed out.
    for ip in kept_pods.values().chain(kept_lbs.values()) {
        alloc.keep(*ip);
    }
    for a in kept_cps.values() {
        alloc.keep(a.ip());
    }
    let networks: Vec<NetworkPlan> = network_names
        .iter()
        .enumerate()
        .map(|(k, n)| NetworkPlan {
            name: n.clone(),
            ranges: alloc.ranges(k),
            netns: (mode == Mode::Netns).then(|| format!("strait{net}-n{k}")),
            node: alloc.node(k),
        })
        .collect();

    let mut clusters = Vec::new();
    for c in &mesh.clusters {
        let primary = mesh.cluster(mesh.config_cluster(c.id));
        let control_plane = if primary.id == c.id {
            let grpc = match kept_cps.get(&c.name) {
                Some(a) => *a,
                None => {
                    let ip = alloc.control_plane(index(&c.network)).ok_or_else(|| {
                        PlanError::TooManyControlPlanes {
                            network: c.network.clone(),
                        }
                    })?;
                    SocketAddr::new(ip, DISCOVERY_PORT)
                }
            };
            Some(ControlPlaneAddrs {
                grpc,
                debug: SocketAddr::new(grpc.ip(), 15014),
            })
        } else {
            None
        };
        clusters.push(ClusterPlan {
            name: c.name.clone(),
            network: c.network.clone(),
            trust_domain: c.trust_domain().to_string(),
            control_plane_of: primary.name.clone(),
            control_plane,
            discovery: None,
        });
    }

    let mut pod_plans = Vec::new();
    for w in &planned {
        let cluster = &mesh.cluster(w.cluster).name;
        for replica in 0..w.replicas {
            let mut p = pods::pod(mesh, w, cluster, replica)?;
            let ip = match kept_pods.get(&p.key()) {
                Some(ip) => *ip,
                None => alloc
                    .pod(index(&p.network))
                    .ok_or_else(|| PlanError::TooManyPods {
                        network: p.network.clone(),
                    })?,
            };
            p.ip = ip;
            p.app_ip = if p.proxy && !p.gateway {
                app_ip(ip)
            } else {
                ip
            };
            pod_plans.push(p);
        }
    }
    if pod_plans.is_empty() {
        return Err(PlanError::Empty);
    }
    let load_balancers = load_balancers(mesh, &pod_plans, &kept_lbs, &mut alloc, &mut skipped)?;
    let mut plan = Plan {
        net,
        mode,
        networks,
        clusters,
        pods: pod_plans,
        load_balancers,
        public_netns: (mode == Mode::Netns).then(|| format!("strait{net}-pub")),
        skipped,
        warnings: Vec::new(),
    };
    discovery(mesh, &mut plan);
    Ok(plan)
}

impl LbPlan {
    /// `<cluster>/<namespace>/<name>`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.cluster, self.namespace, self.name)
    }
}

/// Every `type: LoadBalancer` Service that selects a gateway pod gets a public address.
fn load_balancers(
    mesh: &Mesh,
    pods: &[PodPlan],
    kept: &HashMap<String, IpAddr>,
    alloc: &mut Allocator,
    skipped: &mut Vec<String>,
) -> Result<Vec<LbPlan>, PlanError> {
    let mut out: Vec<LbPlan> = Vec::new();
    for s in mesh.registry.all() {
        if s.service_type != Some(ServiceType::LoadBalancer) {
            continue;
        }
        let Some(sel) = &s.selector else { continue };
        let cluster = &mesh.cluster(s.cluster).name;
        let backs: Vec<&PodPlan> = pods
            .iter()
            .filter(|p| &p.cluster == cluster && p.namespace == s.namespace)
            .filter(|p| selector::map_selects(sel, &p.labels))
            .collect();
        if backs.is_empty() {
            continue;
        }
        if !backs.iter().any(|p| p.gateway) {
            skipped.push(format!(
                "{cluster}/{}/{}: a LoadBalancer in front of pods that are not gateways gets no public address locally",
                s.namespace, s.name
            ));
            continue;
        }
        let key = format!("{cluster}/{}/{}", s.namespace, s.name);
        if out.iter().any(|l| l.key() == key) {
            continue;
        }
        let ports: Vec<(u16, u16)> = s
            .ports
            .iter()
            .filter_map(|p| {
                let port = u16::try_from(p.number).ok()?;
                let target = p.target_number().and_then(|t| u16::try_from(t).ok());
                Some((port, target.unwrap_or(port)))
            })
            .collect();
        let address = match kept.get(&key) {
            Some(ip) => *ip,
            None => alloc
                .public()
                .ok_or(PlanError::TooManyLoadBalancers(alloc.mode.max_public()))?,
        };
        let from_operator = (s.source == ServiceSource::Operator).then(|| OperatorService {
            labels: s.labels.clone(),
            selector: sel.clone(),
            ports: s
                .ports
                .iter()
                .filter_map(|p| {
                    let port = u16::try_from(p.number).ok()?;
                    let target = p.target_number().and_then(|t| u16::try_from(t).ok());
                    Some((p.name.clone(), port, target.unwrap_or(port)))
                })
                .collect(),
        });
        out.push(LbPlan {
            cluster: cluster.clone(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            network: backs[0].network.clone(),
            address,
            ports,
            from_operator,
        });
    }
    Ok(out)
}

/// Where each cluster's proxies reach their control plane. A primary's reach their own. A
/// remote's reach their primary's through a load balancer of the primary that publishes the
/// control plane's port (Istio's `remotePilotAddress`: the east-west gateway with
/// `expose-istiod`), or straight when both are on one network and no such gateway exists.
fn discovery(mesh: &Mesh, plan: &mut Plan) {
    let mut warnings = Vec::new();
    let lbs = plan.load_balancers.clone();
    let primaries: BTreeMap<String, (Option<ControlPlaneAddrs>, String)> = plan
        .clusters
        .iter()
        .map(|c| (c.name.clone(), (c.control_plane, c.network.clone())))
        .collect();
    for c in &mut plan.clusters {
        let Some((cp, primary_network)) = primaries.get(&c.control_plane_of).cloned() else {
            continue;
        };
        let Some(cp) = cp else { continue };
        if c.control_plane.is_some() {
            c.discovery = Some(Discovery {
                addr: cp.grpc,
                via: format!("the control plane of {}", c.name),
            });
            continue;
        }
        let exposed = lbs.iter().find(|l| {
            l.cluster == c.control_plane_of && l.ports.iter().any(|(p, _)| *p == DISCOVERY_PORT)
        });
        if let Some(lb) = exposed
            && !routes_control_plane(mesh, lb)
        {
            warnings.push(format!(
                "cluster {} is a remote whose proxies reach their control plane through {}/{} of {}, but no Gateway of {} serves port {DISCOVERY_PORT} there (Istio's expose-istiod: a PASSTHROUGH server and a TLS VirtualService to istiod): they will be refused",
                c.name, lb.namespace, lb.name, lb.cluster, c.control_plane_of
            ));
        }
        c.discovery = match exposed {
            Some(lb) => Some(Discovery {
                addr: SocketAddr::new(lb.address, DISCOVERY_PORT),
                via: format!(
                    "{}/{} of {} (a load balancer publishing port {DISCOVERY_PORT})",
                    lb.namespace, lb.name, lb.cluster
                ),
            }),
            None if in_network(&c.network, &primary_network) => Some(Discovery {
                addr: cp.grpc,
                via: format!(
                    "the control plane of {}, on the same network",
                    c.control_plane_of
                ),
            }),
            None => {
                warnings.push(format!(
                    "cluster {} is a remote on network {}, and no load balancer of its primary {} publishes port {DISCOVERY_PORT}: its proxies cannot reach their control plane (install an east-west gateway in {} with a tls-istiod port and apply Istio's expose-istiod Gateway)",
                    c.name, c.network, c.control_plane_of, c.control_plane_of
                ));
                None
            }
        };
    }
    plan.warnings.extend(warnings);
}

/// Whether a Gateway of the load balancer's cluster serves the control plane's port on the
/// gateway pods behind it.
fn routes_control_plane(mesh: &Mesh, lb: &LbPlan) -> bool {
    let Some(cluster) = mesh.cluster_by_name(&lb.cluster) else {
        return false;
    };
    mesh.registry
        .all()
        .iter()
        .find(|s| s.cluster == cluster.id && s.namespace == lb.namespace && s.name == lb.name)
        .is_some_and(|svc| strait_model::gateway::serves_control_plane(mesh, svc))
}
