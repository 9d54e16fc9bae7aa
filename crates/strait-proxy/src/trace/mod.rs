//! Distributed tracing (Envoy's role in Istio): every HTTP request through a sidecar or a
//! gateway continues the caller's trace or starts one, the proxy's own span id goes on in
//! W3C and B3 headers, and sampled spans are exported over OTLP.
//!
//! The request path does three cheap things: read the headers, draw the sampling decision,
//! and hand a finished span to a bounded queue (`try_send`: when it is full the span is
//! dropped and counted, never waited for). Encoding and sending happen in the exporter task.

pub mod context;
mod export;
mod span;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use http::{HeaderMap, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rand::Rng;
use strait_config::{MeshSettings, ProxyRole, SAMPLING_SCALE};

use crate::body::Body;
use context::{Extracted, Outgoing};
pub use span::{Downstream, Kind, Notes};
use span::{Pending, SpanRecord, Traced};

/// The proxy's tracer: the exporter of the current collector, started on first use and
/// replaced when the configuration names another.
#[derive(Debug, Default)]
pub struct Tracer {
    exporter: ArcSwapOption<export::Exporter>,
    /// Serializes replacing the exporter; never taken on the request path otherwise.
    replacing: std::sync::Mutex<()>,
    pub drops: Drops,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

/// Sampled spans that never reached the collector, by why: the metric
/// `strait_tracing_spans_dropped_total{reason}`. A collector that is down or too slow shows
/// here (and in one log line per 10 s), never in a request.
#[derive(Clone, Debug, Default)]
pub struct Drops {
    /// The export queue was full: the collector takes spans slower than the proxy samples them.
    pub queue_full: Counter,
    /// The collector refused the batch the spans were in, or did not answer in time.
    pub export_failed: Counter,
}

impl Drops {
    /// The counters, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Drops {
        let family: Family<DropLabels, Counter> = Family::default();
        let counter = |reason| family.get_or_create(&DropLabels { reason }).clone();
        let drops = Drops {
            queue_full: counter("queue_full"),
            export_failed: counter("export_failed"),
        };
        registry.register(
            "strait_tracing_spans_dropped",
            "Sampled trace spans never exported, by reason (queue_full, export_failed)",
            family,
        );
        drops
    }
}

/// A request's span from its start: what the handler learns later is added by [`finish`].
#[derive(Debug)]
pub struct Started {
    record: SpanRecord,
    exporter: Arc<export::Exporter>,
}

impl Tracer {
    /// A tracer whose drops are counted in `registry`.
    pub fn new(registry: &mut Registry) -> Tracer {
        Tracer {
            drops: Drops::register(registry),
            ..Tracer::default()
        }
    }

    /// Continues or starts the request's trace and rewrites its trace headers. `None` when
    /// tracing is off or the span is not reported (unsampled, or nowhere to send it); the
    /// headers are still rewritten when tracing is on.
    pub fn start(
        &self,
        mesh: &MeshSettings,
        kind: Kind,
        method: &http::Method,
        url: impl FnOnce() -> String,
        peer: Option<std::net::SocketAddr>,
        headers: &mut HeaderMap,
    ) -> Option<Started> {
        let t = &mesh.tracing;
        if !t.enabled {
            return None;
        }
        let incoming = context::extract(headers);
        let ctx = child(&incoming, t.sampling, &mut rand::rng());
        context::inject(headers, &ctx);
        if !ctx.sampled {
            return None;
        }
        let collector = t.collector.as_ref()?;
        let exporter = self.exporter_for(collector, mesh)?;
        let record = SpanRecord::start(&ctx, kind, mesh, method, url(), peer, headers);
        Some(Started { record, exporter })
    }

    fn exporter_for(
        &self,
        collector: &strait_config::Collector,
        mesh: &MeshSettings,
    ) -> Option<Arc<export::Exporter>> {
        let service = service_name(mesh);
        if let Some(e) = self.exporter.load_full()
            && e.serves(collector, &service)
        {
            return Some(e);
        }
        let _one = self
            .replacing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = self.exporter.load_full()
            && e.serves(collector, &service)
        {
            return Some(e);
        }
        // Spawned on the runtime of the request that needs it; the old exporter's task
        // flushes what it holds and ends when its last handle goes.
        let e = Arc::new(export::Exporter::spawn(
            collector.clone(),
            service,
            mesh,
            self.drops.clone(),
        )?);
        self.exporter.store(Some(e.clone()));
        Some(e)
    }
}

/// The span this proxy opens inside the caller's trace (or a new trace), and whether it is
/// sampled: the caller's decision when it made one, else a draw at `sampling` millionths.
pub fn child(incoming: &Extracted, sampling: u32, rng: &mut impl Rng) -> Outgoing {
    let sampled = incoming.debug
        || incoming
            .sampled
            .unwrap_or_else(|| rng.random_range(0..SAMPLING_SCALE) < sampling);
    let span_id = nonzero(rng);
    match &incoming.parent {
        Some(p) => Outgoing {
            trace_id: p.trace_id,
            span_id,
            parent: Some(p.span_id),
            sampled,
            debug: incoming.debug,
        },
        None => {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&nonzero(rng));
            trace_id[8..].copy_from_slice(&nonzero(rng));
            Outgoing {
                trace_id,
                span_id,
                parent: None,
                sampled,
                debug: incoming.debug,
            }
        }
    }
}

fn nonzero(rng: &mut impl Rng) -> [u8; 8] {
    rng.random_range(1..=u64::MAX).to_be_bytes()
}

/// The OTLP `service.name` of this proxy's spans: Istio's default tracing service name,
/// `<app or workload>.<namespace>` (`APP_LABEL_AND_NAMESPACE`).
fn service_name(mesh: &MeshSettings) -> String {
    let n = &mesh.node;
    let app = if n.app.is_empty() {
        &n.workload
    } else {
        &n.app
    };
    format!("{app}.{}", n.namespace)
}

/// The span kind of a server-side HTTP handler of this proxy: a gateway receives requests
/// from outside (SERVER), a sidecar's outbound side calls out (CLIENT).
pub fn routing_kind(mesh: &MeshSettings) -> Kind {
    match mesh.node.role {
        ProxyRole::Gateway => Kind::Server,
        ProxyRole::Sidecar => Kind::Client,
    }
}

/// Ends the request's span with what the response says (status, and the [`Notes`] the
/// handler left on it); the span is sent when the response body is finished or dropped.
/// The operation name is only built for a request that is traced.
pub fn finish(
    started: Option<Started>,
    operation: impl FnOnce() -> String,
    resp: Response<Body>,
) -> Response<Body> {
    let Some(s) = started else {
        return resp;
    };
    let notes = resp
        .extensions()
        .get::<Notes>()
        .cloned()
        .unwrap_or_default();
    let pending = Pending {
        record: s.record.respond(resp.status().as_u16(), notes, operation()),
        exporter: s.exporter,
    };
    resp.map(|b| Traced::wrap(b, pending))
}
