//! A plain-HTTP GET for the operator endpoints of local parts (sidecar admin and health
//! ports, control-plane debug port). Bounded in time and size.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use strait_net::netns::Vantage;

/// Largest body read (a config dump of a big mesh fits comfortably).
const MAX_BODY: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}{path}: {reason}")]
    Http {
        addr: SocketAddr,
        path: String,
        reason: String,
    },
    #[error("{addr}{path}: no answer within {}s", timeout.as_secs())]
    Timeout {
        addr: SocketAddr,
        path: String,
        timeout: Duration,
    },
}

/// `GET http://<addr><path>`: the status and body.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), FetchError> {
    get_from(&Vantage::Here, addr, path, timeout).await
}

/// Like [`get`], connecting from `vantage` (inside a network's namespace, in namespace mode).
pub async fn get_from(
    vantage: &Vantage,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), FetchError> {
    request(vantage, addr, path, &addr.to_string(), timeout).await
}

/// `GET http://<authority><path>` sent to the HTTP proxy at `proxy` (a sidecar's outbound
/// port), as a workload behind it sends it: the status and body.
pub async fn get_via(
    vantage: &Vantage,
    proxy: SocketAddr,
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), FetchError> {
    let uri = format!("http://{authority}{path}");
    request(vantage, proxy, &uri, authority, timeout).await
}

async fn request(
    vantage: &Vantage,
    addr: SocketAddr,
    path: &str,
    host: &str,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), FetchError> {
    let http = |reason: String| FetchError::Http {
        addr,
        path: path.to_string(),
        reason,
    };
    let work = async {
        let tcp = vantage
            .connect(addr, timeout)
            .await
            .map_err(|source| FetchError::Connect { addr, source })?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| http(e.to_string()))?;
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(http::header::HOST, host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| http(e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| http(e.to_string()))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| http(e.to_string()))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| FetchError::Timeout {
            addr,
            path: path.to_string(),
            timeout,
        })?
}
