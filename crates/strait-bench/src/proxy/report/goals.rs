//! The goals table: each goal with strait's figure, Envoy's, their ratio, and whether it was
//! met in this run.

use std::fmt;

use super::latency::{MIN_QUIET_RUNS, added, quiet_runs, spread};
use super::{Report, mib};
use crate::proxy::Path;
use crate::proxy::measure::Measured;
use crate::proxy::memory::{BACK_WITHIN, DUMPS};
use crate::proxy::memory::{came_back, growth, total};
use crate::proxy::procs::Memory;
use crate::proxy::stats::ratio;

/// 15 MB (decimal, as the goal is stated), in KiB.
const IDLE_RSS_LIMIT_KIB: f64 = 15e6 / 1024.0;

#[derive(Debug)]
struct Goal {
    name: String,
    target: &'static str,
    strait: String,
    envoy: String,
    ratio: String,
    verdict: &'static str,
}

fn not_measured(name: &str, target: &'static str) -> Goal {
    Goal {
        name: name.into(),
        target,
        strait: "-".into(),
        envoy: "-".into(),
        ratio: "-".into(),
        verdict: "not measured",
    }
}

/// A goal on the ratio strait / Envoy: at most `max` or at least `min`.
fn ratio_goal(
    name: &str,
    target: &'static str,
    s: Option<f64>,
    e: Option<f64>,
    decimals: usize,
    unit: &str,
    ok: impl Fn(f64) -> bool,
) -> Goal {
    let (Some(s), Some(e)) = (s, e) else {
        return not_measured(name, target);
    };
    let r = ratio(s, e);
    Goal {
        name: name.into(),
        target,
        strait: format!("{s:.decimals$}{unit}"),
        envoy: format!("{e:.decimals$}{unit}"),
        ratio: r.map_or("-".into(), |r| format!("×{r:.2}")),
        verdict: match r {
            Some(r) if ok(r) => "met",
            _ => "missed",
        },
    }
}

fn goals(report: &Report) -> Vec<Goal> {
    let mut out = Vec::new();
    let median = |s: Option<crate::proxy::stats::Spread>| s.map(|s| s.median);
    match &report.latency {
        Some(l) => {
            // Judged on the runs no noise flag marks, when there are enough of them.
            let quiet = quiet_runs(&l.fixed);
            let total = l.fixed.get(&Path::Direct).map_or(0, Vec::len);
            let (runs, which) = if quiet.len() >= MIN_QUIET_RUNS {
                (
                    Some(quiet.as_slice()),
                    format!("median of the {} unflagged runs of {total}", quiet.len()),
                )
            } else {
                (
                    None,
                    format!("median of all {total} runs: only {} unflagged", quiet.len()),
                )
            };
            out.push(ratio_goal(
                &format!("added p99 latency at the fixed rate ({which})"),
                "≤ ×0.5",
                median(added(&l.fixed, Path::Strait, |m| m.p99_us, runs)),
                median(added(&l.fixed, Path::Envoy, |m| m.p99_us, runs)),
                3,
                " ms",
                |r| r <= 0.5,
            ));
            let mut p999 = ratio_goal(
                &format!("added p99.9 latency at the fixed rate ({which})"),
                "-",
                median(added(&l.fixed, Path::Strait, |m| m.p999_us, runs)),
                median(added(&l.fixed, Path::Envoy, |m| m.p999_us, runs)),
                3,
                " ms",
                |_| true,
            );
            p999.verdict = "reported";
            out.push(p999);
            for (name, map) in [
                ("proxy CPU per request at the fixed rate", &l.fixed),
                ("proxy CPU per request at saturation", &l.closed),
            ] {
                out.push(ratio_goal(
                    name,
                    "≤ ×0.5",
                    median(spread(map, Path::Strait, Measured::proxy_us_per_request)),
                    median(spread(map, Path::Envoy, Measured::proxy_us_per_request)),
                    1,
                    " µs",
                    |r| r <= 0.5,
                ));
            }
            out.push(ratio_goal(
                "max throughput (closed loop)",
                "≥ ×1.5",
                median(spread(&l.closed, Path::Strait, |m| m.rps)),
                median(spread(&l.closed, Path::Envoy, |m| m.rps)),
                0,
                " req/s",
                |r| r >= 1.5,
            ));
        }
        None => {
            for (n, t) in [
                ("added p99 latency at the fixed rate", "≤ ×0.5"),
                ("proxy CPU per request at the fixed rate", "≤ ×0.5"),
                ("proxy CPU per request at saturation", "≤ ×0.5"),
                ("max throughput (closed loop)", "≥ ×1.5"),
            ] {
                out.push(not_measured(n, t));
            }
        }
    }
    match &report.scale {
        Some(s) => {
            let largest = |m: &[Memory]| m.iter().map(|m| m.rss).max();
            let (sr, er) = (largest(&s.strait.idle), largest(&s.envoy.idle));
            out.push(Goal {
                name: format!("{} services: RSS of the larger sidecar, idle", s.services),
                target: "strait ≤ 15 MB",
                strait: sr.map_or("-".into(), |k| format!("{:.1} MiB", mib(k))),
                envoy: er.map_or("-".into(), |k| format!("{:.1} MiB", mib(k))),
                ratio: match (sr, er) {
                    (Some(s), Some(e)) => {
                        ratio(s as f64, e as f64).map_or("-".into(), |r| format!("×{r:.2}"))
                    }
                    _ => "-".into(),
                },
                verdict: match sr {
                    Some(k) if k as f64 <= IDLE_RSS_LIMIT_KIB => "met",
                    Some(_) => "missed",
                    None => "not measured",
                },
            });
            let private = |m: &[Memory]| (!m.is_empty()).then(|| mib(total(m).private));
            out.push(ratio_goal(
                &format!("{} services: private memory of the pair, idle", s.services),
                "≤ ×0.25",
                private(&s.strait.idle),
                private(&s.envoy.idle),
                1,
                " MiB",
                |r| r <= 0.25,
            ));
        }
        None => {
            out.push(not_measured("1,000 services: RSS, idle", "strait ≤ 15 MB"));
            out.push(not_measured(
                "1,000 services: private memory, idle",
                "≤ ×0.25",
            ));
        }
    }
    match &report.memory {
        Some(m) => {
            let private = |m: &[Memory]| (!m.is_empty()).then(|| mib(total(m).private));
            out.push(ratio_goal(
                &format!(
                    "private memory of the pair under {} connections (peak)",
                    report.opts.hold_connections
                ),
                "≤ ×0.5",
                private(&m.strait.hold),
                private(&m.envoy.hold),
                1,
                " MiB",
                |r| r <= 0.5,
            ));
            out.push(growth_goal(
                &format!("no lasting growth after {DUMPS} config dumps"),
                [&m.strait.idle, &m.strait.idle, &m.strait.dump_settled],
                [&m.envoy.idle, &m.envoy.idle, &m.envoy.dump_settled],
            ));
            out.push(growth_goal(
                "no lasting growth after load (held connections, spike)",
                [
                    &m.strait.idle,
                    &m.strait.dump_settled,
                    &m.strait.spike_settled,
                ],
                [&m.envoy.idle, &m.envoy.dump_settled, &m.envoy.spike_settled],
            ));
        }
        None => {
            out.push(not_measured(
                "private memory under 256 connections",
                "≤ ×0.5",
            ));
            out.push(not_measured(
                "no lasting growth after config dumps",
                "≤ +10%",
            ));
            out.push(not_measured(
                "no lasting growth after load (held connections, spike)",
                "≤ +10%",
            ));
        }
    }
    if let Some(s) = &report.scale {
        out.push(growth_goal(
            &format!(
                "{} services: no lasting growth after config dumps",
                s.services
            ),
            [&s.strait.idle, &s.strait.idle, &s.strait.dump_settled],
            [&s.envoy.idle, &s.envoy.idle, &s.envoy.dump_settled],
        ));
    }
    out
}

/// A "no lasting growth" goal, each side given as idle, before the stage and after it:
/// strait's growth must stay within [`BACK_WITHIN`] of idle; Envoy's is shown.
fn growth_goal(name: &str, strait: [&[Memory]; 3], envoy: [&[Memory]; 3]) -> Goal {
    let show = |[idle, before, after]: [&[Memory]; 3]| {
        let (rss, private) = growth(idle, before, after);
        format!("{rss:+.1}% RSS, {private:+.1}% private")
    };
    let [idle, before, after] = strait;
    Goal {
        name: name.into(),
        target: "≤ +10% of idle",
        strait: show(strait),
        envoy: show(envoy),
        ratio: "-".into(),
        verdict: if came_back(idle, before, after) {
            "met"
        } else {
            "missed"
        },
    }
}

pub(super) fn write(f: &mut fmt::Formatter<'_>, report: &Report) -> fmt::Result {
    let goals = goals(report);
    writeln!(
        f,
        "\n### Goals (strait against Envoy in this run; each proxy with its full job: Istio metrics on, access log off, STRICT mTLS)\n"
    )?;
    writeln!(
        f,
        "| goal | target | strait | Envoy | strait ÷ Envoy | verdict |"
    )?;
    writeln!(f, "|---|---|---|---|---|---|")?;
    for g in &goals {
        writeln!(
            f,
            "| {} | {} | {} | {} | {} | **{}** |",
            g.name, g.target, g.strait, g.envoy, g.ratio, g.verdict
        )?;
    }
    let met = goals.iter().filter(|g| g.verdict == "met").count();
    let judged = goals
        .iter()
        .filter(|g| g.verdict == "met" || g.verdict == "missed")
        .count();
    writeln!(
        f,
        "\n{met} of {judged} goals met. Growth is what a stage left of the pair's totals (over what was there before it), as a share of idle; met means at most {:.0}% for RSS and private memory both.",
        BACK_WITHIN * 100.0
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_goals() {
        let g = ratio_goal("x", "≤ ×0.5", Some(1.0), Some(4.0), 1, " µs", |r| {
            r <= 0.5
        });
        assert_eq!((g.ratio.as_str(), g.verdict), ("×0.25", "met"));
        assert_eq!(g.strait, "1.0 µs");
        let g = ratio_goal("x", "≥ ×1.5", Some(100.0), Some(80.0), 0, "", |r| {
            r >= 1.5
        });
        assert_eq!((g.ratio.as_str(), g.verdict), ("×1.25", "missed"));
        let g = ratio_goal("x", "≤ ×0.5", None, Some(1.0), 1, "", |r| r <= 0.5);
        assert_eq!(g.verdict, "not measured");
        // A ratio with no meaning (Envoy's figure zero) is not a pass.
        let g = ratio_goal("x", "≤ ×0.5", Some(1.0), Some(0.0), 1, "", |r| r <= 0.5);
        assert_eq!(g.verdict, "missed");
    }
}
