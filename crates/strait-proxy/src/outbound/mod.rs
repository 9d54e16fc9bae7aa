//! The outbound listener (15001 on the pod address): applications reach it as their HTTP proxy
//! (`HTTP_PROXY`), with absolute-form requests for HTTP and `CONNECT` for opaque TCP. Requests
//! without an absolute URI are routed by their Host header (transparent capture).

mod http;
pub mod policy;
mod tcp;

use std::convert::Infallible;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::body::{self, Body};
use crate::context::Shared;

pub async fn serve(px: Shared, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "outbound accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let px = px.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let px = px.clone();
                async move { Ok::<_, Infallible>(route(px, req).await) }
            });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
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
