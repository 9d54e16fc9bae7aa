//! What each input held, so that a tool which must see something can tell "nothing there"
//! from "nothing wrong".
//!
//! An empty input is not an error while loading: a control plane may watch a directory that
//! is empty for now. It is one for `strait analyze`, where `helm template ... | strait
//! analyze -` must not pass CI when `helm` failed and wrote nothing.

use std::path::PathBuf;
use std::sync::Arc;

use crate::diag::{Diagnostic, Problem, Severity};
use crate::source::FileId;
use crate::yaml;

/// How an input was named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Stdin,
    File,
    Dir,
}

/// One path given to [`crate::Loader::add_path`] (or standard input), and what it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSummary {
    /// As given; `<stdin>` for standard input.
    pub path: PathBuf,
    pub kind: InputKind,
    /// Files read as text.
    pub files: usize,
    /// Documents in them, not counting those with only comments, blank lines and markers.
    pub documents: usize,
    /// Whether any file held more than whitespace.
    pub any_text: bool,
    /// Reading it reported an error already (a missing path, a file that is not text).
    pub unreadable: bool,
}

impl InputSummary {
    pub(super) fn new(path: PathBuf, kind: InputKind) -> Self {
        InputSummary {
            path,
            kind,
            files: 0,
            documents: 0,
            any_text: false,
            unreadable: false,
        }
    }

    /// Counts the files read for this input and the documents in them.
    pub(super) fn count(&mut self, files: &[(FileId, Arc<str>)]) {
        for (_, text) in files {
            self.files += 1;
            self.any_text |= !text.trim().is_empty();
            self.documents += yaml::split_documents(text)
                .iter()
                .filter(|c| !yaml::is_blank(c.text))
                .count();
        }
    }

    /// An input error when the input holds no document at all, naming it and saying what it
    /// held instead. `None` when it holds a document (valid or not) or already failed to read.
    pub fn nothing_to_analyze(&self) -> Option<Diagnostic> {
        if self.unreadable || self.documents > 0 {
            return None;
        }
        let what = if self.any_text {
            "holds only comments and `---` separators"
        } else {
            "is empty"
        };
        let p = self.path.display();
        let message = match self.kind {
            InputKind::Stdin => format!(
                "standard input (-) {what}: nothing to analyze (did the command before the pipe fail?)"
            ),
            InputKind::File => format!("{p} {what}: nothing to analyze"),
            InputKind::Dir if self.files == 0 => format!(
                "{p} holds no manifest files (*.yaml, *.yml, *.json; hidden entries are skipped): nothing to analyze"
            ),
            InputKind::Dir => format!(
                "every manifest file under {p} is empty or holds only comments ({} file{}): nothing to analyze",
                self.files,
                if self.files == 1 { "" } else { "s" }
            ),
        };
        Some(Diagnostic {
            problem: Problem::Unreadable,
            severity: Severity::Error,
            pos: None,
            path: Some(self.path.clone()),
            message,
            object: None,
            field: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(kind: InputKind, files: usize, documents: usize, any_text: bool) -> InputSummary {
        InputSummary {
            path: PathBuf::from("in"),
            kind,
            files,
            documents,
            any_text,
            unreadable: false,
        }
    }

    #[test]
    fn messages_name_the_input_and_what_it_held() {
        let m = |s: InputSummary| s.nothing_to_analyze().map(|d| d.message);
        let stdin = m(summary(InputKind::Stdin, 1, 0, false)).expect("error");
        assert!(stdin.contains("standard input (-) is empty"), "{stdin}");
        assert!(stdin.contains("did the command before the pipe fail?"));
        let comments = m(summary(InputKind::File, 1, 0, true)).expect("error");
        assert_eq!(
            comments,
            "in holds only comments and `---` separators: nothing to analyze"
        );
        let dir = m(summary(InputKind::Dir, 0, 0, false)).expect("error");
        assert!(dir.starts_with("in holds no manifest files"), "{dir}");
        let blank_files = m(summary(InputKind::Dir, 2, 0, true)).expect("error");
        assert!(blank_files.contains("(2 files)"), "{blank_files}");
    }

    #[test]
    fn a_document_or_an_earlier_error_is_enough() {
        assert_eq!(
            summary(InputKind::Dir, 1, 1, true).nothing_to_analyze(),
            None
        );
        let mut missing = summary(InputKind::File, 0, 0, false);
        missing.unreadable = true;
        assert_eq!(missing.nothing_to_analyze(), None);
    }
}
