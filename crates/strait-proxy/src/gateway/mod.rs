//! The gateway role: a proxy whose pod is the gateway, serving the listeners the control
//! plane compiles from the Gateway resources that select it (Istio's `router`).
//!
//! Each listener binds the pod address (for its own network) and the public addresses of the
//! load balancers in front of it (for everyone), and serves one of:
//! - **TLS** by SNI ([`tls`]): `AUTO_PASSTHROUGH` relays the untouched bytes to a pod of the
//!   service the SNI names, in this gateway's network only (the east-west gateway);
//!   `PASSTHROUGH` relays to a TLS route's destination (how a primary exposes its control
//!   plane); `SIMPLE`/`MUTUAL` terminate with the server's certificate, then route HTTP or
//!   relay TCP.
//! - **HTTP** ([`http`]): virtual hosts by Host header, then the same routing, retries,
//!   timeouts and metrics as a sidecar's outbound (`reporter="source"`); no virtual host is 404.
//! - **TCP**: relayed to the route's destination.
//! - **Health**: `/healthz/ready` for the load balancer's checks.
//!
//! What a configuration needs at connection time (virtual hosts as routable service ports,
//! TLS acceptors) is prepared once when it is accepted ([`Prepared`]); an update with TLS
//! material that does not load is rejected whole.

mod http;
mod listeners;
mod relay;
mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

use strait_config::{
    AppProtocol, GatewayListener, ListenerKind, ProxyConfig, ServicePort, TlsAction, TlsChain,
    TlsTermination, VirtualHost,
};

use crate::gateway_tls::{GatewayTls, TerminateMode, TlsServer, TlsVersion};

pub use listeners::Listeners;

/// A virtual host ready to route: its domains, and its rules as a service port.
#[derive(Debug)]
pub struct Vhost {
    pub domains: Vec<String>,
    pub https_redirect: bool,
    pub routes: ServicePort,
}

/// The TLS side of one listener: which chain terminates where.
#[derive(Debug)]
pub struct TlsPrepared {
    /// The acceptor of every terminating chain, and the chain index of each of its servers.
    pub acceptor: Option<Arc<GatewayTls>>,
    pub servers: Vec<usize>,
}

/// A gateway configuration prepared for serving.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Virtual hosts by listener (`"<port>"` for plain HTTP, `"<port>#<chain>"` behind TLS).
    vhosts: BTreeMap<String, Vec<Vhost>>,
    tls: BTreeMap<String, TlsPrepared>,
}

impl Prepared {
    pub fn build(config: &ProxyConfig) -> Result<Prepared, String> {
        let mut p = Prepared::default();
        for (key, l) in &config.listeners {
            match &l.kind {
                ListenerKind::Http { vhosts } => {
                    p.vhosts.insert(key.clone(), prepare_vhosts(l, vhosts));
                }
                ListenerKind::Tls { chains } => {
                    let mut servers = Vec::new();
                    let mut indexes = Vec::new();
                    for (i, c) in chains.iter().enumerate() {
                        let (tls, vhosts) = match &c.action {
                            TlsAction::TerminateHttp { tls, vhosts } => (tls, Some(vhosts)),
                            TlsAction::TerminateTcp { tls, .. } => (tls, None),
                            _ => continue,
                        };
                        servers.push(tls_server(config, c, tls).map_err(|e| {
                            format!("listener {key}: server {}: {e}", c.server_names.join(","))
                        })?);
                        indexes.push(i);
                        if let Some(v) = vhosts {
                            p.vhosts.insert(format!("{key}#{i}"), prepare_vhosts(l, v));
                        }
                    }
                    let acceptor = if servers.is_empty() {
                        None
                    } else {
                        Some(Arc::new(
                            GatewayTls::new(&servers)
                                .map_err(|e| format!("listener {key}: {e}"))?,
                        ))
                    };
                    p.tls.insert(
                        key.clone(),
                        TlsPrepared {
                            acceptor,
                            servers: indexes,
                        },
                    );
                }
                ListenerKind::Tcp { .. } | ListenerKind::Health => {}
            }
        }
        Ok(p)
    }

    /// Every routable virtual host, named for messages.
    pub fn routes(&self) -> impl Iterator<Item = (String, &ServicePort)> {
        self.vhosts.iter().flat_map(|(k, vs)| {
            vs.iter().map(move |v| {
                (
                    format!("listener {k}, host {}", v.domains.join(",")),
                    &v.routes,
                )
            })
        })
    }

    /// The virtual host of `listener` (and TLS chain) for a Host header: an exact domain, else
    /// the longest `*.suffix`, else `*`.
    pub fn vhost(&self, listener: &str, host: &str) -> Option<&Vhost> {
        let host = host_without_port(host).to_ascii_lowercase();
        let vs = self.vhosts.get(listener)?;
        if let Some(v) = vs.iter().find(|v| v.domains.contains(&host)) {
            return Some(v);
        }
        vs.iter()
            .flat_map(|v| v.domains.iter().map(move |d| (d, v)))
            .filter(|(d, _)| d.starts_with("*.") && host.ends_with(&d[1..]))
            .max_by_key(|(d, _)| d.len())
            .map(|(_, v)| v)
            .or_else(|| vs.iter().find(|v| v.domains.iter().any(|d| d == "*")))
    }

    pub fn tls(&self, listener: &str) -> Option<&TlsPrepared> {
        self.tls.get(listener)
    }
}

fn host_without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']') => h,
        _ => host,
    }
}

fn prepare_vhosts(l: &GatewayListener, vhosts: &[VirtualHost]) -> Vec<Vhost> {
    vhosts
        .iter()
        .map(|v| Vhost {
            domains: v.domains.clone(),
            https_redirect: v.https_redirect,
            routes: ServicePort {
                host: v.domains.first().cloned().unwrap_or_default(),
                port: l.port,
                namespace: String::new(),
                protocol: AppProtocol::Http,
                http: v.rules.clone(),
                tcp: Vec::new(),
                virtual_service: v.virtual_services.first().cloned(),
                addresses: Vec::new(),
            },
        })
        .collect()
}

fn version(v: Option<&str>) -> Result<Option<TlsVersion>, String> {
    Ok(match v {
        None => None,
        Some("TLSV1_2") => Some(TlsVersion::V1_2),
        Some("TLSV1_3") => Some(TlsVersion::V1_3),
        Some("TLSV1_0") => Some(TlsVersion::V1_0),
        Some("TLSV1_1") => Some(TlsVersion::V1_1),
        Some("TLS_AUTO") => Some(TlsVersion::Auto),
        Some(other) => return Err(format!("unknown TLS version {other:?}")),
    })
}

/// A terminating chain as the TLS module takes it, with its Secret's material.
fn tls_server(config: &ProxyConfig, c: &TlsChain, t: &TlsTermination) -> Result<TlsServer, String> {
    let secret = config
        .secrets
        .get(&t.secret)
        .ok_or_else(|| format!("secret {} was not sent", t.secret))?;
    let ca = match &t.ca_secret {
        Some(name) => Some(
            config
                .secrets
                .get(name)
                .ok_or_else(|| format!("CA secret {name} was not sent"))?
                .ca
                .clone(),
        ),
        None => None,
    };
    Ok(TlsServer {
        hosts: if c.server_names.is_empty() {
            vec!["*".into()]
        } else {
            c.server_names.clone()
        },
        mode: if t.mutual {
            TerminateMode::Mutual
        } else {
            TerminateMode::Simple
        },
        credential_name: t.secret.clone(),
        cert_chain_pem: secret.cert_chain.clone(),
        key_pem: secret.key.clone(),
        ca_pem: ca,
        min_version: version(t.min_version.as_deref())?,
        max_version: version(t.max_version.as_deref())?,
        cipher_suites: t.cipher_suites.clone(),
        subject_alt_names: t.subject_alt_names.clone(),
        verify_certificate_spki: Vec::new(),
        verify_certificate_hash: Vec::new(),
    })
}

/// Whether an SNI pattern (`host`, `*.suffix`, `*`) matches a server name.
pub(crate) fn sni_matches(pattern: &str, sni: Option<&str>) -> bool {
    match (pattern, sni) {
        ("*", _) => true,
        (_, None) => false,
        (p, Some(s)) if p.starts_with("*.") => s.ends_with(&p[1..]),
        (p, Some(s)) => p.eq_ignore_ascii_case(s),
    }
}
