//! Outbound TCP: an HTTP `CONNECT host:port` from the application opens an opaque tunnel to a
//! service endpoint (mTLS with ALPN `istio` to a proxy, plaintext otherwise).

use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use strait_config::UpstreamTls;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::balance::Status;
use crate::body::{self, Body};
use crate::context::Shared;
use crate::metrics::{Call, ServiceRef};
use crate::routing::pick_weighted;
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
    let mut permit = None;
    let (upstream, call): (Box<dyn Io>, Option<Call>) = match snap.resolve(&host, port) {
        Some(sp) => {
            let name = pick_weighted(&sp.tcp, &mut rand::rng()).map(|w| w.cluster.clone());
            let Some((cluster, cstate)) = name.as_deref().and_then(|n| snap.cluster(n)) else {
                return body::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no healthy upstream (NC)\n",
                );
            };
            if let Some(limit) = &cstate.max_connections {
                match limit.clone().try_acquire_owned() {
                    Ok(p) => permit = Some(p),
                    Err(_) => {
                        return body::text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!(
                                "upstream overflow: {} is at its maxConnections (UO)\n",
                                cluster.name
                            ),
                        );
                    }
                }
            }
            let Some(ep) = cstate.balancer.choose(cluster, &[], &mut rand::rng()) else {
                return body::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cluster {} has no healthy endpoint (UH)\n", cluster.name),
                );
            };
            let Some((e, addr)) = cluster
                .endpoints
                .get(ep)
                .and_then(|e| Some((e, super::endpoint_addr(e)?)))
            else {
                return body::text(StatusCode::SERVICE_UNAVAILABLE, "bad endpoint (NC)\n");
            };
            if cluster.tls == UpstreamTls::Originate {
                return body::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{} (NC)\n", super::TLS_ORIGINATION),
                );
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
                Ok(s) => (s, Some(call)),
                Err(err) => {
                    px.metrics.tcp_opened(&call);
                    px.metrics.tcp_closed(&call, err.flag(), 0, 0);
                    return body::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("{err} ({})\n", err.flag()),
                    );
                }
            }
        }
        None if snap.config.mesh.allow_any_outbound => {
            let addr = match super::passthrough_addr(&px, &host, port).await {
                Ok(a) => a,
                Err(e) => {
                    return body::text(
                        StatusCode::BAD_GATEWAY,
                        format!("{e} (PassthroughCluster)\n"),
                    );
                }
            };
            match px
                .upstreams
                .connect_plain(addr, Duration::from_secs(10))
                .await
            {
                Ok(s) => (Box::new(s), None),
                Err(e) => return body::text(StatusCode::BAD_GATEWAY, format!("{e}\n")),
            }
        }
        None => {
            return body::text(
                StatusCode::BAD_GATEWAY,
                format!("{host}:{port} is not a known service (BlackHoleCluster)\n"),
            );
        }
    };
    if let Some(c) = &call {
        px.metrics.tcp_opened(c);
    }
    let metrics = px.metrics.clone();
    tokio::spawn(async move {
        // Held while the tunnel lives: it is one of the cluster's connections.
        let _permit = permit;
        let mut upstream = upstream;
        let (sent, received, flags) = match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    Ok((a, b)) => (a, b, ""),
                    Err(_) => (0, 0, "UR"),
                }
            }
            Err(_) => (0, 0, "DC"),
        };
        if let Some(c) = call {
            metrics.tcp_closed(&c, flags, sent, received);
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            sent,
            received,
            "tunnel closed"
        );
    });
    Response::new(body::empty())
}
