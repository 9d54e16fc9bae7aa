//! The configuration the request path reads: an immutable snapshot of the compiled config,
//! validated and indexed when it arrives, swapped in atomically ([`arc_swap`]) so requests
//! never wait on an update and never see half of one.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use strait_config::{Cluster, ProxyConfig, ServicePort};
use tokio::sync::Semaphore;

use crate::balance::Balancer;
use crate::metrics::CallSeries;
use crate::routing::Regexes;

/// Runtime state of one upstream cluster that outlives config updates when its endpoints do
/// not change (round-robin position, in-flight counts, the request limit).
#[derive(Debug)]
pub struct ClusterState {
    pub balancer: Balancer,
    /// `connectionPool.http.http2MaxRequests`: requests over the limit fail fast with 503.
    pub max_requests: Option<Arc<Semaphore>>,
    /// `connectionPool.tcp.maxConnections`, counted per opaque TCP tunnel: tunnels over the
    /// limit are refused with 503 `UO`.
    pub max_connections: Option<Arc<Semaphore>>,
    /// The metric series of each endpoint (by protocol and whether mTLS was used), made on
    /// first use: the labels depend only on what the fingerprint covers.
    series: Vec<[OnceLock<Arc<CallSeries>>; 4]>,
    fingerprint: String,
}

impl ClusterState {
    /// The series requests to endpoint `ep` are counted on (`make` builds it the first time).
    pub fn series(
        &self,
        ep: usize,
        grpc: bool,
        mtls: bool,
        make: impl FnOnce() -> Arc<CallSeries>,
    ) -> Arc<CallSeries> {
        match self.series.get(ep) {
            Some(slots) => slots[usize::from(grpc) * 2 + usize::from(mtls)]
                .get_or_init(make)
                .clone(),
            None => make(),
        }
    }
}

/// One accepted configuration.
#[derive(Debug)]
pub struct Snapshot {
    pub version: String,
    pub config: ProxyConfig,
    pub regexes: Regexes,
    clusters: HashMap<String, Arc<ClusterState>>,
    /// A gateway's listeners, ready to serve: virtual hosts as routable service ports and
    /// TLS acceptors built once per configuration (see [`crate::gateway`]).
    pub gateway: crate::gateway::Prepared,
    /// The AuthorizationPolicies that apply to this proxy, prepared for checks.
    pub authz: crate::authz::Policy,
    /// The RequestAuthentications' issuers, with their key sets parsed.
    pub jwt: crate::jwt::Verifier,
    /// This proxy's workload, as metric labels name it.
    pub me: crate::metrics::Peer,
    /// The header that tells servers who is calling (see [`crate::peer`]).
    pub peer_header: Option<http::HeaderValue>,
    /// Service ports by virtual address, for connections that arrive by traffic capture
    /// with nothing but their original destination (see [`Snapshot::resolve_addr`]).
    addresses: Addresses,
}

/// Service keys by virtual address and port: exact addresses in a map, ranges (a
/// ServiceEntry's CIDR `addresses`) in a list searched longest prefix first.
#[derive(Debug, Default)]
struct Addresses {
    exact: HashMap<std::net::SocketAddr, String>,
    ranges: Vec<(strait_net::Cidr, u16, String)>,
}

impl Addresses {
    fn build(config: &ProxyConfig) -> Addresses {
        let mut a = Addresses::default();
        for (key, sp) in &config.services {
            let Ok(port) = u16::try_from(sp.port) else {
                continue;
            };
            for text in &sp.addresses {
                if let Ok(ip) = text.parse::<std::net::IpAddr>() {
                    // Two services claiming one address: the first by key wins, as stable
                    // as the configuration (istiod reports such a conflict, never routes both).
                    a.exact
                        .entry(std::net::SocketAddr::new(ip, port))
                        .or_insert_with(|| key.clone());
                } else if let Ok(cidr) = text.parse::<strait_net::Cidr>() {
                    a.ranges.push((cidr, port, key.clone()));
                }
            }
        }
        a.ranges
            .sort_by(|x, y| y.0.prefix().cmp(&x.0.prefix()).then(x.2.cmp(&y.2)));
        a
    }
}

/// What a cluster's runtime state depends on: its balancing and limits, its endpoints, and
/// (for the metric series) who the endpoints are, the service, and this proxy itself.
fn fingerprint(c: &Cluster, node: &strait_config::NodeMeta) -> String {
    let eps: Vec<String> = c
        .endpoints
        .iter()
        .map(|e| format!("{}:{}/{}/{:?}", e.address, e.port, e.weight, e.workload))
        .collect();
    format!(
        "{:?}|{:?}|{:?}|{}|{}|{:?}",
        c.lb,
        c.limits.max_requests,
        c.limits.max_connections,
        c.host,
        eps.join(","),
        node
    )
}

impl Snapshot {
    /// An empty snapshot: before the first config arrives the proxy routes nothing.
    pub fn empty() -> Snapshot {
        Snapshot {
            version: String::new(),
            config: ProxyConfig::default(),
            regexes: Regexes::default(),
            clusters: HashMap::new(),
            gateway: crate::gateway::Prepared::default(),
            authz: crate::authz::Policy::default(),
            jwt: crate::jwt::Verifier::default(),
            me: crate::metrics::Peer::default(),
            peer_header: None,
            addresses: Addresses::default(),
        }
    }

    /// Validates `config` and builds a snapshot, reusing the state of unchanged clusters from
    /// `previous`. An error (a rule naming an unknown cluster, an invalid regex) rejects the
    /// whole update.
    pub fn build(
        version: String,
        config: ProxyConfig,
        previous: &Snapshot,
    ) -> Result<Snapshot, String> {
        for (key, sp) in &config.services {
            let named = sp.http.iter().flat_map(|r| match &r.action {
                strait_config::HttpAction::Route(ws) => {
                    ws.iter().map(|w| w.cluster.as_str()).collect()
                }
                _ => Vec::new(),
            });
            for c in named.chain(sp.tcp.iter().map(|w| w.cluster.as_str())) {
                if !config.clusters.contains_key(c) {
                    return Err(format!(
                        "service {key} routes to cluster {c}, which the update does not define"
                    ));
                }
            }
        }
        for c in config.clusters.values() {
            for e in &c.endpoints {
                if e.address.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!(
                        "cluster {}: endpoint address {:?} is not an IP address",
                        c.name, e.address
                    ));
                }
            }
        }
        for (key, sp) in &config.services {
            for r in &sp.http {
                let dests = match &r.action {
                    strait_config::HttpAction::Route(ws) => ws.iter().map(|w| &w.headers).collect(),
                    _ => Vec::new(),
                };
                for h in dests.into_iter().chain([&r.policy.headers]) {
                    crate::outbound::policy::validate_headers(&h.request)
                        .and_then(|()| crate::outbound::policy::validate_headers(&h.response))
                        .map_err(|e| format!("service {key}, rule {}: {e}", r.name))?;
                }
            }
        }
        let gateway = crate::gateway::Prepared::build(&config)?;
        for (name, sp) in gateway.routes() {
            for c in sp.http.iter().flat_map(|r| match &r.action {
                strait_config::HttpAction::Route(ws) => {
                    ws.iter().map(|w| w.cluster.as_str()).collect()
                }
                _ => Vec::new(),
            }) {
                if !config.clusters.contains_key(c) {
                    return Err(format!(
                        "{name} routes to cluster {c}, which the update does not define"
                    ));
                }
            }
        }
        let regexes = Regexes::for_rules(
            config
                .services
                .values()
                .flat_map(|s| s.http.iter())
                .chain(gateway.routes().flat_map(|(_, sp)| sp.http.iter())),
        )?;
        let clusters = config
            .clusters
            .values()
            .map(|c| {
                let fp = fingerprint(c, &config.mesh.node);
                let state = match previous.clusters.get(&c.name) {
                    Some(s) if s.fingerprint == fp => s.clone(),
                    prev => Arc::new(ClusterState {
                        balancer: match (prev, previous.config.clusters.get(&c.name)) {
                            (Some(s), Some(old)) => Balancer::carried_over(&s.balancer, old, c),
                            _ => Balancer::new(c.endpoints.len()),
                        },
                        max_requests: c
                            .limits
                            .max_requests
                            .map(|n| Arc::new(Semaphore::new(n as usize))),
                        max_connections: c
                            .limits
                            .max_connections
                            .map(|n| Arc::new(Semaphore::new(n as usize))),
                        series: c.endpoints.iter().map(|_| Default::default()).collect(),
                        fingerprint: fp,
                    }),
                };
                (c.name.clone(), state)
            })
            .collect();
        let authz = crate::authz::Policy::new(&config.authz);
        let jwt = crate::jwt::Verifier::new(&config.authz.jwt);
        let n = &config.mesh.node;
        let me = crate::metrics::Peer {
            workload: n.workload.clone(),
            namespace: n.namespace.clone(),
            principal: n.identity.clone(),
            app: n.app.clone(),
            version: n.version.clone(),
            cluster: n.cluster.clone(),
        };
        let peer_header = http::HeaderValue::from_str(&crate::peer::encode(n)).ok();
        let addresses = Addresses::build(&config);
        Ok(Snapshot {
            version,
            config,
            regexes,
            clusters,
            gateway,
            authz,
            jwt,
            me,
            peer_header,
            addresses,
        })
    }

    /// Endpoints outlier detection holds out now: cluster name → `address:port` → the
    /// milliseconds left (istioctl's OUTLIER CHECK column).
    pub fn ejected(&self) -> BTreeMap<&str, BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for (name, c) in &self.config.clusters {
            let Some(state) = self.clusters.get(name).filter(|_| c.outlier.is_some()) else {
                continue;
            };
            let held: BTreeMap<String, u64> = c
                .endpoints
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match state.balancer.outlier_state(i) {
                    crate::balance::OutlierState::Ejected(ms) => {
                        Some((format!("{}:{}", e.address, e.port), ms))
                    }
                    crate::balance::OutlierState::Ok => None,
                })
                .collect();
            if !held.is_empty() {
                out.insert(name.as_str(), held);
            }
        }
        out
    }

    pub fn cluster(&self, name: &str) -> Option<(&Cluster, &Arc<ClusterState>)> {
        Some((self.config.clusters.get(name)?, self.clusters.get(name)?))
    }

    /// The service port whose virtual address (a cluster IP, a ServiceEntry address or range)
    /// and port a captured connection was headed for.
    pub fn resolve_addr(&self, dest: std::net::SocketAddr) -> Option<&ServicePort> {
        let dest = std::net::SocketAddr::new(
            match dest.ip() {
                std::net::IpAddr::V6(v6) => {
                    v6.to_ipv4_mapped().map_or(dest.ip(), std::net::IpAddr::V4)
                }
                v4 => v4,
            },
            dest.port(),
        );
        let key = self.addresses.exact.get(&dest).or_else(|| {
            self.addresses
                .ranges
                .iter()
                .find(|(cidr, port, _)| *port == dest.port() && cidr.contains(dest.ip()))
                .map(|(_, _, key)| key)
        })?;
        self.config.services.get(key)
    }

    /// The service a request for `host:port` from this proxy means, with the search a pod's
    /// resolver would do: the name as written, then in the proxy's namespace, then under
    /// `svc.<domain>` and `<domain>`; wildcard ServiceEntry hosts last.
    pub fn resolve(&self, host: &str, port: u16) -> Option<&ServicePort> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let m = &self.config.mesh;
        let ns = &m.node.namespace;
        let domain = if m.domain.is_empty() {
            "cluster.local"
        } else {
            m.domain.as_str()
        };
        let candidates = [
            host.clone(),
            format!("{host}.{ns}.svc.{domain}"),
            format!("{host}.svc.{domain}"),
            format!("{host}.{domain}"),
        ];
        for c in &candidates {
            if let Some(sp) = self.config.services.get(&format!("{c}:{port}")) {
                return Some(sp);
            }
        }
        self.config
            .services
            .values()
            .filter(|sp| sp.port == u32::from(port) && sp.host.starts_with('*'))
            .filter(|sp| host.ends_with(&sp.host[1..]))
            .max_by_key(|sp| sp.host.len())
    }
}

#[cfg(test)]
mod tests {
    use strait_config::{AppProtocol, MeshSettings, NodeMeta};

    use super::*;

    fn service(host: &str, port: u32) -> ServicePort {
        ServicePort {
            host: host.into(),
            port,
            namespace: "sample".into(),
            protocol: AppProtocol::Http,
            http: Vec::new(),
            tcp: Vec::new(),
            virtual_service: None,
            addresses: Vec::new(),
        }
    }

    #[test]
    fn resolves_like_a_pod_resolver() {
        let mut cfg = ProxyConfig {
            mesh: MeshSettings {
                domain: "cluster.local".into(),
                node: NodeMeta {
                    namespace: "sample".into(),
                    ..NodeMeta::default()
                },
                ..MeshSettings::default()
            },
            ..ProxyConfig::default()
        };
        for (h, p) in [
            ("helloworld.sample.svc.cluster.local", 5000),
            ("ratings.other.svc.cluster.local", 9080),
            ("*.example.com", 443),
        ] {
            cfg.services.insert(format!("{h}:{p}"), service(h, p));
        }
        let s = Snapshot::build("1".into(), cfg, &Snapshot::empty()).expect("valid");
        let host = |h: &str, p: u16| s.resolve(h, p).map(|sp| sp.host.clone());
        assert_eq!(
            host("helloworld", 5000).as_deref(),
            Some("helloworld.sample.svc.cluster.local")
        );
        assert_eq!(
            host("helloworld.sample", 5000).as_deref(),
            Some("helloworld.sample.svc.cluster.local")
        );
        assert_eq!(
            host("ratings.other", 9080).as_deref(),
            Some("ratings.other.svc.cluster.local")
        );
        assert_eq!(
            host("ratings", 9080),
            None,
            "other namespaces need the namespace"
        );
        assert_eq!(host("helloworld", 80), None);
        assert_eq!(
            host("api.example.com", 443).as_deref(),
            Some("*.example.com")
        );
    }

    #[test]
    fn resolves_captured_destinations_by_address() {
        let mut cfg = ProxyConfig::default();
        let mut hw = service("helloworld.sample.svc.cluster.local", 5000);
        hw.addresses = vec!["10.96.0.10".into()];
        let mut db = service("db.example.com", 5432);
        db.addresses = vec!["240.240.0.0/16".into()];
        let mut one = service("one.example.com", 5432);
        one.addresses = vec!["240.240.1.0/24".into()];
        for sp in [hw, db, one] {
            cfg.services.insert(format!("{}:{}", sp.host, sp.port), sp);
        }
        let s = Snapshot::build("1".into(), cfg, &Snapshot::empty()).expect("valid");
        let host = |a: &str| {
            s.resolve_addr(a.parse().expect("addr"))
                .map(|sp| sp.host.clone())
        };
        assert_eq!(
            host("10.96.0.10:5000").as_deref(),
            Some("helloworld.sample.svc.cluster.local")
        );
        assert_eq!(
            host("[::ffff:10.96.0.10]:5000").as_deref(),
            Some("helloworld.sample.svc.cluster.local")
        );
        assert_eq!(
            host("10.96.0.10:80"),
            None,
            "the port is part of the service"
        );
        assert_eq!(host("10.96.0.11:5000"), None);
        assert_eq!(host("240.240.1.7:5432").as_deref(), Some("one.example.com"));
        assert_eq!(host("240.240.2.7:5432").as_deref(), Some("db.example.com"));
    }

    #[test]
    fn rejects_dangling_clusters() {
        let mut cfg = ProxyConfig::default();
        let mut sp = service("a.b.svc.cluster.local", 80);
        sp.tcp.push(strait_config::WeightedCluster {
            cluster: "outbound|80||a".into(),
            weight: 1,
            ..Default::default()
        });
        cfg.services.insert("a:80".into(), sp);
        assert!(Snapshot::build("1".into(), cfg, &Snapshot::empty()).is_err());
    }
}
