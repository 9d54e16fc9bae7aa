use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::source::FileId;
use crate::yaml;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
struct Route {
    hosts: Vec<String>,
    port: Option<u32>,
    mode: Option<Mode>,
    labels: BTreeMap<String, String>,
    weight: Option<i32>,
    destination: Option<Dest>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
struct Dest {
    host: String,
    subset: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Mode {
    Strict,
    Permissive,
}

fn tree(text: &str) -> Node {
    let p = yaml::parse(text, FileId(0), 0, 0);
    assert!(p.error.is_none(), "{:?}", p.error);
    p.documents.into_iter().next().expect("document")
}

#[test]
fn reads_a_clean_object() {
    let (v, issues) = from_node::<Route>(&tree(
        "hosts: [a, b]\nport: 80\nmode: STRICT\nlabels: {version: v1, 80: x}\n",
    ));
    assert!(issues.is_empty(), "{issues:?}");
    let v = v.expect("value");
    assert_eq!(v.hosts, ["a", "b"]);
    assert_eq!(v.port, Some(80));
    assert_eq!(v.mode, Some(Mode::Strict));
    assert_eq!(v.labels.get("80").map(String::as_str), Some("x"));
}

#[test]
fn unknown_field_with_suggestion_and_position() {
    let (v, issues) = from_node::<Route>(&tree("hots: [a]\ndestination:\n  hostt: x\n"));
    assert!(v.is_some());
    assert_eq!(issues.len(), 2);
    assert_eq!(issues[0].kind, FieldIssueKind::UnknownField);
    assert_eq!(
        issues[0].message,
        "unknown field \"hots\", did you mean \"hosts\"?"
    );
    assert_eq!((issues[0].pos.line, issues[0].pos.column), (1, 1));
    assert_eq!(issues[1].path.to_string(), "destination.hostt");
    assert_eq!((issues[1].pos.line, issues[1].pos.column), (3, 3));
}

#[test]
fn wrong_types_are_located_and_the_rest_loads() {
    let (v, issues) = from_node::<Route>(&tree(
        "hosts: [a]\nport: \"80\"\nlabels:\n  version: 1.0\nweight: x\n",
    ));
    let v = v.expect("partial value");
    assert_eq!(v.hosts, ["a"]);
    assert_eq!(v.port, None);
    assert_eq!(issues.len(), 3, "{issues:?}");
    assert_eq!(issues[0].path.to_string(), "port");
    assert_eq!(issues[0].pos.line, 2);
    assert!(
        issues[0]
            .message
            .contains("expected a non-negative integer")
    );
    assert_eq!(issues[1].path.to_string(), "labels.version");
    assert!(
        issues[1].message.contains("quote it"),
        "{}",
        issues[1].message
    );
    assert_eq!(issues[2].path.to_string(), "weight");
}

#[test]
fn enum_typo_suggests() {
    let (_, issues) = from_node::<Route>(&tree("mode: STRCT\n"));
    assert_eq!(issues.len(), 1);
    assert!(
        issues[0].message.contains("did you mean \"STRICT\"?"),
        "{}",
        issues[0].message
    );
}

#[test]
fn yaml_booleans_are_not_strings() {
    let (_, issues) = from_node::<Route>(&tree("labels:\n  inject: yes\n"));
    assert_eq!(issues.len(), 1);
    assert!(
        issues[0].message.contains("a boolean `yes`"),
        "{}",
        issues[0].message
    );
}

#[test]
fn locate_falls_back_to_nearest_ancestor() {
    let t = crate::yaml::Tree::from_node(&tree(
        "spec:\n  http:\n  - route:\n    - destination: {host: a}\n",
    ))
    .expect("small");
    let t = t.root();
    let (n, exact) = locate(
        t,
        &FieldPath::parse("spec.http[0].route[0].destination.host"),
    );
    assert!(exact);
    assert_eq!(n.pos().line, 4);
    let (n, exact) = locate(t, &FieldPath::parse("spec.http[0].timeout"));
    assert!(!exact);
    assert_eq!(n.pos().line, 3);
    let k = locate_key(t, &FieldPath::parse("spec.http")).expect("key");
    assert_eq!((k.pos().line, k.pos().column), (2, 3));
}

#[test]
fn kubernetes_types_report_unknown_fields() {
    use k8s_openapi::api::core::v1::ServicePort;
    let (v, issues) = from_node::<ServicePort>(&tree(
        "name: http\nport: 80\ntargetPort: 8080\nprotocl: TCP\n",
    ));
    assert_eq!(v.map(|p| p.port), Some(80));
    assert_eq!(issues.len(), 1);
    assert!(issues[0].message.contains("did you mean \"protocol\"?"));
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
struct Gw {
    registry_service_name: String,
    port: u32,
}

#[test]
fn proto_names_only_where_istio_reads_protobuf_json() {
    let text = "registry_service_name: gw.istio-system.svc.cluster.local\nport: 15443\n";
    let (v, issues) = from_node_proto::<Gw>(&tree(text));
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(
        v.expect("value").registry_service_name,
        "gw.istio-system.svc.cluster.local"
    );
    let (v, issues) = from_node::<Gw>(&tree(text));
    assert_eq!(v.expect("value").registry_service_name, "");
    assert_eq!(issues.len(), 1, "a custom resource takes camelCase only");
    let (_, issues) = from_node_proto::<Gw>(&tree("registry_servce_name: x\n"));
    assert_eq!(issues.len(), 1, "a misspelt proto name is still unknown");
}
