//! Checks an object against a structural schema, as the API server would before storing a
//! custom resource, except that an unknown field is an error rather than silently pruned: a
//! manifest strait renders must not lose anything on its way in.
//!
//! It covers the parts of OpenAPI v3 that [`super::schema`] produces (types, properties,
//! items, additionalProperties, enums, integer bounds, int-or-string, preserve-unknown-fields)
//! and nothing more; it is not a general JSON Schema validator.

use serde_json::Value;

/// Problems found, each with the path of the offending value (`spec.servers[0].port`).
pub fn check(value: &Value, schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(value, schema, "", &mut problems);
    problems
}

/// Checks a custom resource against the CRD strait defines for its kind; `None` when the
/// object is not of a kind strait defines (then Kubernetes' own schemas apply).
pub fn check_custom_resource(object: &Value) -> Option<Vec<String>> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let crd = super::crd::find(api_version, kind)?;
    let mut body = object.clone();
    if let Some(m) = body.as_object_mut() {
        // Every object has these; the API server checks them itself.
        for k in ["apiVersion", "kind", "metadata"] {
            m.remove(k);
        }
    }
    Some(check(&body, &crd.object_schema()))
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn walk(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    let flag = |name: &str| schema.get(name).and_then(Value::as_bool) == Some(true);
    let at = if path.is_empty() { "(root)" } else { path };
    if flag("x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            problems.push(format!("{at}: expected an integer or a string"));
        }
        return;
    }
    let Some(ty) = schema.get("type").and_then(Value::as_str) else {
        if !flag("x-kubernetes-preserve-unknown-fields") {
            problems.push(format!("{at}: the schema names no type"));
        }
        return;
    };
    let ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => false,
    };
    if !ok {
        problems.push(format!("{at}: expected {ty}, found {}", describe(value)));
        return;
    }
    if let Some(names) = schema.get("enum").and_then(Value::as_array)
        && !names.contains(value)
    {
        problems.push(format!(
            "{at}: {value} is not one of {}",
            Value::from(names.clone())
        ));
    }
    if ty == "integer" {
        bounds(value, schema, at, problems);
    }
    match value {
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(v, item, &format!("{path}[{i}]"), problems);
                }
            }
        }
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (k, v) in fields {
                let here = join(path, k);
                match (properties.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) | (None, Some(s)) => walk(v, s, &here, problems),
                    (None, None) if flag("x-kubernetes-preserve-unknown-fields") => {}
                    (None, None) => problems.push(format!("{here}: unknown field")),
                }
            }
        }
        _ => {}
    }
}

fn bounds(value: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
    let n = value
        .as_i64()
        .map(i128::from)
        .or(value.as_u64().map(i128::from));
    let limit = |k: &str| {
        let v = schema.get(k)?;
        v.as_i64().map(i128::from).or(v.as_u64().map(i128::from))
    };
    if let (Some(n), Some(min)) = (n, limit("minimum"))
        && n < min
    {
        problems.push(format!("{at}: {n} is below the minimum {min}"));
    }
    if let (Some(n), Some(max)) = (n, limit("maximum"))
        && n > max
    {
        problems.push(format!("{at}: {n} is above the maximum {max}"));
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_wrong_types_unknown_fields_enums_and_bounds() {
        let gw = json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "g"},
            "spec": {
                "selector": {"istio": "eastwestgateway"},
                "servers": [{
                    "port": {"number": -1, "name": "tls", "protocol": "TLS"},
                    "tls": {"mode": "AUTO_PASS"},
                    "hosts": "*.local",
                    "hots": ["x"],
                }],
            },
        });
        let problems = check_custom_resource(&gw).expect("a kind strait defines");
        let text = problems.join("\n");
        assert!(
            text.contains("spec.servers[0].port.number: -1 is below"),
            "{text}"
        );
        assert!(
            text.contains("spec.servers[0].tls.mode: \"AUTO_PASS\" is not one of"),
            "{text}"
        );
        assert!(
            text.contains("spec.servers[0].hosts: expected array"),
            "{text}"
        );
        assert!(
            text.contains("spec.servers[0].hots: unknown field"),
            "{text}"
        );
        assert_eq!(problems.len(), 4, "{text}");
    }

    #[test]
    fn other_kinds_are_not_ours() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert!(check_custom_resource(&svc).is_none());
        let old = json!({"apiVersion": "networking.istio.io/v2", "kind": "Gateway"});
        assert!(check_custom_resource(&old).is_none());
    }
}
