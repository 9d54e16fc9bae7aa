//! Parsed files kept between loads, for a reader that loads the same files again and again (a
//! control plane reloading after every edit).
//!
//! Parsing is most of a load's cost (about 70% at 1,000 services): a control plane that
//! re-parsed every file on every edit spent seconds per change at 10,000 services. A
//! [`ParseCache`] keeps, per path, the text a file had and what parsing it gave (objects and
//! diagnostics). A later load through [`crate::Loader::with_cache`] still reads every file, and
//! re-parses only those whose text differs: the text is compared whole, not a size or a time,
//! so an edit that keeps both is still seen. Objects come out in the same order with the same
//! positions as a fresh parse, so precedence (oldest first, file order) and every `file:line`
//! stay what they were; diagnostics of unchanged files are reported again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::diag::Diagnostic;
use crate::object::Object;
use crate::source::FileId;

/// What parsing one file gave.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileResult {
    pub objects: Vec<Object>,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileResult {
    /// The same result for the file registered as `file` in this load: positions name the file
    /// by its index in the load's source map, which moves when a file before it is added or
    /// removed.
    fn refiled(&self, file: FileId) -> FileResult {
        let mut r = self.clone();
        for o in &mut r.objects {
            if o.source.file != file {
                o.source.file = file;
                o.source.pos.file = file;
                o.source.tree = Arc::new(o.source.tree.refiled(file));
            }
        }
        for d in &mut r.diagnostics {
            if let Some(p) = &mut d.pos {
                p.file = file;
            }
        }
        r
    }
}

#[derive(Debug)]
struct Entry {
    text: Arc<str>,
    result: FileResult,
}

/// Parsed files by path; see the module documentation. Shared by the loads of one reader.
#[derive(Debug, Default)]
pub struct ParseCache {
    files: Mutex<HashMap<PathBuf, Entry>>,
    parsed: AtomicU64,
    reused: AtomicU64,
}

impl ParseCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Entry>> {
        // The map holds plain data: a panic elsewhere while holding it leaves it usable.
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Files parsed (not found, or changed) since the cache was made.
    pub fn parsed(&self) -> u64 {
        self.parsed.load(Ordering::Relaxed)
    }

    /// Files whose earlier parse was used since the cache was made.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// Files held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every file that is no longer on disk, so that deleted files do not stay in
    /// memory. (A deleted file's objects are never loaded again: a load only asks for the
    /// files it finds.)
    pub fn forget_missing(&self) {
        self.lock().retain(|path, _| path.is_file());
    }

    /// The earlier result for `path` if its text was `text`, for the file registered as
    /// `file`; with the cached text, which the caller keeps instead of its own copy.
    pub(crate) fn get(
        &self,
        path: &Path,
        text: &str,
        file: FileId,
    ) -> Option<(Arc<str>, FileResult)> {
        let files = self.lock();
        let e = files.get(path).filter(|e| *e.text == *text)?;
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some((e.text.clone(), e.result.refiled(file)))
    }

    pub(crate) fn put(&self, path: PathBuf, text: Arc<str>, result: FileResult) {
        self.parsed.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(path, Entry { text, result });
    }
}

#[cfg(test)]
mod tests;
