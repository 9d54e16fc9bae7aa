//! `strait analyze`: files, a mesh directory, or (`--kubeconfig`, `--context`) the clusters'
//! API servers, all read into one input and analyzed alike.

use std::io::Write;
use std::process::ExitCode;

use strait_analyze::{Level, Options, Report, Suppression, catalog, checks, output};
use strait_api::InputSummary;
use strait_api::embedded::read_typed_file;
use strait_api::istio::mesh_config::{MeshConfig, MeshNetworks};
use strait_model::BuildOptions;

use crate::cli::{AnalyzeArgs, Output, Threshold};
use crate::out;

fn level(t: Threshold) -> Level {
    match t {
        Threshold::Info => Level::Info,
        Threshold::Warning => Level::Warning,
        Threshold::Error => Level::Error,
    }
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    if args.list_analyzers {
        out::print(&list())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut suppressions = Vec::new();
    for s in &args.suppress {
        match Suppression::parse(s) {
            Ok(sup) => {
                if !sup.code.contains('*') && catalog::by_code(&sup.code).is_none() {
                    note(&format!(
                        "warning: --suppress names unknown code {}",
                        sup.code
                    ));
                }
                suppressions.push(sup);
            }
            Err(e) => {
                note(&format!("error: {e}"));
                return Ok(ExitCode::from(2));
            }
        }
    }
    for a in &args.analyzers {
        if !checks::ANALYZERS.iter().any(|x| x.name == a) {
            note(&format!(
                "error: unknown analyzer \"{a}\" (see --list-analyzers)"
            ));
            return Ok(ExitCode::from(2));
        }
    }
    let mut input = if args.clusters.given() {
        super::cluster_target::read_input(&args.clusters, args.quiet)?
    } else {
        strait_api::read_input(&args.paths)
    };
    let mut extra = Vec::new();
    // An input with nothing in it is an input error, so that `helm template ... | strait
    // analyze -` cannot pass CI when `helm` failed and wrote nothing. A mesh directory is never
    // empty (it has mesh.yaml), and one of its clusters may be.
    if input.mesh.is_none() {
        extra.extend(
            input
                .loaded
                .inputs
                .iter()
                .filter_map(InputSummary::nothing_to_analyze),
        );
    }
    let mut opts = BuildOptions::default();
    if let Some(p) = &args.mesh_config {
        let (v, mut d) = read_typed_file::<MeshConfig>(&mut input.loaded.sources, p, "mesh");
        extra.append(&mut d);
        opts.mesh_config = v;
    }
    if let Some(p) = &args.mesh_networks {
        let (v, mut d) =
            read_typed_file::<MeshNetworks>(&mut input.loaded.sources, p, "meshNetworks");
        extra.append(&mut d);
        opts.mesh_networks = v;
    }
    let (mesh, mut diags) = strait_model::build(input, &opts);
    diags.extend(extra);
    let report = strait_analyze::analyze(
        &mesh,
        &diags,
        &Options {
            suppressions,
            analyzers: args.analyzers.clone(),
            partial: args.partial,
        },
    );
    let code = if report.has_input_errors() {
        2
    } else if report
        .max_level()
        .is_some_and(|l| l >= level(args.failure_threshold))
    {
        1
    } else {
        0
    };
    let summary = (!args.quiet && args.output == Output::Text).then(|| summary(&report, &mesh));
    let mut shown = report;
    shown
        .findings
        .retain(|f| f.level >= level(args.output_threshold));
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match args.output {
        Output::Text => output::text(
            &shown,
            &mesh.sources,
            output::TextOptions {
                color: out::use_color(args.color, true),
                show_source: args.show_source,
            },
            &mut out,
        ),
        Output::Json => output::json(&shown, &mesh.sources, &mut out),
        Output::Sarif => output::sarif(&shown, &mesh.sources, &mut out),
    }?;
    out.flush()?;
    drop(out);
    if let Some(line) = summary {
        note(&line);
    }
    // The process ends here: freeing every object of a large mesh one by one took a twentieth
    // of the run, and the kernel reclaims it all at once.
    std::mem::forget((mesh, shown));
    Ok(ExitCode::from(code))
}

/// A line for people on stderr. A closed stderr (`strait analyze d 2>&1 | head -1`) is not an
/// error, and must not turn the exit code into a panic's.
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn summary(report: &Report, mesh: &strait_model::Mesh) -> String {
    let clusters = mesh.clusters.len();
    let objects: usize = mesh.clusters.iter().map(|c| c.objects.len()).sum();
    let scope = format!(
        "{objects} resource{} in {clusters} cluster{}",
        if objects == 1 { "" } else { "s" },
        if clusters == 1 { "" } else { "s" }
    );
    if report.findings.is_empty() {
        return format!("No issues found in {scope}.");
    }
    format!(
        "{} error(s), {} warning(s), {} info in {scope}.",
        report.count(Level::Error),
        report.count(Level::Warning),
        report.count(Level::Info)
    )
}

fn list() -> String {
    let mut s = String::new();
    for a in checks::ANALYZERS {
        s.push_str(&format!("{:<18} {}\n", a.name, a.description));
        for c in a.codes {
            s.push_str(&format!(
                "    {} {:<8} {} — {}\n",
                c.code,
                c.level.name(),
                c.name,
                c.summary
            ));
        }
    }
    s
}
