//! Input diagnostics (from loading and building the model) as findings.

use strait_api::{Diagnostic, Problem, Severity};

use crate::catalog::{self, Code};
use crate::finding::{Finding, Level, Resource};

fn code_of(p: Problem) -> &'static Code {
    match p {
        Problem::Unreadable => catalog::STR0001,
        Problem::Syntax => catalog::STR0002,
        Problem::HelmTemplate => catalog::STR0003,
        Problem::NotAnObject => catalog::STR0004,
        Problem::MeshLayout => catalog::STR0005,
        Problem::UnknownKind => catalog::STR0006,
        Problem::UnservedVersion => catalog::STR0007,
        Problem::RemovedVersion => catalog::STR0008,
        Problem::UnknownField => catalog::STR0009,
        Problem::InvalidValue => catalog::STR0010,
        Problem::DuplicateKey => catalog::STR0011,
        Problem::DuplicateObject => catalog::STR0012,
        Problem::MissingName => catalog::STR0013,
        Problem::NotRead => catalog::STR0014,
        Problem::Kustomize => catalog::STR0018,
    }
}

/// Converts diagnostics. `cluster_of` names the cluster a file belongs to, when known.
pub fn findings(diags: &[Diagnostic], cluster_of: &dyn Fn(&Diagnostic) -> String) -> Vec<Finding> {
    diags
        .iter()
        .map(|d| {
            let code = code_of(d.problem);
            let level = match d.severity {
                Severity::Error => Level::Error,
                Severity::Warning => Level::Warning,
                Severity::Info => Level::Info,
            };
            Finding {
                code: code.code,
                level,
                message: d.message.clone(),
                resource: d.object.as_ref().map(|o| Resource {
                    kind: o.kind.clone(),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    cluster: cluster_of(d),
                }),
                pos: d.pos,
                path: d.path.clone(),
                field: d.field.clone(),
                related: Vec::new(),
            }
        })
        .collect()
}
