//! The webhook's HTTPS server (port 15017, `POST /inject`), built to face the API server and
//! nothing else well: bounded bodies, bounded time per connection, JSON only.
//!
//! Paths: `/inject`, and `/inject/cluster/<cluster>/net/<network>`, which remote clusters'
//! webhooks call so that the pods they inject report their own cluster and network (as
//! Istio's remote injection path does; `--slash--` stands for `/` in values).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::config::Config;
use super::review::review;

/// Limits of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body, bytes. Default 8 MiB: an AdmissionReview carries the pod twice
    /// at most (object, oldObject), and the API server refuses objects over 3 MiB.
    pub max_body: usize,
    /// Time to complete the TLS handshake, and to receive a request's headers and body.
    /// Default 10 s, the API server's default webhook timeout: past it, the answer is unused.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 8 << 20,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves the webhook on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    config: Arc<Config>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, typically: wait rather than spin.
                    tracing::warn!(error = %e, "injector accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, config) = (acceptor.clone(), config.clone());
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(limits.request_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "injector TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "injector TLS handshake timed out");
                        return;
                    }
                };
            let svc = service_fn(move |req| {
                let config = config.clone();
                async move { Ok::<_, Infallible>(handle(req, &config, limits).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.request_timeout);
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), svc).await {
                tracing::debug!(%peer, error = %e, "injector connection ended");
            }
        });
    }
}

fn text(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(message.into() + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The cluster and network a remote injection path names, if any; `None` for a path that is
/// not the webhook's.
fn route(path: &str) -> Option<(Option<String>, Option<String>)> {
    let rest = path.strip_prefix("/inject")?;
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        return Some((None, None));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let (mut cluster, mut network) = (None, None);
    for pair in segments.chunks(2) {
        let value = |v: &str| v.replace("--slash--", "/");
        match pair {
            ["cluster", v] => cluster = Some(value(v)),
            ["net", v] => network = Some(value(v)),
            _ => return None,
        }
    }
    Some((cluster, network))
}

async fn handle(
    req: Request<Incoming>,
    config: &Arc<Config>,
    limits: Limits,
) -> Response<Full<Bytes>> {
    let Some((cluster, network)) = route(req.uri().path()) else {
        return text(
            StatusCode::NOT_FOUND,
            "not found: the injector serves POST /inject",
        );
    };
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "the injector takes POST");
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the injector takes Content-Type: application/json (an AdmissionReview)",
        );
    }
    let body = Limited::new(req.into_body(), limits.max_body);
    let body = match tokio::time::timeout(limits.request_timeout, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the review is larger than {} bytes", limits.max_body),
            );
        }
        Ok(Err(e)) => return text(StatusCode::BAD_REQUEST, format!("reading the review: {e}")),
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the review did not arrive in time",
            );
        }
    };
    let remote;
    let config: &Config = if cluster.is_some() || network.is_some() {
        let mut c = Config::clone(config);
        if let Some(cluster) = cluster {
            if cluster != c.cluster_id {
                // Another cluster's pod: this cluster's namespaces say nothing about it.
                c.live = Default::default();
            }
            c.cluster_id = cluster;
        }
        if let Some(network) = network {
            c.network = network;
        }
        remote = c;
        &remote
    } else {
        config
    };
    match review(&body, config) {
        Ok(answer) => match serde_json::to_vec(&answer) {
            Ok(json) => {
                let mut r = Response::new(Full::new(Bytes::from(json)));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                r
            }
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding the answer: {e}"),
            ),
        },
        Err(e) => {
            tracing::warn!(error = %e, "unreadable admission review");
            text(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routes() {
        assert_eq!(route("/inject"), Some((None, None)));
        assert_eq!(route("/inject/"), Some((None, None)));
        assert_eq!(
            route("/inject/cluster/c2/net/network--slash--2"),
            Some((Some("c2".into()), Some("network/2".into())))
        );
        assert_eq!(route("/injector"), None);
        assert_eq!(route("/inject/cluster"), None);
        assert_eq!(route("/other"), None);
    }
}
