//! What a proxy is told at start: who it is, where its application and control plane are, and
//! how to prove itself.
//!
//! Two forms build the same [`Bootstrap`]: a JSON file that `strait up` writes per pod
//! (`strait proxy --bootstrap FILE`, [`Bootstrap::load`]), and in Kubernetes the pod's
//! environment, which the injector and `strait install` write ([`env::from_env`]). They differ
//! in two fields: the control plane ([`ControlPlaneAddr`]) is a socket address in local mode
//! and a DNS name in Kubernetes, and the bootstrap credential is an inline `token` in local
//! mode and a `token_file` in Kubernetes, a projected service-account token that the kubelet
//! rotates and that is therefore read again for every request ([`Bootstrap::bearer`]).

mod addr;
pub mod env;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
/// The role a bootstrap gives (re-exported: callers choosing `--gateway` need it).
pub use strait_config::ProxyRole;
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
    /// The control plane's discovery and certificate address (15012): `ip:port`, or
    /// `host:port` resolved at each connection.
    pub control_plane: ControlPlaneAddr,
    /// The name the control plane's certificate carries.
    #[serde(default = "default_cp_name")]
    pub control_plane_name: String,
    /// The mesh's trust bundle (PEM, one or several roots).
    pub root_cert: PathBuf,
    /// The bootstrap credential for certificate requests, inline. Empty when `token_file`
    /// gives it.
    #[serde(default)]
    pub token: String,
    /// The bootstrap credential as a file, read for every request (a projected
    /// service-account token, which the kubelet replaces before it expires). Takes the place
    /// of `token`; a bootstrap gives one or the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
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

pub use addr::{AddrError, ControlPlaneAddr};
pub use env::EnvError;

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
    #[error(
        "bootstrap {path}: no credential: give \"token\" (the bootstrap token) or \"token_file\" (a file holding it), not {given}"
    )]
    Credential { path: PathBuf, given: &'static str },
}

/// Why no bootstrap credential could be read for a request.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("bootstrap token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bootstrap token file {path} is empty")]
    Empty { path: PathBuf },
    #[error("the bootstrap has no token")]
    None,
}

impl Bootstrap {
    pub fn load(path: &Path) -> Result<Bootstrap, BootstrapError> {
        let text = std::fs::read_to_string(path).map_err(|source| BootstrapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let bs: Bootstrap =
            serde_json::from_str(&text).map_err(|source| BootstrapError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let given = match (bs.token.is_empty(), bs.token_file.is_some()) {
            (false, false) | (true, true) => return Ok(bs),
            (true, false) => "neither",
            (false, true) => "both",
        };
        Err(BootstrapError::Credential {
            path: path.to_path_buf(),
            given,
        })
    }

    /// Builds the bootstrap from this process's environment (Kubernetes mode; see [`env`]).
    pub fn from_process_env(role: Option<ProxyRole>) -> Result<Bootstrap, EnvError> {
        env::from_env(|name| std::env::var(name).ok(), role)
    }

    /// The bootstrap credential for one request: the inline token, or the token file read now
    /// (surrounding whitespace trimmed), so a rotated token is used as soon as it is written.
    pub fn bearer(&self) -> Result<String, TokenError> {
        let Some(path) = &self.token_file else {
            return if self.token.is_empty() {
                Err(TokenError::None)
            } else {
                Ok(self.token.clone())
            };
        };
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.clone(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty { path: path.clone() });
        }
        Ok(token.to_string())
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
