//! Where the control plane is: a socket address (local mode, where `strait up` knows it), or a
//! `host:port` resolved by DNS at every connection (Kubernetes, where `istiod.istio-system.svc`
//! is a Service whose address can change, and where a remote's control plane is a cloud load
//! balancer's name).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The control plane's discovery and certificate address (15012). Written as one string in a
/// bootstrap file: `127.0.0.1:15012`, `[::1]:15012` or `istiod.istio-system.svc:15012`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ControlPlaneAddr {
    Socket(SocketAddr),
    /// Resolved at each connection, so a reconnect follows the name to wherever it leads now.
    Dns {
        host: String,
        port: u16,
    },
}

/// An address that is neither `ip:port` nor `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not ip:port or host:port (for example istiod.istio-system.svc:15012)")]
pub struct AddrError(pub String);

impl ControlPlaneAddr {
    /// The host part: the IP address or the DNS name.
    pub fn host(&self) -> String {
        match self {
            ControlPlaneAddr::Socket(a) => a.ip().to_string(),
            ControlPlaneAddr::Dns { host, .. } => host.clone(),
        }
    }

    /// The addresses to try, in the resolver's order.
    pub async fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            ControlPlaneAddr::Socket(a) => Ok(vec![*a]),
            ControlPlaneAddr::Dns { host, port } => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("resolving {host}: {e}")))?
                    .collect();
                if found.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    ));
                }
                Ok(found)
            }
        }
    }
}

impl From<SocketAddr> for ControlPlaneAddr {
    fn from(a: SocketAddr) -> Self {
        ControlPlaneAddr::Socket(a)
    }
}

/// A DNS name as a Kubernetes Service or a load balancer has one: dot-separated labels of
/// letters, digits and `-`.
fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl FromStr for ControlPlaneAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(ControlPlaneAddr::Socket(a));
        }
        let err = || AddrError(s.to_string());
        let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
        let port: u16 = port.parse().map_err(|_| err())?;
        // A bare IP address with a port would have parsed above; `::1:15012` and the like
        // are ambiguous and refused rather than guessed at.
        if port == 0 || host.parse::<IpAddr>().is_ok() || !is_dns_name(host) {
            return Err(err());
        }
        Ok(ControlPlaneAddr::Dns {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for ControlPlaneAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlPlaneAddr::Socket(a) => a.fmt(f),
            ControlPlaneAddr::Dns { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl Serialize for ControlPlaneAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ControlPlaneAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_and_dns_forms() {
        assert_eq!(
            "127.0.0.1:15012".parse(),
            Ok(ControlPlaneAddr::Socket(
                "127.0.0.1:15012".parse().expect("addr")
            ))
        );
        assert_eq!(
            "[::1]:15012".parse::<ControlPlaneAddr>().map(|a| a.host()),
            Ok("::1".to_string())
        );
        let dns: ControlPlaneAddr = "Istiod.istio-system.svc:15012".parse().expect("dns");
        assert_eq!(
            dns,
            ControlPlaneAddr::Dns {
                host: "istiod.istio-system.svc".into(),
                port: 15012
            }
        );
        assert_eq!(dns.to_string(), "istiod.istio-system.svc:15012");
        for bad in [
            "",
            "istiod",
            "istiod:",
            "istiod:0",
            "istiod:99999",
            ":15012",
            "is tiod:15012",
            "-a.svc:15012",
            "::1:15012",
            "a..b:15012",
        ] {
            assert!(bad.parse::<ControlPlaneAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_is_one_string() {
        let a: ControlPlaneAddr = serde_json::from_str("\"localhost:15012\"").expect("parse");
        assert_eq!(
            serde_json::to_string(&a).expect("ser"),
            "\"localhost:15012\""
        );
        let e = serde_json::from_str::<ControlPlaneAddr>("\"nope\"").expect_err("bad");
        assert!(e.to_string().contains("host:port"), "{e}");
    }

    #[tokio::test]
    async fn dns_names_resolve_at_each_call() {
        let a: ControlPlaneAddr = "localhost:15012".parse().expect("dns");
        let found = a.resolve().await.expect("localhost resolves");
        assert!(
            found
                .iter()
                .all(|s| s.ip().is_loopback() && s.port() == 15012)
        );
        let direct: ControlPlaneAddr = "127.0.0.1:1".parse().expect("socket");
        assert_eq!(
            direct.resolve().await.expect("no lookup"),
            vec!["127.0.0.1:1".parse::<SocketAddr>().expect("addr")]
        );
    }
}
