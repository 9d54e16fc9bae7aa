//! `{"findings":[{"code","level","message","resource":{...},"source":{...}}],"summary":{...}}`.

use std::io;

use serde_json::{Value, json};
use strait_api::SourceMap;

use super::{EachFinding, file_of};
use crate::Report;
use crate::catalog;
use crate::finding::{Finding, Level};

/// How one finding becomes JSON.
type Render<'a> = Box<dyn Fn(&Finding) -> Value + 'a>;

/// The document, written as it is serialized: each finding's JSON exists only while it is
/// written (a report of 100,000 findings built as one value took more memory than the mesh).
#[derive(serde::Serialize)]
struct Doc<'a> {
    findings: EachFinding<'a, Render<'a>>,
    summary: Value,
}

pub fn render(report: &Report, sources: &SourceMap, w: &mut dyn io::Write) -> io::Result<()> {
    let doc = Doc {
        findings: EachFinding(&report.findings, Box::new(move |f| finding(f, sources))),
        summary: json!({
            "errors": report.count(Level::Error),
            "warnings": report.count(Level::Warning),
            "info": report.count(Level::Info),
        }),
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n")
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
