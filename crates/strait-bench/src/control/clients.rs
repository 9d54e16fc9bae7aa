//! Proxies as the control plane sees them: one real discovery stream each, over TLS on
//! loopback, authenticated with its bootstrap token, ACKing every response as a proxy that
//! applied it would. They keep no configuration (the figures are the control plane's), only
//! when each version arrived and how much it carried.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use strait_protocol::v1::DiscoveryRequest;
use strait_proxy::Bootstrap;
use strait_proxy::tls::Credentials;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::mesh::ProxyPod;

/// One response as a proxy received it.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub proxy: usize,
    pub at: Instant,
    /// Resources added or replaced, plus names removed.
    pub resources: usize,
    pub bytes: usize,
}

/// Responses received, by version (the generation they carry).
#[derive(Debug, Default)]
pub struct Arrivals {
    by_version: Mutex<HashMap<u64, Vec<Arrival>>>,
    errors: Mutex<Vec<String>>,
}

impl Arrivals {
    fn record(&self, version: u64, a: Arrival) {
        if let Ok(mut m) = self.by_version.lock() {
            m.entry(version).or_default().push(a);
        }
    }

    /// What arrived under `version`.
    pub fn of(&self, version: u64) -> Vec<Arrival> {
        self.by_version
            .lock()
            .map(|m| m.get(&version).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Opens one stream per proxy; each runs until the process ends, and is opened again when it
/// fails.
pub async fn connect_all(
    proxies: &[ProxyPod],
    control_plane: SocketAddr,
    root_cert: &Path,
    arrivals: &Arc<Arrivals>,
) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(root_cert)?;
    let creds = Credentials::new(strait_proxy::tls::root_store(&pem)?);
    for (i, p) in proxies.iter().enumerate() {
        let bs: Bootstrap = serde_json::from_value(serde_json::json!({
            "cluster": "cluster0", "namespace": p.namespace, "pod": p.pod,
            "service_account": p.service_account, "pod_ip": p.ip, "app_ip": p.ip,
            "control_plane": control_plane, "root_cert": root_cert, "token": p.token,
        }))?;
        let creds = creds.clone();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            // A stream that fails is opened again, as a proxy would (with its backoff): the
            // failure is still reported.
            let mut backoff = Duration::from_millis(200);
            loop {
                match stream(i, &bs, &creds, &arrivals).await {
                    Ok(()) => return,
                    Err(e) => {
                        if let Ok(mut errs) = arrivals.errors.lock() {
                            errs.push(format!("{}/{}: {e}", bs.namespace, bs.pod));
                        }
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }
    Ok(())
}

/// The discovery stream's method (`strait.v1.Discovery/Stream`).
const DISCOVERY_STREAM: &str = "/strait.v1.Discovery/Stream";

/// A `DiscoveryResponse` as these proxies read it: its resources left encoded. Decoding them
/// is a proxy's own work on its own CPU; decoding them here would bill it to the control
/// plane, which shares this machine with the benchmark's streams.
#[derive(Clone, PartialEq, prost::Message)]
struct OpaqueResponse {
    #[prost(string, tag = "1")]
    version: String,
    #[prost(string, tag = "2")]
    nonce: String,
    #[prost(bytes = "vec", repeated, tag = "6")]
    resources: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "7")]
    removed: Vec<Vec<u8>>,
}

async fn stream(
    i: usize,
    bs: &Bootstrap,
    creds: &Arc<Credentials>,
    arrivals: &Arrivals,
) -> anyhow::Result<()> {
    let ch = strait_proxy::control::channel(bs, creds)?;
    let (tx, rx) = mpsc::channel(4);
    tx.send(strait_proxy::control::hello(bs)).await?;
    let req = strait_proxy::control::authenticate(bs, tonic::Request::new(ReceiverStream::new(rx)));
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<DiscoveryRequest, OpaqueResponse>::default();
    let path = PathAndQuery::from_static(DISCOVERY_STREAM);
    let mut responses = grpc.streaming(req, path, codec).await?.into_inner();
    while let Some(r) = responses.message().await? {
        let at = Instant::now();
        let bytes = r.resources.iter().map(Vec::len).sum();
        arrivals.record(
            r.version.parse().unwrap_or(0),
            Arrival {
                proxy: i,
                at,
                resources: r.resources.len() + r.removed.len(),
                bytes,
            },
        );
        tx.send(DiscoveryRequest {
            response_version: r.version,
            response_nonce: r.nonce,
            ..DiscoveryRequest::default()
        })
        .await?;
    }
    Ok(())
}
