//! Networks and their gateways: a Service labelled `topology.istio.io/network` that exposes
//! 15443 (or its `networking.istio.io/gatewayPort`), or a `meshNetworks` gateway entry, is how
//! traffic from other networks reaches a network's workloads.

use crate::ids::{ClusterId, ObjId, ServiceId};

/// Istio's default cross-network port.
pub const DEFAULT_GATEWAY_PORT: u32 = 15443;
pub const NETWORK_LABEL: &str = "topology.istio.io/network";
pub const GATEWAY_PORT_LABEL: &str = "networking.istio.io/gatewayPort";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayOrigin {
    /// A Service labelled with the network.
    Service(ServiceId),
    /// A `meshNetworks` entry of this cluster's mesh networks.
    MeshNetworks {
        cluster: ClusterId,
        object: Option<ObjId>,
    },
}

/// One way into a network.
#[derive(Clone, Debug)]
pub struct NetworkGateway {
    pub network: String,
    /// The cluster the gateway runs in (for meshNetworks `address` entries: the cluster whose
    /// mesh networks declare it).
    pub cluster: ClusterId,
    pub origin: GatewayOrigin,
    /// Known public addresses; empty when assigned at run time (a LoadBalancer with no status
    /// in the manifests).
    pub addresses: Vec<String>,
    pub port: u32,
    /// `false` when nothing outside the cluster can reach it (a ClusterIP Service with no
    /// external IPs).
    pub reachable: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Network {
    pub id: String,
    /// Clusters whose network this is.
    pub clusters: Vec<ClusterId>,
    pub gateways: Vec<NetworkGateway>,
}

impl Network {
    pub fn reachable_gateways(&self) -> impl Iterator<Item = &NetworkGateway> {
        self.gateways.iter().filter(|g| g.reachable)
    }
}
