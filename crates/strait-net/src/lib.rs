//! The network edge of every strait process: which peers a listener admits, which address
//! an outgoing connection leaves from, and network namespaces.
//!
//! Local mode runs a whole multi-network mesh on one machine. For that to be a faithful model
//! of clusters in separate VPCs, what could not happen between two real networks must not
//! happen locally either: a pod of one network must not reach a pod address of another.
//! Two mechanisms give that, and both go through this crate:
//!
//! - **Address discipline** ([`Reach`]), always on: every outgoing connection of a proxy,
//!   app, gateway or control plane is made *from* the pod's own address, and every listener
//!   checks the peer's address against the table of its network's ranges. A peer from another
//!   network's range is refused and logged; only a gateway's public address admits anyone.
//! - **Network namespaces** ([`netns`]), opt-in (`strait up --netns`, root): each network is a
//!   namespace of its own, joined to the others only through the gateways' public addresses,
//!   so the kernel itself refuses what the table would.
//!
//! - **Traffic capture** ([`capture`]): the iptables rules `strait init` installs in a pod's
//!   network namespace (Kubernetes mode) so the pod's TCP traffic goes through its sidecar, and
//!   the original destination a redirected connection was headed for.
//!
//! Processes started without a table (a proxy run by hand, tests of one part) admit every
//! peer and bind nothing: [`Reach::default`] is unrestricted.

pub mod capture;
mod cidr;
pub mod netns;
mod owner;
mod reach;
mod refusals;

pub use cidr::{Cidr, CidrError};
pub use reach::{Door, NetworkRanges, Reach, Refused, Why};

/// The accept queue of every listener. Rust's standard library asks for 128, and a burst of
/// more connections than that (a client opening 256 at once, say) overflows it: the kernel
/// drops the extra SYNs and the clients retry only after a second.
pub const LISTEN_BACKLOG: u32 = 1024;

/// A TCP listener on `addr` with [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (so a restarted
/// process can bind again while old connections linger in TIME_WAIT).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(LISTEN_BACKLOG)
}
