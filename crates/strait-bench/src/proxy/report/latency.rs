//! The latency, CPU, throughput and wrk tables.

use std::collections::BTreeMap;
use std::fmt;

use super::cell;
use crate::proxy::latency::LatencyResults;
use crate::proxy::measure::Measured;
use crate::proxy::stats::{Spread, ratio};
use crate::proxy::{Options, Path};

type Quantile = fn(&Measured) -> u64;

pub(super) const QUANTILES: [(&str, Quantile); 4] = [
    ("p50", |m| m.p50_us),
    ("p90", |m| m.p90_us),
    ("p99", |m| m.p99_us),
    ("p99.9", |m| m.p999_us),
];

/// A figure over a path's runs.
pub(super) fn spread(
    map: &BTreeMap<Path, Vec<Measured>>,
    path: Path,
    f: impl Fn(&Measured) -> f64,
) -> Option<Spread> {
    Spread::of(map.get(&path).into_iter().flatten().map(f))
}

/// Latency the path adds to no proxy, run by run (each run's no-proxy figure is its
/// baseline), in milliseconds; only the runs in `runs` when given.
pub(super) fn added(
    map: &BTreeMap<Path, Vec<Measured>>,
    path: Path,
    q: Quantile,
    runs: Option<&[usize]>,
) -> Option<Spread> {
    let (measured, direct) = (map.get(&path)?, map.get(&Path::Direct)?);
    Spread::of(
        measured
            .iter()
            .zip(direct)
            .enumerate()
            .filter(|(i, _)| runs.is_none_or(|r| r.contains(i)))
            .map(|(_, (m, d))| (q(m) as f64 - q(d) as f64) / 1000.0),
    )
}

/// The runs in which no path's window was flagged (steal, or other processes busy).
pub(super) fn quiet_runs(map: &BTreeMap<Path, Vec<Measured>>) -> Vec<usize> {
    let runs = map.values().map(Vec::len).max().unwrap_or(0);
    (0..runs)
        .filter(|i| {
            Path::ALL.iter().all(|p| {
                map.get(p)
                    .and_then(|v| v.get(*i))
                    .is_some_and(|m| !m.flagged() && !m.crowded())
            })
        })
        .collect()
}

/// Fewest quiet runs the goals are judged on; with fewer, they are judged on all runs.
pub(super) const MIN_QUIET_RUNS: usize = 3;

pub(super) fn write(f: &mut fmt::Formatter<'_>, o: &Options, l: &LatencyResults) -> fmt::Result {
    let ms = |q: Quantile| move |m: &Measured| q(m) as f64 / 1000.0;
    writeln!(
        f,
        "\n### Latency at {} req/s ({} connections, {} s per run after {} s of warm-up)\n",
        o.rate,
        o.connections,
        o.duration.as_secs(),
        o.warmup.as_secs()
    )?;
    writeln!(f, "| path | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |")?;
    writeln!(f, "|---|---|---|---|---|---|")?;
    for p in Path::ALL {
        write!(f, "| {} |", p.name())?;
        for (_, q) in QUANTILES {
            write!(f, " {} |", cell(spread(&l.fixed, p, ms(q)), 3))?;
        }
        writeln!(f, " {} |", cell(spread(&l.fixed, p, ms(|m| m.max_us)), 3))?;
    }
    writeln!(
        f,
        "\nAdded latency (the path minus no proxy in the same run), ms:\n"
    )?;
    writeln!(
        f,
        "| path | added p50 | added p90 | added p99 | added p99.9 |"
    )?;
    writeln!(f, "|---|---|---|---|---|")?;
    for p in Path::PROXIES {
        write!(f, "| {} |", p.name())?;
        for (_, q) in QUANTILES {
            write!(f, " {} |", cell(added(&l.fixed, p, q, None), 3))?;
        }
        writeln!(f)?;
    }
    write!(f, "\nstrait relative to Envoy (added latency, medians):")?;
    for (name, q) in QUANTILES {
        let r = match (
            added(&l.fixed, Path::Strait, q, None),
            added(&l.fixed, Path::Envoy, q, None),
        ) {
            (Some(s), Some(e)) => ratio(s.median, e.median),
            _ => None,
        };
        write!(
            f,
            " {name} {}",
            r.map_or("-".into(), |r| format!("×{r:.2}"))
        )?;
    }
    writeln!(f, ".")?;
    let quiet = quiet_runs(&l.fixed);
    let names: Vec<String> = quiet.iter().map(|i| (i + 1).to_string()).collect();
    writeln!(
        f,
        "\nRuns in which no path's fixed-rate window was flagged: {} of {}{}.",
        quiet.len(),
        o.runs,
        if names.is_empty() {
            String::new()
        } else {
            format!(" (run {})", names.join(", "))
        }
    )?;

    writeln!(
        f,
        "\n### Saturation: closed loop ({} connections, {} s per run)\n",
        o.closed_connections,
        o.duration.as_secs()
    )?;
    writeln!(
        f,
        "| path | req/s | p50 ms | p99 ms | p99.9 ms | proxies' vCPU | app CPU µs/req | generator vCPU | generator CPU µs/req |"
    )?;
    writeln!(f, "|---|---|---|---|---|---|---|---|---|")?;
    for p in Path::ALL {
        let s = |g: &dyn Fn(&Measured) -> f64, d| cell(spread(&l.closed, p, g), d);
        writeln!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name(),
            s(&|m| m.rps, 0),
            s(&ms(|m| m.p50_us), 3),
            s(&ms(|m| m.p99_us), 3),
            s(&ms(|m| m.p999_us), 3),
            s(&Measured::proxy_vcpu, 2),
            s(&Measured::app_us_per_request, 1),
            s(&|m| m.generator_cpu / m.window, 2),
            s(&Measured::generator_us_per_request, 1),
        )?;
    }

    writeln!(
        f,
        "\n### Proxy CPU per request (both proxies of the path together, µs)\n"
    )?;
    writeln!(
        f,
        "| path | at {} req/s | proxies' vCPU at {} req/s | at saturation |",
        o.rate, o.rate
    )?;
    writeln!(f, "|---|---|---|---|")?;
    for p in Path::PROXIES {
        writeln!(
            f,
            "| {} | {} | {} | {} |",
            p.name(),
            cell(spread(&l.fixed, p, Measured::proxy_us_per_request), 1),
            cell(spread(&l.fixed, p, Measured::proxy_vcpu), 3),
            cell(spread(&l.closed, p, Measured::proxy_us_per_request), 1),
        )?;
    }

    writeln!(
        f,
        "\n### Cross-check with wrk ({} connections, {} s, one run per path, after the runs)\n",
        o.closed_connections,
        o.wrk_duration.as_secs()
    )?;
    if let Some(why) = &l.wrk_skipped {
        writeln!(f, "Not run: {why}.")?;
        return Ok(());
    }
    writeln!(
        f,
        "| path | generator req/s (median) | wrk req/s | generator ÷ wrk | generator p50 / p99 ms | wrk p50 / p99 ms | wrk errors |"
    )?;
    writeln!(f, "|---|---|---|---|---|---|---|")?;
    for p in Path::ALL {
        let g = spread(&l.closed, p, |m| m.rps).map(|s| s.median);
        let g50 = spread(&l.closed, p, ms(|m| m.p50_us)).map(|s| s.median);
        let g99 = spread(&l.closed, p, ms(|m| m.p99_us)).map(|s| s.median);
        let opt = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
        match l.wrk.get(&p) {
            Some(Ok(w)) => writeln!(
                f,
                "| {} | {} | {:.0} | {} | {} / {} | {:.3} / {:.3} | {} |",
                p.name(),
                opt(g, 0),
                w.rps,
                opt(g.and_then(|g| ratio(g, w.rps)), 2),
                opt(g50, 3),
                opt(g99, 3),
                w.p50_us / 1000.0,
                w.p99_us / 1000.0,
                w.errors
            )?,
            Some(Err(e)) => writeln!(f, "| {} | {} | failed: {e} | | | | |", p.name(), opt(g, 0))?,
            None => {}
        }
    }
    if let (Some(g), Some(Ok(w))) = (
        spread(&l.closed, Path::Direct, |m| m.rps),
        l.wrk.get(&Path::Direct),
    ) && let Some(r) = ratio(g.median, w.rps)
    {
        writeln!(
            f,
            "\nNo proxy: the generator reached {:.0}% of wrk's rate on the same path{}",
            r * 100.0,
            if r >= 0.8 {
                ": the generator is not what limits a path."
            } else {
                ". It is below 80%: the generator may be limiting; read the throughput figures with care."
            }
        )?;
    }
    Ok(())
}
