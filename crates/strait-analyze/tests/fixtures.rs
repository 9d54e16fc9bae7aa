//! Every code has two fixtures under `tests/fixtures/<CODE>/`:
//!
//! - `fires/`: input where the check must report. Its `EXPECT` files (`EXPECT`, `EXPECT.<case>`)
//!   list lines `<CODE> <file>:<line>` (file relative to `fires/`) that must all be reported.
//! - `silent/`: a nearby, correct input where the code must not appear at all.
//!
//! An input is a directory of manifests, or a mesh directory (with `mesh.yaml`).
//! `STRAIT_FIXTURE=IST0101,STR0201` runs only those codes.

use std::path::{Path, PathBuf};

use strait_analyze::{Options, Report, analyze, catalog};
use strait_model::BuildOptions;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn run(dir: &Path) -> (Report, strait_model::Mesh) {
    let input = strait_api::read_input(&[dir.to_path_buf()]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    let report = analyze(&mesh, &diags, &Options::default());
    (report, mesh)
}

fn describe(report: &Report, mesh: &strait_model::Mesh) -> String {
    report
        .findings
        .iter()
        .map(|f| {
            let at = f
                .pos
                .map(|p| format!("{}:{}", mesh.sources.name(p.file).display(), p.line))
                .unwrap_or_default();
            format!("  {} {} {}", f.code, at, f.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn selected() -> Option<Vec<String>> {
    std::env::var("STRAIT_FIXTURE").ok().map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fn check_code(code: &str) -> Result<(), String> {
    let base = fixtures_dir().join(code);
    let fires = base.join("fires");
    let silent = base.join("silent");
    let mut expect = String::new();
    let entries = std::fs::read_dir(&fires)
        .map_err(|e| format!("{code}: cannot read {}: {e}", fires.display()))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("EXPECT") {
            expect.push_str(
                &std::fs::read_to_string(entry.path()).map_err(|e| format!("{code}: {e}"))?,
            );
            expect.push('\n');
        }
    }
    let (report, mesh) = run(&fires);
    let mut wanted = 0;
    for line in expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        wanted += 1;
        let (c, loc) = line
            .split_once(' ')
            .ok_or_else(|| format!("{code}: bad EXPECT line {line:?}"))?;
        let (file, line_no) = loc
            .rsplit_once(':')
            .ok_or_else(|| format!("{code}: bad EXPECT line {line:?}"))?;
        let line_no: u32 = line_no
            .parse()
            .map_err(|_| format!("{code}: bad line number in {line:?}"))?;
        let hit = report.findings.iter().any(|f| {
            f.code == c
                && f.pos
                    .is_some_and(|p| p.line == line_no && mesh.sources.name(p.file).ends_with(file))
                || (f.code == c
                    && f.pos.is_none()
                    && f.path.as_ref().is_some_and(|p| p.ends_with(file))
                    && line_no == 0)
        });
        if !hit {
            return Err(format!(
                "{code}: expected {c} at {file}:{line_no}, got:\n{}",
                describe(&report, &mesh)
            ));
        }
    }
    if wanted == 0 || !expect.contains(code) {
        return Err(format!(
            "{code}: EXPECT must list at least one {code} finding"
        ));
    }
    let (report, mesh) = run(&silent);
    if report.findings.iter().any(|f| f.code == code) {
        return Err(format!(
            "{code}: the silent fixture reports it:\n{}",
            describe(&report, &mesh)
        ));
    }
    Ok(())
}

#[test]
fn fixtures_fire_and_stay_silent() {
    let only = selected();
    let mut failures = Vec::new();
    let mut ran = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let entry = entry.expect("entry");
        let code = entry.file_name().to_string_lossy().to_string();
        if only.as_ref().is_some_and(|o| !o.contains(&code)) {
            continue;
        }
        ran += 1;
        if let Err(e) = check_code(&code) {
            failures.push(e);
        }
    }
    assert!(ran > 0, "no fixtures ran");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_code_has_fixtures() {
    if selected().is_some() {
        return;
    }
    let missing: Vec<&str> = catalog::ALL
        .iter()
        .map(|c| c.code)
        .filter(|c| {
            let d = fixtures_dir().join(c);
            let has_expect = std::fs::read_dir(d.join("fires"))
                .map(|rd| {
                    rd.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("EXPECT"))
                })
                .unwrap_or(false);
            !(has_expect && d.join("silent").is_dir())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "codes without fires/ and silent/ fixtures: {missing:?}"
    );
}
