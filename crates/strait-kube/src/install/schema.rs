//! OpenAPI v3 structural schemas from [`Shape`]s: what a CustomResourceDefinition needs so that
//! the API server checks, prunes and defaults the kind as strait's own loader types it.
//!
//! Kubernetes requires *structural* schemas: every node names its type, except nodes marked
//! `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`. The mapping:
//! structs are objects with sorted properties (unknown fields are then pruned by the API
//! server, as Istio's own CRDs do; `strait analyze` reports them before they get there), maps
//! are objects with `additionalProperties`, enums are strings with their names, durations are
//! strings (their syntax is checked by strait when it reads them), free-form values keep
//! whatever they are given.

use serde_json::{Map, Value, json};
use strait_api::shape::Shape;

/// The schema of values of `shape`.
pub fn schema(shape: &Shape) -> Value {
    match shape {
        Shape::Bool => json!({"type": "boolean"}),
        Shape::Integer { min, max } => integer(*min, *max),
        Shape::Number => json!({"type": "number"}),
        Shape::String => json!({"type": "string"}),
        Shape::Enum(names) => json!({"type": "string", "enum": names}),
        Shape::IntOrString => json!({"x-kubernetes-int-or-string": true}),
        Shape::List(item) => json!({"type": "array", "items": schema(item)}),
        Shape::Map(value) => json!({"type": "object", "additionalProperties": schema(value)}),
        Shape::Struct { fields, .. } => {
            let mut sorted: Vec<&(&str, Shape)> = fields.iter().collect();
            sorted.sort_by_key(|(name, _)| *name);
            let mut properties = Map::new();
            for (name, s) in sorted {
                properties.insert((*name).to_string(), schema(s));
            }
            json!({"type": "object", "properties": properties})
        }
        Shape::Any => free_form(),
    }
}

/// A value the API server keeps as given.
pub fn free_form() -> Value {
    json!({"x-kubernetes-preserve-unknown-fields": true})
}

/// An integer: `int32` when it fits (Kubernetes' default width is 64 bits), with the bounds of
/// the Rust type it is read into, so a port of 70000 is refused by the API server rather than
/// by strait later.
fn integer(min: i64, max: u64) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("integer"));
    if min >= i64::from(i32::MIN) && max <= i32::MAX as u64 {
        m.insert("format".into(), json!("int32"));
    } else if max > i64::MAX as u64 {
        // Beyond int64: Kubernetes integers cannot exceed it anyway.
    } else {
        m.insert("format".into(), json!("int64"));
    }
    if min != i64::MIN {
        m.insert("minimum".into(), json!(min));
    }
    if max < i64::MAX as u64 {
        m.insert("maximum".into(), json!(max));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_to_schemas() {
        let s = Shape::Struct {
            name: "X",
            fields: vec![
                (
                    "port",
                    Shape::Integer {
                        min: 0,
                        max: u32::MAX.into(),
                    },
                ),
                ("mode", Shape::Enum(vec!["A", "B"])),
                ("labels", Shape::Map(Box::new(Shape::String))),
                ("any", Shape::Any),
                ("target", Shape::IntOrString),
            ],
        };
        assert_eq!(
            schema(&s),
            json!({"type": "object", "properties": {
                "any": {"x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "mode": {"type": "string", "enum": ["A", "B"]},
                "port": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u64},
                "target": {"x-kubernetes-int-or-string": true},
            }})
        );
        let byte = Shape::Integer { min: 0, max: 255 };
        assert_eq!(
            schema(&byte),
            json!({"type": "integer", "format": "int32", "minimum": 0, "maximum": 255})
        );
    }
}
