//! NetworkPolicies that cut the mesh's own ports (pitfall (g)): east-west gateways that other
//! clusters cannot reach on 15443, istiod unreachable on 15012 (xDS, CA) or 15017 (webhooks),
//! gateways whose 15021 health port load balancers cannot probe, sidecars whose egress
//! allows neither istiod nor DNS, and workloads whose ingress drops the gateways that connect
//! to them: in a mesh on several networks the east-west gateway (every request from another
//! network arrives from its pods, not from the caller), and the ingress gateways a
//! VirtualService routes to them through.
//!
//! Policies are evaluated as Kubernetes does: a pod selected by a policy with `Ingress` in its
//! `policyTypes` (the default when `policyTypes` is absent) accepts only what some selecting
//! policy's ingress rules allow; likewise for egress (`Egress` listed, or absent with egress
//! rules). Peers are judged by the traffic's origin: `ipBlock` and an empty peer list are taken
//! to admit it (the address ranges cannot be checked from manifests); a `namespaceSelector`
//! admits pods of other namespaces but not sources outside the pod network (other clusters,
//! load balancers, the API server); a bare `podSelector` only admits pods of the policy's own
//! namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::networking::v1::{NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use strait_api::Kind;
use strait_model::peer_auth::target_port;
use strait_model::service::ServiceType;
use strait_model::{
    Cluster, GatewayRole, Injection, Mesh, ObjId, Workload, WorkloadKind, selector,
};
use strait_model::{WorkloadId, gateway};

use super::gateway::routes;
use super::injection::is_replica;
use super::util;
use super::util::join;
use crate::catalog::STR0501;
use crate::context::Ctx;

/// A NetworkPolicy and which directions it isolates.
struct Policy<'a> {
    id: ObjId,
    namespace: &'a str,
    name: &'a str,
    spec: &'a NetworkPolicySpec,
    ingress: bool,
    egress: bool,
}

impl Policy<'_> {
    fn selects(&self, w: &Workload) -> bool {
        self.namespace == w.namespace
            && self
                .spec
                .pod_selector
                .as_ref()
                .is_none_or(|s| selector::label_selector_matches(s, &w.labels))
    }

    fn specific(&self) -> bool {
        self.spec.pod_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_some_and(|m| !m.is_empty())
                || s.match_expressions.as_ref().is_some_and(|e| !e.is_empty())
        })
    }
}

fn policies(c: &Cluster) -> Vec<Policy<'_>> {
    c.of_kind(Kind::NetworkPolicy)
        .filter_map(|(id, o)| {
            let spec = o.network_policy()?.spec.as_ref()?;
            let types = spec.policy_types.as_ref();
            let has = |t: &str| types.is_some_and(|ts| ts.iter().any(|x| x == t));
            let ingress = types.is_none() || has("Ingress");
            let egress = has("Egress")
                || (types.is_none() && spec.egress.as_ref().is_some_and(|e| !e.is_empty()));
            Some(Policy {
                id,
                namespace: o.namespace(),
                name: o.name(),
                spec,
                ingress,
                egress,
            })
        })
        .collect()
}

/// Where traffic to a pod comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Outside the pod network: other clusters, load balancers, the API server.
    External,
    /// Pods of other namespaces.
    OtherNamespace,
}

impl Origin {
    fn phrase(self) -> &'static str {
        match self {
            Origin::External => "from outside the cluster's pod network",
            Origin::OtherNamespace => "from other namespaces",
        }
    }
}

/// Whether a rule's `ports` cover `port`/`protocol`. `None` when a named port cannot be resolved
/// (the pod spec is not in the input): treated as covered.
fn ports_cover(
    ports: Option<&Vec<NetworkPolicyPort>>,
    port: u32,
    protocol: &str,
    spec: Option<&PodSpec>,
) -> Option<bool> {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return Some(true);
    };
    let mut unknown = false;
    for p in ports {
        if !p
            .protocol
            .as_deref()
            .unwrap_or("TCP")
            .eq_ignore_ascii_case(protocol)
        {
            continue;
        }
        match &p.port {
            None => return Some(true),
            Some(IntOrString::Int(n)) => {
                let start = (*n).max(0) as u32;
                let end = p.end_port.map_or(start, |e| e.max(0) as u32);
                if (start..=end).contains(&port) {
                    return Some(true);
                }
            }
            Some(IntOrString::String(name)) => match named_port(spec, name) {
                Some(n) if n == port => return Some(true),
                Some(_) => {}
                None => unknown = true,
            },
        }
    }
    if unknown { None } else { Some(false) }
}

fn named_port(spec: Option<&PodSpec>, name: &str) -> Option<u32> {
    spec?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port.max(0) as u32)
}

fn from_admits(peers: Option<&Vec<NetworkPolicyPeer>>, origin: Origin) -> bool {
    let Some(peers) = peers.filter(|p| !p.is_empty()) else {
        return true;
    };
    peers.iter().any(|p| {
        p.ip_block.is_some() || (origin == Origin::OtherNamespace && p.namespace_selector.is_some())
    })
}

/// A port a workload must accept, and why.
struct Need {
    port: u32,
    origin: Origin,
    role: &'static str,
    breaks: &'static str,
}

/// Whether an ingress rule of the policies selecting a pod admits TCP traffic on `port` from
/// what `from` accepts (a rule's `from` peers, with its policy).
fn ingress_admits(
    selecting: &[&Policy],
    port: u32,
    spec: Option<&PodSpec>,
    from: impl Fn(&Policy, Option<&Vec<NetworkPolicyPeer>>) -> bool,
) -> bool {
    selecting.iter().filter(|p| p.ingress).any(|p| {
        p.spec.ingress.iter().flatten().any(|r| {
            from(p, r.from.as_ref())
                && ports_cover(r.ports.as_ref(), port, "TCP", spec) != Some(false)
        })
    })
}

/// The policy a finding points at: a specific one (non-empty podSelector) before a blanket one.
fn primary<'p>(isolating: &[&'p Policy<'p>]) -> Option<&'p Policy<'p>> {
    isolating
        .iter()
        .find(|p| p.specific())
        .or_else(|| isolating.first())
        .copied()
}

/// The policies isolating a pod besides the one a finding points at.
fn others(isolating: &[&Policy], primary: &Policy) -> Vec<String> {
    isolating
        .iter()
        .filter(|o| o.id != primary.id)
        .map(|o| format!("{}/{}", o.namespace, o.name))
        .collect()
}

/// A port a policy blocks, and what that breaks.
struct Blocked {
    port: u32,
    dir: &'static str,
    role: &'static str,
    text: String,
}

/// Findings grouped by policy, port, direction and what is blocked, listing the workloads.
#[derive(Default)]
struct Report {
    groups: BTreeMap<(ObjId, u32, &'static str, String), Group>,
}

struct Group {
    field: String,
    others: Vec<String>,
    workloads: Vec<String>,
    role: &'static str,
    text: String,
}

impl Report {
    /// Records that `policy` (with `others`) blocks `port` in direction `dir` for `w`.
    fn add(&mut self, policy: &Policy, others: Vec<String>, blocked: Blocked, w: &Workload) {
        let Blocked {
            port,
            dir,
            role,
            text,
        } = blocked;
        let rules = if dir == "ingress" {
            policy.spec.ingress.is_some()
        } else {
            policy.spec.egress.is_some()
        };
        let field = if rules {
            format!("spec.{dir}")
        } else {
            "spec.podSelector".to_string()
        };
        let g = self
            .groups
            .entry((policy.id, port, dir, text.clone()))
            .or_insert_with(|| Group {
                field,
                others,
                workloads: Vec::new(),
                role,
                text,
            });
        let name = format!("{}/{}", w.namespace, w.name);
        if !g.workloads.contains(&name) {
            g.workloads.push(name);
        }
    }

    fn emit(self, ctx: &mut Ctx) {
        for ((id, _, _, _), g) in self.groups {
            let mesh = ctx.mesh;
            let o = mesh.object(id);
            let also = if g.others.is_empty() {
                String::new()
            } else {
                format!(" (with {})", join(&g.others))
            };
            let message = format!(
                "NetworkPolicy {}/{}{also} isolates {} {} {}",
                o.namespace(),
                o.name(),
                g.role,
                join(&g.workloads),
                g.text
            );
            ctx.at_key(STR0501, id, &g.field, message);
        }
    }
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let mut report = Report::default();
    for c in &mesh.clusters {
        let pols = policies(c);
        if pols.is_empty() {
            continue;
        }
        let routed = routed_through_gateways(mesh, c);
        for w in mesh.workloads_in(c.id) {
            if w.kind == WorkloadKind::WorkloadEntry || is_replica(mesh, w) {
                continue;
            }
            let selecting: Vec<&Policy> = pols.iter().filter(|p| p.selects(w)).collect();
            if selecting.is_empty() {
                continue;
            }
            let spec = w.pod_spec(mesh.object(w.object));
            for need in ingress_needs(mesh, c, w) {
                let isolating: Vec<&Policy> =
                    selecting.iter().copied().filter(|p| p.ingress).collect();
                if isolating.is_empty()
                    || ingress_admits(&selecting, need.port, spec, |_, from| {
                        from_admits(from, need.origin)
                    })
                {
                    continue;
                }
                let Some(p) = primary(&isolating) else {
                    continue;
                };
                let others = others(&isolating, p);
                let text = format!(
                    "and admits no TCP traffic {} on port {}: {}. Add an ingress rule for port {} with no `from` (or an ipBlock for the sources)",
                    need.origin.phrase(),
                    need.port,
                    need.breaks,
                    need.port
                );
                let blocked = Blocked {
                    port: need.port,
                    dir: "ingress",
                    role: need.role,
                    text,
                };
                report.add(p, others, blocked, w);
            }
            check_gateway_sources(mesh, c, w, &selecting, &routed, &mut report);
            check_egress(mesh, c, w, &selecting, &mut report);
        }
    }
    report.emit(ctx);
}

fn is_east_west(w: &Workload) -> bool {
    w.gateway == Some(GatewayRole::EastWest) || w.label("istio") == Some("eastwestgateway")
}

fn is_istiod(c: &Cluster, w: &Workload) -> bool {
    w.namespace == c.istio_namespace
        && (w.label("app") == Some("istiod") || w.label("istio") == Some("pilot"))
}

/// Whether a LoadBalancer Service exposes the gateway (so a load balancer probes 15021).
fn behind_load_balancer(mesh: &Mesh, w: &Workload) -> bool {
    mesh.services_of(w).iter().any(|s| {
        matches!(
            s.service_type,
            Some(ServiceType::LoadBalancer | ServiceType::NodePort)
        )
    })
}

fn ingress_needs(mesh: &Mesh, c: &Cluster, w: &Workload) -> Vec<Need> {
    let mut needs = Vec::new();
    let lb = behind_load_balancer(mesh, w);
    let health = Need {
        port: 15021,
        origin: Origin::External,
        role: "",
        breaks: "the load balancer's health checks fail, so it takes the gateway out of rotation",
    };
    if is_east_west(w) {
        let role = "east-west gateway";
        needs.push(Need {
            port: 15443,
            origin: Origin::External,
            role,
            breaks: "sidecars in other networks cannot reach this cluster's services through it, so their cross-network requests time out",
        });
        if lb {
            needs.push(Need { role, ..health });
        }
        let serves_remotes = c.is_primary() && mesh.served_by(c.id).len() > 1;
        if serves_remotes {
            needs.push(Need {
                port: 15012,
                origin: Origin::External,
                role,
                breaks: "proxies in the remote clusters cannot reach istiod through it for configuration and certificates",
            });
            needs.push(Need {
                port: 15017,
                origin: Origin::External,
                role,
                breaks: "the remote clusters' API servers cannot reach istiod's injection and validation webhooks through it",
            });
        }
    } else if w.gateway.is_some() && lb {
        needs.push(Need {
            role: "gateway",
            ..health
        });
    } else if is_istiod(c, w) {
        let role = "control plane";
        needs.push(Need {
            port: 15012,
            origin: Origin::OtherNamespace,
            role,
            breaks: "sidecars cannot fetch configuration or certificates from istiod, so new pods never become ready",
        });
        needs.push(Need {
            port: 15017,
            origin: Origin::External,
            role,
            breaks: "the API server cannot call the injection and validation webhooks, so pod creation in injected namespaces fails",
        });
    }
    needs
}

/// Where a sidecar's egress must reach.
struct Destination<'a> {
    port: u32,
    protocol: &'static str,
    namespace: &'a str,
    /// Labels of the destination pods, when known well enough to evaluate a podSelector.
    pod_labels: BTreeMap<String, String>,
    /// Outside the cluster (an external control plane): only `ipBlock` or no `to` reach it.
    external: bool,
    what: &'static str,
    breaks: &'static str,
}

/// Whether a namespace selector selects `ns`; unknown labels count as a match.
fn namespace_matches(c: &Cluster, sel: &LabelSelector, ns: &str) -> bool {
    let mut labels = c
        .namespaces
        .get(ns)
        .map(|n| n.labels.clone())
        .unwrap_or_default();
    labels.insert("kubernetes.io/metadata.name".into(), ns.to_string());
    if !c.namespaces.contains_key(ns) {
        let keys_known = sel
            .match_labels
            .iter()
            .flatten()
            .all(|(k, _)| k == "kubernetes.io/metadata.name")
            && sel
                .match_expressions
                .iter()
                .flatten()
                .all(|e| e.key == "kubernetes.io/metadata.name");
        if !keys_known {
            return true;
        }
    }
    selector::label_selector_matches(sel, &labels)
}

/// Whether a pod selector selects the destination pods; selectors on labels we do not know
/// count as a match.
fn pods_match(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let known = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, _)| labels.contains_key(k))
        && sel
            .match_expressions
            .iter()
            .flatten()
            .all(|e| labels.contains_key(&e.key));
    !known || selector::label_selector_matches(sel, labels)
}

/// The other end of a connection a policy must admit: pods of a namespace with known labels,
/// or something outside the pod network (only `ipBlock` or an empty peer list admit it).
struct Peer<'a> {
    namespace: &'a str,
    labels: &'a BTreeMap<String, String>,
    external: bool,
}

/// Whether a rule's peers (`from` or `to`) admit `peer`.
fn peers_admit(
    c: &Cluster,
    policy_ns: &str,
    peers: Option<&Vec<NetworkPolicyPeer>>,
    peer: &Peer,
) -> bool {
    let Some(peers) = peers.filter(|p| !p.is_empty()) else {
        return true;
    };
    peers.iter().any(|p| {
        if p.ip_block.is_some() {
            return true;
        }
        if peer.external {
            return false;
        }
        let ns_ok = match &p.namespace_selector {
            Some(s) => namespace_matches(c, s, peer.namespace),
            None => policy_ns == peer.namespace,
        };
        ns_ok
            && p.pod_selector
                .as_ref()
                .is_none_or(|s| pods_match(s, peer.labels))
    })
}

/// Gateway pods that open connections to a workload's pods, and why.
struct GatewaySource<'m> {
    pods: Vec<&'m Workload>,
    /// "the east-west gateway istio-system/x", "the ingress gateway ..."
    what: String,
    /// What the policy breaks by dropping them.
    breaks: String,
}

/// Who connects to `w` through a gateway: in a mesh on several networks, the cluster's
/// east-west gateway (every request from another network arrives from its pods, not from the
/// caller); and the ingress gateways whose Gateways a VirtualService routes to `w` through.
fn gateway_sources<'m>(
    mesh: &'m Mesh,
    c: &Cluster,
    w: &Workload,
    routed: &BTreeMap<WorkloadId, Vec<(&'m Workload, ObjId)>>,
) -> Vec<GatewaySource<'m>> {
    let mut out = Vec::new();
    // Only a proxy takes cross-network requests (mTLS through the gateway's passthrough).
    let in_mesh = matches!(w.sidecar, Injection::Injected(_) | Injection::Unknown);
    if in_mesh && mesh.is_multinetwork() {
        let pods: Vec<&Workload> = mesh
            .workloads_in(c.id)
            .filter(|g| is_east_west(g) && g.network == w.network)
            .collect();
        if let Some(first) = pods.first() {
            out.push(GatewaySource {
                what: format!("the east-west gateway {}/{}", first.namespace, first.name),
                breaks: "requests from the mesh's other networks reach these pods through that gateway, so they are dropped and time out".to_string(),
                pods,
            });
        }
    }
    for (g, vs) in routed.get(&w.id).into_iter().flatten() {
        out.push(GatewaySource {
            pods: vec![*g],
            what: format!("the ingress gateway {}/{}", g.namespace, g.name),
            breaks: format!(
                "{} routes requests through it to these pods, so they are dropped and time out",
                mesh.object(*vs).display_name()
            ),
        });
    }
    out
}

/// For each workload of `c`, the ingress gateway pods that a VirtualService bound to their
/// Gateway routes to it, with that VirtualService.
fn routed_through_gateways<'m>(
    mesh: &'m Mesh,
    c: &Cluster,
) -> BTreeMap<WorkloadId, Vec<(&'m Workload, ObjId)>> {
    let mut out: BTreeMap<WorkloadId, Vec<(&'m Workload, ObjId)>> = BTreeMap::new();
    let config = mesh.config_cluster(c.id);
    let scoped = gateway::scoped_to_namespace(mesh, config);
    for (vs_id, o) in util::in_cluster(mesh, config, Kind::VirtualService) {
        let Some(vs) = o.virtual_service() else {
            continue;
        };
        for r in routes(&vs.spec) {
            let pods: Vec<&Workload> = r
                .gateways
                .iter()
                .filter(|g| **g != "mesh")
                .filter_map(|g| {
                    let (ns, name) = util::split_ref(g, o.namespace());
                    mesh.cluster(config).find(Kind::Gateway, ns, name)
                })
                .filter_map(|(_, gw)| Some((gw.namespace(), gw.gateway()?)))
                .flat_map(|(ns, gw)| {
                    mesh.workloads_in(c.id).filter(move |p| {
                        p.gateway.is_some()
                            && !is_east_west(p)
                            && gateway::selects(&gw.spec, ns, scoped, p)
                    })
                })
                .collect();
            if pods.is_empty() {
                continue;
            }
            for s in util::resolve(mesh, vs_id, &r.dest.host) {
                for e in mesh
                    .endpoints_of(s)
                    .into_iter()
                    .filter(|e| e.cluster == c.id)
                {
                    let list = out.entry(e.id).or_default();
                    for p in &pods {
                        if !list.iter().any(|(q, _)| q.id == p.id) {
                            list.push((*p, vs_id));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Gateways connect to a workload's pods on its service ports: its ingress must admit them.
fn check_gateway_sources(
    mesh: &Mesh,
    c: &Cluster,
    w: &Workload,
    selecting: &[&Policy],
    routed: &BTreeMap<WorkloadId, Vec<(&Workload, ObjId)>>,
    report: &mut Report,
) {
    if w.gateway.is_some() {
        return;
    }
    let isolating: Vec<&Policy> = selecting.iter().copied().filter(|p| p.ingress).collect();
    let Some(p) = primary(&isolating) else { return };
    let sources = gateway_sources(mesh, c, w, routed);
    if sources.is_empty() {
        return;
    }
    let spec = w.pod_spec(mesh.object(w.object));
    let mut ports: Vec<u32> = mesh
        .services_of(w)
        .iter()
        .flat_map(|s| s.ports.iter())
        .filter_map(|port| target_port(mesh, w, port))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    for port in ports {
        let dropped: Vec<&GatewaySource> = sources
            .iter()
            .filter(|source| {
                !source.pods.iter().any(|g| {
                    let peer = Peer {
                        namespace: &g.namespace,
                        labels: &g.labels,
                        external: false,
                    };
                    ingress_admits(&isolating, port, spec, |pol, from| {
                        peers_admit(c, pol.namespace, from, &peer)
                    })
                })
            })
            .collect();
        if dropped.is_empty() {
            continue;
        }
        let whom: Vec<String> = dropped.iter().map(|d| d.what.clone()).collect();
        let why: Vec<String> = dropped.iter().map(|d| d.breaks.clone()).collect();
        let text = format!(
            "and admits no TCP traffic on port {port} from {}: {}. Allow ingress on port {port} from the gateway's pods (a namespaceSelector for its namespace with a podSelector for its labels)",
            join(&whom),
            why.join("; ")
        );
        let blocked = Blocked {
            port,
            dir: "ingress",
            role: "workload",
            text,
        };
        report.add(p, others(&isolating, p), blocked, w);
    }
}

/// Egress of sidecars and gateways: istiod (15012) and DNS (53/UDP).
fn check_egress(
    mesh: &Mesh,
    c: &Cluster,
    w: &Workload,
    selecting: &[&Policy],
    report: &mut Report,
) {
    if !matches!(w.sidecar, Injection::Injected(_) | Injection::Gateway) {
        return;
    }
    let isolating: Vec<&Policy> = selecting.iter().copied().filter(|p| p.egress).collect();
    let Some(p) = primary(&isolating) else { return };
    let remote = mesh.config_cluster(c.id) != c.id;
    let istiod_labels = mesh
        .workloads_in(mesh.config_cluster(c.id))
        .find(|o| is_istiod(mesh.cluster(o.cluster), o))
        .map(|o| o.labels.clone())
        .unwrap_or_else(|| {
            [
                ("app".to_string(), "istiod".to_string()),
                ("istio".to_string(), "pilot".to_string()),
            ]
            .into()
        });
    let dests = [
        Destination {
            port: 15012,
            protocol: "TCP",
            namespace: &c.istio_namespace,
            pod_labels: istiod_labels,
            external: remote,
            what: "istiod",
            breaks: "the proxies cannot fetch configuration or certificates, so the pods never become ready",
        },
        Destination {
            port: 53,
            protocol: "UDP",
            namespace: "kube-system",
            pod_labels: [("k8s-app".to_string(), "kube-dns".to_string())].into(),
            external: false,
            what: "DNS",
            breaks: "name lookups fail, so neither the application nor the proxy can resolve istiod or any service",
        },
    ];
    for d in &dests {
        // A rule naming the port itself was written for this destination: trust its `to`
        // (DNS may run elsewhere than kube-system, istiod behind another address).
        let allowed = isolating.iter().any(|pol| {
            pol.spec.egress.iter().flatten().any(|r| {
                let covered = ports_cover(r.ports.as_ref(), d.port, d.protocol, None);
                let named =
                    r.ports.as_ref().is_some_and(|p| !p.is_empty()) && covered == Some(true);
                let peer = Peer {
                    namespace: d.namespace,
                    labels: &d.pod_labels,
                    external: d.external,
                };
                named
                    || (covered != Some(false)
                        && peers_admit(c, pol.namespace, r.to.as_ref(), &peer))
            })
        });
        if allowed {
            continue;
        }
        let others = others(&isolating, p);
        let role = if w.gateway.is_some() {
            "the egress of gateway"
        } else {
            "the egress of injected workload"
        };
        let text = format!(
            "and allows no {} traffic to {} on port {}: {}. Add an egress rule for {} port {} to {}",
            d.protocol,
            d.what,
            d.port,
            d.breaks,
            d.protocol,
            d.port,
            if d.external {
                "the external control plane's address (ipBlock)".to_string()
            } else {
                format!("namespace {}", d.namespace)
            }
        );
        let blocked = Blocked {
            port: d.port,
            dir: "egress",
            role,
            text,
        };
        report.add(p, others, blocked, w);
    }
}
