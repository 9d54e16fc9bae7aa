//! One object defined in two files is one object: the later definition replaces the earlier
//! (as the API server and istioctl's file store hold them), reported once, and no check
//! sees the object conflict with its own copy.

use strait_analyze::{Options, analyze};
use strait_model::BuildOptions;

const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  gateways: [gw]
  http: [{route: [{destination: {host: reviews}}]}]
";
const GW: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com]}]
";
const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hello, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [hello.example.com]
  rules: [{backendRefs: [{name: hello, port: 5000}]}]
";

#[test]
fn copies_in_two_files_are_one_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["a.yaml", "b.yaml"] {
        let text = format!("{VS}---\n{GW}---\n{ROUTE}");
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let input = strait_api::read_input(&[dir.path().to_path_buf()]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    assert_eq!(mesh.clusters[0].objects.len(), 3, "one of each object");
    let report = analyze(&mesh, &diags, &Options::default());
    let codes: Vec<(&str, String)> = report
        .findings
        .iter()
        .map(|f| (f.code, f.message.clone()))
        .collect();
    let duplicates = codes.iter().filter(|(c, _)| *c == "STR0012").count();
    assert_eq!(duplicates, 3, "{codes:#?}");
    for conflict in ["IST0109", "IST0145", "STR0210"] {
        assert!(
            codes.iter().all(|(c, _)| *c != conflict),
            "an object conflicts with its own copy: {codes:#?}"
        );
    }
    let first = codes
        .iter()
        .find(|(c, _)| *c == "STR0012")
        .map(|(_, m)| m.as_str())
        .unwrap_or_default();
    assert!(
        first.contains("a.yaml:"),
        "the first copy is named with its file: {first}"
    );
    assert!(
        first.contains("defined twice in the input"),
        "files are one cluster, not named before the manifests name it: {first}"
    );
}

/// Two clusters' manifests given as files are read as one cluster: the conflicting cluster
/// names say how to analyze them instead.
#[test]
fn two_clusters_read_as_files_point_at_a_mesh_directory() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/multicluster");
    let input = strait_api::read_input(&[root.join("cluster1"), root.join("cluster2")]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    let report = analyze(&mesh, &diags, &Options::default());
    let hint: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.code == "STR0112")
        .map(|f| f.message.as_str())
        .collect();
    assert!(!hint.is_empty());
    assert!(
        hint.iter().all(|m| m.contains("mesh directory")),
        "{hint:#?}"
    );
}
