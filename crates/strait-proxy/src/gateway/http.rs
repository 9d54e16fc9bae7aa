//! HTTP on a gateway: the virtual host is chosen by the Host header (404 when none serves it),
//! then requests are routed exactly as a sidecar routes its outbound ones.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::body::{self, Body};
use crate::context::Shared;

/// A plaintext HTTP listener.
pub(super) async fn serve(
    px: Shared,
    stream: TcpStream,
    listener: String,
    peer: SocketAddr,
) -> io::Result<()> {
    serve_io(px, stream, listener, peer, false).await
}

/// Serves HTTP/1.1 and HTTP/2 on `io` with the virtual hosts of `vhosts` (a listener, or a
/// TLS chain of one). `secure`: the connection came over TLS (no https redirect).
pub(super) async fn serve_io<S>(
    px: Shared,
    io: S,
    vhosts: String,
    peer: SocketAddr,
    secure: bool,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let svc = service_fn(move |req| {
        let (px, vhosts) = (px.clone(), vhosts.clone());
        async move { Ok::<_, Infallible>(handle(px, &vhosts, req, secure).await) }
    });
    crate::outbound::http_server()
        .serve_connection(TokioIo::new(io), svc)
        .await
        .map_err(|e| io::Error::other(format!("{peer}: {e}")))
}

async fn handle(px: Shared, vhosts: &str, req: Request<Incoming>, secure: bool) -> Response<Body> {
    let snap = px.snapshot.load_full();
    let host = crate::forward::request_authority(&req).unwrap_or_default();
    let Some(vhost) = snap.gateway.vhost(vhosts, &host) else {
        return body::text(
            StatusCode::NOT_FOUND,
            format!("no route for host {host} on this gateway (NR)\n"),
        );
    };
    if vhost.https_redirect && !secure {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let host_only = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        if let Ok(v) = HeaderValue::from_str(&format!("https://{host_only}{path}")) {
            r.headers_mut().insert(http::header::LOCATION, v);
        }
        return r;
    }
    crate::outbound::serve_routes(&px, &snap, &vhost.routes, req, host).await
}

/// The load balancer's health check on a public address: the proxy's readiness.
pub(super) async fn health(px: Shared, stream: TcpStream) -> io::Result<()> {
    let svc = service_fn(move |req: Request<Incoming>| {
        let px = px.clone();
        async move {
            let r = match req.uri().path() {
                "/healthz/ready" if crate::admin::ready(&px) => body::text(StatusCode::OK, ""),
                "/healthz/ready" => body::text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
                _ => body::text(StatusCode::NOT_FOUND, ""),
            };
            Ok::<_, Infallible>(r)
        }
    });
    crate::outbound::http_server()
        .serve_connection(TokioIo::new(stream), svc)
        .await
        .map_err(|e| io::Error::other(e.to_string()))
}
