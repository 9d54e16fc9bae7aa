//! Connections to upstream endpoints.
//!
//! Proxy to proxy: mTLS with Istio's SNI and ALPN, HTTP/2 multiplexed over one pooled
//! connection per (endpoint, SNI), so many requests share a handshake. To endpoints without a
//! proxy, and to the local application: plaintext HTTP/1.1 or h2c through hyper's pooled client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use strait_net::Reach;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::body::{Body, BoxError};
use crate::tls::{self, Credentials};

mod pool;
use pool::{Checkout, H2Pool, PoolHandle, PoolKey};

/// Why an upstream attempt failed, in the terms retry policies use.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP or TLS could not be established (`connect-failure`).
    #[error("connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The server refused the stream before processing it (`refused-stream`).
    #[error("stream refused by {0}")]
    Refused(SocketAddr),
    /// The connection broke mid-request (`reset`).
    #[error("connection to {addr} reset: {reason}")]
    Reset { addr: SocketAddr, reason: String },
    #[error("upstream timed out")]
    Timeout,
    #[error("{0}")]
    Config(String),
}

impl UpstreamError {
    /// Envoy's response flag for the failure.
    pub fn flag(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "UF",
            UpstreamError::Refused(_) | UpstreamError::Reset { .. } => "UR",
            UpstreamError::Timeout => "UT",
            UpstreamError::Config(_) => "NC",
        }
    }

    /// The status outlier detection counts for the failure, as Envoy stands in for one (a
    /// refused or broken connection is a 503, a timeout a 504); `None` for a failure of this
    /// proxy's own configuration, which says nothing of the endpoint.
    pub fn outlier_status(&self) -> Option<crate::balance::Status> {
        match self {
            UpstreamError::Connect { .. }
            | UpstreamError::Refused(_)
            | UpstreamError::Reset { .. } => Some(crate::balance::Status::CONNECT_FAILED),
            UpstreamError::Timeout => Some(crate::balance::Status::TIMEOUT),
            UpstreamError::Config(_) => None,
        }
    }
}

/// Idle proxy-to-proxy connections are pinged this often, and dropped when a ping goes
/// unanswered this long.
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Client TLS settings are cached per (expected peer identities, ALPN), up to this many.
const TLS_CACHE_LIMIT: usize = 1024;

/// Client TLS settings are cached per (expected peer identities, ALPN).
type TlsKey = (String, &'static [u8]);

/// Upstream connections of one proxy.
pub struct Upstreams {
    creds: Arc<Credentials>,
    reach: Reach,
    app_source: Option<std::net::IpAddr>,
    tls_configs: Mutex<HashMap<TlsKey, Arc<rustls::ClientConfig>>>,
    /// Connection pools per worker (see [`crate::workers`]): a worker reuses only the
    /// connections its own runtime drives.
    pools: Box<[Pools]>,
}

/// The pools of one worker.
struct Pools {
    h2: H2Pool,
    http1: Client<ReachConnector, Body>,
    h2c: Client<ReachConnector, Body>,
    /// To the local application: apart from the others because, under traffic capture,
    /// these connections leave from the address the capture rules let through.
    app_http1: Client<ReachConnector, Body>,
    app_h2c: Client<ReachConnector, Body>,
}

/// How long a plaintext upstream connection may take.
const PLAIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper's connector for plaintext upstreams (the local app, endpoints without a proxy):
/// connections leave from the pod's address, as every connection of the proxy does. Only IP
/// addresses are dialled; names were resolved before a request gets here.
#[derive(Clone, Debug)]
pub struct ReachConnector {
    reach: Arc<Reach>,
    /// The source address to bind instead of the table's (see [`Upstreams::new`]).
    source: Option<std::net::IpAddr>,
}

impl tower::Service<http::Uri> for ReachConnector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (reach, source) = (self.reach.clone(), self.source);
        Box::pin(async move {
            let host = uri
                .host()
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']');
            let ip: std::net::IpAddr = host.parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("upstream {uri} is not an IP address"),
                )
            })?;
            let port = uri.port_u16().unwrap_or(80);
            let addr = SocketAddr::new(ip, port);
            let stream =
                tokio::time::timeout(PLAIN_CONNECT_TIMEOUT, reach.connect_from(source, addr))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("connect to {addr}"),
                        )
                    })??;
            Ok(TokioIo::new(stream))
        })
    }
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams").finish_non_exhaustive()
    }
}

impl Upstreams {
    /// Upstreams with `slots` sets of pools, one per worker (see [`Workers::slots`]).
    /// `app_source`: the address connections to the local application leave from (under
    /// traffic capture, 127.0.0.6: from the pod's address they would be redirected back to
    /// the proxy's own inbound listener).
    ///
    /// [`Workers::slots`]: crate::workers::Workers::slots
    pub fn new(
        creds: Arc<Credentials>,
        reach: Reach,
        slots: usize,
        app_source: Option<std::net::IpAddr>,
    ) -> Upstreams {
        let conn = ReachConnector {
            reach: Arc::new(reach.clone()),
            source: None,
        };
        let app = ReachConnector {
            source: app_source,
            ..conn.clone()
        };
        let plain = || {
            let mut b = Client::builder(TokioExecutor::new());
            // Without a timer hyper never reaps idle connections: a burst of 256 concurrent
            // requests to the app would leave 256 connections open for good. Idle ones are
            // not capped in number: closing those a burst opened makes the next burst dial
            // them again, and under sustained concurrency that churn costs more than it saves.
            b.pool_timer(TokioTimer::new())
                .pool_idle_timeout(pool::IDLE_TIMEOUT);
            b
        };
        let pools = (0..slots.max(1))
            .map(|_| Pools {
                h2: H2Pool::default(),
                http1: plain().build(conn.clone()),
                h2c: plain().http2_only(true).build(conn.clone()),
                app_http1: plain().build(app.clone()),
                app_h2c: plain().http2_only(true).build(app.clone()),
            })
            .collect();
        Upstreams {
            creds,
            reach,
            app_source,
            tls_configs: Mutex::new(HashMap::new()),
            pools,
        }
    }

    /// The calling worker's pools.
    fn pools(&self) -> &Pools {
        let i = crate::workers::current();
        &self.pools[i.min(self.pools.len() - 1)]
    }

    /// The client TLS config for a set of allowed identities and an ALPN, cached.
    fn tls_config(
        &self,
        identities: &[String],
        alpn: &'static [u8],
    ) -> Result<Arc<rustls::ClientConfig>, UpstreamError> {
        let key = (identities.join(","), alpn);
        let mut cache = self
            .tls_configs
            .lock()
            .map_err(|_| UpstreamError::Config("tls cache poisoned".into()))?;
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let cfg = tls::client_config(&self.creds, identities, alpn)
            .map_err(|e| UpstreamError::Config(e.to_string()))?;
        // Identity sets come from the configuration, which may change without bound over a
        // proxy's life; a full cache starts over rather than grow.
        if cache.len() >= TLS_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, cfg.clone());
        Ok(cfg)
    }

    /// Opens an mTLS connection to a proxy.
    pub async fn connect_mtls(
        &self,
        addr: SocketAddr,
        sni: &str,
        identities: &[String],
        alpn: &'static [u8],
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, UpstreamError> {
        let cfg = self.tls_config(identities, alpn)?;
        let name = ServerName::try_from(sni.to_string())
            .map_err(|e| UpstreamError::Config(format!("sni {sni}: {e}")))?;
        let fut = async {
            let tcp = self
                .reach
                .connect(addr)
                .await
                .map_err(|e| UpstreamError::Connect {
                    addr,
                    reason: e.to_string(),
                })?;
            TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .map_err(|e| UpstreamError::Connect {
                    addr,
                    reason: format!("tls: {e}"),
                })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| UpstreamError::Connect {
                addr,
                reason: "connect timeout".into(),
            })?
    }

    /// Opens a plaintext TCP connection.
    pub async fn connect_plain(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpStream, UpstreamError> {
        tokio::time::timeout(timeout, self.reach.connect(addr))
            .await
            .map_err(|_| UpstreamError::Connect {
                addr,
                reason: "connect timeout".into(),
            })?
            .map_err(|e| UpstreamError::Connect {
                addr,
                reason: e.to_string(),
            })
    }

    /// Sends a request to a server proxy over pooled HTTP/2-over-mTLS. `max_per_conn` recycles
    /// a connection after that many requests (DestinationRule `maxRequestsPerConnection`).
    pub async fn send_mtls(
        &self,
        addr: SocketAddr,
        sni: &str,
        identities: &[String],
        max_per_conn: Option<u32>,
        connect_timeout: Duration,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let key: PoolKey = (addr, sni.to_string());
        let h2 = &self.pools().h2;
        let mut sender = loop {
            match h2.checkout(&key, max_per_conn) {
                Checkout::Ready(sender) => break sender,
                Checkout::Wait(waiter) => waiter
                    .wait()
                    .await
                    .map_err(|reason| UpstreamError::Connect { addr, reason })?,
                Checkout::Dial(dial) => {
                    match self.dial_h2(&key, identities, connect_timeout).await {
                        Ok((sender, conn)) => {
                            let id = dial.done(Ok(sender.clone()));
                            tokio::spawn(drive(conn, h2.handle(), key, id));
                            break sender;
                        }
                        Err(e) => {
                            let reason = match &e {
                                UpstreamError::Connect { reason, .. } => reason.clone(),
                                other => other.to_string(),
                            };
                            dial.done(Err(reason));
                            return Err(e);
                        }
                    }
                }
            }
        };
        sender.ready().await.map_err(|e| UpstreamError::Reset {
            addr,
            reason: e.to_string(),
        })?;
        sender
            .send_request(req)
            .await
            .map_err(|e| classify(addr, &e))
    }

    /// Opens an HTTP/2-over-mTLS connection to a proxy.
    async fn dial_h2(
        &self,
        (addr, sni): &PoolKey,
        identities: &[String],
        connect_timeout: Duration,
    ) -> Result<(http2::SendRequest<Body>, H2Connection), UpstreamError> {
        let addr = *addr;
        let tls = self
            .connect_mtls(addr, sni, identities, tls::ALPN_H2, connect_timeout)
            .await?;
        // Pings find a peer that vanished without closing (a host gone, a network
        // partition), so a dead pooled connection is dropped instead of reused.
        http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
            .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| UpstreamError::Connect {
                addr,
                reason: format!("h2: {e}"),
            })
    }

    /// Sends a plaintext request (`uri` must be absolute: `http://addr/path`).
    pub async fn send_plain(
        &self,
        h2c: bool,
        addr: SocketAddr,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let pools = self.pools();
        let client = if h2c { &pools.h2c } else { &pools.http1 };
        Self::send(client, addr, req).await
    }

    /// Sends a plaintext request to the local application.
    pub async fn send_app(
        &self,
        h2c: bool,
        addr: SocketAddr,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let pools = self.pools();
        let client = if h2c {
            &pools.app_h2c
        } else {
            &pools.app_http1
        };
        Self::send(client, addr, req).await
    }

    /// Opens a TCP connection to the local application.
    pub async fn connect_app(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        self.reach.connect_from(self.app_source, addr).await
    }

    async fn send(
        client: &Client<ReachConnector, Body>,
        addr: SocketAddr,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        client.request(req).await.map_err(|e| {
            if e.is_connect() {
                UpstreamError::Connect {
                    addr,
                    reason: e.to_string(),
                }
            } else {
                UpstreamError::Reset {
                    addr,
                    reason: source_chain(&e),
                }
            }
        })
    }
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A failed send: REFUSED_STREAM means the server never processed the request (safe to retry
/// anywhere); anything else broke mid-flight. hyper does not expose h2's error codes, only
/// their text in the error chain.
///
/// A request hyper never dispatched (its connection closed first: `is_canceled`) was not
/// seen by the server either, so it counts as refused too.
fn classify(addr: SocketAddr, e: &hyper::Error) -> UpstreamError {
    let chain = source_chain(e);
    if e.is_canceled() || chain.contains("REFUSED_STREAM") || chain.contains("refused stream") {
        UpstreamError::Refused(addr)
    } else {
        UpstreamError::Reset {
            addr,
            reason: chain,
        }
    }
}

type H2Connection = http2::Connection<TokioIo<TlsStream<TcpStream>>, Body, TokioExecutor>;

/// Runs a pooled connection until it closes, taking it out of the pool then; a connection
/// idle for [`pool::IDLE_TIMEOUT`] leaves the pool and closes once its last request is done
/// (hyper closes an HTTP/2 client connection whose senders are all gone).
async fn drive(conn: H2Connection, pool: PoolHandle, key: PoolKey, id: u64) {
    let mut conn = std::pin::pin!(conn);
    let mut tick = tokio::time::interval(pool::IDLE_TIMEOUT / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut conn => {
                pool.closed(&key, id);
                break r;
            }
            _ = tick.tick() => {
                if pool.evict_if_idle(&key, id, Instant::now()) {
                    break conn.await;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(addr = %key.0, error = %e, "upstream connection closed");
    }
}

/// Turns an error into a boxed one for bodies.
pub fn boxed_err(e: impl Into<BoxError>) -> BoxError {
    e.into()
}
