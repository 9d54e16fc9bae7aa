//! Inbound: the proxy listens on the pod address at each port its workload serves (the
//! service's targetPort, where Kubernetes traffic arrives) and forwards to the application on
//! the pod's private address.
//!
//! Per connection, in order: peek the first byte (TLS or not) → enforce the port's
//! PeerAuthentication mode (STRICT refuses plaintext) → terminate mTLS and learn the caller's
//! identity and the ALPN → serve HTTP/2, HTTP/1.1 or opaque TCP to the app, reporting as
//! `reporter="destination"`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use strait_config::{AppProtocol, InboundMtls, InboundPort};
use strait_net::Door;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::body::{self, Body};
use crate::context::Shared;
use crate::forward::{Report, reported, request_authority, strip_hop_by_hop};
use crate::metrics::{Call, CallSeries, Outcome, Peer, ServiceRef};
use crate::{enforce, peer, tls};

/// How long a client may take to send its first bytes.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Listeners for the inbound ports of the current config, started and stopped as it changes.
#[derive(Debug, Default)]
pub struct Listeners {
    running: HashMap<u32, JoinHandle<()>>,
}

impl Listeners {
    /// Starts listeners for ports that appeared and stops those that went away.
    pub async fn reconcile(&mut self, px: &Shared, server: &Arc<ArcSwap<ServerConfig>>) {
        let wanted: Vec<u32> = px
            .snapshot
            .load()
            .config
            .inbound
            .values()
            .map(|p| p.port)
            .collect();
        self.running.retain(|port, task| {
            let keep = wanted.contains(port);
            if !keep {
                task.abort();
            }
            keep
        });
        for port in wanted {
            if self.running.contains_key(&port) {
                continue;
            }
            let Ok(p16) = u16::try_from(port) else {
                continue;
            };
            let addr = SocketAddr::new(px.pod_ip, p16);
            match strait_net::listen(addr) {
                Ok(l) => {
                    tracing::info!(%addr, "inbound listener up");
                    let (px, server) = (px.clone(), server.clone());
                    self.running
                        .insert(port, tokio::spawn(accept_loop(px, server, l, port)));
                }
                Err(e) => tracing::error!(%addr, error = %e, "cannot listen for inbound traffic"),
            }
        }
    }
}

async fn accept_loop(px: Shared, server: Arc<ArcSwap<ServerConfig>>, l: TcpListener, port: u32) {
    loop {
        let (s, peer) = px.reach.accept(&l, Door::Mesh, "inbound").await;
        let _ = s.set_nodelay(true);
        let (px2, cfg) = (px.clone(), server.load_full());
        px.workers.spawn_connection(s, move |s| async move {
            if let Err(e) = connection(px2, cfg, s, peer, port).await {
                tracing::debug!(%peer, port, error = %e, "inbound connection ended");
            }
        });
    }
}

/// What the proxy learned about the caller.
#[derive(Clone, Debug)]
struct Caller {
    peer: SocketAddr,
    principal: Option<String>,
    alpn: Option<Vec<u8>>,
    sni: Option<String>,
}

impl Caller {
    fn plain(peer: SocketAddr) -> Caller {
        Caller {
            peer,
            principal: None,
            alpn: None,
            sni: None,
        }
    }

    fn connection(&self, px: &Shared, port: u16) -> enforce::Connection<'_> {
        enforce::Connection {
            peer: self.peer,
            destination: SocketAddr::new(px.pod_ip, port),
            principal: self.principal.as_deref(),
            sni: self.sni.as_deref(),
        }
    }
}

pub(crate) async fn connection(
    px: Shared,
    server: Arc<ServerConfig>,
    s: TcpStream,
    peer: SocketAddr,
    port: u32,
) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(FIRST_BYTES_TIMEOUT, s.peek(&mut first))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no bytes from client"))??;
    if n == 0 {
        return Ok(());
    }
    let Some(cfg) = px
        .snapshot
        .load()
        .config
        .inbound
        .get(&port.to_string())
        .cloned()
    else {
        return Ok(());
    };
    let is_tls = first[0] == 0x16;
    match (is_tls, cfg.mtls) {
        (false, InboundMtls::Strict) => {
            // Istio's STRICT: the connection is closed before any byte reaches the app.
            tracing::info!(
                port,
                "refused a plaintext connection: the port requires mTLS (STRICT)"
            );
            Ok(())
        }
        (true, InboundMtls::Disable) => tcp(px, s, &cfg, Caller::plain(peer)).await,
        (true, _) => {
            let tls =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, TlsAcceptor::from(server).accept(s))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
            let (_, conn) = tls.get_ref();
            let caller = Caller {
                peer,
                principal: tls::peer_identity(conn.peer_certificates()),
                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                sni: conn.server_name().map(str::to_string),
            };
            if caller.principal.is_none() && cfg.mtls == InboundMtls::Strict {
                // A certificate from the mesh roots that names no workload is no identity.
                tracing::info!(
                    port,
                    "refused an mTLS connection: the client certificate has no SPIFFE identity (STRICT)"
                );
                return Ok(());
            }
            let http = match caller.alpn.as_deref() {
                Some(tls::ALPN_H2 | b"h2" | tls::ALPN_HTTP11 | b"http/1.1") => true,
                Some(tls::ALPN_TCP | tls::ALPN_TCP_PEER | tls::ALPN_PEER_EXCHANGE) => false,
                _ => cfg.protocol.is_http(),
            };
            if http {
                serve_http(px, tls, cfg, caller).await
            } else {
                tcp(px, tls, &cfg, caller).await
            }
        }
        (false, _) => {
            let http = match cfg.protocol {
                AppProtocol::Tcp | AppProtocol::Tls => false,
                AppProtocol::Auto => looks_like_http(&s).await,
                _ => true,
            };
            if http {
                serve_http(px, s, cfg, Caller::plain(peer)).await
            } else {
                tcp(px, s, &cfg, Caller::plain(peer)).await
            }
        }
    }
}

/// Protocol sniffing for ports that declare none: an HTTP/1 method or the HTTP/2 preface.
pub(crate) async fn looks_like_http(s: &TcpStream) -> bool {
    let mut buf = [0u8; 8];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), s.peek(&mut buf)).await else {
        return false;
    };
    let head = &buf[..n];
    [
        "GET ", "POST", "PUT ", "HEAD", "DELE", "PATC", "OPTI", "PRI ", "CONN", "TRAC",
    ]
    .iter()
    .any(|m| head.starts_with(m.as_bytes()))
}

async fn serve_http<S>(px: Shared, s: S, cfg: InboundPort, caller: Caller) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Ok(port) = u16::try_from(cfg.port) else {
        return Err(std::io::Error::other("bad port"));
    };
    let app = SocketAddr::new(px.app_ip, port);
    let conn = Arc::new(HttpConnection {
        app,
        app_authority: http::uri::Authority::try_from(app.to_string().as_str())
            .map_err(|e| std::io::Error::other(e.to_string()))?,
        xfcc: caller.principal.as_ref().and_then(|p| {
            // As Envoy's XFCC: who the proxy is, and who called it over mTLS.
            let me = &px.snapshot.load().me.principal;
            HeaderValue::from_str(&format!("By={me};URI={p}")).ok()
        }),
        caller,
        cfg,
        series: Mutex::new(Vec::new()),
    });
    let svc = service_fn(move |req| {
        let (px, conn) = (px.clone(), conn.clone());
        async move { Ok::<_, Infallible>(handle(px, &conn, req).await) }
    });
    crate::outbound::http_server()
        .serve_connection(TokioIo::new(s), svc)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// What stays the same for every request of one inbound HTTP connection.
struct HttpConnection {
    caller: Caller,
    cfg: InboundPort,
    app: SocketAddr,
    app_authority: http::uri::Authority,
    /// `x-forwarded-client-cert` for an mTLS caller.
    xfcc: Option<HeaderValue>,
    /// The metric series of the callers seen on this connection (the peer header as sent,
    /// the service), so that a request decodes and labels nothing it already has.
    series: Mutex<Vec<SeenCaller>>,
}

/// A caller seen on a connection: its peer header as sent, the service, their series.
type SeenCaller = (Option<HeaderValue>, String, Arc<CallSeries>);

/// At most this many caller/service series are kept per connection (a connection carries one
/// client proxy's requests: more means a client that varies its header).
const SERIES_PER_CONNECTION: usize = 8;

impl HttpConnection {
    /// The series of a request whose peer header was `raw`, for service `host`.
    fn series(&self, px: &Shared, raw: Option<HeaderValue>, host: &str) -> Arc<CallSeries> {
        let mut cache = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, _, s)) = cache.iter().find(|(r, h, _)| *r == raw && h == host) {
            return s.clone();
        }
        let principal = self.caller.principal.as_deref();
        let mut source = raw
            .as_ref()
            .and_then(|v| peer::believe(v, principal))
            .unwrap_or_default();
        source.principal = principal.unwrap_or("").to_string();
        let call = Call {
            reporter: "destination",
            source,
            destination: px.snapshot.load().me.clone(),
            service: ServiceRef {
                host: host.to_string(),
            },
            protocol: if self.cfg.protocol == AppProtocol::Grpc {
                "grpc"
            } else {
                "http"
            },
            mutual_tls: principal.is_some(),
        };
        let s = px.metrics.series(&call);
        if cache.len() >= SERIES_PER_CONNECTION {
            cache.remove(0);
        }
        cache.push((raw, host.to_string(), s.clone()));
        s
    }
}

/// One inbound request, in its span (SERVER: the workload receives it). The span's upstream
/// is the app, `inbound|<port>||`, as Envoy names its inbound cluster.
async fn handle(px: Shared, conn: &HttpConnection, mut req: Request<Incoming>) -> Response<Body> {
    let snap = px.snapshot.load_full();
    crate::outbound::ensure_request_id(req.headers_mut());
    let authority = request_authority(&req).unwrap_or_else(|| conn.app.to_string());
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let span = px.tracer.start(
        &snap.config.mesh,
        crate::trace::Kind::Server,
        &method,
        || {
            format!(
                "http://{authority}{}",
                uri.path_and_query().map_or("/", |p| p.as_str())
            )
        },
        Some(conn.caller.peer),
        req.headers_mut(),
    );
    let mut resp = serve_app(px, conn, req).await;
    if span.is_some() {
        resp.extensions_mut()
            .get_or_insert_default::<crate::trace::Notes>()
            .upstream_cluster = Some(format!("inbound|{}||", conn.app.port()));
    }
    crate::trace::finish(
        span,
        || {
            format!(
                "{}:{}/*",
                service_host(&conn.cfg, &authority),
                conn.app.port()
            )
        },
        resp,
    )
}

async fn serve_app(px: Shared, conn: &HttpConnection, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let (cfg, caller, app) = (&conn.cfg, &conn.caller, conn.app);
    let snap = px.snapshot.load_full();
    let authority = request_authority(&req).unwrap_or_else(|| app.to_string());
    let mut access_log = crate::access_log::Entry::request(&req, &snap.config.mesh);
    if let Some(e) = access_log.as_mut() {
        e.downstream_remote = Some(caller.peer);
        e.downstream_local = Some(std::net::SocketAddr::new(px.pod_ip, app.port()));
        e.requested_server_name = caller.sni.clone();
        e.upstream_cluster = Some(format!("inbound|{}||", app.port()));
        e.upstream_host = Some(app.to_string());
        e.route_name = Some("default".into());
    }
    let (mut parts, b) = req.into_parts();
    if let Err(e) = normalize_path(&mut parts.uri, snap.config.mesh.path_normalization) {
        return body::text(StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    strip_hop_by_hop(&mut parts.headers);
    let raw_peer = parts.headers.remove(peer::HEADER);
    let series = conn.series(&px, raw_peer, &service_host(cfg, &authority));
    match &conn.xfcc {
        Some(v) => {
            parts.headers.insert("x-forwarded-client-cert", v.clone());
        }
        None => {
            parts.headers.remove("x-forwarded-client-cert");
        }
    }
    let mut target = http::uri::Parts::default();
    target.scheme = Some(http::uri::Scheme::HTTP);
    target.authority = Some(conn.app_authority.clone());
    target.path_and_query = parts.uri.path_and_query().cloned();
    // The app's address, with the (normalized) path and query as received.
    parts.uri = match Uri::from_parts(target) {
        Ok(u) => u,
        Err(e) => return body::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if !parts.headers.contains_key(http::header::HOST)
        && let Ok(v) = HeaderValue::from_str(&authority)
    {
        parts.headers.insert(http::header::HOST, v);
    }
    parts.version = http::Version::HTTP_11;
    let request_bytes = http_body::Body::size_hint(&b).exact().unwrap_or(0);
    let decided = enforce::http(
        &px,
        &snap,
        &caller.connection(&px, app.port()),
        &mut parts,
        &authority,
    );
    if let Err(refused) = decided {
        return refuse(&series, started, request_bytes, access_log, &refused);
    }
    let req = Request::from_parts(parts, body::boxed(b));
    match px
        .upstreams
        .send_app(cfg.protocol.is_http2(), app, req)
        .await
    {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let (mut rp, rb) = resp.into_parts();
            strip_hop_by_hop(&mut rp.headers);
            reported(
                Response::from_parts(rp, body::boxed(rb)),
                Report {
                    series,
                    code,
                    flags: "",
                    started,
                    request_bytes,
                    access_log,
                    permit: None,
                },
            )
        }
        Err(e) => {
            crate::metrics::record(
                &series,
                &Outcome {
                    code: 503,
                    flags: e.flag(),
                    ms: started.elapsed().as_secs_f64() * 1000.0,
                    request_bytes,
                    ..Outcome::default()
                },
            );
            crate::trace::Notes::flagged(
                body::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("application at {app} unavailable: {e} ({})\n", e.flag()),
                ),
                e.flag(),
            )
        }
    }
}

/// Replaces the path of `uri` by its normalized form under `mode` (query kept).
pub(crate) fn normalize_path(
    uri: &mut Uri,
    mode: strait_config::PathNormalization,
) -> Result<(), crate::path::BadPath> {
    let normalized = match crate::path::normalize(uri.path(), mode)? {
        std::borrow::Cow::Borrowed(_) => return Ok(()),
        std::borrow::Cow::Owned(p) => p,
    };
    let target = match uri.query() {
        Some(q) => format!("{normalized}?{q}"),
        None => normalized,
    };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(
        target
            .parse()
            .map_err(|_| crate::path::BadPath(target.clone()))?,
    );
    *uri = Uri::from_parts(parts).map_err(|_| crate::path::BadPath(target))?;
    Ok(())
}

/// Answers a request the policy refused, recording it as Istio does (the request counted
/// with its status; the access log with Envoy's response code details).
pub(crate) fn refuse(
    series: &CallSeries,
    started: Instant,
    request_bytes: u64,
    access_log: Option<Box<crate::access_log::Entry>>,
    refused: &enforce::Refused,
) -> Response<Body> {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    crate::metrics::record(
        series,
        &Outcome {
            code: refused.status.as_u16(),
            flags: refused.flags,
            ms,
            request_bytes,
            ..Outcome::default()
        },
    );
    if let Some(entry) = access_log {
        let body = refused.body.len() as u64;
        entry.write(&crate::access_log::Outcome {
            code: refused.status.as_u16(),
            flags: refused.flags,
            details: &refused.details,
            bytes_received: request_bytes,
            bytes_sent: body,
            duration_ms: ms as u64,
            upstream_failure: None,
        });
    }
    crate::trace::Notes::flagged(refused.response(), refused.flags)
}

/// The service a request was for: the one whose host the authority names, else the port's
/// first service.
fn service_host(cfg: &InboundPort, authority: &str) -> String {
    let host = authority.split(':').next().unwrap_or("");
    let hosts = cfg
        .services
        .iter()
        .filter_map(|s| s.rsplit_once(':').map(|(h, _)| h));
    let mut first = None;
    for h in hosts {
        first.get_or_insert(h);
        if !host.is_empty() && (h == host || h.starts_with(&format!("{host}."))) {
            return h.to_string();
        }
    }
    first.unwrap_or("").to_string()
}

/// How long a strait client has to send its peer metadata on a TCP connection.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);

async fn tcp<S>(px: Shared, mut s: S, cfg: &InboundPort, caller: Caller) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let port = u16::try_from(cfg.port).map_err(|_| std::io::Error::other("bad port"))?;
    let app = SocketAddr::new(px.app_ip, port);
    // A strait client sends its workload's metadata first; it is believed only as far as its
    // mTLS identity vouches for it, as the HTTP header is.
    let mut source = Peer::default();
    if caller.alpn.as_deref() == Some(tls::ALPN_TCP_PEER) {
        match tokio::time::timeout(PREAMBLE_TIMEOUT, peer::read_preamble(&mut s)).await {
            Ok(Ok(v)) => {
                if let Some(p) = v.and_then(|v| peer::believe(&v, caller.principal.as_deref())) {
                    source = p;
                }
            }
            Ok(Err(e)) => {
                tracing::info!(peer = %caller.peer, port, error = %e, "closed a TCP connection with bad peer metadata");
                return Ok(());
            }
            Err(_) => {
                tracing::info!(peer = %caller.peer, port, "closed a TCP connection that sent no peer metadata in time");
                return Ok(());
            }
        }
    }
    source.principal = caller.principal.clone().unwrap_or_default();
    let call = Call {
        reporter: "destination",
        source,
        destination: px.me(),
        service: ServiceRef {
            host: service_host(cfg, ""),
        },
        protocol: "tcp",
        mutual_tls: caller.principal.is_some(),
    };
    px.metrics.tcp_opened(&call);
    let snap = px.snapshot.load_full();
    if let Err(refused) = enforce::tcp(&px, &snap, &caller.connection(&px, port)) {
        // Istio's network RBAC filter: the connection is closed before any byte reaches the app.
        tracing::debug!(peer = %caller.peer, port, details = %refused.details, "TCP connection denied");
        px.metrics.tcp_closed(&call, refused.flags, 0, 0);
        return Ok(());
    }
    let mut upstream = match px.upstreams.connect_app(app).await {
        Ok(u) => u,
        Err(e) => {
            px.metrics.tcp_closed(&call, "UF", 0, 0);
            return Err(e);
        }
    };
    let (received, sent, flags) = match tokio::io::copy_bidirectional(&mut s, &mut upstream).await {
        Ok((a, b)) => (a, b, ""),
        Err(_) => (0, 0, "UR"),
    };
    px.metrics.tcp_closed(&call, flags, received, sent);
    Ok(())
}
