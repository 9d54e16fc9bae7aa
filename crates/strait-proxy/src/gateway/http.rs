//! HTTP on a gateway: the virtual host is chosen by the Host header (404 when none serves it),
//! the request is normalized, authenticated and authorized ([`crate::enforce`]) as a
//! sidecar's inbound requests are, then routed exactly as a sidecar routes its outbound ones.

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
use crate::enforce;

/// What a gateway connection says about its client.
#[derive(Clone, Debug)]
pub(super) struct Client {
    pub peer: SocketAddr,
    /// Where the connection arrived.
    pub local: SocketAddr,
    /// Over TLS (no https redirect).
    pub secure: bool,
    /// The SNI of a TLS connection.
    pub sni: Option<String>,
    /// A verified client certificate's identity (`MUTUAL`): its URI SAN, else its first SAN.
    pub principal: Option<String>,
}

impl Client {
    pub(super) fn plain(stream: &TcpStream, peer: SocketAddr) -> Client {
        Client {
            peer,
            local: stream.local_addr().unwrap_or(peer),
            secure: false,
            sni: None,
            principal: None,
        }
    }

    pub(super) fn connection(&self) -> enforce::Connection<'_> {
        enforce::Connection {
            peer: self.peer,
            destination: self.local,
            principal: self.principal.as_deref(),
            sni: self.sni.as_deref(),
        }
    }
}

/// A plaintext HTTP listener.
pub(super) async fn serve(
    px: Shared,
    stream: TcpStream,
    listener: String,
    peer: SocketAddr,
) -> io::Result<()> {
    let client = Client::plain(&stream, peer);
    serve_io(px, stream, listener, client).await
}

/// Serves HTTP/1.1 and HTTP/2 on `io` with the virtual hosts of `vhosts` (a listener, or a
/// TLS chain of one).
pub(super) async fn serve_io<S>(px: Shared, io: S, vhosts: String, client: Client) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let peer = client.peer;
    let client = std::sync::Arc::new(client);
    let svc = service_fn(move |req| {
        let (px, vhosts, client) = (px.clone(), vhosts.clone(), client.clone());
        async move { Ok::<_, Infallible>(handle(px, &vhosts, req, &client).await) }
    });
    crate::outbound::http_server()
        .serve_connection(TokioIo::new(io), svc)
        .await
        .map_err(|e| io::Error::other(format!("{peer}: {e}")))
}

/// One request at the gateway, in its span (SERVER: the gateway is where the mesh receives
/// it).
async fn handle(
    px: Shared,
    vhosts: &str,
    mut req: Request<Incoming>,
    client: &Client,
) -> Response<Body> {
    let snap = px.snapshot.load_full();
    crate::outbound::ensure_request_id(req.headers_mut());
    let host = crate::forward::request_authority(&req).unwrap_or_default();
    let scheme = if client.secure { "https" } else { "http" };
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let span = px.tracer.start(
        &snap.config.mesh,
        crate::trace::Kind::Server,
        &method,
        || {
            format!(
                "{scheme}://{host}{}",
                uri.path_and_query().map_or("/", |p| p.as_str())
            )
        },
        Some(client.peer),
        req.headers_mut(),
    );
    let resp = route(px, vhosts, req, client).await;
    crate::trace::finish(span, || format!("{host}/*"), resp)
}

async fn route(
    px: Shared,
    vhosts: &str,
    req: Request<Incoming>,
    client: &Client,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let secure = client.secure;
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
    let (mut parts, body) = req.into_parts();
    if let Err(e) =
        crate::inbound::normalize_path(&mut parts.uri, snap.config.mesh.path_normalization)
    {
        return body::text(StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    let claims = match enforce::http(&px, &snap, &client.connection(), &mut parts, &host) {
        Ok(c) => c,
        Err(refused) => {
            return crate::outbound::local_reply(
                &px,
                &vhost.routes,
                started,
                refused.flags,
                refused.response(),
            );
        }
    };
    let req = Request::from_parts(parts, body);
    crate::outbound::serve_routes(&px, &snap, &vhost.routes, req, host, claims.as_ref()).await
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
