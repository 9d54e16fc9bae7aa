//! What a gateway proxy is told: one listener per Gateway server port, and the TLS material
//! its HTTPS servers terminate with. Plain data like the rest of the compiled configuration.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{HttpRule, WeightedCluster};

/// One port of a gateway: the servers of every Gateway selecting it that use the port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayListener {
    /// The Gateway server port: the port clients use, on the gateway's Service.
    pub port: u32,
    /// Where the gateway pod listens for it: the Service's target port for `port` (Istio
    /// translates server ports through the gateway's Service), else `port` itself.
    pub bind_port: u32,
    /// Public (load-balancer) addresses that also accept it, on `port`.
    pub public: Vec<String>,
    pub kind: ListenerKind,
    /// The Gateways whose servers make it (`namespace/name`), for inspection.
    pub gateways: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerKind {
    /// The proxy's readiness endpoint (`/healthz/ready`) on the load balancer, for its health
    /// checks (the `status-port` of Istio's gateway Services).
    Health,
    /// Plaintext HTTP: the virtual host is chosen by the Host header; none matching is 404.
    Http { vhosts: Vec<VirtualHost> },
    /// TLS: the first chain whose server names match the ClientHello's SNI.
    Tls { chains: Vec<TlsChain> },
    /// Opaque TCP to weighted clusters.
    Tcp { route: Vec<WeightedCluster> },
}

/// Requests for some hosts, and how they are routed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualHost {
    /// Host patterns, lower-case: exact, `*.suffix` or `*`.
    pub domains: Vec<String>,
    pub rules: Vec<HttpRule>,
    /// The server's `tls.httpsRedirect`: every request is answered with a redirect to https.
    pub https_redirect: bool,
    /// The VirtualServices the rules come from (`namespace/name`).
    pub virtual_services: Vec<String>,
}

/// What a TLS listener does for the ClientHellos whose SNI matches `server_names`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsChain {
    /// SNI patterns (exact, `*.suffix`, `*`); empty matches anything, no SNI included.
    pub server_names: Vec<String>,
    pub action: TlsAction,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsAction {
    /// `AUTO_PASSTHROUGH`: the SNI itself (`outbound_.<port>_.<subset>_.<fqdn>`) names the
    /// cluster; the bytes are relayed untouched to one of its endpoints. An SNI that names
    /// no cluster of this gateway is refused: the gateway is not an open relay.
    AutoPassthrough,
    /// `PASSTHROUGH`: relayed untouched to the route of the TLS VirtualService that matched.
    Passthrough { route: Vec<WeightedCluster> },
    /// `SIMPLE` or `MUTUAL` on an HTTPS server: terminated here, then routed as HTTP.
    TerminateHttp {
        tls: TlsTermination,
        vhosts: Vec<VirtualHost>,
    },
    /// `SIMPLE` or `MUTUAL` on a TLS server: terminated here, then relayed as TCP.
    TerminateTcp {
        tls: TlsTermination,
        route: Vec<WeightedCluster>,
    },
}

/// How a server terminates TLS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsTermination {
    /// `true` for `MUTUAL`: a client certificate is required and verified.
    pub mutual: bool,
    /// The secret resource with the certificate and key (`<namespace>/<credentialName>`).
    pub secret: String,
    /// The secret resource with the CA bundle for client certificates (`MUTUAL`).
    pub ca_secret: Option<String>,
    /// `TLSV1_2` or `TLSV1_3`; none: the proxy's default.
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    /// OpenSSL-style names, as the Gateway lists them.
    pub cipher_suites: Vec<String>,
    /// For `MUTUAL`: the client certificate must carry one of these SANs (any when empty).
    pub subject_alt_names: Vec<String>,
}

/// TLS material from a Kubernetes Secret (`tls.crt`/`tls.key`/`ca.crt`, or Istio's
/// `cert`/`key`/`cacert`), pushed to the gateway that needs it as istiod's SDS does.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSecret {
    /// PEM certificate chain, leaf first.
    pub cert_chain: String,
    /// PEM private key. Never shown: dumps replace it (see [`TlsSecret::redacted`]).
    pub key: String,
    /// PEM CA bundle, or empty.
    pub ca: String,
}

impl TlsSecret {
    /// The secret as dumps and debug endpoints show it: the private key replaced.
    pub fn redacted(&self) -> TlsSecret {
        TlsSecret {
            key: if self.key.is_empty() {
                String::new()
            } else {
                "[redacted]".into()
            },
            ..self.clone()
        }
    }
}

impl fmt::Debug for TlsSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSecret")
            .field("cert_chain", &self.cert_chain)
            .field("key", &"[redacted]")
            .field("ca", &self.ca)
            .finish()
    }
}
