//! A minimal HTTP/1.1 and HTTP/2 server for operator endpoints: every request is answered
//! synchronously by one handler from in-memory state, so a slow client never holds a lock.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use strait_net::{Door, Reach};
use tokio::net::TcpListener;

/// Serves `handler` on `listener` forever, to the peers `reach` admits at `door`
/// ([`Door::Operator`] for health and stats, [`Door::Admin`] for what only the pod and the
/// mesh's owner may read).
pub async fn serve<F, B>(listener: TcpListener, reach: Reach, door: Door, handler: F)
where
    F: Fn(&Request<Incoming>) -> Response<B> + Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let handler = Arc::new(handler);
    loop {
        let (stream, _) = reach.accept(&listener, door, "admin").await;
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let r = handler(&req);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
