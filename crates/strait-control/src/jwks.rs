//! JWKS documents of RequestAuthentication `jwksUri`s, fetched by the control plane (as istiod
//! does), so proxies get key sets inline and never reach out themselves.
//!
//! Each URI is fetched when it first appears and again every 20 minutes (istiod's default
//! refresh interval); a failed fetch keeps the last good document. A URI never fetched has no
//! document, and the proxies refuse its issuer's tokens: a token that cannot be verified is not
//! believed. Documents are size-limited and must parse as a JWKS (`{"keys": [...]}`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use strait_api::Kind;
use strait_model::Mesh;
use strait_net::Reach;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::hub::Hub;

const REFRESH: Duration = Duration::from_secs(20 * 60);
/// How often new URIs are looked for, and failed ones retried.
const CHECK: Duration = Duration::from_secs(5);
/// Istio's default for a rule's `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT: usize = 1 << 20;

/// The `jwksUri`s of the config clusters' RequestAuthentications, each with the longest
/// fetch `timeout` a rule naming it gives.
fn uris(mesh: &Mesh) -> BTreeMap<String, Duration> {
    let mut out: BTreeMap<String, Duration> = BTreeMap::new();
    let rules = mesh
        .primaries()
        .flat_map(|c| c.of_kind(Kind::RequestAuthentication))
        .filter_map(|(_, o)| o.request_authentication())
        .flat_map(|ra| ra.spec.jwt_rules.iter())
        .filter(|j| j.jwks.is_empty());
    for j in rules {
        let uri = if j.jwks_uri.is_empty() {
            &j.jwks_uri_legacy
        } else {
            &j.jwks_uri
        };
        if uri.is_empty() {
            continue;
        }
        let timeout = j
            .timeout
            .map(|t| t.as_std())
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        let e = out.entry(uri.clone()).or_insert(timeout);
        *e = (*e).max(timeout);
    }
    out
}

/// Keeps the hub's JWKS documents current until the task is dropped.
pub async fn maintain(hub: Arc<Hub>, reach: Reach) {
    let mut fetched: BTreeMap<String, Instant> = BTreeMap::new();
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let wanted = uris(&hub.mesh());
        fetched.retain(|u, _| wanted.contains_key(u));
        let mut updates: BTreeMap<String, String> = BTreeMap::new();
        for (uri, timeout) in &wanted {
            let due = fetched.get(uri).is_none_or(|t| t.elapsed() >= REFRESH);
            if !due {
                continue;
            }
            match fetch(&reach, uri, *timeout).await {
                Ok(doc) => {
                    if failed.remove(uri).is_some() || !fetched.contains_key(uri) {
                        tracing::info!(%uri, "JWKS fetched");
                    }
                    fetched.insert(uri.clone(), Instant::now());
                    updates.insert(uri.clone(), doc);
                }
                Err(e) => {
                    if failed.get(uri) != Some(&e) {
                        tracing::warn!(%uri, error = %e, "cannot fetch JWKS; its issuer's tokens are refused until it can be (or the last good copy is used)");
                    }
                    failed.insert(uri.clone(), e);
                }
            }
        }
        hub.update_runtime(|rt| {
            rt.jwks.retain(|u, _| wanted.contains_key(u));
            rt.jwks.extend(updates);
        });
        tokio::time::sleep(CHECK).await;
    }
}

/// GETs a JWKS document over HTTP or HTTPS (server verified with the web's roots), within
/// `timeout`.
pub async fn fetch(reach: &Reach, uri: &str, timeout: Duration) -> Result<String, String> {
    let uri: Uri = uri.parse().map_err(|e| format!("not a URL: {e}"))?;
    let host = uri.host().ok_or("no host")?.to_string();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let work = async {
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        let tcp = reach
            .connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        if https {
            let tls = tls_config()?;
            let name =
                rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                    .map_err(|e| format!("{host}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            get(stream, &uri, &host).await
        } else {
            get(tcp, &uri, &host).await
        }
    };
    let text = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))??;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    if !doc.get("keys").is_some_and(serde_json::Value::is_array) {
        return Err("not a JWKS (no \"keys\" list)".into());
    }
    Ok(text)
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

async fn get<S>(io: S, uri: &Uri, host: &str) -> Result<String, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map_err(|e| format!("reading the document: {e}"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8".to_string())
}
