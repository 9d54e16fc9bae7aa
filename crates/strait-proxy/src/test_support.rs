//! Configuration pieces the unit tests of several modules build on.

use strait_config::{
    AppProtocol, Cluster, Endpoint, EndpointMeta, LbPolicy, PoolLimits, UpstreamTls,
};

/// A cluster of plain mTLS endpoints on port 80, one per address, weight 1, priority 0.
pub(crate) fn cluster(name: &str, lb: LbPolicy, addresses: &[String]) -> Cluster {
    Cluster {
        name: name.into(),
        host: "web.shop.svc.cluster.local".into(),
        port: 80,
        subset: String::new(),
        protocol: AppProtocol::Http,
        lb,
        tls: UpstreamTls::Auto,
        sni: String::new(),
        identities: Vec::new(),
        limits: PoolLimits::default(),
        endpoints: addresses
            .iter()
            .map(|a| Endpoint {
                address: a.clone(),
                port: 80,
                weight: 1,
                mtls: true,
                workload: EndpointMeta::default(),
                via_gateway: false,
                unhealthy: false,
                locality: String::new(),
                priority: 0,
            })
            .collect(),
        destination_rule: None,
        outlier: None,
        locality_weights: Default::default(),
    }
}
