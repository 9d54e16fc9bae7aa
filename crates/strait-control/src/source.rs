//! Where configuration comes from: a mesh directory (or one cluster's files), plus files a
//! local run adds (the pods it started). Re-read whenever a file changes; an update with input
//! errors is rejected whole, reported with file:line, and the last good mesh stays in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use strait_api::{Diagnostic, Severity};
use strait_model::{BuildOptions, Mesh};

use crate::hub::Hub;

/// What to read.
#[derive(Clone, Debug)]
pub struct Source {
    pub paths: Vec<PathBuf>,
    /// Extra files or directories per cluster.
    pub extra: Vec<(String, PathBuf)>,
}

/// A rejected update: the input errors, rendered `file:line:column: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub errors: Vec<String>,
}

impl Source {
    /// Reads and builds the mesh. Input errors (syntax, unknown fields, invalid values) reject
    /// the update: a control plane never serves half of what the user wrote.
    pub fn load(&self) -> Result<Mesh, Rejected> {
        let input = strait_api::read_input_with(&self.paths, &self.extra);
        let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| render(&mesh, d))
            .collect();
        if errors.is_empty() {
            Ok(mesh)
        } else {
            Err(Rejected { errors })
        }
    }

    /// Loads the source, with the fingerprint of what was read: `None` when a file changed
    /// while it was being read (an editor writing in place), so the result may be torn.
    pub fn load_settled(&self) -> (Result<Mesh, Rejected>, Option<Fingerprint>) {
        let before = self.fingerprint();
        let result = self.load();
        let settled = (self.fingerprint() == before).then_some(before);
        (result, settled)
    }

    /// A fingerprint of every input file (path, size, modification time): it changes when
    /// any file is edited, added or removed.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut out = Vec::new();
        for p in self.paths.iter().chain(self.extra.iter().map(|(_, p)| p)) {
            walk(p, &mut out, 0);
        }
        out.sort();
        out
    }
}

fn walk(p: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>, depth: usize) {
    let Ok(meta) = std::fs::metadata(p) else {
        return;
    };
    if meta.is_dir() {
        if depth > 32 {
            return;
        }
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    walk(&e.path(), out, depth + 1);
                }
            }
        }
    } else {
        out.push((p.to_path_buf(), meta.len(), meta.modified().ok()));
    }
}

/// Path, size and modification time of every input file, sorted.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn render(mesh: &Mesh, d: &Diagnostic) -> String {
    match (d.pos, &d.path) {
        (Some(pos), _) => format!("{}: {}", mesh.sources.display(pos), d.message),
        (None, Some(p)) => format!("{}: {}", p.display(), d.message),
        (None, None) => d.message.clone(),
    }
}

/// Watches the source on its own thread (file system calls block) and reloads the hub after
/// every settled change: no new change for one more poll interval, so an editor's
/// save-in-several-writes becomes one update.
#[derive(Debug)]
pub struct Watcher {
    stop: Arc<AtomicBool>,
}

impl Watcher {
    pub fn spawn(interval: Duration, hub: Arc<Hub>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    if !hub.changed() {
                        continue;
                    }
                    // Settle: wait until a poll sees no further change.
                    let mut now = hub.source.fingerprint();
                    loop {
                        std::thread::sleep(interval);
                        let again = hub.source.fingerprint();
                        if again == now {
                            break;
                        }
                        now = again;
                    }
                    hub.reload();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the configuration watcher; changes will not apply");
        }
        Watcher { stop }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
