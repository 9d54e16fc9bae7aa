//! Loading real-looking input: every problem reported with file:line:column, the rest loads.

use strait_api::{Kind, Loader, Problem, Severity};

fn load(text: &str) -> strait_api::Loaded {
    let mut l = Loader::new();
    l.add_text("mesh.yaml", text);
    l.finish()
}

fn at(loaded: &strait_api::Loaded, p: Problem) -> Vec<(u32, u32, String)> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.problem == p)
        .map(|d| {
            let pos = d.pos.expect("position");
            (pos.line, pos.column, d.message.clone())
        })
        .collect()
}

const MIXED: &str = r#"apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hots: ["reviews"]
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: "80"
---
apiVersion: v1
kind: Service
metadata: {name: broken
spec: {}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: ISTIO_MUTAL
  subsets:
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualServce
metadata: {name: typo}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: other}
"#;

#[test]
fn every_problem_is_located_and_the_rest_loads() {
    let l = load(MIXED);
    let kinds: Vec<Kind> = l.objects.iter().map(|o| o.kind).collect();
    assert_eq!(kinds, [Kind::VirtualService, Kind::DestinationRule]);

    let unknown = at(&l, Problem::UnknownField);
    assert_eq!(unknown.len(), 1);
    assert_eq!((unknown[0].0, unknown[0].1), (7, 3));
    assert!(
        unknown[0].2.contains("did you mean \"hosts\"?"),
        "{}",
        unknown[0].2
    );

    let invalid = at(&l, Problem::InvalidValue);
    assert_eq!(invalid.len(), 2, "{invalid:?}");
    assert_eq!((invalid[0].0, invalid[0].1), (13, 15));
    assert!(invalid[0].2.contains("spec.http[0].route[0].weight"));
    assert_eq!(invalid[1].0, 28);
    assert!(
        invalid[1].2.contains("did you mean \"ISTIO_MUTUAL\"?"),
        "{}",
        invalid[1].2
    );

    let syntax = at(&l, Problem::Syntax);
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].0 >= 17 && syntax[0].0 <= 19, "{syntax:?}");

    let kind = at(&l, Problem::UnknownKind);
    assert_eq!(kind.len(), 1);
    assert_eq!(kind[0].0, 34);
    assert!(kind[0].2.contains("did you mean \"VirtualService\"?"));

    let skipped = at(&l, Problem::NotRead);
    assert_eq!(skipped.len(), 1);
    assert!(
        l.diagnostics
            .iter()
            .filter(|d| d.problem == Problem::NotRead)
            .all(|d| d.severity == Severity::Info)
    );

    // The DestinationRule with a bad enum still loads, without its TLS mode, in "default".
    let dr = l.objects[1].destination_rule().expect("dr");
    assert_eq!(l.objects[1].namespace(), "default");
    assert_eq!(dr.spec.subsets[0].name, "v1");
    assert_eq!(
        dr.spec
            .traffic_policy
            .as_ref()
            .and_then(|t| t.tls.as_ref())
            .and_then(|t| t.mode),
        None
    );
    // Field positions survive for analyzers.
    let pos = l.objects[0].locate("spec.http[0].route[0].destination.host");
    assert_eq!((pos.line, pos.column), (11, 15));
}

#[test]
fn helm_templates_are_named_and_skipped() {
    let l = load(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Values.name }}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n",
    );
    let helm = at(&l, Problem::HelmTemplate);
    assert_eq!(helm.len(), 1);
    assert_eq!((helm[0].0, helm[0].1), (4, 9));
    assert!(helm[0].2.contains("helm template"));
    assert_eq!(l.objects.len(), 1);
}

#[test]
fn json_lists_and_all_istio_versions() {
    let json = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"security.istio.io/v1beta1","kind":"PeerAuthentication","metadata":{"name":"default","namespace":"istio-system"},"spec":{"mtls":{"mode":"STRICT"},"portLevelMtls":{"8080":{"mode":"DISABLE"}}}},
      {"apiVersion":"telemetry.istio.io/v1alpha1","kind":"Telemetry","metadata":{"name":"t","namespace":"istio-system"},"spec":{"accessLogging":[{"providers":[{"name":"envoy"}]}]}},
      {"apiVersion":"networking.istio.io/v1alpha3","kind":"EnvoyFilter","metadata":{"name":"e"},"spec":{"configPatches":[{"applyTo":"HTTP_FILTER","patch":{"operation":"INSERT_BEFORE","value":{"name":"x","typed_config":{"a":1}}}}]}}
    ]}"#;
    let l = load(json);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.objects.len(), 3);
    let pa = l.objects[0].peer_authentication().expect("pa");
    assert!(pa.spec.port_level_mtls.contains_key(&8080));
}

#[test]
fn removed_versions_still_load_with_a_warning() {
    let l = load(
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: x}]\n",
    );
    assert_eq!(l.objects.len(), 1);
    assert_eq!(at(&l, Problem::RemovedVersion).len(), 1);
}

#[test]
fn kubernetes_fields_are_checked_too() {
    let l = load(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: app\n        image: x\n        resource:\n          limits: {cpu: 1}\n",
    );
    let unknown = at(&l, Problem::UnknownField);
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0].2.contains("did you mean \"resources\"?"),
        "{}",
        unknown[0].2
    );
}

#[test]
fn files_and_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("sub/b.yml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not yaml").expect("write");
    std::fs::write(dir.path().join("bad.yaml"), b"kind: v1\nname: caf\xe9\n").expect("write");
    let mut l = Loader::new();
    let r = l.add_path(dir.path());
    assert_eq!(r.len(), 2);
    l.add_path(&dir.path().join("missing.yaml"));
    let out = l.finish();
    let unreadable: Vec<_> = out
        .diagnostics
        .iter()
        .filter(|d| d.problem == Problem::Unreadable)
        .collect();
    assert_eq!(unreadable.len(), 2, "{unreadable:?}");
    assert!(
        unreadable.iter().any(|d| d
            .message
            .contains("not UTF-8 text (invalid byte 0xe9 at line 2, column 10;")),
        "{unreadable:?}"
    );
}
