//! Finding the files below a path.
//!
//! Symlinks are followed, to directories elsewhere too: people keep shared manifests in one
//! place and link them into each cluster's directory. What makes that safe is that a walk
//! enters each real directory, and reads each real file, once (known by device and inode, from
//! the `stat` the walk makes anyway; by canonical path where there are no inodes).
//! A link back to a directory the walk is inside of is a loop: it is reported once, naming the
//! link, and not followed. Without this, `ln -s . d/again` read every file 32 times (the depth
//! limit), and two such links made the walk exponential.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use super::kustomize;
use crate::diag::{Diagnostic, Problem, Severity};

/// Deepest directory nesting read. Loops are caught by identity, not by this; it only bounds
/// the recursion on a pathological (or hostile) tree.
const MAX_DIR_DEPTH: usize = 32;

/// A file found by a walk, or why it could not be read.
#[derive(Debug)]
pub(super) enum Found {
    File { path: PathBuf, bytes: Vec<u8> },
    Problem(Diagnostic),
}

/// The walk of one input path, in the order it is read (entries sorted by name).
#[derive(Debug, Default)]
pub(super) struct Walk {
    /// The directories entered.
    dirs: HashSet<Identity>,
    /// The files read.
    files: HashSet<Identity>,
    /// The directories being read, outermost first, with the path they were reached by.
    stack: Vec<(Identity, PathBuf)>,
    /// Files kustomizations name that are not manifests (patches), by canonical path, with
    /// what they are.
    fragments: HashMap<PathBuf, String>,
    pub found: Vec<Found>,
}

impl Walk {
    /// Every manifest file below `path` (or `path` itself, read whatever its name).
    pub fn run(path: &Path) -> Walk {
        let mut w = Walk::default();
        w.visit(path, true);
        w
    }

    fn visit(&mut self, path: &Path, explicit: bool) {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return self.unreadable(path, &e.to_string()),
        };
        let real = identity(path, &meta);
        if meta.is_dir() {
            self.visit_dir(path, real);
        } else if explicit || is_manifest(path) {
            if !self.files.insert(real) {
                return;
            }
            if !explicit && let Some(what) = self.fragment(path) {
                return self.skipped(path, what.clone());
            }
            match std::fs::read(path) {
                Ok(bytes) => self.found.push(Found::File {
                    path: path.to_path_buf(),
                    bytes,
                }),
                Err(e) => self.unreadable(path, &e.to_string()),
            }
        }
    }

    fn visit_dir(&mut self, path: &Path, real: Identity) {
        if let Some((_, outer)) = self.stack.iter().find(|(r, _)| *r == real) {
            let message = format!(
                "symlink loop: {} leads back to {}, which is already being read; it was not followed",
                path.display(),
                outer.display()
            );
            self.found.push(Found::Problem(Diagnostic {
                problem: Problem::Unreadable,
                severity: Severity::Warning,
                pos: None,
                path: Some(path.to_path_buf()),
                message,
                object: None,
                field: None,
            }));
            return;
        }
        // Reached again through another link: its files are already read.
        if !self.dirs.insert(real.clone()) {
            return;
        }
        if self.stack.len() >= MAX_DIR_DEPTH {
            return self.unreadable(
                path,
                &format!("directories nested more than {MAX_DIR_DEPTH} deep"),
            );
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return self.unreadable(path, &e.to_string()),
        };
        entries.sort();
        for k in entries.iter().filter(|e| is_kustomization(e)) {
            self.kustomization(k);
        }
        self.stack.push((real, path.to_path_buf()));
        for entry in entries {
            let hidden = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden {
                self.visit(&entry, false);
            }
        }
        self.stack.pop();
    }

    /// Reads a kustomization for the patches it names; the file itself is not an object.
    fn kustomization(&mut self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        self.fragments.extend(kustomize::fragments(path, &text));
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.fragments.insert(
            key,
            "a kustomization, not a Kubernetes object: skipped. The manifests beside it are analyzed as written, without its patches, namespace or name prefixes; analyze the output of `kustomize build` to check what it applies".into(),
        );
    }

    fn fragment(&self, path: &Path) -> Option<&String> {
        if self.fragments.is_empty() {
            return None;
        }
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.fragments.get(&key)
    }

    fn skipped(&mut self, path: &Path, message: String) {
        self.found.push(Found::Problem(Diagnostic {
            problem: Problem::Kustomize,
            severity: Severity::Info,
            pos: None,
            path: Some(path.to_path_buf()),
            message,
            object: None,
            field: None,
        }));
    }

    fn unreadable(&mut self, path: &Path, why: &str) {
        self.found.push(Found::Problem(unreadable(path, why)));
    }
}

/// What makes two paths the same file or directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Identity(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

#[cfg(unix)]
fn identity(_path: &Path, meta: &Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    Identity((meta.dev(), meta.ino()))
}

/// A path that cannot be resolved is still read; it is only not deduplicated.
#[cfg(not(unix))]
fn identity(path: &Path, _meta: &Metadata) -> Identity {
    Identity(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

pub(super) fn unreadable(path: &Path, why: &str) -> Diagnostic {
    Diagnostic {
        problem: Problem::Unreadable,
        severity: Severity::Error,
        pos: None,
        path: Some(path.to_path_buf()),
        message: format!("cannot read {}: {why}", path.display()),
        object: None,
        field: None,
    }
}

fn is_kustomization(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| kustomize::FILE_NAMES.contains(&n))
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn files(w: &Walk) -> Vec<String> {
        w.found
            .iter()
            .filter_map(|f| match f {
                Found::File { path, .. } => Some(path.display().to_string()),
                Found::Problem(_) => None,
            })
            .collect()
    }

    fn problems(w: &Walk) -> Vec<&Diagnostic> {
        w.found
            .iter()
            .filter_map(|f| match f {
                Found::Problem(d) => Some(d),
                Found::File { .. } => None,
            })
            .collect()
    }

    #[test]
    fn self_links_are_loops_reported_once_each() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().join("d");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(d.join("a.yaml"), "a: 1\n").expect("write");
        symlink(".", d.join("s1")).expect("symlink");
        symlink(".", d.join("s2")).expect("symlink");
        let w = Walk::run(&d);
        assert_eq!(files(&w), [d.join("a.yaml").display().to_string()]);
        let p = problems(&w);
        assert_eq!(p.len(), 2, "{p:?}");
        for (d, link) in p.iter().zip(["s1", "s2"]) {
            assert_eq!(d.severity, Severity::Warning);
            assert!(d.path.as_ref().is_some_and(|p| p.ends_with(link)), "{d:?}");
            assert!(d.message.contains("symlink loop"), "{}", d.message);
        }
    }

    #[test]
    fn a_link_to_a_parent_is_a_loop() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sub = tmp.path().join("d/sub");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join("a.yaml"), "a: 1\n").expect("write");
        symlink("..", sub.join("up")).expect("symlink");
        let w = Walk::run(&tmp.path().join("d"));
        assert_eq!(files(&w).len(), 1);
        let p = problems(&w);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains("sub/up leads back to"),
            "{}",
            p[0].message
        );
    }

    #[test]
    fn links_elsewhere_are_followed_and_read_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let shared = tmp.path().join("shared");
        let d = tmp.path().join("d");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(shared.join("s.yaml"), "a: 1\n").expect("write");
        std::fs::write(d.join("own.yaml"), "a: 1\n").expect("write");
        symlink(&shared, d.join("common")).expect("symlink");
        symlink(&shared, d.join("common-again")).expect("symlink");
        symlink(d.join("own.yaml"), d.join("same.yaml")).expect("symlink");
        let w = Walk::run(&d);
        let names = files(&w);
        assert_eq!(
            names,
            [
                d.join("common/s.yaml").display().to_string(),
                d.join("own.yaml").display().to_string(),
            ]
        );
        assert!(problems(&w).is_empty(), "{:?}", problems(&w));
    }
}
