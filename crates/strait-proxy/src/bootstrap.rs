//! What a proxy is told at start: who it is, where its application and control plane are, and
//! how to prove itself. Written by `strait up` (or an injector) as JSON.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strait_config::ProxyRole;
use strait_net::Reach;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub service_account: String,
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Where the proxy listens (the pod's address).
    pub pod_ip: IpAddr,
    /// Where the application listens (the pod's private address).
    pub app_ip: IpAddr,
    /// The control plane's discovery and certificate address (15012).
    pub control_plane: SocketAddr,
    /// The name the control plane's certificate carries.
    #[serde(default = "default_cp_name")]
    pub control_plane_name: String,
    /// The mesh's trust bundle (PEM, one or several roots).
    pub root_cert: PathBuf,
    /// The bootstrap credential for the first certificate request.
    pub token: String,
    /// Requested workload certificate lifetime; 0 means the CA's default (24 h).
    #[serde(default)]
    pub cert_ttl_seconds: u64,
    #[serde(default)]
    pub ports: Ports,
    /// A gateway (its own pod is the proxy: no outbound listener) or a sidecar.
    #[serde(default)]
    pub role: ProxyRole,
    /// The network table: which peers its listeners admit, and the address its connections
    /// leave from. Absent: every peer is admitted, nothing is bound.
    #[serde(default)]
    pub reach: Reach,
    /// Traffic capture (Kubernetes mode, after `strait init` installed the iptables rules in
    /// the pod's network namespace): the sidecar listens on every address at the outbound
    /// port (redirected connections arrive at 127.0.0.1; the HTTP proxy keeps working there)
    /// and at the inbound capture port (15006), binds no per-port inbound listeners (the
    /// application owns its ports), and reaches the application from 127.0.0.6. Default off:
    /// local mode has no iptables, and applications use the sidecar as their HTTP proxy.
    #[serde(default)]
    pub capture: bool,
}

/// Istio's fixed proxy ports.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub outbound: u16,
    /// Where redirected inbound connections arrive under capture (default 15006).
    #[serde(default = "default_inbound_capture")]
    pub inbound: u16,
    pub admin: u16,
    pub health: u16,
    pub stats: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            outbound: 15001,
            inbound: default_inbound_capture(),
            admin: 15000,
            health: 15021,
            stats: 15090,
        }
    }
}

fn default_inbound_capture() -> u16 {
    strait_net::capture::INBOUND_CAPTURE_PORT
}

fn default_trust_domain() -> String {
    "cluster.local".into()
}

fn default_cp_name() -> String {
    "istiod.istio-system.svc".into()
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot read bootstrap {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bootstrap {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl Bootstrap {
    pub fn load(path: &Path) -> Result<Bootstrap, BootstrapError> {
        let text = std::fs::read_to_string(path).map_err(|source| BootstrapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| BootstrapError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Istio's node ID: `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`
    /// (`router~...` for a gateway).
    pub fn node_id(&self) -> String {
        let kind = match self.role {
            ProxyRole::Sidecar => "sidecar",
            ProxyRole::Gateway => "router",
        };
        format!(
            "{kind}~{}~{}.{}~{}.svc.cluster.local",
            self.pod_ip, self.pod, self.namespace, self.namespace
        )
    }

    /// The SPIFFE ID the proxy asks for.
    pub fn identity(&self) -> String {
        format!(
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain.replace('@', "."),
            self.namespace,
            if self.service_account.is_empty() {
                "default"
            } else {
                &self.service_account
            }
        )
    }
}
