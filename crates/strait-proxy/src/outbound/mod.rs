//! The outbound listener (15001 on the pod address): applications reach it as their HTTP proxy
//! (`HTTP_PROXY`), with absolute-form requests for HTTP and `CONNECT` for opaque TCP. Requests
//! without an absolute URI are routed by their Host header.
//!
//! Under traffic capture the same port also receives the connections the iptables rules
//! redirected (see [`captured`]). The two share one port, as Envoy's 15001 does: a connection
//! whose `SO_ORIGINAL_DST` differs from the address it arrived at was redirected and is routed
//! by that original destination; one made to the listener itself is an HTTP-proxy client.

mod captured;
mod http;
pub mod policy;
mod tcp;

pub(crate) use http::{ensure_request_id, local as local_reply, serve as serve_routes};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use strait_net::Door;
use tokio::net::TcpListener;

use crate::body::{self, Body};
use strait_config::{Cluster, Endpoint, UpstreamTls};

use crate::context::{Proxy, Shared};
use crate::metrics::Peer;

/// Why a destination whose DestinationRule asks for TLS origination (`SIMPLE`, `MUTUAL`) is
/// refused: sending its traffic in plaintext instead would be worse than not sending it.
pub(crate) const TLS_ORIGINATION: &str = "the DestinationRule asks for TLS origination (mode SIMPLE or MUTUAL), which this proxy does not support; refusing to send the request in plaintext";

/// How long a client may take to send a request's headers.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP/1.1 and HTTP/2 server every listener of the proxy uses, with timers and the
/// header-read deadline a slow client must not exceed.
pub(crate) fn http_server() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    builder
}

pub async fn serve(px: Shared, listener: TcpListener) {
    loop {
        let (stream, peer) = px.reach.accept(&listener, Door::Admin, "outbound").await;
        let _ = stream.set_nodelay(true);
        let px2 = px.clone();
        let original = if px.capture {
            strait_net::capture::original_dst(&stream)
        } else {
            None
        };
        if let Some(original) = original {
            px.workers.spawn_connection(stream, move |stream| {
                captured::serve(px2, stream, peer, original)
            });
            continue;
        }
        px.workers
            .spawn_connection(stream, move |stream| async move {
                let px = px2;
                let svc = service_fn(move |mut req: ::http::Request<Incoming>| {
                    let px = px.clone();
                    req.extensions_mut().insert(crate::trace::Downstream(peer));
                    async move { Ok::<_, Infallible>(route(px, req).await) }
                });
                if let Err(e) = http_server()
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "outbound connection ended");
                }
            });
    }
}

async fn route(px: Shared, req: ::http::Request<Incoming>) -> ::http::Response<Body> {
    let Some((host, port)) = http::target(&req) else {
        return body::text(
            ::http::StatusCode::BAD_REQUEST,
            "request names no host (absolute URI or Host header)\n",
        );
    };
    if req.method() == ::http::Method::CONNECT {
        tcp::connect(px, req, host, port).await
    } else {
        http::handle(px, req, host, port).await
    }
}

/// The address of a destination no service names (Istio's PassthroughCluster), refusing this
/// proxy's own outbound listener: a request sent there would come straight back, over and
/// over, until the proxy runs out of connections.
pub(crate) async fn passthrough_addr(
    px: &Proxy,
    host: &str,
    port: u16,
) -> Result<SocketAddr, String> {
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host}: cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    if px.is_own_listener(addr) {
        return Err(format!(
            "{host}:{port} is this proxy's own outbound listener ({addr}); refusing a request that would loop"
        ));
    }
    Ok(addr)
}

/// An endpoint's socket address; `None` if the control plane sent one that does not parse.
pub(crate) fn endpoint_addr(e: &Endpoint) -> Option<SocketAddr> {
    let ip: std::net::IpAddr = e.address.parse().ok()?;
    Some(SocketAddr::new(ip, u16::try_from(e.port).ok()?))
}

/// Whether traffic to `e` of `cluster` goes over Istio mTLS (auto mTLS: when it has a proxy).
/// An endpoint that is another network's gateway is always reached over mTLS: the gateway
/// routes on the SNI of that handshake, which ends at the pod behind it.
pub(crate) fn endpoint_mtls(cluster: &Cluster, e: &Endpoint) -> bool {
    if e.via_gateway {
        return true;
    }
    match cluster.tls {
        UpstreamTls::IstioMutual => true,
        UpstreamTls::Disable | UpstreamTls::Originate => false,
        UpstreamTls::Auto => e.mtls,
    }
}

/// The metrics peer an endpoint is; its principal only when the connection is mTLS.
pub(crate) fn endpoint_peer(e: &Endpoint, mtls: bool) -> Peer {
    Peer {
        workload: e.workload.workload.clone(),
        namespace: e.workload.namespace.clone(),
        principal: if mtls {
            e.workload.identity.clone()
        } else {
            String::new()
        },
        app: e.workload.app.clone(),
        version: e.workload.version.clone(),
        cluster: e.workload.cluster.clone(),
    }
}
