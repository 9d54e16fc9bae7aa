//! Outbound TCP: an HTTP `CONNECT host:port` from the application, or a captured connection
//! to a TCP service's address, opens an opaque tunnel to a service endpoint (mTLS with ALPN
//! `istio` to a proxy, plaintext otherwise).

use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use strait_config::{ServicePort, UpstreamTls};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::balance::Status;
use crate::body::{self, Body};
use crate::context::Shared;
use crate::metrics::{Call, ServiceRef};
use crate::routing::pick_weighted;
use crate::snapshot::Snapshot;
use crate::tls;

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(super) async fn connect(
    px: Shared,
    req: Request<Incoming>,
    host: String,
    port: u16,
) -> Response<Body> {
    let started = Instant::now();
    let snap = px.snapshot.load_full();
    let tunnel = match snap.resolve(&host, port) {
        Some(sp) => open_service(&px, &snap, sp).await,
        None => open_passthrough(&px, &snap, &host, port).await,
    };
    let tunnel = match tunnel {
        Ok(t) => t,
        Err(Refusal { status, message }) => return body::text(status, format!("{message}\n")),
    };
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => pipe(&px, TokioIo::new(upgraded), tunnel, started).await,
            Err(_) => tunnel.close(&px, "DC"),
        }
    });
    Response::new(body::empty())
}

/// Why no tunnel was opened: the status a `CONNECT` is answered with, and the reason (with
/// Envoy's response flag), which a captured connection logs before closing.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// An open upstream connection, with what its metrics are recorded against and the
/// cluster's connection-limit permit, held while the tunnel lives.
pub(crate) struct Tunnel {
    upstream: Box<dyn Io>,
    call: Option<Call>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Tunnel {
    fn close(&self, px: &Shared, flags: &str) {
        if let Some(c) = &self.call {
            px.metrics.tcp_closed(c, flags, 0, 0);
        }
    }
}

/// Copies bytes both ways until either side closes, then records the connection.
pub(crate) async fn pipe<C>(px: &Shared, mut client: C, tunnel: Tunnel, started: Instant)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let Tunnel {
        mut upstream,
        call,
        _permit,
    } = tunnel;
    let (sent, received, flags) =
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((a, b)) => (a, b, ""),
            Err(_) => (0, 0, "UR"),
        };
    if let Some(c) = call {
        px.metrics.tcp_closed(&c, flags, sent, received);
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        sent,
        received,
        "tunnel closed"
    );
}

/// Opens a tunnel to an endpoint of the service port `sp`: its TCP route's cluster, an
/// endpoint by the cluster's balancer, mTLS with ALPN `istio` to a proxy.
pub(crate) async fn open_service(
    px: &Shared,
    snap: &Snapshot,
    sp: &ServicePort,
) -> Result<Tunnel, Refusal> {
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    let name = pick_weighted(&sp.tcp, &mut rand::rng()).map(|w| w.cluster.clone());
    let Some((cluster, cstate)) = name.as_deref().and_then(|n| snap.cluster(n)) else {
        return Err(refuse(unavailable, "no healthy upstream (NC)"));
    };
    let permit = match &cstate.max_connections {
        Some(limit) => Some(limit.clone().try_acquire_owned().map_err(|_| {
            refuse(
                unavailable,
                format!(
                    "upstream overflow: {} is at its maxConnections (UO)",
                    cluster.name
                ),
            )
        })?),
        None => None,
    };
    let Some(ep) = cstate.balancer.choose(cluster, &[], &mut rand::rng()) else {
        return Err(refuse(
            unavailable,
            format!("cluster {} has no healthy endpoint (UH)", cluster.name),
        ));
    };
    let Some((e, addr)) = cluster
        .endpoints
        .get(ep)
        .and_then(|e| Some((e, super::endpoint_addr(e)?)))
    else {
        return Err(refuse(unavailable, "bad endpoint (NC)"));
    };
    if cluster.tls == UpstreamTls::Originate {
        return Err(refuse(
            unavailable,
            format!("{} (NC)", super::TLS_ORIGINATION),
        ));
    }
    let mtls = super::endpoint_mtls(cluster, e);
    let timeout = Duration::from_millis(cluster.limits.connect_timeout_ms.max(1));
    let stream: Result<Box<dyn Io>, _> = if mtls {
        match px
            .upstreams
            .connect_mtls(
                addr,
                &cluster.sni,
                &cluster.identities,
                tls::ALPN_TCP_PEER,
                timeout,
            )
            .await
        {
            Ok(mut s) => {
                // A strait server takes the client's metadata first, for its metrics.
                let peer = s.get_ref().1.alpn_protocol() == Some(tls::ALPN_TCP_PEER);
                let sent = if peer {
                    crate::peer::write_preamble(&mut s, snap.peer_header.as_ref()).await
                } else {
                    Ok(())
                };
                sent.map(|()| Box::new(s) as Box<dyn Io>).map_err(|e| {
                    crate::upstream::UpstreamError::Connect {
                        addr,
                        reason: e.to_string(),
                    }
                })
            }
            Err(e) => Err(e),
        }
    } else {
        px.upstreams
            .connect_plain(addr, timeout)
            .await
            .map(|s| Box::new(s) as Box<dyn Io>)
    };
    let call = Call {
        reporter: "source",
        source: px.me(),
        destination: super::endpoint_peer(e, mtls),
        service: ServiceRef {
            host: sp.host.clone(),
        },
        protocol: "tcp",
        mutual_tls: mtls,
    };
    let status = match &stream {
        Ok(_) => Some(Status::OK),
        Err(err) => err.outlier_status(),
    };
    if let Some(status) = status {
        cstate.balancer.record(cluster, ep, status);
    }
    match stream {
        Ok(upstream) => {
            px.metrics.tcp_opened(&call);
            Ok(Tunnel {
                upstream,
                call: Some(call),
                _permit: permit,
            })
        }
        Err(err) => {
            px.metrics.tcp_opened(&call);
            px.metrics.tcp_closed(&call, err.flag(), 0, 0);
            Err(refuse(unavailable, format!("{err} ({})", err.flag())))
        }
    }
}

/// Opens a tunnel to a destination no service names (Istio's PassthroughCluster), or refuses
/// it when outbound traffic is REGISTRY_ONLY (BlackHoleCluster).
pub(crate) async fn open_passthrough(
    px: &Shared,
    snap: &Snapshot,
    host: &str,
    port: u16,
) -> Result<Tunnel, Refusal> {
    if !snap.config.mesh.allow_any_outbound {
        return Err(refuse(
            StatusCode::BAD_GATEWAY,
            format!("{host}:{port} is not a known service (BlackHoleCluster)"),
        ));
    }
    let addr = super::passthrough_addr(px, host, port)
        .await
        .map_err(|e| refuse(StatusCode::BAD_GATEWAY, format!("{e} (PassthroughCluster)")))?;
    let s = px
        .upstreams
        .connect_plain(addr, PASSTHROUGH_CONNECT_TIMEOUT)
        .await
        .map_err(|e| refuse(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(Tunnel {
        upstream: Box::new(s),
        call: None,
        _permit: None,
    })
}

/// How long a connection to a destination outside the mesh may take.
const PASSTHROUGH_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
