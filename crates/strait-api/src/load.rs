//! Reading files, directories and stdin into [`Object`]s.
//!
//! Each file is split into documents, each document parsed and typed on its own, so a problem
//! costs only the document (or field) it is in. Everything is reported as a [`Diagnostic`];
//! nothing here panics or stops early on bad input. What each input held is kept as an
//! [`InputSummary`], so a caller can refuse an input with nothing in it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

mod document;
mod input;
pub(crate) mod kustomize;
mod walk;

pub use input::{InputKind, InputSummary};

use crate::cache::{FileResult, ParseCache};
use crate::diag::{Diagnostic, Problem, Severity};
use crate::object::Object;
use crate::source::{FileId, SourceMap};
use walk::{Found, Walk};

/// How standard input is named in messages.
const STDIN: &str = "<stdin>";

/// What a load produced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: SourceMap,
    pub objects: Vec<Object>,
    pub diagnostics: Vec<Diagnostic>,
    /// One per [`Loader::add_path`] and [`Loader::add_stdin`], in call order.
    pub inputs: Vec<InputSummary>,
}

/// Accumulates objects from any number of inputs.
#[derive(Debug, Default)]
pub struct Loader {
    out: Loaded,
    not_read_seen: HashSet<String>,
    cache: Option<Arc<ParseCache>>,
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader that parses only the files whose text differs from what `cache` holds for
    /// their path, and records what it parses there (see [`ParseCache`]).
    pub fn with_cache(cache: Arc<ParseCache>) -> Self {
        Loader {
            cache: Some(cache),
            ..Self::default()
        }
    }

    /// Loads a file, or every `.yaml`, `.yml` and `.json` file below a directory (sorted, so
    /// results are stable; symlinks followed, each real directory and file read once). `-`
    /// reads stdin. Returns the indices of the objects added.
    pub fn add_path(&mut self, path: &Path) -> Range<usize> {
        if path == Path::new("-") {
            return self.add_stdin();
        }
        let start = self.out.objects.len();
        let kind = if path.is_dir() {
            InputKind::Dir
        } else {
            InputKind::File
        };
        let mut summary = InputSummary::new(path.to_path_buf(), kind);
        let mut files = Vec::new();
        for found in Walk::run(path).found {
            match found {
                Found::File { path, bytes } => match self.decode(path, bytes) {
                    Some(file) => files.push(file),
                    None => summary.unreadable = true,
                },
                Found::Problem(d) => {
                    summary.unreadable |= d.severity == Severity::Error;
                    self.out.diagnostics.push(d);
                }
            }
        }
        summary.count(&files);
        self.parse_files(files);
        self.out.inputs.push(summary);
        start..self.out.objects.len()
    }

    /// Loads standard input.
    pub fn add_stdin(&mut self) -> Range<usize> {
        let mut buf = Vec::new();
        let start = self.out.objects.len();
        let mut summary = InputSummary::new(PathBuf::from(STDIN), InputKind::Stdin);
        match std::io::stdin().read_to_end(&mut buf) {
            Ok(_) => {
                let files: Vec<_> = self.decode(PathBuf::from(STDIN), buf).into_iter().collect();
                summary.unreadable = files.is_empty();
                summary.count(&files);
                self.parse_files(files);
            }
            Err(e) => {
                summary.unreadable = true;
                self.unreadable(Path::new(STDIN), &e.to_string());
            }
        }
        self.out.inputs.push(summary);
        start..self.out.objects.len()
    }

    /// Loads text that is already in memory.
    pub fn add_text(&mut self, name: impl Into<PathBuf>, text: &str) -> Range<usize> {
        let start = self.out.objects.len();
        let text = shared_text(text);
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

    /// Registers a file's text, or reports why it is not text.
    fn decode(&mut self, name: PathBuf, bytes: Vec<u8>) -> Option<(FileId, Arc<str>)> {
        match String::from_utf8(bytes) {
            Ok(text) => {
                let text = shared_text(text.strip_prefix('\u{feff}').unwrap_or(&text));
                let file = self.out.sources.add(name, text.clone());
                Some((file, text))
            }
            Err(e) => {
                let message = not_utf8(e.as_bytes(), e.utf8_error().valid_up_to());
                self.unreadable(&name, &message);
                None
            }
        }
    }

    /// Parses files on every core (each file on its own), then appends the results in input
    /// order so output stays deterministic. With a cache, a file whose text is unchanged is
    /// taken from it instead.
    fn parse_files(&mut self, files: Vec<(FileId, Arc<str>)>) {
        let mut results: Vec<Option<FileResult>> = files.iter().map(|_| None).collect();
        if let Some(cache) = &self.cache {
            for (i, (id, text)) in files.iter().enumerate() {
                let path = self.out.sources.name(*id);
                if let Some((kept, r)) = cache.get(path, text, *id) {
                    // One copy of the text, shared with the load that parsed it.
                    self.out.sources.replace_text(*id, kept);
                    results[i] = Some(r);
                }
            }
        }
        let todo: Vec<usize> = (0..files.len()).filter(|i| results[*i].is_none()).collect();
        let parsed = parse_all(&files, &todo);
        for (i, r) in todo.into_iter().zip(parsed) {
            if let Some(cache) = &self.cache {
                let (id, text) = &files[i];
                cache.put(
                    self.out.sources.name(*id).to_path_buf(),
                    text.clone(),
                    r.clone(),
                );
            }
            results[i] = Some(r);
        }
        for r in results.into_iter().flatten() {
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
        self.out.diagnostics.push(walk::unreadable(path, why));
    }
}

/// Parses `files[i]` for every `i` of `which`, on every core, in that order. With fewer files
/// than cores, each file's documents are split over the cores left (a single large dump).
fn parse_all(files: &[(FileId, Arc<str>)], which: &[usize]) -> Vec<FileResult> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(which.len().max(1));
    if threads <= 1 {
        return which
            .iter()
            .filter_map(|i| files.get(*i))
            .map(|(id, text)| document::parse_file(*id, text, cores))
            .collect();
    }
    let per_file = (cores / threads).max(1);
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<FileResult>>> = which.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((id, text)) = which.get(k).and_then(|i| files.get(*i)) else {
                        break;
                    };
                    let r = document::parse_file(*id, text, per_file);
                    if let Ok(mut slot) = slots[k].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    // A parse that panicked has already ended the scope; a slot is never empty here, and
    // stays aligned with `which` regardless.
    slots
        .into_iter()
        .map(|m| m.into_inner().ok().flatten().unwrap_or_default())
        .collect()
}

/// YAML counts `\r\n` and a lone `\r` as line breaks; so do editors. Turning both into `\n`
/// up front keeps document splitting, the parser and source snippets on the same line numbers.
pub(crate) fn normalise_newlines(text: &str) -> Cow<'_, str> {
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Why bytes are not text, naming the first bad byte by line and column (the prefix before it
/// is valid UTF-8, so columns count characters as everywhere else).
fn not_utf8(bytes: &[u8], valid_up_to: usize) -> String {
    let prefix = std::str::from_utf8(&bytes[..valid_up_to.min(bytes.len())]).unwrap_or("");
    let line = prefix.matches('\n').count() + 1;
    let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let byte = bytes
        .get(valid_up_to)
        .map_or(String::new(), |b| format!(" 0x{b:02x}"));
    format!(
        "not UTF-8 text (invalid byte{byte} at line {line}, column {column}; byte offset {valid_up_to}): save the file as UTF-8"
    )
}

/// A file's text in the form every loaded file keeps, copied once: a large file was copied
/// twice more on its way here, a transient 100 MB for a 50 MB dump.
fn shared_text(text: &str) -> Arc<str> {
    Arc::from(&*normalise_newlines(text))
}
