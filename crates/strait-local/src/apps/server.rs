//! The accept loop the apps share: HTTP/1.1 and h2c on one port, graceful stop.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tracing::debug;

use super::AppError;
use crate::stop::Stop;

/// How long requests in flight may take to finish once the app is told to stop. Past it,
/// connections are dropped: the supervisor's own grace period is the real bound.
const DRAIN: Duration = Duration::from_secs(5);

pub(crate) type Body = Full<Bytes>;

/// Serves `handler` on `listen` until `stop` fires, then drains.
pub(crate) async fn serve<H, F>(
    listen: SocketAddr,
    reach: strait_net::Reach,
    stop: Stop,
    handler: H,
) -> Result<(), AppError>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = strait_net::listen(listen).map_err(|source| AppError::Bind {
        addr: listen,
        source,
    })?;
    // An app behind a sidecar admits its own pod only; without one, its network.
    let door = if reach.pod.is_empty() {
        strait_net::Door::Mesh
    } else {
        strait_net::Door::Pod
    };
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.wait() => break,
            accepted = reach.accept(&listener, door, "app") => accepted,
        };
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let response = handler(req);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("requests still in flight after the drain period, dropping them");
    }
    Ok(())
}

pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut body = value.to_string();
    body.push('\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
