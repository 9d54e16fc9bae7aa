//! One span per request per proxy, with the attributes Istio's proxies give theirs, so trace
//! UIs built for Istio (Jaeger, Tempo, Kiali) show strait's spans the same way.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use strait_config::{CustomTag, MeshSettings, ProxyRole};

use super::context::{Outgoing, SpanId, TraceId};
use super::export::Exporter;
use crate::body::{self, Body, BoxError};

/// OTLP's span kinds for a proxy: it is the server of the request it receives and the client
/// of the one it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
}

/// What a handler learned that the response does not carry, left on it as an extension:
/// the operation name (Istio's route decorator), the upstream cluster, Envoy's flags.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    pub operation: Option<String>,
    pub upstream_cluster: Option<String>,
    pub flags: String,
}

impl Notes {
    /// `resp` with Envoy's response flags noted for its span.
    pub fn flagged(mut resp: http::Response<Body>, flags: &str) -> http::Response<Body> {
        resp.extensions_mut().get_or_insert_default::<Notes>().flags = flags.to_string();
        resp
    }
}

/// The downstream peer's address, left on a request by the listener that accepted it, for
/// the span's `peer.address`.
#[derive(Clone, Copy, Debug)]
pub struct Downstream(pub SocketAddr);

/// A span as it is queued for export.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub kind: Kind,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(String, String)>,
    pub error: bool,
}

impl SpanRecord {
    pub(super) fn start(
        ctx: &Outgoing,
        kind: Kind,
        mesh: &MeshSettings,
        method: &http::Method,
        url: String,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> SpanRecord {
        let n = &mesh.node;
        let role = match n.role {
            ProxyRole::Sidecar => "sidecar",
            ProxyRole::Gateway => "router",
        };
        let mut a: Vec<(String, String)> = vec![
            ("component".into(), "proxy".into()),
            ("http.method".into(), method.as_str().into()),
            ("http.url".into(), url),
            (
                "node_id".into(),
                format!(
                    "{role}~{}.{}~{}.svc.{}",
                    n.pod, n.namespace, n.namespace, mesh.domain
                ),
            ),
            ("istio.canonical_service".into(), canonical_service(mesh)),
            ("istio.namespace".into(), n.namespace.clone()),
            ("istio.cluster_id".into(), n.cluster.clone()),
        ];
        if !n.version.is_empty() {
            a.push(("istio.canonical_revision".into(), n.version.clone()));
        }
        if !mesh.tracing.mesh_id.is_empty() {
            a.push(("istio.mesh_id".into(), mesh.tracing.mesh_id.clone()));
        }
        if let Some(p) = peer {
            a.push(("peer.address".into(), p.ip().to_string()));
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(id) = header("x-request-id") {
            a.push(("guid:x-request-id".into(), id));
        }
        if let Some(ua) = header("user-agent") {
            a.push(("user_agent".into(), ua));
        }
        for tag in &mesh.tracing.custom_tags {
            let (name, value) = match tag {
                CustomTag::Literal { tag, value } => (tag, value.clone()),
                CustomTag::Header {
                    tag,
                    header: h,
                    default,
                } => (tag, header(h).unwrap_or_else(|| default.clone())),
                CustomTag::Environment { tag, name, default } => {
                    (tag, std::env::var(name).unwrap_or_else(|_| default.clone()))
                }
            };
            if !value.is_empty() {
                a.push((name.clone(), value));
            }
        }
        let now = SystemTime::now();
        SpanRecord {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            parent: ctx.parent,
            kind,
            name: String::new(),
            start: now,
            end: now,
            attributes: a,
            error: false,
        }
    }

    /// Adds what the response tells: status, upstream cluster, flags, operation name.
    pub(super) fn respond(mut self, status: u16, notes: Notes, operation: String) -> SpanRecord {
        self.name = notes.operation.unwrap_or(operation);
        let a = &mut self.attributes;
        a.push(("http.status_code".into(), status.to_string()));
        a.push((
            "response_flags".into(),
            if notes.flags.is_empty() {
                "-".into()
            } else {
                notes.flags
            },
        ));
        if let Some(c) = notes.upstream_cluster {
            a.push(("upstream_cluster".into(), c.clone()));
            a.push(("upstream_cluster.name".into(), c));
        }
        if status >= 500 {
            self.error = true;
            a.push(("error".into(), "true".into()));
        }
        self
    }
}

/// Istio's canonical service: the `app` label, else the workload's name.
fn canonical_service(mesh: &MeshSettings) -> String {
    let n = &mesh.node;
    if n.app.is_empty() {
        n.workload.clone()
    } else {
        n.app.clone()
    }
}

/// A span waiting for the end of its response.
#[derive(Debug)]
pub struct Pending {
    pub(super) record: SpanRecord,
    pub(super) exporter: Arc<Exporter>,
}

impl Pending {
    fn end(self) {
        let mut r = self.record;
        r.end = SystemTime::now();
        self.exporter.submit(r);
    }
}

/// The response body, ending the span when the body ends (or the client goes away), as
/// Envoy ends a request's span with its stream.
pub(super) struct Traced {
    inner: Body,
    pending: Option<Pending>,
}

impl Traced {
    pub(super) fn wrap(inner: Body, pending: Pending) -> Body {
        body::boxed(Traced {
            inner,
            pending: Some(pending),
        })
    }
}

impl http_body::Body for Traced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some(p) = self.pending.take()
        {
            p.end();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.end();
        }
    }
}
