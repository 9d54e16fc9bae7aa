//! Traffic capture: the iptables rules that send a pod's TCP traffic through its sidecar, as
//! Istio's `istio-init` container (`istio-iptables`) installs them in the pod's network
//! namespace before the application starts.
//!
//! The rules are data: [`Settings`] (what to capture, from flags and Istio's
//! `traffic.sidecar.istio.io/*` annotations, see [`annotations`]) → [`rules::install`], the
//! text `iptables-restore` reads. Building them is a pure function, tested without root;
//! [`apply`] only hands that text to the `iptables-restore` binary. Using the binary rather
//! than netlink keeps us on the interface every distribution's iptables (legacy or nft)
//! supports, as Istio does.
//!
//! What the rules do, in the `nat` table (Istio's chain names, so `iptables-save` reads the
//! same as in an Istio pod and Istio's debugging guides apply):
//! - inbound: `PREROUTING` → `ISTIO_INBOUND`, which lets the proxy's own ports (15008, 15090,
//!   15021, 15020) and excluded ports through and sends the rest to `ISTIO_IN_REDIRECT`
//!   (REDIRECT to 15006);
//! - outbound: `OUTPUT` → `ISTIO_OUTPUT`, which lets the proxy's own traffic (its UID or GID)
//!   through, except when it dials its own pod's address on `lo` (that is inbound traffic to
//!   itself, redirected to 15006), lets the app's other loopback traffic through, and sends the
//!   rest to `ISTIO_REDIRECT` (REDIRECT to 15001), within the included ranges and ports.
//!   Connections from `127.0.0.6` on `lo` pass: that is the address the proxy forwards inbound
//!   traffic to its app from, so that it is not captured a second time.

pub mod annotations;
mod apply;
pub mod rules;

use std::fmt;

use crate::Cidr;

pub use apply::{CaptureError, apply, clean, installed, saved_removal};

/// The port the proxy accepts redirected outbound connections on (Istio's 15001).
pub const OUTBOUND_CAPTURE_PORT: u16 = 15001;
/// The port the proxy accepts redirected inbound connections on (Istio's 15006).
pub const INBOUND_CAPTURE_PORT: u16 = 15006;
/// The UID and GID Istio reserves for the proxy: its traffic is never captured.
pub const PROXY_ID: u32 = 1337;
/// The source address the proxy forwards inbound connections to its app from: the rules let
/// it through, so the connection reaches the app instead of coming back to 15006.
pub const INBOUND_PASSTHROUGH_SOURCE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 6);
/// Inbound ports never captured: HBONE (15008), the proxy's stats (15090), health (15021) and
/// merged metrics (15020), which probes and scrapers reach directly.
pub const PROXY_INBOUND_PORTS: [u16; 4] = [15008, 15090, 15021, 15020];

/// A set of ports or ranges: every one (`*`), or those listed (possibly none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select<T> {
    All,
    Only(Vec<T>),
}

/// What to capture. Defaults are Istio's injector's: every inbound port, every outbound
/// range, nothing excluded, the proxy as UID/GID 1337.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Where outbound connections are redirected (default 15001).
    pub outbound_port: u16,
    /// Where inbound connections are redirected (default 15006).
    pub inbound_port: u16,
    /// The proxy's user: its connections are never captured (default 1337).
    pub proxy_uid: u32,
    /// The proxy's group, likewise (default 1337).
    pub proxy_gid: u32,
    /// Inbound ports sent to the proxy (`--inbound-ports`, default `*`).
    pub inbound_ports: Select<u16>,
    /// Inbound ports never sent to it, besides [`PROXY_INBOUND_PORTS`].
    pub exclude_inbound_ports: Vec<u16>,
    /// Outbound destinations sent to the proxy (`--include-outbound-ip-ranges`, default `*`).
    pub include_outbound_ranges: Select<Cidr>,
    /// Outbound destinations never sent to it.
    pub exclude_outbound_ranges: Vec<Cidr>,
    /// Outbound ports sent to the proxy whatever the destination address.
    pub include_outbound_ports: Vec<u16>,
    /// Outbound ports never sent to it.
    pub exclude_outbound_ports: Vec<u16>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            outbound_port: OUTBOUND_CAPTURE_PORT,
            inbound_port: INBOUND_CAPTURE_PORT,
            proxy_uid: PROXY_ID,
            proxy_gid: PROXY_ID,
            inbound_ports: Select::All,
            exclude_inbound_ports: Vec::new(),
            include_outbound_ranges: Select::All,
            exclude_outbound_ranges: Vec::new(),
            include_outbound_ports: Vec::new(),
            exclude_outbound_ports: Vec::new(),
        }
    }
}

/// A value that is not what its flag or annotation takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {value:?} {problem}")]
pub struct InvalidSetting {
    /// The flag (`--exclude-inbound-ports`) or annotation the value came from.
    pub source_name: String,
    pub value: String,
    pub problem: String,
}

impl InvalidSetting {
    fn new(source_name: &str, value: &str, problem: impl fmt::Display) -> InvalidSetting {
        InvalidSetting {
            source_name: source_name.to_string(),
            value: value.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// Parses a comma-separated port list (`8080,9090`; empty: none). `source_name` names the flag
/// or annotation in errors.
pub fn parse_ports(source_name: &str, value: &str) -> Result<Vec<u16>, InvalidSetting> {
    items(value)
        .map(|p| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(InvalidSetting::new(
                source_name,
                p,
                "is not a port (1-65535); expected a comma-separated list such as 8080,9090",
            )),
            Ok(n) => Ok(n),
        })
        .collect()
}

/// Parses `*` (every port) or a port list.
pub fn parse_port_select(source_name: &str, value: &str) -> Result<Select<u16>, InvalidSetting> {
    if value.trim() == "*" {
        return Ok(Select::All);
    }
    parse_ports(source_name, value).map(Select::Only)
}

/// Parses a comma-separated list of IPv4 ranges (`10.0.0.0/8,172.16.0.0/12`; a bare address is
/// one host). IPv6 ranges are refused: the rules are installed for IPv4 only.
pub fn parse_ranges(source_name: &str, value: &str) -> Result<Vec<Cidr>, InvalidSetting> {
    items(value)
        .map(|r| {
            let cidr = if r.contains('/') {
                r.parse::<Cidr>().map_err(|e| {
                    let problem = match e {
                        crate::CidrError::Prefix { prefix, max, .. } => {
                            format!(
                                "has prefix length {prefix}, longer than the address ({max} bits)"
                            )
                        }
                        crate::CidrError::Syntax(_) => {
                            "is not an address range: expected ADDRESS/PREFIX, e.g. 10.96.0.0/12"
                                .to_string()
                        }
                    };
                    InvalidSetting::new(source_name, r, problem)
                })?
            } else {
                let ip = r.parse::<std::net::IpAddr>().map_err(|_| {
                    InvalidSetting::new(
                        source_name,
                        r,
                        "is not an address range: expected ADDRESS/PREFIX, e.g. 10.96.0.0/12",
                    )
                })?;
                Cidr::host(ip)
            };
            if !cidr.addr().is_ipv4() {
                return Err(InvalidSetting::new(
                    source_name,
                    r,
                    "is an IPv6 range; capture is installed for IPv4 only",
                ));
            }
            Ok(cidr)
        })
        .collect()
}

/// Parses `*` (every destination) or a range list.
pub fn parse_range_select(source_name: &str, value: &str) -> Result<Select<Cidr>, InvalidSetting> {
    if value.trim() == "*" {
        return Ok(Select::All);
    }
    parse_ranges(source_name, value).map(Select::Only)
}

/// What `strait init` was told on its command line, each `None` when not given. A flag given
/// wins over the pod's annotation for the same setting, as an operator's explicit word should.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub proxy_uid: Option<u32>,
    /// Defaults to the proxy's UID, as istio-iptables' `-g` does.
    pub proxy_gid: Option<u32>,
    pub inbound_ports: Option<String>,
    pub exclude_inbound_ports: Option<String>,
    pub include_outbound_ip_ranges: Option<String>,
    pub exclude_outbound_ip_ranges: Option<String>,
    pub include_outbound_ports: Option<String>,
    pub exclude_outbound_ports: Option<String>,
}

/// The settings from Istio's defaults, then the pod's `annotations`, then `flags`; and whether
/// the annotations turn capture off (`sidecar.istio.io/interceptionMode: NONE`).
pub fn resolve(
    annotations: &std::collections::BTreeMap<String, String>,
    flags: &Flags,
) -> Result<(Settings, annotations::Capture), InvalidSetting> {
    let mut s = Settings::default();
    let capture = annotations::apply(annotations, &mut s)?;
    if let Some(uid) = flags.proxy_uid {
        s.proxy_uid = uid;
        s.proxy_gid = uid;
    }
    if let Some(gid) = flags.proxy_gid {
        s.proxy_gid = gid;
    }
    if let Some(v) = &flags.inbound_ports {
        s.inbound_ports = parse_port_select("--inbound-ports", v)?;
    }
    if let Some(v) = &flags.exclude_inbound_ports {
        s.exclude_inbound_ports = parse_ports("--exclude-inbound-ports", v)?;
    }
    if let Some(v) = &flags.include_outbound_ip_ranges {
        s.include_outbound_ranges = parse_range_select("--include-outbound-ip-ranges", v)?;
    }
    if let Some(v) = &flags.exclude_outbound_ip_ranges {
        s.exclude_outbound_ranges = parse_ranges("--exclude-outbound-ip-ranges", v)?;
    }
    if let Some(v) = &flags.include_outbound_ports {
        s.include_outbound_ports = parse_ports("--include-outbound-ports", v)?;
    }
    if let Some(v) = &flags.exclude_outbound_ports {
        s.exclude_outbound_ports = parse_ports("--exclude-outbound-ports", v)?;
    }
    Ok((s, capture))
}

fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;

/// Where a redirected connection was headed before the `REDIRECT` rule sent it to this
/// listener (`SO_ORIGINAL_DST`, kept by conntrack). `None` for a connection that was not
/// redirected: one made to the listener's own address (an application using the sidecar as
/// its HTTP proxy), where the kernel has no NAT record or reports the listener itself.
pub fn original_dst(stream: &tokio::net::TcpStream) -> Option<std::net::SocketAddr> {
    let local = stream.local_addr().ok()?;
    let sock = socket2::SockRef::from(stream);
    let original = if local.is_ipv4() {
        sock.original_dst_v4()
    } else {
        sock.original_dst_v6()
    }
    .ok()?
    .as_socket()?;
    (original != local).then_some(original)
}
