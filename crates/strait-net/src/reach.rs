//! The network table of one process: its network's address ranges, the operator's address,
//! and the pod address its outgoing connections leave from.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::Cidr;

/// Which peers a listener admits, and where outgoing connections leave from.
///
/// Written by `strait up` into every part's bootstrap. Empty `ranges` mean no table: every
/// peer is admitted and nothing is bound (a part run on its own).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reach {
    /// The network this process is in, for messages (`""`: the mesh has one network).
    pub network: String,
    /// Address ranges of this network: its pods, apps and control planes.
    pub ranges: Vec<Cidr>,
    /// The other networks' ranges, so that a refusal can name the peer's network.
    pub elsewhere: Vec<NetworkRanges>,
    /// The operator's addresses (what `kubectl exec` and `port-forward` are to a cluster):
    /// admitted on operator ports (admin, health, stats, the outbound proxy, debug).
    pub operator: Vec<IpAddr>,
    /// The address outgoing connections leave from: the pod's own.
    pub source: Option<IpAddr>,
    /// Whether connections to addresses outside `ranges` (another network's gateway) leave
    /// from `source` too. On one loopback they do; with a namespace per network they cannot
    /// (a loopback source does not cross an interface), and the kernel picks the network's
    /// own address on the link between networks, as a NAT gateway would.
    pub bind_outside: bool,
}

/// Another network's ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRanges {
    pub network: String,
    pub ranges: Vec<Cidr>,
}

/// What kind of listener a peer knocks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// Mesh traffic (inbound mTLS ports, gateways' pod-address ports, the control plane's
    /// 15012): this network's peers only.
    Mesh,
    /// Operator ports (15000, 15001, 15021, 15090, 15014, apps): this network and the operator.
    Operator,
    /// A gateway's public address: anyone, as a cloud load balancer.
    Public,
}

/// A peer a listener would not admit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    pub peer: IpAddr,
    /// The listener's network.
    pub network: String,
    /// The peer's network, when its address is in a known range.
    pub theirs: Option<String>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ours = display_network(&self.network);
        match &self.theirs {
            Some(theirs) => write!(
                f,
                "refused {}, an address of {}: this listener is in {ours}, and traffic between networks must go through an east-west gateway",
                self.peer,
                display_network(theirs)
            ),
            None => write!(
                f,
                "refused {}: not an address of {ours} (only a gateway's public address admits other networks)",
                self.peer
            ),
        }
    }
}

fn display_network(n: &str) -> String {
    if n.is_empty() {
        "the mesh's network".to_string()
    } else {
        format!("network {n}")
    }
}

/// An IPv4-mapped IPv6 peer (`::ffff:127.0.0.1`, seen on dual-stack sockets) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Reach {
    /// Whether a table is in force.
    pub fn is_restricted(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// Whether `peer` is an address of this network.
    pub fn is_local(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.ranges.iter().any(|r| r.contains(peer))
    }

    /// Whether a listener of kind `door` admits `peer`.
    pub fn admits(&self, peer: IpAddr, door: Door) -> Result<(), Refused> {
        let peer = canonical(peer);
        if !self.is_restricted() || door == Door::Public || self.is_local(peer) {
            return Ok(());
        }
        if door == Door::Operator && self.operator.contains(&peer) {
            return Ok(());
        }
        Err(Refused {
            peer,
            network: self.network.clone(),
            theirs: self
                .elsewhere
                .iter()
                .find(|n| n.ranges.iter().any(|r| r.contains(peer)))
                .map(|n| n.network.clone()),
        })
    }

    /// The address a connection to `dest` leaves from, when one is bound.
    pub fn source_for(&self, dest: IpAddr) -> Option<IpAddr> {
        let src = self.source?;
        if src.is_ipv4() != dest.is_ipv4() {
            return None;
        }
        (self.bind_outside || self.is_local(dest)).then_some(src)
    }

    /// Reads a table written as JSON (what `strait up` writes for each part).
    pub fn load(path: &Path) -> io::Result<Reach> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// The same table, for a process whose connections leave from `source`.
    pub fn with_source(&self, source: IpAddr) -> Reach {
        Reach {
            source: Some(source),
            ..self.clone()
        }
    }

    /// Accepts the next connection `door` admits. Refused peers are closed at once and
    /// logged with their address and network; a failed accept (out of file descriptors)
    /// backs off briefly instead of spinning.
    pub async fn accept(
        &self,
        listener: &TcpListener,
        door: Door,
        what: &str,
    ) -> (TcpStream, SocketAddr) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => match self.admits(peer.ip(), door) {
                    Ok(()) => return (stream, peer),
                    Err(refused) => {
                        tracing::info!(listener = what, peer = %peer, "{refused}");
                        drop(stream);
                    }
                },
                Err(e) => {
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Connects to `dest` from this process's address.
    pub async fn connect(&self, dest: SocketAddr) -> io::Result<TcpStream> {
        let socket = if dest.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = self.source_for(dest.ip()) {
            socket.bind(SocketAddr::new(src, 0)).map_err(|e| {
                io::Error::new(e.kind(), format!("binding source address {src}: {e}"))
            })?;
        }
        let stream = socket.connect(dest).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn table() -> Reach {
        Reach {
            network: "network1".into(),
            ranges: vec!["127.10.0.0/20".parse().expect("cidr")],
            elsewhere: vec![NetworkRanges {
                network: "network2".into(),
                ranges: vec!["127.10.16.0/20".parse().expect("cidr")],
            }],
            operator: vec![ip("127.0.0.1")],
            source: Some(ip("127.10.1.1")),
            bind_outside: true,
        }
    }

    #[test]
    fn listeners_admit_their_network_and_refuse_others() {
        let r = table();
        assert!(r.admits(ip("127.10.2.3"), Door::Mesh).is_ok());
        assert!(r.admits(ip("::ffff:127.10.2.3"), Door::Mesh).is_ok());
        let e = r
            .admits(ip("127.10.17.1"), Door::Mesh)
            .expect_err("other network");
        assert_eq!(e.theirs.as_deref(), Some("network2"));
        assert!(e.to_string().contains("east-west gateway"), "{e}");
        assert!(r.admits(ip("127.10.17.1"), Door::Public).is_ok());
        // The operator reaches operator ports, not mesh ports.
        assert!(r.admits(ip("127.0.0.1"), Door::Operator).is_ok());
        assert!(r.admits(ip("127.0.0.1"), Door::Mesh).is_err());
        assert!(Reach::default().admits(ip("10.0.0.1"), Door::Mesh).is_ok());
    }

    #[test]
    fn sources_follow_the_mode() {
        let mut r = table();
        assert_eq!(r.source_for(ip("127.10.17.1")), Some(ip("127.10.1.1")));
        r.bind_outside = false;
        assert_eq!(r.source_for(ip("127.10.2.2")), Some(ip("127.10.1.1")));
        assert_eq!(r.source_for(ip("198.18.10.3")), None);
        assert_eq!(r.source_for(ip("::1")), None);
    }

    #[tokio::test]
    async fn connections_leave_from_the_source_address() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = l.local_addr().expect("addr");
        let r = Reach {
            source: Some(ip("127.0.0.1")),
            bind_outside: true,
            ..Reach::default()
        };
        let (c, accepted) = tokio::join!(r.connect(addr), l.accept());
        c.expect("connect");
        assert_eq!(accepted.expect("accept").1.ip(), ip("127.0.0.1"));
    }
}
