//! Upstream clusters: one per service port and subset a route names, with the
//! DestinationRule's policy merged the way istiod merges it, and the endpoints as this proxy
//! sees them (split horizon).

use std::collections::{BTreeMap, HashMap};

use strait_api::istio::destination_rule::{
    ClientTlsMode, DestinationRuleSpec, LocalityLoadBalancerSetting,
    OutlierDetection as ApiOutlierDetection, SimpleLb, TrafficPolicy,
};
use strait_api::istio::security::MtlsMode;

use super::locality_lb::{self, Site};
use super::routes::{ClusterKey, app_protocol};
use super::split_horizon::{self, Gateways};
use super::workload_name;
use crate::destination::client_tls;
use crate::ids::{ClusterId, ObjId};
use crate::mesh::Mesh;
use crate::peer_auth::{PeerPolicies, target_port};
use crate::selector;
use crate::workload::Workload;
use strait_config::OutlierDetection;
use strait_config::types::*;

/// Envoy's default connect timeout, which Istio keeps (MeshConfig `connectTimeout`).
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;

/// Which kind of upstream clusters to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClusterKind {
    /// A proxy's own upstreams: `outbound|<port>|<subset>|<fqdn>`, split horizon applied.
    Outbound,
    /// An AUTO_PASSTHROUGH gateway's: `outbound_.<port>_.<subset>_.<fqdn>`, named by the SNI
    /// clients send, holding only the gateway's own network's mTLS endpoints (istiod's
    /// SNI-DNAT clusters). The gateway relays bytes to them without terminating TLS.
    SniDnat,
}

/// Where the proxy sits, for split horizon.
pub(super) struct Vantage<'a> {
    pub network: &'a str,
    /// A gateway's requested network view: endpoints of other networks are not for it.
    pub view: &'a [String],
    pub gateways: &'a Gateways,
    /// Its locality and labels, for locality load balancing.
    pub site: &'a Site,
}

pub(super) fn compile(
    mesh: &Mesh,
    config: ClusterId,
    w: &Workload,
    needed: &[ClusterKey],
    kind: ClusterKind,
    at: &Vantage,
    out: &mut ProxyConfig,
) {
    let c = mesh.cluster(config);
    let index = mesh.index();
    let routing = index.routing(config);
    // Rules that select workloads apply only to those workloads' proxies.
    let selected = routing.map(|r| r.selected_rules(w)).unwrap_or_default();
    let peer_policies = PeerPolicies::of(mesh, config);
    let connect_default = c
        .mesh_config
        .connect_timeout
        .map_or(DEFAULT_CONNECT_TIMEOUT_MS, |d| d.as_millis() as u64);
    for (host, port, subset) in needed {
        let instances = super::visible_services(mesh, config, host, &w.namespace);
        let svc_ns = instances
            .first()
            .map_or(w.namespace.as_str(), |s| s.namespace.as_str());
        let protocol = instances
            .iter()
            .find_map(|s| s.port(*port))
            .map_or(AppProtocol::Auto, |p| app_protocol(p.protocol));
        let dr = routing
            .and_then(|r| r.destination_rule_for(host, &w.namespace, svc_ns, &selected))
            .and_then(|e| {
                Some(Rule {
                    id: e.id,
                    spec: e.spec(mesh)?,
                })
            });
        let dr = dr.as_ref();
        let subset_index = dr.and_then(|d| d.spec.subsets.iter().position(|s| s.name == *subset));
        let subset_labels = match (subset.is_empty(), subset_index) {
            (true, _) => None,
            (false, Some(k)) => dr.map(|d| d.spec.subsets[k].labels.clone()),
            // A subset no rule defines selects nothing: requests to it fail with 503, as in Istio.
            (false, None) => {
                Some([("strait.dev/undefined-subset".to_string(), subset.clone())].into())
            }
        };
        let policy = dr
            .map(|d| Policy::merge(d.spec, *port, subset_index))
            .unwrap_or_default();
        let tls = match dr.and_then(|d| client_tls(d.spec, *port, subset_index)) {
            None => UpstreamTls::Auto,
            Some((ClientTlsMode::IstioMutual, _)) => UpstreamTls::IstioMutual,
            Some((ClientTlsMode::Disable, _)) => UpstreamTls::Disable,
            Some((ClientTlsMode::Simple | ClientTlsMode::Mutual, _)) => UpstreamTls::Originate,
        };
        let mut endpoints = Vec::new();
        let mut labels: HashMap<(String, u32), BTreeMap<String, String>> = HashMap::new();
        let mut identities = Vec::new();
        for s in &instances {
            let Some(sport) = s.port(*port) else { continue };
            for e in index.endpoints(s.id).iter().map(|id| mesh.workload(*id)) {
                let Some(address) = &e.address else { continue };
                if !running(mesh, e) {
                    continue;
                }
                identities.push(mesh.identity(e));
                if subset_labels
                    .as_ref()
                    .is_some_and(|l| !selector::map_selects(l, &e.labels))
                {
                    continue;
                }
                let Some(target) = target_port(mesh, e, sport) else {
                    continue;
                };
                let weight = mesh
                    .object(e.object)
                    .workload_entry()
                    .and_then(|we| we.spec.weight)
                    .unwrap_or(1)
                    .max(1);
                // Auto mTLS: endpoints with a proxy, and any labelled as accepting Istio mTLS
                // (a VM's WorkloadEntry, as Istio's `security.istio.io/tlsMode`), unless a
                // PeerAuthentication turns mTLS off where it listens.
                let proxied =
                    e.sidecar.has_proxy() || e.label("security.istio.io/tlsMode") == Some("istio");
                let disabled = peer_policies.effective(e, Some(target)).mode == MtlsMode::Disable;
                let mtls = match tls {
                    UpstreamTls::IstioMutual => true,
                    UpstreamTls::Disable | UpstreamTls::Originate => false,
                    UpstreamTls::Auto => proxied && !disabled,
                };
                endpoints.push(Endpoint {
                    address: address.clone(),
                    port: target,
                    weight,
                    mtls,
                    workload: EndpointMeta {
                        pod: e.name.clone(),
                        workload: workload_name(mesh, e),
                        namespace: e.namespace.clone(),
                        cluster: mesh.cluster(e.cluster).name.clone(),
                        network: e.network.clone(),
                        app: e.app().to_string(),
                        version: e.version().unwrap_or("").to_string(),
                        identity: mesh.identity(e),
                    },
                    via_gateway: false,
                    unhealthy: false,
                    locality: crate::locality::of(mesh, e).to_string(),
                    priority: 0,
                });
                labels.insert((address.clone(), target), crate::locality::labels(mesh, e));
            }
        }
        endpoints.sort_by(|a, b| (&a.address, a.port).cmp(&(&b.address, b.port)));
        let mut endpoints = match kind {
            ClusterKind::Outbound => {
                split_horizon::translate(at.network, at.view, endpoints, at.gateways)
            }
            ClusterKind::SniDnat => endpoints
                .into_iter()
                .filter(|e| {
                    e.mtls
                        && (at.view.is_empty()
                            || e.workload.network.is_empty()
                            || at.view.contains(&e.workload.network))
                })
                .collect(),
        };
        // Labels as istiod matches `failoverPriority`: a gateway standing in for pods carries
        // only its network and cluster.
        let endpoint_labels: Vec<BTreeMap<String, String>> = endpoints
            .iter()
            .map(|e| match labels.get(&(e.address.clone(), e.port)) {
                Some(l) if !e.via_gateway => l.clone(),
                _ => [
                    ("topology.istio.io/network", &e.workload.network),
                    ("topology.istio.io/cluster", &e.workload.cluster),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            })
            .collect();
        let setting = locality_lb::effective(
            policy.locality.as_ref(),
            c.mesh_config.locality_lb_setting.as_ref(),
        );
        let locality_weights = locality_lb::apply(
            setting,
            policy.outlier.as_ref(),
            at.site,
            &mut endpoints,
            &endpoint_labels,
        );
        identities.sort();
        identities.dedup();
        let name = match kind {
            ClusterKind::Outbound => cluster_name(*port, subset, host),
            ClusterKind::SniDnat => sni(*port, subset, host),
        };
        let mut limits = policy.limits;
        if limits.connect_timeout_ms == 0 {
            limits.connect_timeout_ms = connect_default;
        }
        out.clusters.insert(
            name.clone(),
            Cluster {
                name,
                host: host.clone(),
                port: *port,
                subset: subset.clone(),
                protocol,
                lb: policy.lb,
                tls,
                sni: sni(*port, subset, host),
                identities,
                limits,
                endpoints,
                destination_rule: dr.map(|d| {
                    let o = mesh.object(d.id);
                    format!("{}/{}", o.namespace(), o.name())
                }),
                outlier: policy.outlier,
                locality_weights,
            },
        );
    }
}

/// The DestinationRule a client applies to a host.
struct Rule<'m> {
    id: ObjId,
    spec: &'m DestinationRuleSpec,
}

/// Pods that are gone or finished take no traffic.
fn running(mesh: &Mesh, w: &Workload) -> bool {
    mesh.object(w.object)
        .pod()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|phase| matches!(phase, "Running" | "Pending"))
}

/// The load-balancing and connection-pool part of a traffic policy, merged.
#[derive(Debug)]
struct Policy {
    lb: LbPolicy,
    limits: PoolLimits,
    outlier: Option<OutlierDetection>,
    locality: Option<LocalityLoadBalancerSetting>,
}

impl Default for Policy {
    fn default() -> Self {
        // Istio's default load balancer is LEAST_REQUEST.
        Policy {
            lb: LbPolicy::LeastRequest,
            limits: PoolLimits::default(),
            outlier: None,
            locality: None,
        }
    }
}

/// A rule's `outlierDetection` with Envoy's defaults where Istio leaves them: five consecutive
/// 5xx, gateway errors not counted, a 10 s interval, 30 s base ejection, at most 10 % ejected;
/// Istio turns the panic threshold off (`minHealthPercent` 0) unless told otherwise.
fn outlier_detection(od: &ApiOutlierDetection) -> OutlierDetection {
    let d = OutlierDetection::istio_default();
    let ms =
        |v: Option<std::time::Duration>, default: u64| v.map_or(default, |d| d.as_millis() as u64);
    OutlierDetection {
        consecutive_5xx: od
            .consecutive_5xx_errors
            .map_or(d.consecutive_5xx, |n| (n > 0).then_some(n)),
        consecutive_gateway_errors: od.consecutive_gateway_errors.filter(|n| *n > 0),
        interval_ms: ms(od.interval.map(|t| t.as_std()), d.interval_ms).max(1),
        base_ejection_ms: ms(
            od.base_ejection_time.map(|t| t.as_std()),
            d.base_ejection_ms,
        ),
        max_ejection_percent: od
            .max_ejection_percent
            .filter(|p| *p > 0)
            .map_or(d.max_ejection_percent, |p| p.min(100) as u32),
        min_health_percent: match od.min_health_percent {
            Some(p) if p < 0 => 50,
            Some(p) => p.min(100) as u32,
            None => 0,
        },
    }
}

impl Policy {
    /// The rule's policy, then its port-level settings for `port`, then the subset's (which
    /// win field by field), as istiod's `MergeTrafficPolicy`.
    fn merge(spec: &DestinationRuleSpec, port: u32, subset: Option<usize>) -> Policy {
        let mut p = Policy::default();
        if let Some(tp) = &spec.traffic_policy {
            p.apply(tp, port);
        }
        if let Some(tp) = subset
            .and_then(|k| spec.subsets.get(k))
            .and_then(|s| s.traffic_policy.as_ref())
        {
            p.apply(tp, port);
        }
        p
    }

    fn apply(&mut self, tp: &TrafficPolicy, port: u32) {
        // A port's own settings replace the rule's, part by part (istiod's merge).
        let level = tp
            .port_level_settings
            .iter()
            .find(|pl| pl.port.as_ref().map(|s| s.number) == Some(port));
        let lb = level
            .and_then(|pl| pl.load_balancer.as_ref())
            .or(tp.load_balancer.as_ref());
        let pool = level
            .and_then(|pl| pl.connection_pool.as_ref())
            .or(tp.connection_pool.as_ref());
        if let Some(od) = level
            .and_then(|pl| pl.outlier_detection.as_ref())
            .or(tp.outlier_detection.as_ref())
        {
            self.outlier = Some(outlier_detection(od));
        }
        if let Some(lb) = lb {
            // A subset's load balancer replaces the rule's whole, locality setting included.
            self.locality = lb.locality_lb_setting.clone();
        }
        if let Some(simple) = lb.and_then(|l| l.simple) {
            self.lb = match simple {
                SimpleLb::RoundRobin => LbPolicy::RoundRobin,
                SimpleLb::Random => LbPolicy::Random,
                SimpleLb::LeastRequest
                | SimpleLb::LeastConn
                | SimpleLb::Unspecified
                | SimpleLb::Passthrough => LbPolicy::LeastRequest,
            };
        }
        if let Some(pool) = pool {
            let pos = |v: Option<i32>| v.filter(|n| *n > 0).map(|n| n as u32);
            if let Some(tcp) = &pool.tcp {
                self.limits.max_connections =
                    pos(tcp.max_connections).or(self.limits.max_connections);
                if let Some(t) = tcp.connect_timeout {
                    self.limits.connect_timeout_ms = t.as_millis() as u64;
                }
            }
            if let Some(http) = &pool.http {
                self.limits.max_pending_requests =
                    pos(http.http1_max_pending_requests).or(self.limits.max_pending_requests);
                self.limits.max_requests =
                    pos(http.http2_max_requests).or(self.limits.max_requests);
                self.limits.max_requests_per_connection = pos(http.max_requests_per_connection)
                    .or(self.limits.max_requests_per_connection);
                self.limits.max_retries = pos(http.max_retries).or(self.limits.max_retries);
            }
        }
    }
}
