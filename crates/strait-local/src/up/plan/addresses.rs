//! The local address plan: every network gets its own block of loopback addresses, and every
//! load balancer a public address.
//!
//! With second octet `N` (`--net`) and network index `k` (0..7):
//! - `127.N.(16k).0/20` is network k: control planes on `127.N.(16k).2…`, pods on
//!   `127.N.(16k+1 … 16k+15).x`;
//! - `127.N.(128+16k).0/20` holds the apps of network k's pods (a pod's app listens on its
//!   pod address plus 128 in the third octet, so every app can use its manifest's port);
//! - load balancers' public addresses: `127.N.112.0/20` on one loopback, and in
//!   network-namespace mode `198.18.N.10…` on the link between the networks' namespaces
//!   (`198.18.0.0/15` is reserved for network test beds), where each network's namespace
//!   has the address `198.18.N.(200+k)` and the outside world `198.18.N.254`.
//!
//! Addresses are handed out lowest first and kept: a plan made again (a Deployment scaled
//! up) keeps every address an existing pod, control plane or load balancer had.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use strait_net::Cidr;

/// Networks one `--net` holds.
pub const MAX_NETWORKS: usize = 7;
/// Pods per network: 15 third-octet values of 254 hosts.
pub const MAX_PODS_PER_NETWORK: usize = 15 * 254;
/// Control planes per network.
pub const MAX_CONTROL_PLANES_PER_NETWORK: usize = 250;

/// How networks are kept apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every network on the one loopback; address discipline keeps them apart.
    #[default]
    Loopback,
    /// A network namespace per network, joined only through load balancers' addresses.
    Netns,
}

impl Mode {
    /// Load balancers a plan can hold.
    pub fn max_public(self) -> usize {
        match self {
            Mode::Loopback => 16 * 254,
            Mode::Netns => 190,
        }
    }
}

pub(super) fn v4(a: u8, b: u8, c: usize, d: usize) -> IpAddr {
    // Callers keep `c` below 256 and `d` in 1..=254 (the limits above).
    IpAddr::V4(Ipv4Addr::new(a, b, c as u8, d as u8))
}

/// Addresses of one plan.
#[derive(Debug)]
pub(super) struct Allocator {
    pub net: u8,
    pub mode: Mode,
    used: HashSet<IpAddr>,
}

impl Allocator {
    pub fn new(net: u8, mode: Mode) -> Allocator {
        Allocator {
            net,
            mode,
            used: HashSet::new(),
        }
    }

    /// Marks an address as taken (kept from a previous plan).
    pub fn keep(&mut self, ip: IpAddr) {
        self.used.insert(ip);
    }

    /// The address ranges of network `k`: its pods and control planes, and their apps.
    pub fn ranges(&self, k: usize) -> Vec<Cidr> {
        [16 * k, 128 + 16 * k]
            .into_iter()
            .filter_map(|third| Cidr::new(v4(127, self.net, third, 0), 20).ok())
            .collect()
    }

    /// Network k's own address on the link between networks (network-namespace mode).
    pub fn node(&self, k: usize) -> Option<IpAddr> {
        (self.mode == Mode::Netns).then(|| v4(198, 18, usize::from(self.net), 200 + k))
    }

    fn first_free(&mut self, n: usize, at: impl Fn(usize) -> IpAddr) -> Option<IpAddr> {
        let ip = (0..n).map(at).find(|ip| !self.used.contains(ip))?;
        self.used.insert(ip);
        Some(ip)
    }

    pub fn control_plane(&mut self, k: usize) -> Option<IpAddr> {
        let net = self.net;
        self.first_free(MAX_CONTROL_PLANES_PER_NETWORK, |j| {
            v4(127, net, 16 * k, 2 + j)
        })
    }

    pub fn pod(&mut self, k: usize) -> Option<IpAddr> {
        let net = self.net;
        self.first_free(MAX_PODS_PER_NETWORK, |i| {
            v4(127, net, 16 * k + 1 + i / 254, 1 + i % 254)
        })
    }

    pub fn public(&mut self) -> Option<IpAddr> {
        let net = self.net;
        match self.mode {
            Mode::Loopback => self.first_free(self.mode.max_public(), |i| {
                v4(127, net, 112 + i / 254, 1 + i % 254)
            }),
            Mode::Netns => self.first_free(self.mode.max_public(), |i| {
                v4(198, 18, usize::from(net), 10 + i)
            }),
        }
    }
}

/// A pod's app address: its pod address plus 128 in the third octet.
pub fn app_ip(pod: IpAddr) -> IpAddr {
    match pod {
        IpAddr::V4(v) => {
            let [a, b, c, d] = v.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c.wrapping_add(128), d))
        }
        v6 => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_get_blocks_and_addresses_are_kept() {
        let mut a = Allocator::new(10, Mode::Loopback);
        assert_eq!(a.pod(0), Some(v4(127, 10, 1, 1)));
        assert_eq!(a.pod(1), Some(v4(127, 10, 17, 1)));
        assert_eq!(a.control_plane(1), Some(v4(127, 10, 16, 2)));
        assert_eq!(a.public(), Some(v4(127, 10, 112, 1)));
        assert_eq!(app_ip(v4(127, 10, 17, 1)), v4(127, 10, 145, 1));
        let r = a.ranges(1);
        assert!(r[0].contains(v4(127, 10, 17, 1)) && r[1].contains(v4(127, 10, 145, 1)));
        assert!(!r[0].contains(v4(127, 10, 1, 1)) && !r[0].contains(v4(127, 10, 112, 1)));
        let mut b = Allocator::new(10, Mode::Loopback);
        b.keep(v4(127, 10, 1, 1));
        assert_eq!(b.pod(0), Some(v4(127, 10, 1, 2)));
        let mut n = Allocator::new(10, Mode::Netns);
        assert_eq!(n.public(), Some(v4(198, 18, 10, 10)));
        assert_eq!(n.node(2), Some(v4(198, 18, 10, 202)));
    }
}
