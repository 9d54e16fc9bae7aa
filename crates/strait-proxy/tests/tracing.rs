//! Tracing end to end on loopback: requests through a sidecar's outbound listener to a plain
//! app, spans exported to an in-process OTLP receiver (tonic TraceService).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use strait_config::{Collector, OtlpProtocol, ProxyConfig, SAMPLING_SCALE, TracingSettings};
use strait_proxy::context::Proxy;
use strait_proxy::snapshot::Snapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

/// An OTLP collector that hands every span it receives to the test.
struct Receiver(mpsc::UnboundedSender<Span>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for rs in req.into_inner().resource_spans {
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let _ = self.0.send(s);
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Span>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );
    (addr, rx)
}

/// An app that answers every request with the request's headers, one `name: value` a line.
async fn app() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let mut out = String::new();
                        for (k, v) in req.headers() {
                            out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
                        }
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(out)),
                        ))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// A sidecar whose one service, `hw.sample.svc.cluster.local:5000`, is the app.
/// A sidecar sending to `app`, with the metrics registry it counts in.
struct Sidecar {
    addr: SocketAddr,
    registry: prometheus_client::registry::Registry,
}

async fn sidecar(app: SocketAddr, tracing: TracingSettings) -> Sidecar {
    let mesh = r#"{"trust_domain":"cluster.local","trust_domain_aliases":[],"domain":"cluster.local","allow_any_outbound":true,"access_log":false,"node":{"cluster":"c1","network":"","namespace":"sample","pod":"sleep-1","workload":"sleep","app":"sleep","version":"v1","service_account":"sleep","identity":"spiffe://cluster.local/ns/sample/sa/sleep"}}"#;
    let service = r#"{"host":"hw.sample.svc.cluster.local","port":5000,"namespace":"sample","protocol":"http","http":[{"name":"default","matches":[],"action":{"route":[{"cluster":"outbound|5000||hw.sample.svc.cluster.local","weight":100}]},"timeout_ms":null,"retries":{"attempts":0,"per_try_timeout_ms":null,"retry_on":[]},"policy":{"rewrite":null,"headers":{"request":{"set":[],"add":[],"remove":[]},"response":{"set":[],"add":[],"remove":[]}},"fault":null}}],"tcp":[],"virtual_service":null}"#;
    let cluster = format!(
        r#"{{"name":"outbound|5000||hw.sample.svc.cluster.local","host":"hw.sample.svc.cluster.local","port":5000,"subset":"","protocol":"http","lb":"ROUND_ROBIN","tls":"AUTO","sni":"","identities":[],"limits":{{"max_connections":null,"max_pending_requests":null,"max_requests":null,"max_requests_per_connection":null,"max_retries":null,"connect_timeout_ms":1000}},"endpoints":[{{"address":"127.0.0.1","port":{},"weight":1,"mtls":false,"workload":{{"pod":"hw-1","workload":"hw","namespace":"sample","cluster":"c1","network":"","app":"hw","version":"v1","identity":""}}}}],"destination_rule":null}}"#,
        app.port()
    );
    let mut cfg = ProxyConfig {
        mesh: serde_json::from_str(mesh).expect("mesh"),
        ..ProxyConfig::default()
    };
    cfg.mesh.tracing = tracing;
    let sp: strait_config::ServicePort = serde_json::from_str(service).expect("service");
    cfg.services
        .insert("hw.sample.svc.cluster.local:5000".into(), sp);
    let c: strait_config::Cluster = serde_json::from_str(&cluster).expect("cluster");
    cfg.clusters.insert(c.name.clone(), c);
    let snap = Snapshot::build("1".into(), cfg, &Snapshot::empty()).expect("snapshot");
    let creds = strait_proxy::tls::Credentials::new(rustls::RootCertStore::empty());
    let mut registry = prometheus_client::registry::Registry::default();
    let workers = strait_proxy::workers::Workers::start(1).expect("workers");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let outbound = listener.local_addr().expect("addr");
    let px = Arc::new(Proxy {
        snapshot: ArcSwap::from_pointee(snap),
        upstreams: strait_proxy::upstream::Upstreams::new(
            creds.clone(),
            strait_net::Reach::default(),
            workers.slots(),
            None,
        ),
        metrics: Arc::new(strait_proxy::metrics::Metrics::new(&mut registry)),
        tracer: strait_proxy::trace::Tracer::new(&mut registry),
        creds,
        app_ip: [127, 0, 0, 1].into(),
        pod_ip: [127, 0, 0, 1].into(),
        outbound,
        capture: false,
        inbound_capture: 15006,
        reach: strait_net::Reach::default(),
        workers,
    });
    tokio::spawn(strait_proxy::outbound::serve(px, listener));
    Sidecar {
        addr: outbound,
        registry,
    }
}

/// The sample of `series` (`name{labels}`) in the registry's exposition, 0 when absent.
fn sample(registry: &prometheus_client::registry::Registry, series: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn settings(percent: u32, collector: SocketAddr) -> TracingSettings {
    TracingSettings {
        enabled: true,
        sampling: SAMPLING_SCALE / 100 * percent,
        collector: Some(Collector {
            provider: "otel".into(),
            service: collector.ip().to_string(),
            port: collector.port(),
            endpoints: vec![collector.to_string()],
            protocol: OtlpProtocol::Grpc,
            timeout_ms: 1000,
        }),
        custom_tags: Vec::new(),
        mesh_id: "mesh1".into(),
    }
}

/// Sends a GET through the sidecar with `headers`; the status and the headers the app saw.
async fn get(proxy: SocketAddr, headers: &[(&str, String)]) -> (u16, Vec<(String, String)>) {
    let mut s = TcpStream::connect(proxy).await.expect("connect");
    let mut req = "GET http://hw.sample.svc.cluster.local:5000/hello HTTP/1.1\r\nhost: hw.sample.svc.cluster.local:5000\r\nconnection: close\r\n".to_string();
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let seen = body
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (status, seen)
}

fn seen<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn next_span(rx: &mut mpsc::UnboundedReceiver<Span>) -> Span {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a span within 10s")
        .expect("receiver open")
}

fn attr(s: &Span, key: &str) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map_or(String::new(), |v| match v {
            Value::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

#[tokio::test]
async fn traces_are_continued_and_exported() {
    let (collector, mut spans) = receiver().await;
    let proxy = sidecar(app().await, settings(100, collector)).await.addr;

    // W3C in: the same trace, our span as the app's parent, in both formats.
    let (status, h) = get(proxy, &[("traceparent", format!("00-{TRACE}-{SPAN}-01"))]).await;
    assert_eq!(status, 200);
    let tp = seen(&h, "traceparent").to_string();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.get(1), Some(&TRACE), "{h:?}");
    assert_ne!(parts.get(2), Some(&SPAN));
    assert_eq!(parts.get(3), Some(&"01"));
    assert_eq!(seen(&h, "x-b3-traceid"), TRACE);
    assert_eq!(Some(&seen(&h, "x-b3-spanid")), parts.get(2));
    assert_eq!(seen(&h, "x-b3-parentspanid"), SPAN);
    assert_eq!(seen(&h, "x-b3-sampled"), "1");
    assert!(!seen(&h, "x-request-id").is_empty());
    let s = next_span(&mut spans).await;
    assert_eq!(hex(&s.trace_id), TRACE);
    assert_eq!(hex(&s.parent_span_id), SPAN);
    assert_eq!(Some(&hex(&s.span_id).as_str()), parts.get(2));
    assert_eq!(s.kind, 3, "CLIENT");
    assert_eq!(s.name, "hw.sample.svc.cluster.local:5000/*");
    assert_eq!(attr(&s, "http.status_code"), "200");
    assert_eq!(attr(&s, "http.method"), "GET");
    assert_eq!(attr(&s, "component"), "proxy");
    assert_eq!(attr(&s, "istio.mesh_id"), "mesh1");
    assert_eq!(attr(&s, "istio.canonical_service"), "sleep");
    assert_eq!(
        attr(&s, "upstream_cluster"),
        "outbound|5000||hw.sample.svc.cluster.local"
    );
    assert_eq!(attr(&s, "guid:x-request-id"), seen(&h, "x-request-id"));

    // B3 in (64-bit trace id, single header too): continued, both formats agree.
    let (status, h) = get(
        proxy,
        &[
            ("x-b3-traceid", "a3ce929d0e0e4736".into()),
            ("x-b3-spanid", SPAN.into()),
            ("x-b3-sampled", "1".into()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let wide = "0000000000000000a3ce929d0e0e4736";
    assert_eq!(seen(&h, "x-b3-traceid"), wide);
    assert!(seen(&h, "traceparent").contains(wide), "{h:?}");
    let s = next_span(&mut spans).await;
    assert_eq!(hex(&s.trace_id), wide);
    assert_eq!(hex(&s.parent_span_id), SPAN);

    // Nothing in (or garbage): a new trace, a root span.
    let (status, h) = get(proxy, &[("traceparent", "00-zz-yy-01".into())]).await;
    assert_eq!(status, 200);
    let s = next_span(&mut spans).await;
    assert!(s.parent_span_id.is_empty());
    assert_eq!(seen(&h, "x-b3-traceid"), hex(&s.trace_id));
    assert_ne!(hex(&s.trace_id), TRACE);
}

#[tokio::test]
async fn zero_sampling_exports_nothing_but_propagates() {
    let (collector, mut spans) = receiver().await;
    let proxy = sidecar(app().await, settings(0, collector)).await.addr;
    for _ in 0..5 {
        let (status, h) = get(proxy, &[]).await;
        assert_eq!(status, 200);
        assert!(seen(&h, "traceparent").ends_with("-00"), "{h:?}");
        assert_eq!(seen(&h, "x-b3-sampled"), "0");
    }
    let got = tokio::time::timeout(Duration::from_millis(1500), spans.recv()).await;
    assert!(got.is_err(), "no span expected, got {got:?}");
}

#[tokio::test]
async fn a_dead_collector_never_fails_a_request() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let proxy = sidecar(app().await, settings(100, dead)).await;
    for _ in 0..20 {
        let (status, _) = get(proxy.addr, &[]).await;
        assert_eq!(status, 200);
    }
    // The 20 spans are not lost silently: once their batch fails, the drop metric says so.
    let series = r#"strait_tracing_spans_dropped_total{reason="export_failed"}"#;
    let mut failed = 0;
    for _ in 0..100 {
        failed = sample(&proxy.registry, series);
        if failed == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed, 20, "{series}");
    let full = r#"strait_tracing_spans_dropped_total{reason="queue_full"}"#;
    assert_eq!(sample(&proxy.registry, full), 0, "{full}");
}
