//! The benchmark's output: one line per event for progress, and the Markdown report with the
//! goals of the control plane at scale.

use std::time::Duration;

use super::{Event, Report};

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "timeout".into(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

/// One event, for progress.
pub fn line(e: &Event) -> String {
    format!(
        "gen {:>3} {:<60} reload {:>9} converged {:>10} last response {:>10}  compiled {:>5} sent {:>5} expected {:>5}  {:.1} KB",
        e.generation,
        e.what,
        ms(Some(e.reload)),
        ms(e.converged),
        ms(e.last_arrival),
        e.compiled,
        e.sent,
        e.expected,
        e.bytes as f64 / 1024.0
    )
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied()
}

/// The report, in Markdown.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let sh = r.shape;
    let _ = writeln!(
        s,
        "## Control plane: {} services, {} endpoints, {} clusters, {} proxies\n",
        sh.services, sh.endpoints, sh.clusters, sh.proxies
    );
    let _ = writeln!(
        s,
        "Input: {} files, {:.1} MB of YAML; the control plane of cluster0 reads {} objects (its own cluster, and the others through remote secrets). First load: {:.2} s.\n",
        r.files,
        r.bytes as f64 / 1_048_576.0,
        r.objects,
        r.first_load.as_secs_f64()
    );
    let lat = |es: &[Event], p| percentile(es.iter().filter_map(Event::latency).collect(), p);
    let conv = |es: &[Event], p| percentile(es.iter().filter_map(|e| e.converged).collect(), p);
    let reload = |es: &[Event], p| percentile(es.iter().map(|e| e.reload).collect(), p);
    // The push alone: from the end of the reload (the new generation is published just before
    // it ends) to the last response.
    let push = |es: &[Event], p| {
        percentile(
            es.iter()
                .filter_map(|e| e.latency().map(|l| l.saturating_sub(e.reload)))
                .collect(),
            p,
        )
    };
    let mean = |es: &[Event], f: fn(&Event) -> f64| {
        if es.is_empty() {
            0.0
        } else {
            es.iter().map(f).sum::<f64>() / es.len() as f64
        }
    };
    let _ = writeln!(s, "| goal | target | measured |\n|---|---|---|");
    let _ = writeln!(
        s,
        "| full push to all proxies (mesh-wide change, median of {}) | < 2 s | {} (reload {}, push after the reload {}) |",
        r.full.len(),
        ms(conv(&r.full, 0.5)),
        ms(reload(&r.full, 0.5)),
        ms(push(&r.full, 0.5)),
    );
    let _ = writeln!(
        s,
        "| initial push (all streams opened at once, TLS included) | — | {} , {:.1} KB per proxy |",
        ms(r.initial.converged),
        r.initial.bytes as f64 / 1024.0 / sh.proxies.max(1) as f64
    );
    let _ = writeln!(
        s,
        "| one endpoint change reaches every affected proxy ({} changes) | p99 < 100 ms | p50 {}, p99 {} (reload p50 {}; push after the reload p50 {}, p99 {}; all proxies in sync p99 {}) |",
        r.endpoints.len(),
        ms(lat(&r.endpoints, 0.5)),
        ms(lat(&r.endpoints, 0.99)),
        ms(reload(&r.endpoints, 0.5)),
        ms(push(&r.endpoints, 0.5)),
        ms(push(&r.endpoints, 0.99)),
        ms(conv(&r.endpoints, 0.99)),
    );
    let _ = writeln!(
        s,
        "| … proxies recompiled / sent anything / in the namespace, per change (mean) | — | {:.1} / {:.1} / {:.1} |",
        mean(&r.endpoints, |e| e.compiled as f64),
        mean(&r.endpoints, |e| e.sent as f64),
        mean(&r.endpoints, |e| e.expected as f64),
    );
    let _ = writeln!(
        s,
        "| one VirtualService edit ({} edits) | recompiles only what it affects | p50 {}, recompiled {:.1}, sent {:.1}, in the namespace {:.1} (of {}) |",
        r.vs.len(),
        ms(lat(&r.vs, 0.5)),
        mean(&r.vs, |e| e.compiled as f64),
        mean(&r.vs, |e| e.sent as f64),
        mean(&r.vs, |e| e.expected as f64),
        sh.proxies
    );
    let _ = writeln!(
        s,
        "| peak RSS (control plane and the streams' client side) | < 1 GB | {:.0} MB (now {:.0} MB) |",
        r.peak_rss_kb as f64 / 1024.0,
        r.rss_kb as f64 / 1024.0
    );
    if !r.errors.is_empty() {
        let _ = writeln!(s, "\nStream errors ({}):", r.errors.len());
        for e in r.errors.iter().take(10) {
            let _ = writeln!(s, "- {e}");
        }
    }
    s
}
