use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
#[allow(dead_code)]
struct Outer {
    #[serde(rename = "match")]
    matches: Vec<Inner>,
    maybe_port: Option<u32>,
    by_name: BTreeMap<String, Vec<String>>,
    tree: Option<Tree>,
    free: Option<serde_json::Value>,
    mode: Option<Mode>,
    port: Option<IntOrName>,
    ratio: f64,
    timeout: Option<crate::istio::Duration>,
    ignored: crate::istio::Opaque,
}

#[derive(Deserialize, Default)]
#[serde(default)]
#[allow(dead_code)]
struct Inner {
    on: bool,
    delta: i32,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)]
enum Mode {
    Permissive,
    Strict,
}

#[derive(Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum IntOrName {
    Number(u16),
    Name(String),
}

fn field<'a>(s: &'a Shape, name: &str) -> &'a Shape {
    match s {
        Shape::Struct { fields, .. } => fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no field {name} in {s:?}")),
        other => panic!("not a struct: {other:?}"),
    }
}

#[test]
fn every_field_with_its_shape() {
    let s = shape_of::<Outer>();
    let Shape::Struct { name, fields } = &s else {
        panic!("{s:?}")
    };
    assert_eq!(*name, "Outer");
    let names: Vec<_> = fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "match",
            "maybePort",
            "byName",
            "tree",
            "free",
            "mode",
            "port",
            "ratio",
            "timeout",
            "ignored"
        ]
    );
    let Shape::List(inner) = field(&s, "match") else {
        panic!()
    };
    assert_eq!(*field(inner, "on"), Shape::Bool);
    assert_eq!(
        *field(inner, "delta"),
        Shape::Integer {
            min: i64::from(i32::MIN),
            max: i32::MAX as u64
        }
    );
    assert_eq!(
        *field(&s, "maybePort"),
        Shape::Integer {
            min: 0,
            max: u32::MAX.into()
        }
    );
    assert_eq!(
        *field(&s, "byName"),
        Shape::Map(Box::new(Shape::List(Box::new(Shape::String))))
    );
    assert_eq!(*field(&s, "free"), Shape::Any);
    assert_eq!(
        *field(&s, "mode"),
        Shape::Enum(vec!["PERMISSIVE", "STRICT"])
    );
    assert_eq!(*field(&s, "port"), Shape::IntOrString);
    assert_eq!(*field(&s, "ratio"), Shape::Number);
    assert_eq!(*field(&s, "timeout"), Shape::String);
    assert_eq!(*field(&s, "ignored"), Shape::Any);
}

#[test]
fn a_struct_inside_itself_is_free_form() {
    let s = shape_of::<Tree>();
    assert_eq!(*field(&s, "label"), Shape::String);
    assert_eq!(*field(&s, "children"), Shape::List(Box::new(Shape::Any)));
}

#[test]
fn istio_kinds_have_shapes() {
    let s = shape_of::<crate::istio::virtual_service::VirtualServiceSpec>();
    let Shape::List(http) = field(&s, "http") else {
        panic!()
    };
    assert_eq!(*field(http, "timeout"), Shape::String);
    let s = shape_of::<crate::istio::gateway::GatewaySpec>();
    let Shape::List(server) = field(&s, "servers") else {
        panic!()
    };
    let Shape::Enum(modes) = field(field(server, "tls"), "mode") else {
        panic!()
    };
    assert!(modes.contains(&"AUTO_PASSTHROUGH"), "{modes:?}");
}
