//! Talking to the control plane: one gRPC channel over rustls (our client certificate once we
//! have one, so a renewal applies to the next connection), certificate issuance and renewal at
//! half-life, and the discovery stream.
//!
//! A control plane named by DNS is resolved again at every connection (tonic calls the
//! connector for each reconnect), so a proxy follows `istiod.istio-system.svc` when its address
//! changes; the certificate it must present names that host. The bootstrap credential is read
//! for every request ([`Bootstrap::bearer`]): a token file rotated by the kubelet is picked up
//! without a restart.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper_util::rt::TokioIo;
use rand::Rng;
use rustls::pki_types::ServerName;
use strait_protocol::v1::certificates_client::CertificatesClient;
use strait_protocol::v1::{DiscoveryRequest, Node, SignRequest};
use tokio_rustls::TlsConnector;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::bootstrap::{Bootstrap, ControlPlaneAddr};
use crate::tls::{self, Credentials, CurrentCert};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control plane {addr}: {source}")]
    Rpc { addr: String, source: tonic::Status },
    #[error("control plane {addr}: {source}")]
    Transport {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("control plane {addr}: {source}")]
    Token {
        addr: String,
        source: crate::bootstrap::TokenError,
    },
}

/// A lazily connecting channel to the control plane. The server's certificate must chain to
/// the mesh roots and carry the control plane's DNS name.
pub fn channel(bs: &Bootstrap, creds: &Arc<Credentials>) -> Result<Channel, ControlError> {
    let addr = bs.control_plane.clone();
    let reach = bs.reach.clone();
    let name = ServerName::try_from(bs.control_plane_name.clone()).map_err(|e| {
        ControlError::Certificate(format!("control plane name {}: {e}", bs.control_plane_name))
    })?;
    let creds = creds.clone();
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let (creds, name, reach, addr) = (creds.clone(), name.clone(), reach.clone(), addr.clone());
        async move {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                creds.roots(),
                tls::provider(),
            )
            .build()
            .map_err(std::io::Error::other)?;
            let mut cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(std::io::Error::other)?
                .with_webpki_verifier(verifier)
                .with_client_cert_resolver(Arc::new(CurrentCert(creds.clone())));
            cfg.alpn_protocols = vec![b"h2".to_vec()];
            // From the pod's address: a control plane admits only its own network's peers, so
            // a proxy of another network must come through that network's gateway.
            let tcp = connect(&reach, &addr).await?;
            let tls = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    Ok(Endpoint::from_static("http://control-plane")
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect_with_connector_lazy(connector))
}

/// Connects to the first of the control plane's addresses that answers, resolving a DNS name
/// now.
async fn connect(
    reach: &strait_net::Reach,
    addr: &ControlPlaneAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for a in addr.resolve().await? {
        match reach.connect(a).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(std::io::Error::new(e.kind(), format!("{addr} ({a}): {e}"))),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr}: no address"))
    }))
}

/// Adds the bootstrap token and cluster ID to a call (istiod's `authorization` and
/// `ClusterID` metadata). A token file that cannot be read is logged and the call goes without
/// a token: the discovery stream authenticates with the workload certificate as well.
pub fn authenticate<T>(bs: &Bootstrap, req: tonic::Request<T>) -> tonic::Request<T> {
    match bs.bearer() {
        Ok(token) => with_metadata(bs, &token, req),
        Err(e) => {
            tracing::warn!(error = %e, "calling the control plane without a bootstrap token");
            with_metadata(bs, "", req)
        }
    }
}

fn with_metadata<T>(bs: &Bootstrap, token: &str, mut req: tonic::Request<T>) -> tonic::Request<T> {
    if !token.is_empty()
        && let Ok(v) = MetadataValue::try_from(format!("Bearer {token}"))
    {
        req.metadata_mut().insert(strait_protocol::AUTHORIZATION, v);
    }
    if let Ok(v) = MetadataValue::try_from(bs.cluster.as_str()) {
        req.metadata_mut().insert(strait_protocol::CLUSTER_ID, v);
    }
    req
}

/// Requests and installs a new certificate. Returns when it should be renewed.
pub async fn issue(
    bs: &Bootstrap,
    creds: &Credentials,
    ch: &Channel,
) -> Result<SystemTime, ControlError> {
    let identity: strait_ca::SpiffeId = bs
        .identity()
        .parse()
        .map_err(|e| ControlError::Certificate(format!("identity {}: {e}", bs.identity())))?;
    let key = strait_ca::WorkloadKey::generate(&identity)
        .map_err(|e| ControlError::Certificate(e.to_string()))?;
    // The first request must carry the token; a renewal is authenticated by the certificate
    // it renews, so an unreadable token file does not stop it.
    let token = match bs.bearer() {
        Ok(t) => t,
        Err(e) if creds.current().is_some() => {
            tracing::debug!(error = %e, "renewing with the current certificate only");
            String::new()
        }
        Err(source) => {
            return Err(ControlError::Token {
                addr: bs.control_plane.to_string(),
                source,
            });
        }
    };
    let req = with_metadata(
        bs,
        &token,
        tonic::Request::new(SignRequest {
            csr: key.csr_pem.clone(),
            validity_seconds: i64::try_from(bs.cert_ttl_seconds).unwrap_or(0),
        }),
    );
    let resp = CertificatesClient::new(ch.clone())
        .sign(req)
        .await
        .map_err(|source| ControlError::Rpc {
            addr: bs.control_plane.to_string(),
            source,
        })?
        .into_inner();
    creds
        .install(&resp.cert_chain, &key.key_pem)
        .map_err(|e| ControlError::Certificate(e.to_string()))?;
    let leaf = creds
        .leaf()
        .ok_or_else(|| ControlError::Certificate("no certificate installed".into()))?;
    let (nb, na) =
        strait_ca::validity(&leaf).map_err(|e| ControlError::Certificate(e.to_string()))?;
    tracing::info!(identity = %identity, expires = ?na, "workload certificate issued");
    Ok(strait_ca::renewal_time(nb.max(SystemTime::now()), na))
}

/// Keeps the certificate fresh: renews at half-life, retrying with back-off when the control
/// plane is away (the current certificate keeps serving meanwhile).
pub async fn renew_forever(
    bs: Bootstrap,
    creds: Arc<Credentials>,
    ch: Channel,
    mut due: SystemTime,
) {
    loop {
        let wait = due
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        let mut backoff = Duration::from_millis(200);
        loop {
            match issue(&bs, &creds, &ch).await {
                Ok(next) => {
                    due = next;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "certificate renewal failed; retrying");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

pub fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms / 2 + rand::rng().random_range(0..=ms / 2 + 1))
}

/// The first request of a discovery stream.
pub fn hello(bs: &Bootstrap) -> DiscoveryRequest {
    DiscoveryRequest {
        node: Some(Node {
            id: bs.node_id(),
            cluster: bs.cluster.clone(),
            namespace: bs.namespace.clone(),
            pod: bs.pod.clone(),
            ip: bs.pod_ip.to_string(),
            build: env!("CARGO_PKG_VERSION").into(),
        }),
        ..DiscoveryRequest::default()
    }
}
