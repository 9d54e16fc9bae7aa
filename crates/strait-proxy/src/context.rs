//! What every connection handler shares: the current configuration, upstream connections,
//! metrics, and who this proxy is.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use strait_config::NodeMeta;
use strait_net::Reach;

use crate::metrics::{Metrics, Peer};
use crate::snapshot::Snapshot;
use crate::tls::Credentials;
use crate::upstream::Upstreams;
use crate::workers::Workers;

#[derive(Debug)]
pub struct Proxy {
    pub snapshot: ArcSwap<Snapshot>,
    pub upstreams: Upstreams,
    pub metrics: Arc<Metrics>,
    pub creds: Arc<Credentials>,
    /// Where the application listens (the pod's private address).
    pub app_ip: IpAddr,
    /// Where this proxy listens (the pod's address).
    pub pod_ip: IpAddr,
    /// The outbound listener: never a destination, or a request would come straight back.
    pub outbound: SocketAddr,
    /// Which peers listeners admit, and where connections leave from.
    pub reach: Reach,
    /// The threads accepted connections are served on.
    pub workers: Workers,
    /// Trace propagation and span export.
    pub tracer: crate::trace::Tracer,
}

impl Proxy {
    pub fn node(&self) -> NodeMeta {
        self.snapshot.load().config.mesh.node.clone()
    }

    /// This proxy's workload as a metrics peer.
    pub fn me(&self) -> Peer {
        self.snapshot.load().me.clone()
    }
}

pub type Shared = Arc<Proxy>;
