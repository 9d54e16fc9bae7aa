//! Split-horizon endpoints: what a proxy is told about a service's endpoints depends on where
//! the proxy is. Endpoints in its own network keep their pod addresses; endpoints of another
//! network that has east-west gateways are replaced by those gateways' public addresses,
//! weighted by how many endpoints stand behind each, so that load still spreads in proportion
//! to the pods. This is istiod's endpoint translation (`EndpointsByNetworkFilter`).
//!
//! Istio's legacy traps are kept, on purpose, and reported elsewhere (analyzer, `proxy-config`):
//! an endpoint whose network has no gateway at all, or whose network is unknown, is sent as its
//! raw pod address, which another network cannot reach.

use std::collections::BTreeMap;

use strait_config::types::{Endpoint, EndpointMeta};

/// A way into a network: a gateway's public address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayAddr {
    pub network: String,
    /// The cluster the gateway runs in.
    pub cluster: String,
    pub address: String,
    pub port: u32,
    pub unhealthy: bool,
}

/// The network gateways a proxy may use, indexed as istiod indexes them.
#[derive(Clone, Debug, Default)]
pub struct Gateways {
    by_network: BTreeMap<String, Vec<GatewayAddr>>,
    by_cluster: BTreeMap<(String, String), Vec<GatewayAddr>>,
}

impl Gateways {
    pub fn new(mut all: Vec<GatewayAddr>) -> Gateways {
        all.sort_by(|a, b| (&a.address, a.port).cmp(&(&b.address, b.port)));
        all.dedup_by(|a, b| a.address == b.address && a.port == b.port);
        let mut g = Gateways::default();
        for gw in all {
            g.by_cluster
                .entry((gw.network.clone(), gw.cluster.clone()))
                .or_default()
                .push(gw.clone());
            g.by_network.entry(gw.network.clone()).or_default().push(gw);
        }
        g
    }

    pub fn is_empty(&self) -> bool {
        self.by_network.is_empty()
    }

    /// A network's gateways: those of the endpoint's own cluster when it has some, else all of
    /// the network's.
    fn for_endpoint(&self, network: &str, cluster: &str) -> &[GatewayAddr] {
        self.by_cluster
            .get(&(network.to_string(), cluster.to_string()))
            .or_else(|| self.by_network.get(network))
            .map_or(&[], Vec::as_slice)
    }

    /// The scale that lets every gateway share stay an integer: the least common multiple of
    /// the gateway counts per network and per (network, cluster).
    fn scale(&self) -> u32 {
        self.by_network
            .values()
            .chain(self.by_cluster.values())
            .map(|v| v.len() as u32)
            .filter(|n| *n > 0)
            .fold(1, lcm)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u32, b: u32) -> u32 {
    (a / gcd(a, b)).saturating_mul(b)
}

/// Istio's rule for networks: equal, or either one unset.
pub fn in_network(a: &str, b: &str) -> bool {
    a == b || a.is_empty() || b.is_empty()
}

/// The endpoints `proxy_network` is told about. `view` is the proxy's requested network view
/// (a gateway's own network: it must never forward to another network's gateway); endpoints
/// outside it are dropped first.
pub fn translate(
    proxy_network: &str,
    view: &[String],
    endpoints: Vec<Endpoint>,
    gateways: &Gateways,
) -> Vec<Endpoint> {
    let mut endpoints: Vec<Endpoint> = endpoints
        .into_iter()
        .filter(|e| {
            view.is_empty() || e.workload.network.is_empty() || view.contains(&e.workload.network)
        })
        .collect();
    if gateways.is_empty() {
        return endpoints;
    }
    let scale = gateways.scale();
    let mut out = Vec::with_capacity(endpoints.len());
    // Gateways stay in the locality of the pods they stand in for, so locality failover still
    // sees where those pods are.
    let mut shares: BTreeMap<(String, u32, String), (u32, GatewayAddr)> = BTreeMap::new();
    for mut e in endpoints.drain(..) {
        let net = e.workload.network.clone();
        let gws = gateways.for_endpoint(&net, &e.workload.cluster);
        let weight = e.weight.max(1).saturating_mul(scale);
        // A proxy that does not know its network reaches every networked endpoint through
        // its gateway, even one that may be next to it (Istio's current behaviour).
        let forced = proxy_network.is_empty() && !net.is_empty() && !gws.is_empty();
        if !forced && (in_network(proxy_network, &net) || gws.is_empty()) {
            e.weight = weight;
            out.push(e);
        } else if e.mtls {
            // The gateway routes on the SNI of an mTLS handshake: only endpoints with a proxy
            // can be reached through it.
            let each = weight / gws.len() as u32;
            for g in gws {
                let slot = shares
                    .entry((g.address.clone(), g.port, e.locality.clone()))
                    .or_insert_with(|| (0, g.clone()));
                slot.0 = slot.0.saturating_add(each);
            }
        }
    }
    for ((address, port, locality), (weight, g)) in shares {
        out.push(Endpoint {
            address,
            port,
            weight: weight.max(1),
            mtls: true,
            workload: EndpointMeta {
                cluster: g.cluster,
                network: g.network,
                ..EndpointMeta::default()
            },
            via_gateway: true,
            unhealthy: g.unhealthy,
            locality,
            priority: 0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(addr: &str, network: &str, cluster: &str, mtls: bool) -> Endpoint {
        Endpoint {
            address: addr.into(),
            port: 5000,
            weight: 1,
            mtls,
            workload: EndpointMeta {
                pod: format!("pod-{addr}"),
                cluster: cluster.into(),
                network: network.into(),
                ..EndpointMeta::default()
            },
            via_gateway: false,
            unhealthy: false,
            locality: String::new(),
            priority: 0,
        }
    }

    fn gw(addr: &str, network: &str, cluster: &str) -> GatewayAddr {
        GatewayAddr {
            network: network.into(),
            cluster: cluster.into(),
            address: addr.into(),
            port: 15443,
            unhealthy: false,
        }
    }

    fn summary(eps: &[Endpoint]) -> Vec<(String, u32, u32, bool)> {
        eps.iter()
            .map(|e| (e.address.clone(), e.port, e.weight, e.via_gateway))
            .collect()
    }

    #[test]
    fn remote_endpoints_become_their_gateways_weighted_by_pods() {
        // Istio's worked example: network1 has one gateway, network2 two (in cluster2);
        // two local pods and three remote ones. Scale 2: local pods weigh 2, each remote
        // pod adds 1 to each gateway, so the split is 4:6, proportional to the pods.
        let gws = Gateways::new(vec![
            gw("1.1.1.1", "network1", "cluster1"),
            gw("2.2.2.1", "network2", "cluster2"),
            gw("2.2.2.2", "network2", "cluster2"),
        ]);
        let eps = vec![
            ep("10.1.0.1", "network1", "cluster1", true),
            ep("10.1.0.2", "network1", "cluster1", true),
            ep("10.2.0.1", "network2", "cluster2", true),
            ep("10.2.0.2", "network2", "cluster2", true),
            ep("10.2.0.3", "network2", "cluster2", true),
        ];
        let out = translate("network1", &[], eps, &gws);
        assert_eq!(
            summary(&out),
            vec![
                ("10.1.0.1".into(), 5000, 2, false),
                ("10.1.0.2".into(), 5000, 2, false),
                ("2.2.2.1".into(), 15443, 3, true),
                ("2.2.2.2".into(), 15443, 3, true),
            ]
        );
        assert_eq!(out[2].workload.cluster, "cluster2");
        assert!(out[2].mtls && out[2].workload.pod.is_empty());
    }

    #[test]
    fn networks_without_gateways_and_pods_without_sidecars() {
        let gws = Gateways::new(vec![gw("2.2.2.1", "network2", "cluster2")]);
        let eps = vec![
            ep("10.2.0.1", "network2", "cluster2", false),
            // network3 has no gateway: its raw pod address is kept (Istio's legacy trap).
            ep("10.3.0.1", "network3", "cluster3", true),
            // No network known: the same network as everyone.
            ep("10.4.0.1", "", "cluster4", true),
        ];
        let out = translate("network1", &[], eps, &gws);
        assert_eq!(
            summary(&out),
            vec![
                ("10.3.0.1".into(), 5000, 1, false),
                ("10.4.0.1".into(), 5000, 1, false),
            ]
        );
    }

    #[test]
    fn a_gateway_sees_its_own_network_only() {
        let gws = Gateways::new(vec![
            gw("1.1.1.1", "network1", "cluster1"),
            gw("2.2.2.1", "network2", "cluster2"),
        ]);
        let eps = vec![
            ep("10.1.0.1", "network1", "cluster1", true),
            ep("10.2.0.1", "network2", "cluster2", true),
        ];
        let out = translate("network1", &["network1".to_string()], eps, &gws);
        assert_eq!(summary(&out), vec![("10.1.0.1".into(), 5000, 1, false)]);
    }

    #[test]
    fn a_proxy_without_a_network_goes_through_every_gateway() {
        let gws = Gateways::new(vec![gw("1.1.1.1", "network1", "cluster1")]);
        let eps = vec![ep("10.1.0.1", "network1", "cluster1", true)];
        let out = translate("", &[], eps, &gws);
        assert_eq!(summary(&out), vec![("1.1.1.1".into(), 15443, 1, true)]);
    }

    #[test]
    fn no_gateways_anywhere_changes_nothing() {
        let eps = vec![
            ep("10.1.0.1", "network1", "cluster1", true),
            ep("10.2.0.1", "network2", "cluster2", true),
        ];
        let out = translate("network1", &[], eps.clone(), &Gateways::default());
        assert_eq!(out, eps);
    }
}
