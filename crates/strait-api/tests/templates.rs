//! Values are values: a document Kubernetes can read is analyzed whatever `{{ ... }}` its values
//! hold; only a document that template syntax keeps from being YAML is an unrendered chart.

use strait_api::{Kind, Loader, Problem, Severity};

fn load(text: &str) -> strait_api::Loaded {
    let mut l = Loader::new();
    l.add_text("in.yaml", text);
    l.finish()
}

fn helm(l: &strait_api::Loaded) -> Vec<&strait_api::Diagnostic> {
    l.diagnostics
        .iter()
        .filter(|d| d.problem == Problem::HelmTemplate)
        .collect()
}

/// One ConfigMap whose `data.v` is `value` (a YAML scalar as written).
fn config_map(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: monitoring}}\ndata:\n  v: {value}\n"
    )
}

#[test]
fn go_template_text_in_values_is_read() {
    for (value, text) in [
        (
            "Pod is crash looping {{ $labels.pod }}.",
            "Pod is crash looping {{ $labels.pod }}.",
        ),
        (
            r#""value is \"{{ $value }}\"""#,
            r#"value is "{{ $value }}""#,
        ),
        (
            r#"'{{ template "slack.default.title" . }}'"#,
            r#"{{ template "slack.default.title" . }}"#,
        ),
        (
            r#""{{ printf \"%.2f\" $value }}% of {{ $labels.job }}""#,
            r#"{{ printf "%.2f" $value }}% of {{ $labels.job }}"#,
        ),
    ] {
        let l = load(&config_map(value));
        assert!(l.diagnostics.is_empty(), "{value}: {:?}", l.diagnostics);
        assert_eq!(l.objects.len(), 1, "{value}");
        let data = l.objects[0]
            .source
            .root()
            .get("data")
            .and_then(|d| d.get("v"));
        assert_eq!(data.and_then(|v| v.as_str()), Some(text));
    }
}

#[test]
fn a_prometheus_rule_is_read_not_reported_as_a_chart() {
    let l = load(
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\nspec:\n  groups:\n  - name: pods\n    rules:\n    - alert: CrashLooping\n      expr: rate(kube_pod_container_status_restarts_total[5m]) > 0\n      annotations:\n        summary: Pod is crash looping {{ $labels.pod }}.\n        description: \"value is \\\"{{ $value }}\\\"\"\n",
    );
    assert!(helm(&l).is_empty(), "{:?}", l.diagnostics);
    let problems: Vec<Problem> = l.diagnostics.iter().map(|d| d.problem).collect();
    assert_eq!(problems, [Problem::NotRead], "read, and skipped as a kind");
}

#[test]
fn a_helm_expression_in_a_rendered_value_is_a_warning_on_its_field() {
    let l = load(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers:\n  - name: app\n    image: app:1\n    args:\n    - --listen=:8080\n    - --config={{ .Values.config }}\n    - \"{{ .Values.other }}\"\n",
    );
    assert_eq!(l.objects.len(), 1, "{:?}", l.diagnostics);
    assert_eq!(l.objects[0].kind, Kind::Pod);
    let h = helm(&l);
    assert_eq!(h.len(), 1, "one warning per object: {h:?}");
    assert_eq!(h[0].severity, Severity::Warning);
    assert_eq!(h[0].field.as_deref(), Some("spec.containers[0].args[1]"));
    assert_eq!(h[0].object.as_ref().map(|o| o.name.as_str()), Some("p"));
    let pos = h[0].pos.expect("position");
    assert_eq!((pos.line, pos.column), (10, 7));
    assert!(
        h[0].message.contains("{{ .Values.config }}"),
        "{}",
        h[0].message
    );
}

#[test]
fn multi_line_values_are_content() {
    // The sidecar injector's templates, as `kubectl get -o json` writes them: one string.
    let l = load(
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"istio-sidecar-injector","namespace":"istio-system"},"data":{"config":"policy: enabled\ntemplates:\n  sidecar: |\n    image: {{ .Values.global.proxy.image }}\n"}}"#,
    );
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.objects.len(), 1);
}

#[test]
fn documents_that_template_syntax_breaks_are_charts() {
    let l = load(
        "{{- if .Values.enabled }}\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n{{- end }}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"app.fullname\" . }}-svc\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: {{ .Values.port }}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n",
    );
    let h: Vec<(u32, u32, Severity)> = helm(&l)
        .iter()
        .map(|d| {
            let p = d.pos.expect("position");
            (p.line, p.column, d.severity)
        })
        .collect();
    assert_eq!(
        h,
        [
            (1, 1, Severity::Error),
            (11, 9, Severity::Error),
            (19, 11, Severity::Error)
        ]
    );
    assert!(
        !l.diagnostics.iter().any(|d| d.problem == Problem::Syntax),
        "{:?}",
        l.diagnostics
    );
    let names: Vec<&str> = l.objects.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["ok"]);
}

#[test]
fn a_syntax_error_before_any_template_is_a_syntax_error() {
    let l = load(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: name: c\ndata:\n  v: Pod {{ $labels.pod }} is down\n",
    );
    let problems: Vec<Problem> = l.diagnostics.iter().map(|d| d.problem).collect();
    assert_eq!(problems, [Problem::Syntax], "{:?}", l.diagnostics);
}
