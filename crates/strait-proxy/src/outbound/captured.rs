//! Outbound connections the capture rules redirected to 15001 (Kubernetes mode): the app
//! dialled some address; the kernel sent the connection here and kept where it was going
//! (`SO_ORIGINAL_DST`). The proxy routes by that original destination:
//!
//! - a service's virtual address and port (a cluster IP, a ServiceEntry address): that
//!   service, over HTTP when its port speaks HTTP (by its declared protocol, or sniffed when
//!   it declares none), routed by the Host header as an HTTP-proxy request is, the address's
//!   service standing in when the Host names none; else as an opaque TCP tunnel;
//! - anything else: relayed as bytes to the original destination (Istio's
//!   PassthroughCluster), or closed when outbound traffic is REGISTRY_ONLY.
//!
//! A connection whose original destination is one of the proxy's own listeners is closed: it
//! can only be a loop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use ::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use strait_config::AppProtocol;
use tokio::net::TcpStream;

use crate::body::{self, Body};
use crate::context::Shared;

use super::{http, tcp};

pub(super) async fn serve(px: Shared, stream: TcpStream, peer: SocketAddr, original: SocketAddr) {
    let started = Instant::now();
    if px.is_own_listener(original) {
        tracing::warn!(%peer, %original, "closed a captured connection to the proxy's own listener (a loop)");
        return;
    }
    let snap = px.snapshot.load_full();
    let protocol = snap.resolve_addr(original).map(|sp| sp.protocol);
    let http = match protocol {
        None => false,
        Some(AppProtocol::Tcp | AppProtocol::Tls) => false,
        Some(AppProtocol::Auto) => crate::inbound::looks_like_http(&stream).await,
        Some(_) => true,
    };
    if http {
        let svc = service_fn(move |req| {
            let px = px.clone();
            async move { Ok::<_, Infallible>(route(px, req, original).await) }
        });
        if let Err(e) = super::http_server()
            .serve_connection(TokioIo::new(stream), svc)
            .await
        {
            tracing::debug!(%peer, %original, error = %e, "captured connection ended");
        }
        return;
    }
    let tunnel = match snap.resolve_addr(original) {
        Some(sp) => tcp::open_service(&px, &snap, sp).await,
        None => {
            let host = original.ip().to_string();
            tcp::open_passthrough(&px, &snap, &host, original.port()).await
        }
    };
    match tunnel {
        Ok(t) => tcp::pipe(&px, stream, t, started).await,
        Err(refused) => {
            tracing::info!(%peer, %original, reason = %refused.message, "closed a captured connection");
        }
    }
}

/// One HTTP request of a captured connection to a service's address.
async fn route(px: Shared, req: Request<Incoming>, original: SocketAddr) -> Response<Body> {
    if req.method() == ::http::Method::CONNECT {
        return body::text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("CONNECT sent to {original}, a service address, not to a proxy\n"),
        );
    }
    let snap = px.snapshot.load_full();
    // The port the app dialled is the service's; the Host header may omit it.
    let by_host = http::target(&req)
        .and_then(|(host, _)| Some((snap.resolve(&host, original.port())?, host)));
    let (sp, authority) = match by_host {
        Some((sp, host)) => (sp, format!("{host}:{}", original.port())),
        None => match snap.resolve_addr(original) {
            Some(sp) => (sp, format!("{}:{}", sp.host, original.port())),
            None => {
                return body::text(
                    StatusCode::BAD_GATEWAY,
                    format!("{original} is no longer a service's address\n"),
                );
            }
        },
    };
    http::serve(&px, &snap, sp, req, authority, None).await
}
