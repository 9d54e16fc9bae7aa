//! TLS listeners: the ClientHello is peeked (nothing is consumed), its SNI picks a chain, and
//! the chain either relays the untouched bytes or terminates TLS here.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use strait_config::{TlsAction, TlsChain};
use tokio::net::TcpStream;

use super::http::Client;
use super::{relay, sni_matches};
use crate::context::Shared;
use crate::sni;

/// How long a client may take to send its ClientHello, and to finish a handshake.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN values Istio's client proxies offer; an `AUTO_PASSTHROUGH` chain matches only these
/// (istiod sets the same `application_protocols` on the gateway's filter chains), so the
/// gateway relays mesh mTLS and nothing else.
const ISTIO_ALPN: [&[u8]; 5] = [
    b"istio",
    b"istio-peer-exchange",
    b"istio-http/1.0",
    b"istio-http/1.1",
    b"istio-h2",
];

pub(super) async fn serve(
    px: Shared,
    stream: TcpStream,
    listener: &str,
    chains: &[TlsChain],
    peer: SocketAddr,
) -> io::Result<()> {
    let hello = sni::peek_client_hello(&stream, HELLO_TIMEOUT)
        .await
        .map_err(io::Error::other)?;
    let sni = hello.sni.as_deref();
    let Some((index, chain)) = chains.iter().enumerate().find(|(_, c)| {
        c.server_names.is_empty() || c.server_names.iter().any(|p| sni_matches(p, sni))
    }) else {
        tracing::info!(%peer, listener, sni = sni.unwrap_or(""), "refused: no server of this gateway takes that SNI");
        return Ok(());
    };
    let mut client = Client::plain(&stream, peer);
    client.sni = hello.sni.clone();
    // What is relayed untouched is authorized once, as a TCP connection (Istio's reading of
    // each rule for a connection it does not terminate).
    if !matches!(
        chain.action,
        TlsAction::TerminateHttp { .. } | TlsAction::TerminateTcp { .. }
    ) && !authorized(&px, &client, listener)
    {
        return Ok(());
    }
    match &chain.action {
        TlsAction::AutoPassthrough => {
            let istio = hello
                .alpn
                .iter()
                .any(|a| ISTIO_ALPN.contains(&a.as_slice()));
            let Some(name) = sni.filter(|s| s.starts_with("outbound_.")) else {
                tracing::info!(%peer, listener, sni = sni.unwrap_or(""), "refused: AUTO_PASSTHROUGH needs an outbound_.<port>_.<subset>_.<host> SNI");
                return Ok(());
            };
            if !istio {
                tracing::info!(%peer, listener, sni = name, "refused: not Istio mTLS (no istio ALPN)");
                return Ok(());
            }
            if px.snapshot.load().cluster(name).is_none() {
                // Not an open relay: only services this gateway exposes are reachable.
                tracing::info!(%peer, listener, sni = name, "refused: the SNI names no service this gateway exposes");
                return Ok(());
            }
            relay::to_cluster(&px, stream, name, sni).await
        }
        TlsAction::Passthrough { route } => relay::to_route(&px, stream, route, sni).await,
        TlsAction::TerminateHttp { .. } | TlsAction::TerminateTcp { .. } => {
            let snap = px.snapshot.load_full();
            let Some(acceptor) = snap.gateway.tls(listener).and_then(|t| t.acceptor.clone()) else {
                return Ok(());
            };
            let accepted = tokio::time::timeout(HELLO_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))?;
            let (tls, info) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::info!(%peer, listener, error = %e, "TLS handshake refused");
                    return Ok(());
                }
            };
            let chain_index = snap
                .gateway
                .tls(listener)
                .and_then(|t| t.servers.get(info.server).copied())
                .unwrap_or(index);
            client.secure = true;
            client.principal = info.client.as_ref().and_then(|c| {
                c.sans
                    .iter()
                    .find(|s| s.contains("://"))
                    .or_else(|| c.sans.first())
                    .cloned()
            });
            match chains.get(chain_index).map(|c| &c.action) {
                Some(TlsAction::TerminateHttp { .. }) => {
                    super::http::serve_io(px, tls, format!("{listener}#{chain_index}"), client)
                        .await
                }
                Some(TlsAction::TerminateTcp { route, .. }) => {
                    if !authorized(&px, &client, listener) {
                        return Ok(());
                    }
                    relay::to_route(&px, tls, route, sni).await
                }
                _ => Ok(()),
            }
        }
    }
}

/// The gateway's authorization policies, once for a connection: a denied one is closed.
pub(super) fn authorized(px: &Shared, client: &Client, listener: &str) -> bool {
    let snap = px.snapshot.load_full();
    match crate::enforce::tcp(px, &snap, &client.connection()) {
        Ok(()) => true,
        Err(refused) => {
            tracing::debug!(peer = %client.peer, listener, details = %refused.details, "connection denied by authorization policy");
            false
        }
    }
}
