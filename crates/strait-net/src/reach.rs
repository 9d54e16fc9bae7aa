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
    /// admitted on operator and admin ports (admin, health, stats, the outbound proxy, debug).
    pub operator: Vec<IpAddr>,
    /// The pod's own addresses (its sidecar's and its app's): what [`Door::Admin`] and
    /// [`Door::Pod`] admit besides the operator. Empty: those doors admit no pod address.
    pub pod: Vec<IpAddr>,
    /// The local user whose processes (and root's) may use [`Door::Admin`] and [`Door::Pod`]
    /// listeners: on one machine any user can bind a loopback address, so an address does
    /// not prove who calls. `None`: not checked (a part run on its own, or in a cluster).
    pub owner: Option<u32>,
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
    /// Ports a cluster probes and scrapes (15021 health, 15090 stats): this network and the
    /// operator.
    Operator,
    /// A gateway's public address: anyone, as a cloud load balancer.
    Public,
    /// What only the pod itself and the mesh's owner may use (15000 admin and its config
    /// dump, 15001 outbound, which speaks as the pod's identity, the control plane's debug
    /// port): the pod's own addresses and the operator's, from the owner's processes.
    Admin,
    /// Private to the pod (an app behind its sidecar): the pod's own addresses only, from
    /// the owner's processes.
    Pod,
}

/// A peer a listener would not admit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    pub peer: IpAddr,
    /// The listener's network.
    pub network: String,
    pub why: Why,
}

/// Why a peer was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The peer's address is in another network's range.
    OtherNetwork(String),
    /// The peer's address is in no network's range.
    Outside,
    /// The listener is private to its pod (and the operator, for [`Door::Admin`]).
    NotThePod,
    /// The peer's process belongs to another local user (`None`: nobody this host knows).
    Stranger(Option<u32>),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ours = display_network(&self.network);
        let peer = self.peer;
        match &self.why {
            Why::OtherNetwork(theirs) => write!(
                f,
                "refused {peer}, an address of {}: this listener is in {ours}, and traffic between networks must go through an east-west gateway",
                display_network(theirs)
            ),
            Why::Outside => write!(
                f,
                "refused {peer}: not an address of {ours} (only a gateway's public address admits other networks)"
            ),
            Why::NotThePod => write!(
                f,
                "refused {peer}: this listener answers only its own pod (and the mesh's operator)"
            ),
            Why::Stranger(Some(uid)) => write!(
                f,
                "refused {peer}: its process belongs to uid {uid}, not to the mesh's owner"
            ),
            Why::Stranger(None) => write!(
                f,
                "refused {peer}: no process of the mesh's owner on this host holds that connection"
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

    /// Whether `peer` is one of the pod's own addresses.
    pub fn is_pod(&self, peer: IpAddr) -> bool {
        self.pod.contains(&canonical(peer))
    }

    /// Whether a listener of kind `door` admits `peer`, by its address. (Who owns the
    /// peer's process is checked when a connection is accepted: [`Reach::accept`].)
    pub fn admits(&self, peer: IpAddr, door: Door) -> Result<(), Refused> {
        let peer = canonical(peer);
        if !self.is_restricted() || door == Door::Public {
            return Ok(());
        }
        let refuse = |why| {
            Err(Refused {
                peer,
                network: self.network.clone(),
                why,
            })
        };
        let operator = self.operator.contains(&peer);
        match door {
            Door::Pod if self.is_pod(peer) => Ok(()),
            Door::Admin if self.is_pod(peer) || operator => Ok(()),
            Door::Pod | Door::Admin => refuse(Why::NotThePod),
            Door::Operator if operator => Ok(()),
            _ if self.is_local(peer) => Ok(()),
            _ => refuse(
                self.elsewhere
                    .iter()
                    .find(|n| n.ranges.iter().any(|r| r.contains(peer)))
                    .map_or(Why::Outside, |n| Why::OtherNetwork(n.network.clone())),
            ),
        }
    }

    /// Whether the process at the other end of an accepted connection belongs to the mesh's
    /// owner (or to root), for doors private to the pod and the operator.
    pub fn owned(&self, peer: SocketAddr, local: SocketAddr, door: Door) -> Result<(), Refused> {
        let Some(owner) = self.owner else {
            return Ok(());
        };
        if !matches!(door, Door::Admin | Door::Pod) {
            return Ok(());
        }
        let uid = crate::owner::peer_uid(peer, local).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot tell who owns a connection; refusing it");
            None
        });
        match uid {
            Some(u) if u == owner || u == 0 => Ok(()),
            other => Err(Refused {
                peer: canonical(peer.ip()),
                network: self.network.clone(),
                why: Why::Stranger(other),
            }),
        }
    }

    /// The address a connection to `dest` leaves from, when one is bound: the pod's, for its
    /// own network and (on one loopback) for other loopback addresses. A destination off the
    /// machine (a JWKS server, a service outside the mesh) is dialled from whatever address
    /// the kernel picks: a loopback source cannot leave the machine.
    pub fn source_for(&self, dest: IpAddr) -> Option<IpAddr> {
        let src = self.source?;
        if src.is_ipv4() != dest.is_ipv4() {
            return None;
        }
        (self.is_local(dest) || (self.bind_outside && dest.is_loopback())).then_some(src)
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
                Ok((stream, peer)) => match self.admits(peer.ip(), door).and_then(|()| {
                    let local = stream.local_addr().map_err(|_| Refused {
                        peer: canonical(peer.ip()),
                        network: self.network.clone(),
                        why: Why::Stranger(None),
                    })?;
                    self.owned(peer, local, door)
                }) {
                    Ok(()) => return (stream, peer),
                    Err(refused) => {
                        crate::refusals::log(what, peer, &refused);
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
        self.connect_from(None, dest).await
    }

    /// Connects to `dest` from `source` when given (a sidecar under traffic capture reaches
    /// its app from the address the capture rules let through), else from this process's
    /// address.
    pub async fn connect_from(
        &self,
        source: Option<IpAddr>,
        dest: SocketAddr,
    ) -> io::Result<TcpStream> {
        let socket = if dest.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        let source = source
            .filter(|s| s.is_ipv4() == dest.is_ipv4())
            .or_else(|| self.source_for(dest.ip()));
        if let Some(src) = source {
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
            pod: vec![ip("127.10.1.1"), ip("127.10.129.1")],
            owner: Some(nix::unistd::getuid().as_raw()),
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
        assert_eq!(e.why, Why::OtherNetwork("network2".into()));
        assert!(e.to_string().contains("east-west gateway"), "{e}");
        assert!(r.admits(ip("127.10.17.1"), Door::Public).is_ok());
        // The operator reaches operator ports, not mesh ports.
        assert!(r.admits(ip("127.0.0.1"), Door::Operator).is_ok());
        assert!(r.admits(ip("127.0.0.1"), Door::Mesh).is_err());
        assert!(Reach::default().admits(ip("10.0.0.1"), Door::Mesh).is_ok());
        // A pod-private listener: the pod's own addresses, nobody else of its network.
        assert!(r.admits(ip("127.10.1.1"), Door::Pod).is_ok());
        assert_eq!(
            r.admits(ip("127.10.2.3"), Door::Pod).map_err(|e| e.why),
            Err(Why::NotThePod)
        );
        assert!(r.admits(ip("127.0.0.1"), Door::Pod).is_err());
        // Admin: the pod and the operator, not the pod's neighbours.
        assert!(r.admits(ip("127.10.129.1"), Door::Admin).is_ok());
        assert!(r.admits(ip("127.0.0.1"), Door::Admin).is_ok());
        assert!(r.admits(ip("127.10.2.3"), Door::Admin).is_err());
        assert!(r.admits(ip("127.10.17.1"), Door::Admin).is_err());
    }

    #[tokio::test]
    async fn private_doors_admit_the_owners_processes_only() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = l.local_addr().expect("addr");
        let (c, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
        let c = c.expect("connect");
        let (_s, peer) = accepted.expect("accept");
        let mut r = table();
        assert!(r.owned(peer, addr, Door::Admin).is_ok(), "our own process");
        r.owner = Some(nix::unistd::getuid().as_raw().wrapping_add(4242));
        if nix::unistd::getuid().is_root() {
            // Root may use every door.
            assert!(r.owned(peer, addr, Door::Admin).is_ok());
        } else {
            let e = r.owned(peer, addr, Door::Admin).expect_err("another owner");
            assert!(e.to_string().contains("not to the mesh's owner"), "{e}");
        }
        // Doors open to the network do not look at owners; an unknown connection is refused.
        assert!(r.owned(peer, addr, Door::Mesh).is_ok());
        let gone: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        assert!(r.owned(gone, addr, Door::Pod).is_err());
        drop(c);
    }

    #[test]
    fn sources_follow_the_mode() {
        let mut r = table();
        assert_eq!(r.source_for(ip("127.10.17.1")), Some(ip("127.10.1.1")));
        assert_eq!(r.source_for(ip("192.0.2.7")), None, "off the machine");
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
