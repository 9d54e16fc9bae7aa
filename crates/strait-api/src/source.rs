//! Where every byte of configuration came from.
//!
//! A [`SourceMap`] owns the text of every file read (so diagnostics can quote it) and hands out
//! small [`FileId`]s; a [`Pos`] is a file plus a 1-based line and column, the unit every finding
//! and error points at.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A position in a source file. Line and column are 1-based; the column counts characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub file: FileId,
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub fn new(file: FileId, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }
}

/// One file that was read, with its full text.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (or `<stdin>`), used in every message.
    pub name: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    /// The text of line `line` (1-based), without its line ending.
    pub fn line(&self, line: u32) -> Option<&str> {
        self.text
            .split('\n')
            .nth(line.checked_sub(1)? as usize)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// Every file read in one run.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
        });
        id
    }

    /// Replaces a file's text by an identical copy (one shared with an earlier load).
    pub(crate) fn replace_text(&mut self, id: FileId, text: Arc<str>) {
        if let Some(f) = self.files.get_mut(id.0 as usize)
            && *f.text == *text
        {
            f.text = text;
        }
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn name(&self, id: FileId) -> &Path {
        self.get(id)
            .map(|f| f.name.as_path())
            .unwrap_or_else(|| Path::new("<unknown>"))
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `path:line:column`, the form editors and terminals turn into links.
    pub fn display(&self, pos: Pos) -> PosDisplay<'_> {
        PosDisplay { map: self, pos }
    }
}

/// Formats a [`Pos`] as `file:line:column`.
#[derive(Debug)]
pub struct PosDisplay<'a> {
    map: &'a SourceMap,
    pos: Pos,
}

impl fmt::Display for PosDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.map.name(self.pos.file).display(),
            self.pos.line,
            self.pos.column
        )
    }
}
