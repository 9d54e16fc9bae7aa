//! `strait analyze`: checks over the whole mesh at once.
//!
//! [`analyze`] runs every analyzer in [`checks`] over a [`strait_model::Mesh`] and turns the
//! loader's diagnostics into findings too, so one report holds input problems and
//! configuration problems alike. Each finding has a code from the [`catalog`] (istioctl's IST
//! codes where istioctl has the check, strait's STR codes otherwise), a level, a message, the
//! resource with its cluster, and a file:line:column. [`output`] renders text, JSON and SARIF.

pub mod catalog;
pub mod checks;
mod context;
mod finding;
pub mod output;
pub mod suppress;

use std::sync::atomic::{AtomicUsize, Ordering};

use strait_api::Diagnostic;
use strait_model::Mesh;

pub use context::Ctx;
pub use finding::{Finding, Level, Related, Resource};
pub use suppress::Suppression;

/// What to run and what to drop.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub suppressions: Vec<Suppression>,
    /// Run only these analyzers (by name); all when empty.
    pub analyzers: Vec<String>,
    /// The input may not hold the whole mesh: a reference to something it lacks is Info, not
    /// an error (`Ctx::not_found`).
    pub partial: bool,
}

/// A finished analysis.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Sorted by file, line and column, then code.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The highest level present, if any finding.
    pub fn max_level(&self) -> Option<Level> {
        self.findings.iter().map(|f| f.level).max()
    }

    pub fn has_input_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_input_error)
    }

    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// Runs the analyzers over `mesh` and merges `diagnostics` (from loading) into the report.
pub fn analyze(mesh: &Mesh, diagnostics: &[Diagnostic], opts: &Options) -> Report {
    let cluster_of = |d: &Diagnostic| -> String {
        let file = d.pos.map(|p| p.file);
        let name = file
            .map(|f| mesh.sources.name(f).to_path_buf())
            .or_else(|| d.path.clone());
        name.and_then(|n| {
            mesh.clusters
                .iter()
                .find(|c| c.dir.as_ref().is_some_and(|dir| n.starts_with(dir)))
                .map(|c| c.name.clone())
        })
        .unwrap_or_else(|| {
            if mesh.clusters.len() == 1 {
                mesh.clusters[0].name.clone()
            } else {
                String::new()
            }
        })
    };
    let mut findings = checks::input::findings(diagnostics, &cluster_of);
    let chosen: Vec<&checks::Analyzer> = checks::ANALYZERS
        .iter()
        .filter(|a| opts.analyzers.is_empty() || opts.analyzers.iter().any(|n| n == a.name))
        .collect();
    for mut found in run_all(mesh, opts.partial, &chosen) {
        findings.extend(found.drain(..).filter(|f| !f.code.is_empty()));
    }
    findings.retain(|f| !opts.suppressions.iter().any(|s| s.matches(f)));
    findings.sort_by(|a, b| order_key(mesh, a).cmp(&order_key(mesh, b)));
    findings.dedup();
    Report { findings }
}

/// Runs `analyzers` on every core. They share the mesh read-only and each reports into its
/// own context; the findings come back in the analyzers' order, so the report does not depend
/// on which thread ran what.
fn run_all(mesh: &Mesh, partial: bool, analyzers: &[&checks::Analyzer]) -> Vec<Vec<Finding>> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(a) = analyzers.get(i) else {
                return done;
            };
            let mut ctx = Ctx::new(mesh);
            ctx.partial = partial;
            (a.run)(&mut ctx);
            done.push((i, ctx.findings));
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(analyzers.len());
    let mut out: Vec<Vec<Finding>> = vec![Vec::new(); analyzers.len()];
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            match h.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        for (i, found) in all {
            out[i] = found;
        }
    });
    out
}

/// The report's order: file, line, column, code, message (borrowed: the sort compares
/// hundreds of thousands of pairs on a large dump).
fn order_key<'a>(
    mesh: &'a Mesh,
    f: &'a Finding,
) -> (Option<(&'a std::path::Path, u32, u32)>, &'a str, &'a str) {
    (
        f.pos.map(|p| (mesh.sources.name(p.file), p.line, p.column)),
        f.code,
        f.message.as_str(),
    )
}
