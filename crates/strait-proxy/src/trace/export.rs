//! OTLP export, off the request path: spans wait in a bounded queue (full → dropped and
//! counted) and one task per collector sends them in batches, over gRPC (TraceService) or
//! HTTP (protobuf body), with a deadline per export. A failing collector costs one log line
//! per 10 s naming it, and never a request.

use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message;
use strait_config::{Collector, MeshSettings, OtlpProtocol};
use tokio::sync::mpsc;

use super::Drops;
use super::span::{Kind, SpanRecord};

/// Spans waiting for export at most; past it new spans are dropped. At Envoy's batch size
/// this is a few seconds of a busy proxy's sampled traffic, a few MiB at worst.
const QUEUE: usize = 4096;
/// Spans per export request.
const BATCH: usize = 256;
/// How long a span waits for its batch to fill.
const FLUSH: Duration = Duration::from_millis(500);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The sending side of one collector's export task.
#[derive(Debug)]
pub struct Exporter {
    collector: Collector,
    service: String,
    tx: mpsc::Sender<SpanRecord>,
    drops: Drops,
}

impl Exporter {
    /// Starts the export task on the current Tokio runtime; `None` outside one.
    pub fn spawn(
        collector: Collector,
        service: String,
        mesh: &MeshSettings,
        drops: Drops,
    ) -> Option<Exporter> {
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let resource = resource(&service, mesh);
        rt.spawn(run(collector.clone(), resource, rx, drops.clone()));
        Some(Exporter {
            collector,
            service,
            tx,
            drops,
        })
    }

    pub fn serves(&self, collector: &Collector, service: &str) -> bool {
        self.collector == *collector && self.service == service
    }

    pub fn submit(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            self.drops.queue_full.inc();
        }
    }
}

fn resource(service: &str, mesh: &MeshSettings) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", service.to_string()),
            kv("k8s.namespace.name", mesh.node.namespace.clone()),
            kv("k8s.pod.name", mesh.node.pod.clone()),
        ],
        ..Default::default()
    }
}

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// Collects batches until every sender is gone, then sends what is left.
async fn run(
    collector: Collector,
    resource: Resource,
    mut rx: mpsc::Receiver<SpanRecord>,
    drops: Drops,
) {
    let mut client = Client::new(&collector);
    let mut failures = Failures::default();
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        let due = tokio::time::Instant::now() + FLUSH;
        let mut closed = false;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(due, rx.recv()).await {
                Ok(Some(s)) => batch.push(s),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let spans = batch.len() as u64;
        let req = request(&resource, batch);
        match client.export(&collector, req).await {
            Ok(()) => failures.ok(),
            Err(e) => {
                drops.export_failed.inc_by(spans);
                failures.failed(&collector, &client.target, &e);
            }
        }
        if closed {
            return;
        }
    }
}

fn request(resource: &Resource, batch: Vec<SpanRecord>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "strait-proxy".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: batch.into_iter().map(to_otlp).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn to_otlp(s: SpanRecord) -> Span {
    let nanos = |t: std::time::SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: s.name,
        kind: match s.kind {
            Kind::Server => span::SpanKind::Server,
            Kind::Client => span::SpanKind::Client,
        } as i32,
        start_time_unix_nano: nanos(s.start),
        end_time_unix_nano: nanos(s.end),
        attributes: s.attributes.into_iter().map(|(k, v)| kv(&k, v)).collect(),
        status: s.error.then(|| Status {
            code: status::StatusCode::Error as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Where and how one collector is reached. The address rotates over the mesh endpoints the
/// control plane named after a failure, so one dead replica does not stop export.
struct Client {
    target: String,
    next: usize,
    grpc: Option<TraceServiceClient<tonic::transport::Channel>>,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
}

impl Client {
    fn new(c: &Collector) -> Client {
        let mut client = Client {
            target: String::new(),
            next: 0,
            grpc: None,
            http: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        };
        client.rotate(c);
        client
    }

    fn rotate(&mut self, c: &Collector) {
        self.target = match c.endpoints.get(self.next % c.endpoints.len().max(1)) {
            Some(e) => e.clone(),
            None => format!("{}:{}", c.service, c.port),
        };
        self.next = self.next.wrapping_add(1);
        self.grpc = None;
    }

    async fn export(
        &mut self,
        c: &Collector,
        req: ExportTraceServiceRequest,
    ) -> Result<(), String> {
        let deadline = Duration::from_millis(if c.timeout_ms == 0 {
            5000
        } else {
            c.timeout_ms
        });
        let result = match &c.protocol {
            OtlpProtocol::Grpc => self.grpc(req, deadline).await,
            OtlpProtocol::Http { path, headers } => self.http(path, headers, req, deadline).await,
        };
        if result.is_err() {
            self.rotate(c);
        }
        result
    }

    async fn grpc(
        &mut self,
        req: ExportTraceServiceRequest,
        deadline: Duration,
    ) -> Result<(), String> {
        if self.grpc.is_none() {
            let ep = tonic::transport::Endpoint::from_shared(format!("http://{}", self.target))
                .map_err(|e| e.to_string())?
                .connect_timeout(deadline)
                .timeout(deadline);
            self.grpc = Some(TraceServiceClient::new(ep.connect_lazy()));
        }
        let Some(client) = self.grpc.as_mut() else {
            return Err("no client".into());
        };
        client
            .export(req)
            .await
            .map(|_| ())
            .map_err(|s| format!("{}: {}", s.code(), s.message()))
    }

    async fn http(
        &self,
        path: &str,
        headers: &[(String, String)],
        req: ExportTraceServiceRequest,
        deadline: Duration,
    ) -> Result<(), String> {
        let path = if path.is_empty() { "/v1/traces" } else { path };
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let mut b = http::Request::post(format!("http://{}{path}", self.target))
            .header(http::header::CONTENT_TYPE, "application/x-protobuf");
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let r = b
            .body(http_body_util::Full::new(Bytes::from(req.encode_to_vec())))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(deadline, self.http.request(r))
            .await
            .map_err(|_| format!("no answer within {deadline:?}"))?
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("status {}", resp.status()))
        }
    }
}

/// Export failures, logged at most once per [`LOG_EVERY`] with the number left unsaid.
#[derive(Default)]
struct Failures {
    last: Option<Instant>,
    unsaid: u64,
}

impl Failures {
    fn ok(&mut self) {
        self.unsaid = 0;
    }

    fn failed(&mut self, c: &Collector, target: &str, e: &str) {
        if self.last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            self.unsaid += 1;
            return;
        }
        tracing::warn!(
            provider = %c.provider,
            collector = %format!("{}:{}", c.service, c.port),
            address = %target,
            error = %e,
            failures_not_logged = self.unsaid,
            "exporting trace spans failed; the spans are dropped"
        );
        self.last = Some(Instant::now());
        self.unsaid = 0;
    }
}
