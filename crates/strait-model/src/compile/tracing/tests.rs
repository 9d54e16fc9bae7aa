use super::super::tests::{mesh_with, sleep_proxy};
use super::super::{Runtime, compile};
use strait_config::{CustomTag, OtlpProtocol, SAMPLING_SCALE, TracingSettings};

/// The `istio` ConfigMap with `mesh` as its mesh config, then `extra` documents.
fn with_mesh(mesh: &str, extra: &str) -> TracingSettings {
    let indented: String = mesh.lines().map(|l| format!("    {l}\n")).collect();
    let doc = format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
{indented}---
{extra}"
    );
    let (_d, m) = mesh_with(&doc);
    compile(&m, &Runtime::default(), &sleep_proxy())
        .expect("compile")
        .mesh
        .tracing
}

const PROVIDERS: &str = "defaultConfig:
  meshId: m1
  tracing: {sampling: 25}
extensionProviders:
- name: otel
  opentelemetry: {service: otel.observability.svc.cluster.local, port: 4317}
- name: otel-http
  opentelemetry:
    service: collector.example.com
    port: 4318
    http: {path: /traces, timeout: 2s, headers: [{name: x-token, value: t}]}
- name: zip
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
";

fn telemetry(ns: &str, name: &str, body: &str) -> String {
    format!(
        "---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: {name}, namespace: {ns}}}
spec:
{body}
"
    )
}

#[test]
fn istio_defaults() {
    let t = with_mesh("{}", "");
    assert!(t.enabled);
    assert_eq!(t.sampling, SAMPLING_SCALE / 100);
    assert_eq!(t.collector, None);
    assert!(!with_mesh("enableTracing: false", "").enabled);
}

#[test]
fn legacy_sampling_and_default_provider() {
    let t = with_mesh(
        &format!("{PROVIDERS}defaultProviders: {{tracing: [otel]}}\n"),
        "",
    );
    assert_eq!(t.sampling, SAMPLING_SCALE / 4);
    assert_eq!(t.mesh_id, "m1");
    let c = t.collector.expect("collector");
    assert_eq!(
        (c.service.as_str(), c.port),
        ("otel.observability.svc.cluster.local", 4317)
    );
    assert_eq!(c.protocol, OtlpProtocol::Grpc);
}

#[test]
fn workload_overrides_namespace_overrides_mesh() {
    let extra = [
        telemetry(
            "istio-system",
            "mesh",
            "  tracing:\n  - providers: [{name: otel}]\n    randomSamplingPercentage: 10\n    customTags: {a: {literal: {value: mesh}}, b: {literal: {value: mesh}}}",
        ),
        telemetry(
            "sample",
            "ns",
            "  tracing:\n  - randomSamplingPercentage: 50\n    customTags: {b: {header: {name: X-B, defaultValue: none}}}",
        ),
        telemetry(
            "sample",
            "sleep",
            "  selector: {matchLabels: {app: sleep}}\n  tracing:\n  - providers: [{name: otel-http}]",
        ),
        // Another workload's: does not apply.
        telemetry(
            "sample",
            "hw",
            "  selector: {matchLabels: {app: helloworld}}\n  tracing:\n  - disableSpanReporting: true",
        ),
    ]
    .concat();
    let t = with_mesh(PROVIDERS, &extra);
    assert_eq!(t.sampling, SAMPLING_SCALE / 2);
    let c = t.collector.expect("collector");
    assert_eq!(c.provider, "otel-http");
    assert_eq!(c.timeout_ms, 2000);
    assert_eq!(
        c.protocol,
        OtlpProtocol::Http {
            path: "/traces".into(),
            headers: vec![("x-token".into(), "t".into())]
        }
    );
    assert_eq!(
        t.custom_tags,
        vec![
            CustomTag::Literal {
                tag: "a".into(),
                value: "mesh".into()
            },
            CustomTag::Header {
                tag: "b".into(),
                header: "x-b".into(),
                default: "none".into()
            },
        ]
    );
}

#[test]
fn reporting_off_and_unsupported_providers_report_nothing() {
    let off = telemetry(
        "sample",
        "ns",
        "  tracing:\n  - providers: [{name: otel}]\n    disableSpanReporting: true",
    );
    let t = with_mesh(PROVIDERS, &off);
    assert!(t.enabled);
    assert_eq!(t.collector, None);
    let zipkin = telemetry("sample", "ns", "  tracing:\n  - providers: [{name: zip}]");
    assert_eq!(with_mesh(PROVIDERS, &zipkin).collector, None);
    // Telemetry tracing applies even with enableTracing off, as in Istio.
    let on = telemetry("sample", "ns", "  tracing:\n  - providers: [{name: otel}]");
    let t = with_mesh(&format!("{PROVIDERS}enableTracing: false\n"), &on);
    assert!(t.enabled && t.collector.is_some());
}

#[test]
fn sampling_is_clamped() {
    assert_eq!(super::millionths(Some(150.0)), SAMPLING_SCALE);
    assert_eq!(super::millionths(Some(-3.0)), 0);
    assert_eq!(super::millionths(Some(f64::NAN)), SAMPLING_SCALE / 100);
    assert_eq!(super::millionths(Some(0.0001)), 1);
}
