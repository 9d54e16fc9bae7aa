//! Relaying a connection, bytes untouched, to an endpoint of a cluster: what `AUTO_PASSTHROUGH`
//! and `PASSTHROUGH` servers do after reading the SNI, and TCP servers do at once.

use std::io;
use std::time::Duration;

use strait_config::WeightedCluster;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::balance::Status;
use crate::context::Shared;
use crate::metrics::{Call, ServiceRef};
use crate::routing::pick_weighted;

/// Endpoints tried before a relay gives up (a second one when the first refuses: a pod that
/// just went away).
const CONNECT_ATTEMPTS: usize = 2;

/// Relays to one of `route`'s clusters, picked by weight.
pub(super) async fn to_route<S>(
    px: &Shared,
    client: S,
    route: &[WeightedCluster],
    sni: Option<&str>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(name) = pick_weighted(route, &mut rand::rng()).map(|w| w.cluster.clone()) else {
        return Err(io::Error::other("the route has no destination"));
    };
    to_cluster(px, client, &name, sni).await
}

/// Relays to an endpoint of cluster `name`.
pub(super) async fn to_cluster<S>(
    px: &Shared,
    mut client: S,
    name: &str,
    sni: Option<&str>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let snap = px.snapshot.load_full();
    let Some((cluster, state)) = snap.cluster(name) else {
        return Err(io::Error::other(format!("no cluster {name}")));
    };
    let timeout = Duration::from_millis(cluster.limits.connect_timeout_ms.max(1));
    let mut tried = Vec::new();
    let mut last_error = None;
    for _ in 0..CONNECT_ATTEMPTS.min(cluster.endpoints.len().max(1)) {
        let Some(i) = state.balancer.choose(cluster, &tried, &mut rand::rng()) else {
            break;
        };
        tried.push(i);
        let Some((e, addr)) = cluster
            .endpoints
            .get(i)
            .and_then(|e| Some((e, crate::outbound::endpoint_addr(e)?)))
        else {
            continue;
        };
        let call = Call {
            reporter: "source",
            source: px.me(),
            destination: crate::outbound::endpoint_peer(e, false),
            service: ServiceRef {
                host: cluster.host.clone(),
            },
            protocol: "tcp",
            mutual_tls: false,
        };
        let mut upstream = match tokio::time::timeout(timeout, px.reach.connect(addr)).await {
            Ok(Ok(s)) => {
                state.balancer.record(cluster, i, Status::OK);
                s
            }
            Ok(Err(err)) => {
                state.balancer.record(cluster, i, Status::CONNECT_FAILED);
                tracing::debug!(cluster = %name, %addr, error = %err, "relay connect failed");
                px.metrics.tcp_opened(&call);
                px.metrics.tcp_closed(&call, "UF", 0, 0);
                last_error = Some(err);
                continue;
            }
            Err(_) => {
                state.balancer.record(cluster, i, Status::TIMEOUT);
                px.metrics.tcp_opened(&call);
                px.metrics.tcp_closed(&call, "UF", 0, 0);
                last_error = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr}"),
                ));
                continue;
            }
        };
        px.metrics.tcp_opened(&call);
        let _inflight = state.balancer.start(i);
        tracing::debug!(cluster = %name, sni = sni.unwrap_or(""), %addr, "relaying");
        let (sent, received, flags) =
            match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                Ok((a, b)) => (a, b, ""),
                Err(_) => (0, 0, "UR"),
            };
        px.metrics.tcp_closed(&call, flags, sent, received);
        return Ok(());
    }
    Err(last_error.unwrap_or_else(|| io::Error::other(format!("cluster {name} has no endpoints"))))
}
