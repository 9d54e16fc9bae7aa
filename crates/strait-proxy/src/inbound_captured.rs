//! The inbound capture listener (15006, Kubernetes mode): connections to the pod that the
//! capture rules redirected. The port the client dialled (`SO_ORIGINAL_DST`) names the inbound
//! port, and the connection then takes exactly the path of a per-port inbound listener
//! ([`crate::inbound`]): PeerAuthentication, mTLS, policy, metrics, then the app.
//!
//! A port the configuration does not serve (no Service selecting the pod declares it) is
//! closed and logged rather than relayed to the app around the proxy: under STRICT that would
//! bypass mTLS, and strait's inbound has no passthrough cluster.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use strait_net::Door;
use tokio::net::TcpListener;

use crate::context::Shared;

/// Accepts redirected inbound connections on `listener` until the task is dropped.
pub async fn serve(px: Shared, server: Arc<ArcSwap<ServerConfig>>, listener: TcpListener) {
    loop {
        let (s, peer) = px
            .reach
            .accept(&listener, Door::Mesh, "inbound capture")
            .await;
        let Some(original) = strait_net::capture::original_dst(&s) else {
            tracing::info!(%peer, "closed a connection made to the inbound capture port itself: only redirected connections are served there");
            continue;
        };
        if px.is_own_listener(original) {
            tracing::warn!(%peer, %original, "closed a captured inbound connection to the proxy's own listener (a loop)");
            continue;
        }
        let port = u32::from(original.port());
        let served = px
            .snapshot
            .load()
            .config
            .inbound
            .contains_key(&port.to_string());
        if !served {
            log_unserved(peer, original);
            continue;
        }
        let _ = s.set_nodelay(true);
        let (px2, cfg) = (px.clone(), server.load_full());
        px.workers.spawn_connection(s, move |s| async move {
            if let Err(e) = crate::inbound::connection(px2, cfg, s, peer, port).await {
                tracing::debug!(%peer, port, error = %e, "captured inbound connection ended");
            }
        });
    }
}

fn log_unserved(peer: SocketAddr, original: SocketAddr) {
    tracing::info!(
        %peer,
        %original,
        "closed a captured inbound connection: no Service selecting this pod declares port {}",
        original.port()
    );
}
