//! Problems found while reading input, each with a position and a message an operator can act
//! on. They are data: the analyzer turns them into findings with codes.

use std::path::PathBuf;

use crate::source::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// What kind of input problem this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// The file could not be read, or is not UTF-8.
    Unreadable,
    /// YAML/JSON syntax error; the document was skipped.
    Syntax,
    /// An unrendered Helm/Go template; the document was skipped.
    HelmTemplate,
    /// A key appears twice in one mapping.
    DuplicateKey,
    /// A document that is not a Kubernetes object (no `apiVersion`/`kind`, or not a mapping).
    NotAnObject,
    /// A kind that does not exist in its API group.
    UnknownKind,
    /// A kind at a version its group does not serve.
    UnservedVersion,
    /// A version Kubernetes has removed; the object is still read.
    RemovedVersion,
    /// A kind strait does not read (another project's CRD, say); skipped.
    NotRead,
    /// A field the kind does not have.
    UnknownField,
    /// A value of the wrong type or out of range; the field was dropped.
    InvalidValue,
    /// An object without `metadata.name`.
    MissingName,
    /// The same object defined twice in one cluster.
    DuplicateObject,
    /// `mesh.yaml` or the mesh directory's layout is inconsistent.
    MeshLayout,
    /// A kustomization or a patch it names: not a manifest, skipped.
    Kustomize,
}

/// Which object a diagnostic is about, when it is about one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub problem: Problem,
    pub severity: Severity,
    /// Where; `None` only when the file itself could not be read.
    pub pos: Option<Pos>,
    /// The path, for problems with no position (an unreadable file).
    pub path: Option<PathBuf>,
    pub message: String,
    pub object: Option<ObjectRef>,
    /// The field path (`spec.http[0].timeout`) for field problems.
    pub field: Option<String>,
}

impl Diagnostic {
    pub fn at(problem: Problem, severity: Severity, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            problem,
            severity,
            pos: Some(pos),
            path: None,
            message: message.into(),
            object: None,
            field: None,
        }
    }

    pub fn with_object(mut self, object: ObjectRef) -> Self {
        self.object = Some(object);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}
