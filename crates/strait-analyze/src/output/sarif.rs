//! SARIF 2.1.0, for code-scanning dashboards.

use std::io;

use serde_json::{Value, json};
use strait_api::SourceMap;

use super::{EachFinding, file_of};
use crate::Report;
use crate::catalog;
use crate::finding::{Finding, Level};

fn sarif_level(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "note",
    }
}

fn uri(path: &str) -> String {
    path.replace('%', "%25").replace(' ', "%20")
}

/// How one finding becomes JSON.
type Render<'a> = Box<dyn Fn(&Finding) -> Value + 'a>;

/// The log, written as it is serialized: each result's JSON exists only while it is written.
#[derive(serde::Serialize)]
struct Doc<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [Run<'a>; 1],
    version: &'static str,
}

#[derive(serde::Serialize)]
struct Run<'a> {
    results: EachFinding<'a, Render<'a>>,
    tool: Value,
}

pub fn render(report: &Report, sources: &SourceMap, w: &mut dyn io::Write) -> io::Result<()> {
    let rules: Vec<Value> = catalog::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.code,
                "name": c.name,
                "shortDescription": {"text": c.summary},
                "defaultConfiguration": {"level": sarif_level(c.level)},
            })
        })
        .collect();
    let doc = Doc {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        runs: [Run {
            results: EachFinding(&report.findings, Box::new(move |f| result(f, sources))),
            tool: json!({"driver": {
                "name": "strait",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }}),
        }],
        version: "2.1.0",
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n")
}

fn result(f: &Finding, sources: &SourceMap) -> Value {
    let index = catalog::ALL
        .iter()
        .position(|c| c.code == f.code)
        .unwrap_or(0);
    let mut location = serde_json::Map::new();
    if let Some(p) = f.pos {
        location.insert(
            "physicalLocation".into(),
            json!({
                "artifactLocation": {"uri": uri(&file_of(sources, p))},
                "region": {"startLine": p.line, "startColumn": p.column},
            }),
        );
    } else if let Some(path) = &f.path {
        location.insert(
            "physicalLocation".into(),
            json!({"artifactLocation": {"uri": uri(&path.to_string_lossy())}}),
        );
    }
    if let Some(r) = &f.resource {
        let name = [
            r.cluster.as_str(),
            r.kind.as_str(),
            r.namespace.as_str(),
            r.name.as_str(),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
        location.insert(
            "logicalLocations".into(),
            json!([{"fullyQualifiedName": name, "kind": "resource"}]),
        );
    }
    let related: Vec<Value> = f
        .related
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "id": i,
                "message": {"text": r.message},
                "physicalLocation": {
                    "artifactLocation": {"uri": uri(&file_of(sources, r.pos))},
                    "region": {"startLine": r.pos.line, "startColumn": r.pos.column},
                }
            })
        })
        .collect();
    let mut result = json!({
        "ruleId": f.code,
        "ruleIndex": index,
        "level": sarif_level(f.level),
        "message": {"text": f.message},
        "locations": if location.is_empty() { json!([]) } else { json!([Value::Object(location)]) },
    });
    if !related.is_empty()
        && let Some(obj) = result.as_object_mut()
    {
        obj.insert("relatedLocations".into(), json!(related));
    }
    result
}
