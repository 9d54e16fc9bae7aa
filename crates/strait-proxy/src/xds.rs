//! The discovery stream: receive configuration updates, validate each one whole, swap it in
//! atomically and ACK it, or NACK it with the reason and keep serving the previous one. When
//! the control plane goes away the proxy keeps its last configuration and reconnects with
//! jittered exponential back-off; the control plane resends the full state on reconnect.

use std::sync::Arc;
use std::time::Duration;

use strait_config::{Kind, ProxyConfig};
use strait_protocol::v1::discovery_client::DiscoveryClient;
use strait_protocol::v1::{DiscoveryRequest, DiscoveryResponse};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::bootstrap::Bootstrap;
use crate::context::Shared;
use crate::control::{authenticate, hello, jitter};
use crate::snapshot::Snapshot;

/// Runs discovery forever. `updated` ticks after every accepted configuration.
pub async fn run(px: Shared, bs: Bootstrap, ch: Channel, updated: watch::Sender<u64>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match session(&px, &bs, &ch, &updated).await {
            Ok(()) => tracing::info!("control plane closed the discovery stream"),
            Err(e) => {
                tracing::warn!(error = %e, "discovery stream failed; serving the last configuration")
            }
        }
        tokio::time::sleep(jitter(backoff)).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        if px.snapshot.load().version.is_empty() {
            backoff = backoff.min(Duration::from_millis(500));
        }
    }
}

async fn session(
    px: &Shared,
    bs: &Bootstrap,
    ch: &Channel,
    updated: &watch::Sender<u64>,
) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(8);
    let _ = tx.send(hello(bs)).await;
    let req = authenticate(bs, tonic::Request::new(ReceiverStream::new(rx)));
    let mut stream = DiscoveryClient::new(ch.clone())
        .stream(req)
        .await?
        .into_inner();
    tracing::info!(control_plane = %bs.control_plane, "discovery stream open");
    while let Some(mut resp) = stream.message().await? {
        let (resources, removed) = (resp.resources.len(), resp.removed.len());
        let answer = match apply(px, &mut resp) {
            Ok(()) => {
                updated.send_modify(|n| *n += 1);
                tracing::info!(version = %resp.version, resources, removed, "configuration applied");
                DiscoveryRequest {
                    response_version: resp.version.clone(),
                    response_nonce: resp.nonce.clone(),
                    ..DiscoveryRequest::default()
                }
            }
            Err(reason) => {
                tracing::warn!(version = %resp.version, %reason, "configuration rejected; keeping the previous one");
                DiscoveryRequest {
                    response_version: px.snapshot.load().version.clone(),
                    response_nonce: resp.nonce.clone(),
                    error_detail: reason,
                    ..DiscoveryRequest::default()
                }
            }
        };
        if tx.send(answer).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Applies one response to a copy of the current configuration and swaps it in only if the
/// whole result is valid. The resources are taken out of `resp`.
fn apply(px: &Shared, resp: &mut DiscoveryResponse) -> Result<(), String> {
    let current = px.snapshot.load_full();
    let mut next: ProxyConfig = if resp.full_state {
        ProxyConfig::default()
    } else {
        current.config.clone()
    };
    for r in &resp.removed {
        let kind =
            Kind::from_proto(r.kind).map_err(|e| format!("removed resource {}: {e}", r.name))?;
        next.remove(kind, &r.name);
    }
    for r in std::mem::take(&mut resp.resources) {
        let what = match Kind::of(&r) {
            Some(kind) => format!("{kind} {}", r.name),
            None => format!("resource {}", r.name),
        };
        next.apply(r).map_err(|e| format!("{what}: {e}"))?;
    }
    let snap = Snapshot::build(resp.version.clone(), next, &current)?;
    // A key set that cannot be used refuses its issuer's tokens: say so once per change.
    let problems = snap.jwt.problems();
    if problems != current.jwt.problems() {
        for p in &problems {
            tracing::warn!("RequestAuthentication: {p}; tokens it would verify are refused");
        }
    }
    px.snapshot.store(Arc::new(snap));
    Ok(())
}
