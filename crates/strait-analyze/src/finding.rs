//! Findings: what the analyzer reports.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use strait_api::Pos;

/// How serious a finding is (ordered: `Info < Warning < Error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Info => "Info",
            Level::Warning => "Warning",
            Level::Error => "Error",
        }
    }

    /// Parses `info`, `warning`, `error` (any case).
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Level::Info),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The resource a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Resource {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub cluster: String,
}

impl Resource {
    /// The form `--suppress` matches: `Kind name.namespace` (or `Kind name`).
    pub fn suppress_form(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}.{}", self.kind, self.name, self.namespace)
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Another place a finding involves (the other cluster's copy, the conflicting object).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub message: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub level: Level,
    pub message: String,
    pub resource: Option<Resource>,
    pub pos: Option<Pos>,
    /// For findings with no position (an unreadable file).
    pub path: Option<PathBuf>,
    pub field: Option<String>,
    pub related: Vec<Related>,
}

impl Finding {
    pub fn is_input_error(&self) -> bool {
        crate::catalog::is_input_error(self.code) && self.level == Level::Error
    }
}
