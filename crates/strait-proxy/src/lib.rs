//! The strait sidecar proxy.
//!
//! One process per workload replica. It asks the control plane for a workload certificate
//! (ECDSA P-256, renewed at half-life), opens the discovery stream, and serves:
//! - **outbound** on 15001: the application's HTTP proxy; requests are routed by the
//!   compiled VirtualService rules to weighted clusters, load-balanced over endpoints and sent
//!   as HTTP/2 over mTLS (Istio's SNI and ALPN) to server proxies, or plaintext to endpoints
//!   without one; `CONNECT` opens opaque TCP tunnels;
//! - **inbound** on each port its workload serves: mTLS per PeerAuthentication, then HTTP/2,
//!   HTTP/1.1 or TCP to the application;
//! - under **traffic capture** (Kubernetes mode, [`Bootstrap::capture`]), connections the
//!   iptables rules of `strait init` redirect: outbound to 15001 beside the HTTP proxy,
//!   routed by their original destination, and inbound to 15006 instead of per-port listeners;
//! - **admin** (15000), **health** (15021), **stats** (15090).
//!
//! Configuration arrives as immutable snapshots swapped in atomically; the request path reads
//! the current one without locks. A lost control plane costs nothing but updates.

pub mod access_log;
pub mod admin;
pub mod authz;
pub mod balance;
pub mod body;
pub mod bootstrap;
pub mod context;
pub mod control;
pub mod enforce;
pub mod explain;
pub mod forward;
pub mod fuzzing;
pub mod gateway;
pub mod gateway_tls;
pub mod inbound;
pub mod inbound_captured;
pub mod jwt;
pub mod metrics;
pub mod outbound;
pub mod path;
pub mod peer;
pub mod routing;
pub mod snapshot;
pub mod sni;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod trace;
pub mod upstream;
pub mod workers;
pub mod xds;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use strait_config::ProxyRole;
use tokio::sync::watch;

pub use bootstrap::Bootstrap;

use crate::context::Proxy;
use crate::snapshot::Snapshot;
use crate::tls::Credentials;
use crate::upstream::Upstreams;
use crate::workers::Workers;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("trust bundle {path}: {reason}")]
    Roots { path: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Runs the proxy until `stop` resolves, serving connections on `workers`.
pub async fn run(
    bs: Bootstrap,
    workers: Workers,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let roots_pem = std::fs::read_to_string(&bs.root_cert).map_err(|e| ProxyError::Roots {
        path: bs.root_cert.display().to_string(),
        reason: e.to_string(),
    })?;
    let roots = tls::root_store(&roots_pem).map_err(|e| ProxyError::Roots {
        path: bs.root_cert.display().to_string(),
        reason: e.to_string(),
    })?;
    let creds = Credentials::new(roots);
    let mut registry = Registry::default();
    let metrics = Arc::new(metrics::Metrics::new(&mut registry));
    let tracer = trace::Tracer::new(&mut registry);
    let px = Arc::new(Proxy {
        snapshot: ArcSwap::from_pointee(Snapshot::empty()),
        upstreams: Upstreams::new(
            creds.clone(),
            bs.reach.clone(),
            workers.slots(),
            bs.capture
                .then_some(IpAddr::V4(strait_net::capture::INBOUND_PASSTHROUGH_SOURCE)),
        ),
        metrics,
        creds: creds.clone(),
        app_ip: bs.app_ip,
        pod_ip: bs.pod_ip,
        outbound: SocketAddr::new(bs.pod_ip, bs.ports.outbound),
        capture: bs.capture,
        inbound_capture: bs.ports.inbound,
        reach: bs.reach.clone(),
        workers,
        tracer,
    });
    admin::spawn(
        px.clone(),
        Arc::new(registry),
        bs.ports.admin,
        bs.ports.health,
        bs.ports.stats,
    )
    .await?;
    // A gateway's pod is the proxy: there is no application to capture traffic from.
    let sidecar = bs.role == ProxyRole::Sidecar;
    // Under capture, redirected connections arrive at 127.0.0.1 (from the pod's own
    // processes) or at the address of the interface they came in on: listen on all of them.
    let any = |port| SocketAddr::new(unspecified(bs.pod_ip), port);
    if sidecar {
        let out_addr = if bs.capture {
            any(bs.ports.outbound)
        } else {
            px.outbound
        };
        let outbound = strait_net::listen(out_addr).map_err(|source| ProxyError::Listen {
            addr: out_addr,
            source,
        })?;
        tokio::spawn(outbound::serve(px.clone(), outbound));
    }
    let inbound_capture = if sidecar && bs.capture {
        let addr = any(bs.ports.inbound);
        Some(strait_net::listen(addr).map_err(|source| ProxyError::Listen { addr, source })?)
    } else {
        None
    };

    let ch = control::channel(&bs, &creds)?;
    let main = async {
        // The first certificate: nothing can be served over mTLS before it.
        let mut backoff = Duration::from_millis(100);
        let due = loop {
            match control::issue(&bs, &creds, &ch).await {
                Ok(due) => break due,
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for a workload certificate");
                    tokio::time::sleep(control::jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        let server = Arc::new(ArcSwap::from(tls::server_config(&creds)?));
        tokio::spawn(control::renew_forever(
            bs.clone(),
            creds.clone(),
            ch.clone(),
            due,
        ));
        let (updated, mut changes) = watch::channel(0u64);
        tokio::spawn(xds::run(px.clone(), bs.clone(), ch.clone(), updated));
        if let Some(l) = inbound_capture {
            tokio::spawn(inbound_captured::serve(px.clone(), server.clone(), l));
        }
        let mut listeners = inbound::Listeners::default();
        let mut gateway = gateway::Listeners::default();
        while changes.changed().await.is_ok() {
            // Under capture the app owns its ports; its traffic comes through 15006.
            if !bs.capture {
                listeners.reconcile(&px, &server).await;
            }
            gateway.reconcile(&px);
        }
        Ok::<(), ProxyError>(())
    };
    tokio::select! {
        r = main => r,
        () = stop => {
            tracing::info!("proxy stopping");
            Ok(())
        }
    }
}

/// The unspecified address of `ip`'s family (`0.0.0.0` or `::`).
fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}
