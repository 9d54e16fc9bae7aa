//! `{"findings":[{"code","level","message","resource":{...},"source":{...}}],"summary":{...}}`.

use serde_json::{Value, json};
use strait_api::SourceMap;

use super::file_of;
use crate::Report;
use crate::catalog;
use crate::finding::{Finding, Level};

pub fn render(report: &Report, sources: &SourceMap) -> String {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| finding(f, sources))
        .collect();
    let doc = json!({
        "findings": findings,
        "summary": {
            "errors": report.count(Level::Error),
            "warnings": report.count(Level::Warning),
            "info": report.count(Level::Info),
        }
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

fn finding(f: &Finding, sources: &SourceMap) -> Value {
    let source = match (f.pos, &f.path) {
        (Some(p), _) => json!({"file": file_of(sources, p), "line": p.line, "column": p.column}),
        (None, Some(path)) => json!({"file": path.to_string_lossy()}),
        (None, None) => Value::Null,
    };
    let resource = match &f.resource {
        Some(r) => {
            json!({"kind": r.kind, "namespace": r.namespace, "name": r.name, "cluster": r.cluster})
        }
        None => Value::Null,
    };
    let related: Vec<Value> = f
        .related
        .iter()
        .map(|r| json!({"message": r.message, "file": file_of(sources, r.pos), "line": r.pos.line, "column": r.pos.column}))
        .collect();
    let mut v = json!({
        "code": f.code,
        "name": catalog::by_code(f.code).map_or("", |c| c.name),
        "level": f.level.name(),
        "message": f.message,
        "resource": resource,
        "source": source,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(field) = &f.field {
            obj.insert("field".into(), json!(field));
        }
        if !related.is_empty() {
            obj.insert("related".into(), json!(related));
        }
    }
    v
}
