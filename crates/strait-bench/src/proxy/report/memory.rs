//! The memory and scale tables.

use std::fmt;

use super::{cell, mib};
use crate::proxy::memory::{self, BACK_WITHIN, DUMPS, MemoryResults};
use crate::proxy::procs::Memory;
use crate::proxy::scale::ScaleResults;
use crate::proxy::stats::Spread;
use crate::proxy::{Options, Path};

/// `client / server` in MiB, of one figure.
fn pair(m: &[Memory], pick: Pick) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|m| format!("{:.1}", mib(pick(m))))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Picks one figure of a process's memory.
type Pick = fn(&Memory) -> u64;

const FIGURES: [(&str, Pick); 2] = [("RSS", |m| m.rss), ("private", |m| m.private)];

/// A stage's lasting growth and whether it came back: `yes (+5.0% RSS, +1.0% private)`.
pub(super) fn verdict(idle: &[Memory], before: &[Memory], after: &[Memory]) -> String {
    let (rss, private) = memory::growth(idle, before, after);
    format!(
        "{} ({rss:+.1}% RSS, {private:+.1}% private)",
        if memory::came_back(idle, before, after) {
            "yes"
        } else {
            "no"
        }
    )
}

pub(super) fn write_memory(
    f: &mut fmt::Formatter<'_>,
    o: &Options,
    m: &MemoryResults,
) -> fmt::Result {
    let settle = o.settle.as_secs();
    writeln!(
        f,
        "\n### Memory of each proxy (MiB, client / server; RSS = VmRSS, private = RssAnon)\n"
    )?;
    writeln!(
        f,
        "| proxy | | fresh | idle | after {DUMPS} config dumps | +{settle} s | {} connections (peak) | +{settle} s | load spike (peak) | +{settle} s |",
        o.hold_connections
    )?;
    writeln!(f, "|---|---|---|---|---|---|---|---|---|---|")?;
    for p in Path::PROXIES {
        let r = m.of(p);
        for (name, pick) in FIGURES {
            writeln!(
                f,
                "| {} | {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.name(),
                pair(&r.fresh, pick),
                pair(&r.idle, pick),
                pair(&r.dump, pick),
                pair(&r.dump_settled, pick),
                pair(&r.hold, pick),
                pair(&r.hold_settled, pick),
                pair(&r.spike, pick),
                pair(&r.spike_settled, pick),
            )?;
        }
    }
    writeln!(
        f,
        "\n\"Idle\" is {settle} s after a 2 s warm-up at 200 req/s (pools, TLS sessions and metric series exist); the spike is a {}-connection closed loop. The stages run in the order of the columns on the same processes, so each is judged by what it left over what was there before it: the dumps against idle, the load (held connections, then the spike) against the memory after the dumps. Came back: that growth of the pair's totals is at most {:.0}% of idle, RSS and private both:\n",
        o.spike_connections,
        BACK_WITHIN * 100.0
    )?;
    for p in Path::PROXIES {
        let r = m.of(p);
        writeln!(
            f,
            "- {}: after config dumps {}; after the load {}.",
            p.name(),
            verdict(&r.idle, &r.idle, &r.dump_settled),
            verdict(&r.idle, &r.dump_settled, &r.spike_settled)
        )?;
    }
    writeln!(f)?;
    for p in Path::PROXIES {
        let r = m.of(p);
        let l = &r.hold_load;
        writeln!(
            f,
            "- {} holding {} connections at {} req/s: p50 {:.3} ms, p99 {:.3} ms, {} errors; spike {:.0} req/s, {} errors; config dump {:.0} KiB.",
            p.name(),
            o.hold_connections,
            o.hold_rate,
            l.p50_us as f64 / 1000.0,
            l.p99_us as f64 / 1000.0,
            l.errors,
            r.spike_load.rps,
            r.spike_load.errors,
            r.dump_bytes as f64 / 1024.0
        )?;
    }
    Ok(())
}

pub(super) fn write_scale(
    f: &mut fmt::Formatter<'_>,
    o: &Options,
    s: &ScaleResults,
) -> fmt::Result {
    writeln!(
        f,
        "\n### {} services in every proxy (MiB, client / server)\n",
        s.services
    )?;
    writeln!(
        f,
        "| proxy | | idle | after config dumps (+{} s) | under load at {} req/s (peak) |",
        o.settle.as_secs(),
        o.rate
    )?;
    writeln!(f, "|---|---|---|---|---|")?;
    for p in Path::PROXIES {
        let side = s.of(p);
        for (name, pick) in FIGURES {
            writeln!(
                f,
                "| {} | {name} | {} | {} | {} |",
                p.name(),
                pair(&side.idle, pick),
                pair(&side.dump_settled, pick),
                pair(&side.load.peak_memory, pick),
            )?;
        }
    }
    writeln!(f)?;
    for p in Path::PROXIES {
        let l = &s.of(p).load;
        writeln!(
            f,
            "- {} under load: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, {} errors; after config dumps, back within {:.0}% of idle: {}.",
            p.name(),
            l.p50_us as f64 / 1000.0,
            l.p99_us as f64 / 1000.0,
            l.p999_us as f64 / 1000.0,
            l.errors,
            BACK_WITHIN * 100.0,
            verdict(&s.of(p).idle, &s.of(p).idle, &s.of(p).dump_settled)
        )?;
    }
    writeln!(
        f,
        "- strait's client sidecar holds {} services and {} clusters (its config dump is {:.1} MiB).",
        s.strait_services_held,
        s.strait_clusters_held,
        s.dump_bytes as f64 / (1024.0 * 1024.0)
    )?;
    let ms = |v: &[f64]| cell(Spread::of(v.iter().map(|s| s * 1000.0)), 0);
    writeln!(
        f,
        "- strait time to ready, **a restarted sidecar**: from its process start to `/healthz/ready` answering 200 (certificate signed and the full first push received), {} ms over {} restarts (/proc clock: ±20 ms).",
        ms(&s.restart_to_ready),
        s.restart_to_ready.len()
    )?;
    writeln!(
        f,
        "- strait time to ready, **a live change** (one Service and WorkloadEntry written): from the file written to every sidecar's ACK of the new generation, {} ms over {} changes; this includes the control plane's file polling (up to 200 ms until the poll sees it, then 30 ms to see it settled).",
        ms(&s.change_to_ack),
        s.change_to_ack.len()
    )?;
    writeln!(
        f,
        "- For context: `strait up` to every proxy ready {} ms; Envoy from process start to LIVE (static file, no xDS) {} ms (client, server).",
        ms(&s.strait.start_to_ready),
        s.envoy
            .start_to_ready
            .iter()
            .map(|v| format!("{:.0}", v * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_pairs() {
        let m = |rss, private| Memory {
            rss,
            private,
            peak: rss,
        };
        let idle = [m(1000, 500), m(1000, 500)];
        let after = [m(1100, 500), m(1000, 550)];
        assert_eq!(
            verdict(&idle, &idle, &after),
            "yes (+5.0% RSS, +5.0% private)"
        );
        assert_eq!(
            verdict(&idle, &idle, &[m(1500, 500), m(1000, 500)]),
            "no (+25.0% RSS, +0.0% private)"
        );
        assert_eq!(
            verdict(&idle, &after, &after),
            "yes (+0.0% RSS, +0.0% private)"
        );
        assert_eq!(pair(&after, |m| m.rss), "1.1 / 1.0");
        assert_eq!(pair(&[], |m| m.rss), "-");
    }
}
