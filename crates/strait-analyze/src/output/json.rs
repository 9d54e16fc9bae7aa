//! `{"findings":[{"code","level","message","resource":{...},"source":{...}}],"summary":{...}}`.

use std::io;

use serde_json::{Value, json};
use strait_api::SourceMap;

use super::{EachFinding, file_of};
use crate::Report;
use crate::catalog;
use crate::finding::{Finding, Level};

/// How one finding becomes JSON.
type Render<'a> = Box<dyn Fn(&'a Finding) -> Out<'a> + 'a>;

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

/// One finding as written, borrowing from it (keys in alphabetical order, the order of the
/// format since it was first written from a JSON map; no value is built per finding).
#[derive(serde::Serialize)]
struct Out<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    level: &'a str,
    message: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related: Vec<RelatedOut<'a>>,
    resource: Option<ResourceOut<'a>>,
    source: Option<SourceOut>,
}

#[derive(serde::Serialize)]
struct ResourceOut<'a> {
    cluster: &'a str,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
}

#[derive(serde::Serialize)]
struct SourceOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
}

#[derive(serde::Serialize)]
struct RelatedOut<'a> {
    column: u32,
    file: String,
    line: u32,
    message: &'a str,
}

fn finding<'a>(f: &'a Finding, sources: &SourceMap) -> Out<'a> {
    let source = match (f.pos, &f.path) {
        (Some(p), _) => Some(SourceOut {
            column: Some(p.column),
            file: file_of(sources, p),
            line: Some(p.line),
        }),
        (None, Some(path)) => Some(SourceOut {
            column: None,
            file: path.to_string_lossy().into_owned(),
            line: None,
        }),
        (None, None) => None,
    };
    Out {
        code: f.code,
        field: f.field.as_deref(),
        level: f.level.name(),
        message: &f.message,
        name: catalog::by_code(f.code).map_or("", |c| c.name),
        related: f
            .related
            .iter()
            .map(|r| RelatedOut {
                column: r.pos.column,
                file: file_of(sources, r.pos),
                line: r.pos.line,
                message: &r.message,
            })
            .collect(),
        resource: f.resource.as_ref().map(|r| ResourceOut {
            cluster: &r.cluster,
            kind: &r.kind,
            name: &r.name,
            namespace: &r.namespace,
        }),
        source,
    }
}
