//! Rendering a [`crate::Report`]: human text, JSON, SARIF 2.1.0.

mod json;
mod sarif;
mod text;

pub use json::render as json;
pub use sarif::render as sarif;
pub use text::{TextOptions, render as text};

use serde::ser::{Serialize, SerializeSeq, Serializer};
use strait_api::{Pos, SourceMap};

use crate::finding::Finding;

/// The findings as a JSON array, each finding's value built only while it is written (a report
/// of 100,000 findings built as one value took more memory than the mesh it described).
pub(crate) struct EachFinding<'a, F>(pub &'a [Finding], pub F);

impl<'a, T: Serialize, F: Fn(&'a Finding) -> T> Serialize for EachFinding<'a, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for f in self.0 {
            seq.serialize_element(&(self.1)(f))?;
        }
        seq.end()
    }
}

/// A file path as a portable string (forward slashes).
pub(crate) fn file_of(sources: &SourceMap, pos: Pos) -> String {
    sources.name(pos.file).to_string_lossy().replace('\\', "/")
}
