//! Outbound HTTP: route, pick a cluster and endpoint, send (mTLS HTTP/2 to proxies, plaintext
//! to the rest), retry per policy, time out per policy, report.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rand::Rng;
use strait_config::{Cluster, HttpAction, Retry, ServicePort, UpstreamTls};

use crate::balance::Status;
use crate::body::{self, Body};
use crate::context::Shared;
use crate::forward::{Report, reported, request_authority, strip_hop_by_hop};
use crate::metrics::{Call, Outcome, Peer, ServiceRef};
use crate::peer;
use crate::routing::{RequestView, pick_weighted, select};

use super::policy;
use crate::snapshot::Snapshot;
use crate::upstream::UpstreamError;

/// Bodies up to this size are kept so a retry can resend them; larger or streaming bodies are
/// sent once and never retried (the upstream's answer, whatever it is, goes to the client).
const REPLAY_LIMIT: u64 = 64 * 1024;

/// Where the client wants to go: `host:port` from the absolute URI or the Host header.
pub(super) fn target(req: &Request<Incoming>) -> Option<(String, u16)> {
    let auth = request_authority(req)?;
    let (host, port) = match auth.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h.to_string(), p),
            Err(_) => (auth.clone(), 80),
        },
        _ => (auth.clone(), 80),
    };
    Some((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    ))
}

pub(super) async fn handle(
    px: Shared,
    mut req: Request<Incoming>,
    host: String,
    port: u16,
) -> Response<Body> {
    let snap = px.snapshot.load_full();
    // Before tracing starts, so the span carries the request id the upstream sees.
    ensure_request_id(req.headers_mut());
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let downstream = req
        .extensions()
        .get::<crate::trace::Downstream>()
        .map(|d| d.0);
    let span = px.tracer.start(
        &snap.config.mesh,
        crate::trace::Kind::Client,
        &method,
        || {
            format!(
                "http://{host}:{port}{}",
                uri.path_and_query().map_or("/", |p| p.as_str())
            )
        },
        downstream,
        req.headers_mut(),
    );
    let Some(sp) = snap.resolve(&host, port) else {
        let resp = passthrough(&px, &snap, req, &host, port).await;
        return crate::trace::finish(span, || format!("{host}:{port}/*"), resp);
    };
    let resp = serve(&px, &snap, sp, req, format!("{host}:{port}"), None).await;
    crate::trace::finish(span, || format!("{}:{port}/*", sp.host), resp)
}

/// Routes a request by the rules of `sp` (a service port of a sidecar, or a virtual host of
/// a gateway) and sends it: rule, faults, cluster, endpoint, retries, timeouts, metrics.
/// `claims`: the request's verified JWT, at a gateway that checked one.
pub(crate) async fn serve(
    px: &Shared,
    snap: &Snapshot,
    sp: &ServicePort,
    req: Request<Incoming>,
    authority: String,
    claims: Option<&crate::jwt::Claims>,
) -> Response<Body> {
    let started = Instant::now();
    let px = px.clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let rule = {
        let view = RequestView {
            method: req.method().as_str(),
            path: &path,
            query: query.as_deref(),
            authority: &authority,
            scheme: "http",
            headers: req.headers(),
            claims,
        };
        select(&sp.http, &view, &snap.regexes).map(|(r, m)| (r.clone(), m.cloned()))
    };
    let operation = rule
        .as_ref()
        .map(|(r, m)| route_operation(r, m.as_ref(), sp));
    let Some((rule, matched)) = rule else {
        let r = body::text(
            StatusCode::NOT_FOUND,
            format!("no route for {authority}{path} (NR)\n"),
        );
        return local(&px, sp, started, "NR", r);
    };
    // Fault injection comes first, as Envoy's fault filter runs before the router.
    let injected = policy::roll(rule.policy.fault.as_ref(), &mut rand::rng());
    if let Some(d) = injected.delay {
        tokio::time::sleep(d).await;
    }
    if let Some(status) = injected.abort {
        let flags = if injected.delay.is_some() {
            "DI,FI"
        } else {
            "FI"
        };
        return noted(
            local(
                &px,
                sp,
                started,
                flags,
                body::text(status, "fault filter abort\n"),
            ),
            operation,
            None,
        );
    }
    let weighted = match &rule.action {
        HttpAction::Respond { status, body } => {
            let mut r = Response::new(body::full(body.clone()));
            *r.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            return noted(local(&px, sp, started, "", r), operation, None);
        }
        HttpAction::Redirect {
            uri,
            authority: to,
            code,
        } => {
            let location = format!(
                "http://{}{}",
                if to.is_empty() {
                    authority.as_str()
                } else {
                    to
                },
                if uri.is_empty() { path.as_str() } else { uri }
            );
            let mut r = Response::new(body::empty());
            *r.status_mut() = StatusCode::from_u16(*code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            return noted(local(&px, sp, started, "", r), operation, None);
        }
        HttpAction::Route(ws) => ws.clone(),
    };
    let chosen = {
        let mut rng = rand::rng();
        pick_weighted(&weighted, &mut rng).cloned()
    };
    let Some((cluster, cstate)) = chosen.as_ref().and_then(|w| snap.cluster(&w.cluster)) else {
        let r = body::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no healthy upstream (NC)\n",
        );
        return noted(local(&px, sp, started, "NC", r), operation, None);
    };
    let permit = match &cstate.max_requests {
        Some(sem) => match sem.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let mut call = call_for(&px, sp, Some(cluster), None, false);
                call.destination.workload.clear();
                px.metrics.request(
                    &call,
                    &Outcome {
                        code: 503,
                        flags: "UO",
                        ..Outcome::default()
                    },
                );
                let r = body::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream overflow: connection pool limit reached (UO)\n",
                );
                return noted(
                    crate::trace::Notes::flagged(r, "UO"),
                    operation,
                    Some(&cluster.name),
                );
            }
        },
        None => None,
    };
    let mut access_log = crate::access_log::Entry::request(&req, &snap.config.mesh);
    if let Some(e) = access_log.as_mut() {
        e.route_name = Some(rule.name.clone());
    }
    let (mut parts, incoming) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let dest_headers = chosen.map(|w| w.headers).unwrap_or_default();
    policy::apply_headers(&mut parts.headers, &rule.policy.headers.request);
    policy::apply_headers(&mut parts.headers, &dest_headers.request);
    let mut authority = authority;
    if let Some(rw) = &rule.policy.rewrite {
        let pq = policy::rewrite_path(&path, query.as_deref(), rw, matched.as_ref(), &snap.regexes);
        match Uri::try_from(pq) {
            Ok(u) => parts.uri = u,
            Err(e) => {
                tracing::warn!(rule = %rule.name, error = %e, "rewritten path is not a valid URI; not rewritten")
            }
        }
        if !rw.authority.is_empty() {
            authority.clone_from(&rw.authority);
        }
    }
    parts.headers.remove(peer::HEADER);
    ensure_request_id(&mut parts.headers);
    if let Some(v) = &snap.peer_header {
        parts.headers.insert(peer::HEADER, v.clone());
    }
    let replay = match http_body::Body::size_hint(&incoming).exact() {
        Some(n) if n <= REPLAY_LIMIT => match incoming.collect().await {
            Ok(c) => Replay::Buffered(c.to_bytes()),
            Err(e) => {
                return body::text(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body: {e}\n"),
                );
            }
        },
        _ => Replay::Stream(Some(incoming)),
    };
    let request_bytes = replay.len();
    let attempt = Attempt {
        px: &px,
        sp,
        cluster,
        parts,
        authority,
    };
    // The route's timeout covers every try and the whole response body (see `with_deadline`).
    let deadline = rule
        .timeout_ms
        .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let outcome = match deadline {
        Some(d) => tokio::time::timeout_at(d, attempt.run(&rule.retries, replay, cstate))
            .await
            .unwrap_or(Err(Failed {
                error: UpstreamError::Timeout,
                endpoint: None,
            })),
        None => attempt.run(&rule.retries, replay, cstate).await,
    };
    match outcome {
        Ok((resp, ep, mtls)) => {
            let code = resp.status().as_u16();
            let (mut rparts, rbody) = resp.into_parts();
            strip_hop_by_hop(&mut rparts.headers);
            policy::apply_headers(&mut rparts.headers, &rule.policy.headers.response);
            policy::apply_headers(&mut rparts.headers, &dest_headers.response);
            let grpc = sp.protocol == strait_config::AppProtocol::Grpc;
            let series = cstate.series(ep, grpc, mtls, || {
                px.metrics.series(&call_for(
                    &px,
                    sp,
                    Some(cluster),
                    cluster.endpoints.get(ep),
                    mtls,
                ))
            });
            if let Some(entry) = access_log.as_mut() {
                entry.upstream_cluster = Some(cluster.name.clone());
                entry.upstream_host = cluster
                    .endpoints
                    .get(ep)
                    .map(|e| format!("{}:{}", e.address, e.port));
            }
            let rbody = match deadline {
                Some(d) => body::with_deadline(body::boxed(rbody), d),
                None => body::boxed(rbody),
            };
            let flags = if injected.delay.is_some() { "DI" } else { "" };
            let resp = reported(
                Response::from_parts(rparts, rbody),
                Report {
                    series,
                    code,
                    flags,
                    started,
                    request_bytes,
                    access_log,
                    permit,
                },
            );
            noted(
                crate::trace::Notes::flagged(resp, flags),
                operation,
                Some(&cluster.name),
            )
        }
        Err(f) => {
            let (status, flag) = match &f.error {
                UpstreamError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "UT"),
                e => (StatusCode::SERVICE_UNAVAILABLE, e.flag()),
            };
            let call = call_for(
                &px,
                sp,
                Some(cluster),
                f.endpoint.and_then(|i| cluster.endpoints.get(i)),
                false,
            );
            px.metrics.request(
                &call,
                &Outcome {
                    code: status.as_u16(),
                    flags: flag,
                    ms: started.elapsed().as_secs_f64() * 1000.0,
                    request_bytes,
                    ..Outcome::default()
                },
            );
            if let Some(mut entry) = access_log {
                entry.upstream_cluster = Some(cluster.name.clone());
                entry.upstream_host = f
                    .endpoint
                    .and_then(|i| cluster.endpoints.get(i))
                    .map(|e| format!("{}:{}", e.address, e.port));
                let failure = f.error.to_string();
                entry.write(&crate::access_log::Outcome {
                    code: status.as_u16(),
                    flags: flag,
                    details: "upstream_reset_before_response_started",
                    bytes_received: request_bytes,
                    duration_ms: started.elapsed().as_millis() as u64,
                    upstream_failure: Some(&failure),
                    ..Default::default()
                });
            }
            let r = body::text(
                status,
                format!(
                    "upstream request to {} failed: {} ({flag})\n",
                    sp.host, f.error
                ),
            );
            noted(
                crate::trace::Notes::flagged(r, flag),
                operation,
                Some(&cluster.name),
            )
        }
    }
}

/// Adds the route's operation name and upstream cluster to the span notes of `resp`.
fn noted(
    mut resp: Response<Body>,
    operation: Option<String>,
    cluster: Option<&str>,
) -> Response<Body> {
    let notes = resp
        .extensions_mut()
        .get_or_insert_default::<crate::trace::Notes>();
    notes.operation = operation;
    if let Some(c) = cluster {
        notes.upstream_cluster = Some(c.to_string());
    }
    resp
}

/// Istio's route decorator, the span's name: `<host>:<port><path>` where the host is the
/// route's one destination service (the VirtualService's name when it splits over several)
/// and the path the matched URI (`prefix*`, the exact path, the regex), else `/*`.
fn route_operation(
    rule: &strait_config::HttpRule,
    matched: Option<&strait_config::RequestMatch>,
    sp: &ServicePort,
) -> String {
    use strait_config::StrMatch;
    let path = match matched.and_then(|m| m.uri.as_ref()) {
        Some(StrMatch::Prefix(p)) => format!("{p}*"),
        Some(StrMatch::Exact(p) | StrMatch::Regex(p)) => p.clone(),
        None => "/*".to_string(),
    };
    let host = match &rule.action {
        HttpAction::Route(ws) if ws.len() == 1 => ws
            .first()
            .and_then(|w| w.cluster.rsplit('|').next())
            .unwrap_or(&sp.host)
            .to_string(),
        _ => sp
            .virtual_service
            .as_deref()
            .and_then(|v| v.rsplit('/').next())
            .unwrap_or(&sp.host)
            .to_string(),
    };
    format!("{host}:{}{path}", sp.port)
}

/// A response the proxy makes itself (no route, fault abort, direct response, redirect, no
/// cluster, a policy's denial): counted like every request, with its flags.
pub(crate) fn local(
    px: &Shared,
    sp: &ServicePort,
    started: Instant,
    flags: &str,
    resp: Response<Body>,
) -> Response<Body> {
    let resp = crate::trace::Notes::flagged(resp, flags);
    px.metrics.request(
        &call_for(px, sp, None, None, false),
        &Outcome {
            code: resp.status().as_u16(),
            flags,
            ms: started.elapsed().as_secs_f64() * 1000.0,
            ..Outcome::default()
        },
    );
    resp
}

/// Envoy's `x-request-id`: kept when the client sent one, else a random UUID-sized id.
pub(crate) fn ensure_request_id(h: &mut http::HeaderMap) {
    if !h.contains_key("x-request-id") {
        let id: u128 = rand::rng().random();
        if let Ok(v) = HeaderValue::from_str(&format!("{id:032x}")) {
            h.insert("x-request-id", v);
        }
    }
}

/// The metrics of a call. `destination_service` is the service of the cluster the request
/// was routed to (Istio's label), else the host the request was for.
fn call_for(
    px: &Shared,
    sp: &ServicePort,
    cluster: Option<&Cluster>,
    ep: Option<&strait_config::Endpoint>,
    mtls: bool,
) -> Call {
    let destination = ep.map_or_else(Peer::default, |e| super::endpoint_peer(e, mtls));
    Call {
        reporter: "source",
        source: px.me(),
        destination,
        service: ServiceRef {
            host: cluster.map_or_else(|| sp.host.clone(), |c| c.host.clone()),
        },
        protocol: if sp.protocol == strait_config::AppProtocol::Grpc {
            "grpc"
        } else {
            "http"
        },
        mutual_tls: mtls,
    }
}

/// The request body, kept for retries when small.
enum Replay {
    Buffered(Bytes),
    Stream(Option<Incoming>),
}

impl Replay {
    fn len(&self) -> u64 {
        match self {
            Replay::Buffered(b) => b.len() as u64,
            Replay::Stream(_) => 0,
        }
    }

    /// Whether another try can send the body again.
    fn can_resend(&self) -> bool {
        matches!(self, Replay::Buffered(_))
    }

    /// The body for the next try; `None` when a streaming body was already sent.
    fn take(&mut self) -> Option<Body> {
        match self {
            Replay::Buffered(b) => Some(body::full(b.clone())),
            Replay::Stream(s) => s.take().map(body::boxed),
        }
    }
}

struct Failed {
    error: UpstreamError,
    endpoint: Option<usize>,
}

struct Attempt<'a> {
    px: &'a Shared,
    sp: &'a ServicePort,
    cluster: &'a Cluster,
    parts: http::request::Parts,
    authority: String,
}

impl Attempt<'_> {
    /// Tries, then retries per `policy`, each on an endpoint not tried before when one is left.
    async fn run(
        &self,
        policy: &Retry,
        mut replay: Replay,
        cstate: &crate::snapshot::ClusterState,
    ) -> Result<(Response<Incoming>, usize, bool), Failed> {
        let tries = policy.attempts.saturating_add(1);
        let mut tried: Vec<usize> = Vec::new();
        let mut last: Option<Failed> = None;
        for n in 0..tries {
            if n > 0 {
                // Envoy's default retry back-off: 25 ms base, jittered, growing.
                let base = 25u64 << (n - 1).min(3);
                let jitter = rand::rng().random_range(0..=base);
                tokio::time::sleep(Duration::from_millis(base + jitter)).await;
            }
            let ep = {
                let mut rng = rand::rng();
                cstate.balancer.choose(self.cluster, &tried, &mut rng)
            };
            let Some(ep) = ep else {
                return Err(Failed {
                    error: UpstreamError::Connect {
                        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                        reason: format!(
                            "cluster {} has no healthy endpoint (UH)",
                            self.cluster.name
                        ),
                    },
                    endpoint: None,
                });
            };
            tried.push(ep);
            let Some(body) = replay.take() else { break };
            let _inflight = cstate.balancer.start(ep);
            let send = self.send(ep, body);
            let result = match policy.per_try_timeout_ms {
                Some(ms) => tokio::time::timeout(Duration::from_millis(ms), send)
                    .await
                    .unwrap_or(Err(UpstreamError::Timeout)),
                None => send.await,
            };
            let mtls = self.uses_mtls(ep);
            let status = match &result {
                Ok(resp) => Some(Status(resp.status().as_u16())),
                Err(e) => e.outlier_status(),
            };
            if let Some(status) = status {
                cstate.balancer.record(self.cluster, ep, status);
            }
            match result {
                Ok(resp)
                    if n + 1 < tries
                        && replay.can_resend()
                        && retriable_status(&policy.retry_on, &resp) =>
                {
                    last = Some(Failed {
                        error: UpstreamError::Reset {
                            addr: self
                                .addr(ep)
                                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                            reason: format!("status {}", resp.status()),
                        },
                        endpoint: Some(ep),
                    });
                }
                Ok(resp) => return Ok((resp, ep, mtls)),
                Err(e)
                    if n + 1 < tries
                        && replay.can_resend()
                        && (retriable_error(&policy.retry_on, &e)
                            || lost_idempotent(&self.parts.method, &e)) =>
                {
                    tracing::debug!(cluster = %self.cluster.name, error = %e, "retrying");
                    last = Some(Failed {
                        error: e,
                        endpoint: Some(ep),
                    });
                }
                Err(e) => {
                    return Err(Failed {
                        error: e,
                        endpoint: Some(ep),
                    });
                }
            }
        }
        Err(last.unwrap_or(Failed {
            error: UpstreamError::Timeout,
            endpoint: None,
        }))
    }

    fn addr(&self, ep: usize) -> Option<SocketAddr> {
        super::endpoint_addr(self.cluster.endpoints.get(ep)?)
    }

    fn uses_mtls(&self, ep: usize) -> bool {
        self.cluster
            .endpoints
            .get(ep)
            .is_some_and(|e| super::endpoint_mtls(self.cluster, e))
    }

    async fn send(&self, ep: usize, body: Body) -> Result<Response<Incoming>, UpstreamError> {
        if self.cluster.tls == UpstreamTls::Originate {
            return Err(UpstreamError::Config(super::TLS_ORIGINATION.into()));
        }
        let addr = self.addr(ep).ok_or_else(|| {
            UpstreamError::Config(format!("bad endpoint in {}", self.cluster.name))
        })?;
        let path = self.parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::new(body);
        *req.method_mut() = self.parts.method.clone();
        *req.headers_mut() = self.parts.headers.clone();
        let connect_timeout = Duration::from_millis(self.cluster.limits.connect_timeout_ms.max(1));
        if self.uses_mtls(ep) {
            *req.uri_mut() = Uri::try_from(format!("http://{}{path}", self.authority))
                .map_err(|e| UpstreamError::Config(format!("request uri: {e}")))?;
            *req.version_mut() = Version::HTTP_2;
            req.headers_mut().remove(http::header::HOST);
            self.px
                .upstreams
                .send_mtls(
                    addr,
                    &self.cluster.sni,
                    &self.cluster.identities,
                    self.cluster.limits.max_requests_per_connection,
                    connect_timeout,
                    req,
                )
                .await
        } else {
            *req.uri_mut() = Uri::try_from(format!("http://{addr}{path}"))
                .map_err(|e| UpstreamError::Config(format!("request uri: {e}")))?;
            if let Ok(v) = HeaderValue::from_str(&self.authority) {
                req.headers_mut().insert(http::header::HOST, v);
            }
            req.headers_mut().remove(peer::HEADER);
            let h2c = self.cluster.protocol.is_http2() || self.sp.protocol.is_http2();
            self.px.upstreams.send_plain(h2c, addr, req).await
        }
    }
}

/// Whether a response's status (or gRPC status) asks for a retry under `retry_on`.
fn retriable_status(retry_on: &[String], resp: &Response<Incoming>) -> bool {
    let code = resp.status().as_u16();
    let grpc = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    retry_on.iter().any(|c| match c.as_str() {
        "5xx" => code >= 500,
        "gateway-error" => matches!(code, 502..=504),
        "retriable-4xx" => code == 409,
        "cancelled" => grpc == Some(1),
        "deadline-exceeded" => grpc == Some(4),
        "resource-exhausted" => grpc == Some(8),
        "internal" => grpc == Some(13),
        "unavailable" => grpc == Some(14),
        other => other.parse::<u16>().is_ok_and(|n| n == code),
    })
}

/// Whether a failed try may be retried under `retry_on`.
fn retriable_error(retry_on: &[String], e: &UpstreamError) -> bool {
    retry_on.iter().any(|c| {
        matches!(
            (c.as_str(), e),
            (
                "connect-failure" | "5xx" | "gateway-error",
                UpstreamError::Connect { .. }
            ) | (
                "refused-stream" | "5xx" | "reset",
                UpstreamError::Refused(_)
            ) | ("reset" | "5xx", UpstreamError::Reset { .. })
                | ("5xx" | "gateway-error", UpstreamError::Timeout)
        )
    })
}

/// An idempotent request whose connection broke before any response came back (a server
/// proxy killed mid-flight, a pooled connection closed under it): resending it is safe by
/// definition (RFC 9110 §9.2.2), whatever `retryOn` says, as browsers and HTTP clients do.
fn lost_idempotent(method: &http::Method, e: &UpstreamError) -> bool {
    use http::Method;
    matches!(e, UpstreamError::Reset { .. })
        && [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
            Method::PUT,
            Method::DELETE,
        ]
        .contains(method)
}

/// A host no service names: forwarded as is when the mesh allows any outbound traffic
/// (Istio's PassthroughCluster), refused otherwise (BlackHoleCluster).
async fn passthrough(
    px: &Shared,
    snap: &Snapshot,
    req: Request<Incoming>,
    host: &str,
    port: u16,
) -> Response<Body> {
    if !snap.config.mesh.allow_any_outbound {
        return body::text(
            StatusCode::BAD_GATEWAY,
            format!(
                "{host}:{port} is not a known service and outbound traffic is REGISTRY_ONLY (BlackHoleCluster)\n"
            ),
        );
    }
    let addr = match super::passthrough_addr(px, host, port).await {
        Ok(a) => a,
        Err(e) => {
            return body::text(
                StatusCode::BAD_GATEWAY,
                format!("{e} (PassthroughCluster)\n"),
            );
        }
    };
    let (mut parts, b) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = match Uri::try_from(format!("http://{addr}{path}")) {
        Ok(u) => u,
        Err(e) => return body::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{host}:{port}")) {
        parts.headers.insert(http::header::HOST, v);
    }
    match px
        .upstreams
        .send_plain(false, addr, Request::from_parts(parts, body::boxed(b)))
        .await
    {
        Ok(r) => r.map(body::boxed),
        Err(e) => body::text(
            StatusCode::BAD_GATEWAY,
            format!("PassthroughCluster {addr}: {e}\n"),
        ),
    }
}
