//! Reading files, directories and stdin into [`Object`]s.
//!
//! Each file is split into documents, each document parsed and typed on its own, so a problem
//! costs only the document (or field) it is in. Everything is reported as a [`Diagnostic`];
//! nothing here panics or stops early on bad input.

use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::de::FieldIssueKind;
use crate::diag::{Diagnostic, ObjectRef, Problem, Severity};
use crate::kind::{Kind, Lookup, lookup};
use crate::object::{Body, Object, Source};
use crate::source::{FileId, Pos, SourceMap};
use crate::yaml::{self, Node, Value};

/// Deepest directory nesting followed (guards against link loops).
const MAX_DIR_DEPTH: usize = 32;

/// What a load produced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: SourceMap,
    pub objects: Vec<Object>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Accumulates objects from any number of inputs.
#[derive(Debug, Default)]
pub struct Loader {
    out: Loaded,
    not_read_seen: HashSet<String>,
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a file, or every `.yaml`, `.yml` and `.json` file below a directory (sorted, so
    /// results are stable). `-` reads stdin. Returns the indices of the objects added.
    pub fn add_path(&mut self, path: &Path) -> Range<usize> {
        let start = self.out.objects.len();
        if path == Path::new("-") {
            self.add_stdin();
        } else {
            let mut files = Vec::new();
            self.walk(path, 0, true, &mut files);
            self.parse_files(files);
        }
        start..self.out.objects.len()
    }

    /// Loads standard input.
    pub fn add_stdin(&mut self) -> Range<usize> {
        let mut buf = Vec::new();
        let start = self.out.objects.len();
        match std::io::stdin().read_to_end(&mut buf) {
            Ok(_) => {
                let files = self
                    .decode(PathBuf::from("<stdin>"), buf)
                    .into_iter()
                    .collect();
                self.parse_files(files);
            }
            Err(e) => self.unreadable(Path::new("<stdin>"), &e.to_string()),
        }
        start..self.out.objects.len()
    }

    /// Loads text that is already in memory.
    pub fn add_text(&mut self, name: impl Into<PathBuf>, text: &str) -> Range<usize> {
        let start = self.out.objects.len();
        let text: Arc<str> = normalise_newlines(text).into();
        let file = self.out.sources.add(name, text.clone());
        self.parse_files(vec![(file, text)]);
        start..self.out.objects.len()
    }

    pub fn objects(&self) -> &[Object] {
        &self.out.objects
    }

    pub fn sources(&self) -> &SourceMap {
        &self.out.sources
    }

    pub fn sources_mut(&mut self) -> &mut SourceMap {
        &mut self.out.sources
    }

    pub fn push_diagnostic(&mut self, d: Diagnostic) {
        self.out.diagnostics.push(d);
    }

    pub fn finish(self) -> Loaded {
        self.out
    }

    fn walk(
        &mut self,
        path: &Path,
        depth: usize,
        explicit: bool,
        files: &mut Vec<(FileId, Arc<str>)>,
    ) {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return self.unreadable(path, &e.to_string()),
        };
        if meta.is_dir() {
            if depth >= MAX_DIR_DEPTH {
                return self.unreadable(path, "directory nesting too deep (a link loop?)");
            }
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => return self.unreadable(path, &e.to_string()),
            };
            entries.sort();
            for entry in entries {
                let hidden = entry
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'));
                if !hidden {
                    self.walk(&entry, depth + 1, false, files);
                }
            }
        } else if explicit || is_manifest(path) {
            match std::fs::read(path) {
                Ok(bytes) => files.extend(self.decode(path.to_path_buf(), bytes)),
                Err(e) => self.unreadable(path, &e.to_string()),
            }
        }
    }

    /// Registers a file's text, or reports why it is not text.
    fn decode(&mut self, name: PathBuf, bytes: Vec<u8>) -> Option<(FileId, Arc<str>)> {
        match String::from_utf8(bytes) {
            Ok(text) => {
                let text: Arc<str> =
                    normalise_newlines(text.strip_prefix('\u{feff}').unwrap_or(&text)).into();
                let file = self.out.sources.add(name, text.clone());
                Some((file, text))
            }
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                self.unreadable(
                    &name,
                    &format!("not UTF-8 text (invalid byte at offset {at})"),
                );
                None
            }
        }
    }

    /// Parses files on every core (each file on its own), then appends the results in input
    /// order so output stays deterministic.
    fn parse_files(&mut self, files: Vec<(FileId, Arc<str>)>) {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len().max(1));
        let results: Vec<FileResult> = if threads <= 1 {
            files
                .iter()
                .map(|(id, text)| parse_file(*id, text))
                .collect()
        } else {
            let next = AtomicUsize::new(0);
            let slots: Vec<Mutex<Option<FileResult>>> =
                files.iter().map(|_| Mutex::new(None)).collect();
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some((id, text)) = files.get(i) else {
                                break;
                            };
                            let r = parse_file(*id, text);
                            if let Ok(mut slot) = slots[i].lock() {
                                *slot = Some(r);
                            }
                        }
                    });
                }
            });
            slots
                .into_iter()
                .filter_map(|m| m.into_inner().ok().flatten())
                .collect()
        };
        for r in results {
            self.out.objects.extend(r.objects);
            for d in r.diagnostics {
                // "Kind not read" once per apiVersion/kind, not once per object.
                if d.problem == Problem::NotRead && !self.not_read_seen.insert(d.message.clone()) {
                    continue;
                }
                self.out.diagnostics.push(d);
            }
        }
    }

    fn unreadable(&mut self, path: &Path, why: &str) {
        self.out.diagnostics.push(Diagnostic {
            problem: Problem::Unreadable,
            severity: Severity::Error,
            pos: None,
            path: Some(path.to_path_buf()),
            message: format!("cannot read {}: {why}", path.display()),
            object: None,
            field: None,
        });
    }
}

/// What one file yields; files are parsed independently (and in parallel).
#[derive(Default)]
struct FileResult {
    objects: Vec<Object>,
    diagnostics: Vec<Diagnostic>,
}

fn parse_file(file: FileId, text: &str) -> FileResult {
    let mut r = FileResult::default();
    r.parse(file, text);
    r
}

impl FileResult {
    fn parse(&mut self, file: FileId, text: &str) {
        for chunk in yaml::split_documents(text) {
            if yaml::is_blank(chunk.text) {
                continue;
            }
            if let Some(t) = yaml::find_template(chunk.text) {
                let pos = Pos::new(file, chunk.first_line + t.line + 1, t.column + 1);
                self.diagnostics.push(Diagnostic::at(
                    Problem::HelmTemplate,
                    Severity::Error,
                    pos,
                    format!(
                        "unrendered template `{}`: this document is a Helm chart template; render it first (`helm template <release> <chart> | strait analyze -`)",
                        t.text
                    ),
                ));
                continue;
            }
            let parsed = yaml::parse(chunk.text, file, chunk.first_line, 0);
            for w in parsed.warnings {
                self.diagnostics.push(Diagnostic::at(
                    Problem::DuplicateKey,
                    Severity::Warning,
                    w.pos,
                    w.message,
                ));
            }
            for doc in parsed.documents {
                self.add_document(file, doc);
            }
            if let Some(e) = parsed.error {
                self.diagnostics.push(Diagnostic::at(
                    Problem::Syntax,
                    Severity::Error,
                    e.pos,
                    format!(
                        "YAML syntax error: {}; this document was skipped",
                        e.message
                    ),
                ));
            }
        }
    }

    fn add_document(&mut self, file: FileId, doc: Node) {
        if doc.is_null() {
            return;
        }
        if !matches!(doc.value, Value::Map(_)) {
            self.diagnostics.push(Diagnostic::at(
                Problem::NotAnObject,
                Severity::Error,
                doc.pos,
                format!(
                    "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                    doc.describe()
                ),
            ));
            return;
        }
        let kind_name = doc.get("kind").and_then(Node::as_str).unwrap_or("");
        let is_list =
            kind_name == "List" || (kind_name.ends_with("List") && doc.get("items").is_some());
        if is_list {
            match doc.get("items").map(|n| &n.value) {
                Some(Value::Seq(items)) => {
                    for item in items {
                        self.add_document(file, item.clone());
                    }
                }
                None => {}
                Some(_) if doc.get("items").is_some_and(Node::is_null) => {}
                Some(_) => self.diagnostics.push(Diagnostic::at(
                    Problem::NotAnObject,
                    Severity::Error,
                    doc.get("items").map_or(doc.pos, |n| n.pos),
                    format!("`items` of a {kind_name} must be a list"),
                )),
            }
            return;
        }
        self.add_object(file, doc);
    }

    fn add_object(&mut self, file: FileId, doc: Node) {
        let api_version = doc
            .get("apiVersion")
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let kind_name = doc
            .get("kind")
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = doc
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let oref = ObjectRef {
            kind: kind_name.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        if api_version.is_empty() || kind_name.is_empty() {
            let missing = if kind_name.is_empty() {
                "kind"
            } else {
                "apiVersion"
            };
            self.diagnostics.push(
                Diagnostic::at(
                    Problem::NotAnObject,
                    Severity::Error,
                    doc.pos,
                    format!("not a Kubernetes object: `{missing}` is missing"),
                )
                .with_object(oref),
            );
            return;
        }
        let kind_pos = doc.get("kind").map_or(doc.pos, |n| n.pos);
        let version_pos = doc.get("apiVersion").map_or(doc.pos, |n| n.pos);
        let (kind, mut tree) = match lookup(&api_version, &kind_name) {
            Lookup::Known(kind) => (kind, doc),
            Lookup::Removed { kind, use_instead } => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::RemovedVersion,
                        Severity::Warning,
                        version_pos,
                        format!(
                            "{api_version} {kind_name} is no longer served by Kubernetes; use {use_instead}"
                        ),
                    )
                    .with_object(oref.clone())
                    .with_field("apiVersion"),
                );
                let mut doc = doc;
                if let Some(v) = doc.get_mut("apiVersion") {
                    *v = Node::scalar(v.pos, use_instead, false);
                }
                (kind, doc)
            }
            Lookup::UnservedVersion { kind, served } => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::UnservedVersion,
                        Severity::Error,
                        version_pos,
                        format!("{kind} is not served at {api_version} (served: {served}); this object was skipped"),
                    )
                    .with_object(oref)
                    .with_field("apiVersion"),
                );
                return;
            }
            Lookup::UnknownKind { suggestion } => {
                let hint = suggestion
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_default();
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::UnknownKind,
                        Severity::Error,
                        kind_pos,
                        format!("unknown kind \"{kind_name}\" in {api_version}{hint}; this object was skipped"),
                    )
                    .with_object(oref)
                    .with_field("kind"),
                );
                return;
            }
            Lookup::NotRead => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Problem::NotRead,
                        Severity::Info,
                        kind_pos,
                        format!("{api_version} {kind_name} is not a kind strait reads; objects of this kind are skipped"),
                    )
                    .with_object(oref),
                );
                return;
            }
        };
        normalise_api_version(&mut tree, kind);
        let (body, issues) = Body::from_tree(kind, &tree);
        for issue in issues {
            let (problem, what) = match issue.kind {
                FieldIssueKind::UnknownField => (Problem::UnknownField, ""),
                FieldIssueKind::InvalidValue => (Problem::InvalidValue, "; the field was ignored"),
            };
            self.diagnostics.push(
                Diagnostic::at(
                    problem,
                    Severity::Error,
                    issue.pos,
                    format!("{}: {}{what}", issue.path, issue.message),
                )
                .with_object(oref.clone())
                .with_field(issue.path.to_string()),
            );
        }
        let Some(body) = body else {
            self.diagnostics.push(
                Diagnostic::at(
                    Problem::InvalidValue,
                    Severity::Error,
                    tree.pos,
                    format!("{kind_name} could not be read; this object was skipped"),
                )
                .with_object(oref),
            );
            return;
        };
        let pos = tree.pos;
        let mut object = Object {
            kind,
            api_version,
            body,
            source: Source {
                file,
                pos,
                tree: Arc::new(tree),
            },
        };
        if object.name().is_empty() && object.meta().generate_name.is_none() {
            self.diagnostics.push(
                Diagnostic::at(
                    Problem::MissingName,
                    Severity::Error,
                    object.source.tree.get("metadata").map_or(pos, |m| m.pos),
                    format!("{kind} has no metadata.name"),
                )
                .with_object(oref)
                .with_field("metadata.name"),
            );
        }
        if kind.is_namespaced() {
            object.set_default_namespace("default");
        }
        self.objects.push(object);
    }
}

/// Kubernetes types check `apiVersion` exactly; a removed version has been rewritten above, and
/// Istio kinds accept every served version, so only the canonical one needs to be present.
fn normalise_api_version(tree: &mut Node, kind: Kind) {
    if kind.is_istio() {
        return;
    }
    let canonical = kind.canonical_api_version();
    if let Some(v) = tree.get_mut("apiVersion")
        && v.as_str() != Some(canonical.as_str())
    {
        *v = Node::scalar(v.pos, canonical, false);
    }
}

/// YAML counts `\r\n` and a lone `\r` as line breaks; so do editors. Turning both into `\n`
/// up front keeps document splitting, the parser and source snippets on the same line numbers.
pub(crate) fn normalise_newlines(text: &str) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_string()
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}
