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
    /// Traffic capture is on (see [`crate::Bootstrap::capture`]): the outbound and inbound
    /// capture ports listen on every address of the pod.
    pub capture: bool,
    /// The inbound capture port (15006), a destination as forbidden as `outbound`.
    pub inbound_capture: u16,
    /// Which peers listeners admit, and where connections leave from.
    pub reach: Reach,
    /// The threads accepted connections are served on.
    pub workers: Workers,
    /// Trace propagation and span export.
    pub tracer: crate::trace::Tracer,
}

impl Proxy {
    /// Whether `addr` is one of this proxy's own capture or proxy listeners, which no
    /// connection may be sent to: it would come straight back, again and again, until the
    /// proxy runs out of connections. Under capture the listeners answer on every local
    /// address, so the pod's address, loopback and the unspecified address all count.
    pub fn is_own_listener(&self, addr: SocketAddr) -> bool {
        let capture = self.capture.then_some(self.inbound_capture);
        own_listener(self.outbound, capture, addr)
    }

    pub fn node(&self) -> NodeMeta {
        self.snapshot.load().config.mesh.node.clone()
    }

    /// This proxy's workload as a metrics peer.
    pub fn me(&self) -> Peer {
        self.snapshot.load().me.clone()
    }
}

pub type Shared = Arc<Proxy>;

/// Whether `addr` is the outbound listener `outbound`, or, under capture (`Some` inbound
/// capture port), either capture port on any of the pod's local addresses.
fn own_listener(outbound: SocketAddr, capture: Option<u16>, addr: SocketAddr) -> bool {
    if addr == outbound {
        return true;
    }
    let Some(inbound) = capture else {
        return false;
    };
    let ip = addr.ip();
    [outbound.port(), inbound].contains(&addr.port())
        && (ip == outbound.ip() || ip.is_loopback() || ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_recognised() {
        let out: SocketAddr = "10.1.0.3:15001".parse().expect("addr");
        let at = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert!(own_listener(out, None, out));
        assert!(!own_listener(out, None, at("127.0.0.1:15001")));
        assert!(own_listener(out, Some(15006), at("127.0.0.1:15001")));
        assert!(own_listener(out, Some(15006), at("10.1.0.3:15006")));
        assert!(own_listener(out, Some(15006), at("0.0.0.0:15006")));
        assert!(
            !own_listener(out, Some(15006), at("10.1.0.4:15006")),
            "another pod's"
        );
        assert!(!own_listener(out, Some(15006), at("10.1.0.3:5000")));
    }
}
