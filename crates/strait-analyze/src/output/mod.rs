//! Rendering a [`crate::Report`]: human text, JSON, SARIF 2.1.0.

mod json;
mod sarif;
mod text;

pub use json::render as json;
pub use sarif::render as sarif;
pub use text::{TextOptions, render as text};

use strait_api::{Pos, SourceMap};

/// A file path as a portable string (forward slashes).
pub(crate) fn file_of(sources: &SourceMap, pos: Pos) -> String {
    sources.name(pos.file).to_string_lossy().replace('\\', "/")
}
