//! One line per finding (`file:line:col: Level [CODE] Resource (cluster): message`), optionally
//! with the source line and a caret, then related locations.

use std::fmt::Write;
use std::io;

use strait_api::SourceMap;

use crate::Report;
use crate::finding::{Finding, Level};

#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    pub color: bool,
    pub show_source: bool,
}

fn paint(s: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Writes one finding at a time, so a large report is never held twice.
pub fn render(
    report: &Report,
    sources: &SourceMap,
    opts: TextOptions,
    w: &mut dyn io::Write,
) -> io::Result<()> {
    let mut out = String::new();
    for f in &report.findings {
        out.clear();
        line(&mut out, f, sources, opts);
        w.write_all(out.as_bytes())?;
    }
    Ok(())
}

fn line(out: &mut String, f: &Finding, sources: &SourceMap, opts: TextOptions) {
    let level = match f.level {
        Level::Error => paint("Error", "1;31", opts.color),
        Level::Warning => paint("Warning", "1;33", opts.color),
        Level::Info => paint("Info", "1;36", opts.color),
    };
    if let Some(pos) = f.pos {
        let _ = write!(out, "{}: ", sources.display(pos));
    } else if let Some(p) = &f.path {
        let _ = write!(out, "{}: ", p.display());
    }
    let _ = write!(out, "{level} [{}]", f.code);
    if let Some(r) = &f.resource {
        if r.cluster.is_empty() || (r.kind == "Cluster" && r.name == r.cluster) {
            let _ = write!(out, " {r}");
        } else {
            let _ = write!(out, " {r} ({})", r.cluster);
        }
    }
    let _ = writeln!(out, ": {}", f.message);
    if opts.show_source
        && let Some(pos) = f.pos
        && let Some(src) = sources.get(pos.file).and_then(|file| file.line(pos.line))
    {
        let gutter = pos.line.to_string().len();
        let caret_pad: String = src
            .chars()
            .take(pos.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{:gutter$} |", "");
        let _ = writeln!(out, "{} | {src}", pos.line);
        let _ = writeln!(
            out,
            "{:gutter$} | {caret_pad}{}",
            "",
            paint("^", "1;32", opts.color)
        );
    }
    for r in &f.related {
        let _ = writeln!(out, "    note: {} ({})", r.message, sources.display(r.pos));
    }
}
