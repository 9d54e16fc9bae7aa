//! The memory section, per proxy pair, one after the other: resident and private memory
//! freshly started; idle after a short warm-up (so that connection pools, TLS sessions and
//! metric series exist, as in any proxy that has served); after config dumps; at its peak
//! while 256 keep-alive connections send at a moderate rate; at its peak during a load
//! spike; and after each, a few seconds later, to see whether it came back.
//!
//! The stages run in that order, on the same processes, so each stage's lasting growth is
//! what it left over what was there before it: the dumps against idle, the load (held
//! connections and spike) against the memory just before it. A stage "came back" when that
//! growth is at most 10% of idle, for resident and private memory both.
//!
//! A config dump is a GET of the admin `/config_dump`: what `strait proxy-config ... -o
//! json` reads from a sidecar, and `istioctl proxy-config` from an Envoy.

use std::time::Duration;

use anyhow::Context;

use super::load::Shape;
use super::measure::{self, Measured};
use super::procs::{self, Memory};
use super::{Bench, Lane, Path, http};

/// Config dumps asked of each proxy (one is a small signal for a leak, five show a trend).
pub const DUMPS: usize = 5;
/// Growth over idle still counted as "came back".
pub const BACK_WITHIN: f64 = 0.10;

/// One proxy pair's memory through the stages; each list holds the client proxy, then the
/// server proxy.
#[derive(Clone, Debug, Default)]
pub struct MemoryRun {
    pub fresh: Vec<Memory>,
    pub idle: Vec<Memory>,
    /// Right after the config dumps, and after settling.
    pub dump: Vec<Memory>,
    pub dump_settled: Vec<Memory>,
    pub dump_bytes: usize,
    /// Peak while holding the connections, and after settling.
    pub hold: Vec<Memory>,
    pub hold_load: Measured,
    pub hold_settled: Vec<Memory>,
    /// Peak during the spike, and after settling.
    pub spike: Vec<Memory>,
    pub spike_load: Measured,
    pub spike_settled: Vec<Memory>,
}

/// Both pairs.
#[derive(Clone, Debug, Default)]
pub struct MemoryResults {
    pub strait: MemoryRun,
    pub envoy: MemoryRun,
}

impl MemoryResults {
    pub fn of(&self, path: Path) -> &MemoryRun {
        match path {
            Path::Envoy => &self.envoy,
            _ => &self.strait,
        }
    }
}

/// The pair's total.
pub fn total(m: &[Memory]) -> Memory {
    m.iter().fold(Memory::default(), |a, b| a.plus(*b))
}

/// What a stage left: the pair's growth from `before` it to `after` it, as a percentage of
/// `idle` (resident, private).
pub fn growth(idle: &[Memory], before: &[Memory], after: &[Memory]) -> (f64, f64) {
    let (i, b, a) = (total(idle), total(before), total(after));
    let pct = |i: u64, b: u64, a: u64| {
        if i == 0 {
            f64::NAN
        } else {
            (a as f64 - b as f64) * 100.0 / i as f64
        }
    };
    (
        pct(i.rss, b.rss, a.rss),
        pct(i.private, b.private, a.private),
    )
}

/// Whether a stage's lasting growth ([`growth`]) is within [`BACK_WITHIN`] of idle,
/// resident and private memory alike.
pub fn came_back(idle: &[Memory], before: &[Memory], after: &[Memory]) -> bool {
    let (rss, private) = growth(idle, before, after);
    let limit = BACK_WITHIN * 100.0;
    !idle.is_empty() && !before.is_empty() && !after.is_empty() && rss <= limit && private <= limit
}

pub(super) fn run(
    bench: &Bench<'_>,
    lanes: &dyn Fn() -> anyhow::Result<Vec<Lane>>,
) -> anyhow::Result<MemoryResults> {
    let mut out = MemoryResults::default();
    for path in Path::PROXIES {
        let lane = lanes()?
            .into_iter()
            .find(|l| l.path == path)
            .context("no lane")?;
        let run = pair(bench, &lane).with_context(|| format!("{} memory", path.name()))?;
        match path {
            Path::Envoy => out.envoy = run,
            _ => out.strait = run,
        }
    }
    Ok(out)
}

fn now(lane: &Lane) -> anyhow::Result<Vec<Memory>> {
    lane.proxies.iter().map(|p| procs::memory(*p)).collect()
}

fn show(stage: &str, lane: &Lane, m: &[Memory]) {
    let mib = |k: u64| k as f64 / 1024.0;
    let parts: Vec<String> = m
        .iter()
        .map(|m| format!("{:.1}/{:.1}", mib(m.rss), mib(m.private)))
        .collect();
    eprintln!(
        "memory: {} {stage}: RSS/private MiB {}",
        lane.path.name(),
        parts.join(", ")
    );
}

fn pair(bench: &Bench<'_>, lane: &Lane) -> anyhow::Result<MemoryRun> {
    let o = bench.opts;
    let mut r = MemoryRun {
        fresh: now(lane)?,
        ..MemoryRun::default()
    };
    show("fresh", lane, &r.fresh);
    // Warm-up: a few hundred requests, then quiet.
    measure::run(
        bench,
        lane,
        Shape::FixedRate(200),
        4,
        Duration::ZERO,
        Duration::from_secs(2),
        false,
    )?;
    std::thread::sleep(o.settle);
    r.idle = now(lane)?;
    show("idle", lane, &r.idle);

    for _ in 0..DUMPS {
        for admin in &lane.admins {
            let body = http::get_ok(*admin, "/config_dump", Duration::from_secs(10))?;
            r.dump_bytes = r.dump_bytes.max(body.len());
        }
    }
    r.dump = now(lane)?;
    show("after config dumps", lane, &r.dump);
    std::thread::sleep(o.settle);
    r.dump_settled = now(lane)?;
    show("after config dumps, settled", lane, &r.dump_settled);

    r.hold_load = measure::run(
        bench,
        lane,
        Shape::FixedRate(o.hold_rate),
        o.hold_connections,
        Duration::from_secs(1),
        o.duration,
        true,
    )?;
    r.hold = r.hold_load.peak_memory.clone();
    let held = format!("{} connections", o.hold_connections);
    show(&format!("{held} (peak)"), lane, &r.hold);
    eprintln!("  {}", measure::summary(&r.hold_load));
    std::thread::sleep(o.settle);
    r.hold_settled = now(lane)?;
    show(&format!("after {held}, settled"), lane, &r.hold_settled);

    let spike_for = o.duration.min(Duration::from_secs(5));
    r.spike_load = measure::run(
        bench,
        lane,
        Shape::ClosedLoop,
        o.spike_connections,
        Duration::ZERO,
        spike_for,
        true,
    )?;
    r.spike = r.spike_load.peak_memory.clone();
    show("spike (peak)", lane, &r.spike);
    eprintln!("  {}", measure::summary(&r.spike_load));
    std::thread::sleep(o.settle);
    r.spike_settled = now(lane)?;
    show("after the spike, settled", lane, &r.spike_settled);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rss: u64, private: u64) -> Memory {
        Memory {
            rss,
            private,
            peak: rss,
        }
    }

    #[test]
    fn back_within_ten_percent_of_the_pair() {
        let idle = [m(100, 50), m(100, 50)];
        assert!(came_back(&idle, &idle, &[m(105, 52), m(105, 52)]));
        assert!(came_back(&idle, &idle, &[m(110, 55), m(110, 55)]));
        // The pair's resident memory grew by 11%.
        assert!(!came_back(&idle, &idle, &[m(112, 50), m(110, 50)]));
        // Private memory alone grew by 20%.
        assert!(!came_back(&idle, &idle, &[m(100, 60), m(100, 60)]));
        assert!(!came_back(&[], &[], &[]));
        assert_eq!(total(&idle), m(200, 100));
        // A later stage counts from what was there before it, as a share of idle.
        let before = [m(150, 80), m(150, 80)];
        assert!(came_back(&idle, &before, &[m(160, 84), m(155, 80)]));
        assert!(!came_back(&idle, &before, &[m(150, 100), m(150, 80)]));
        let (rss, private) = growth(&idle, &before, &[m(160, 84), m(155, 80)]);
        assert!((rss - 7.5).abs() < 1e-9 && (private - 4.0).abs() < 1e-9);
        assert!(growth(&[], &before, &before).0.is_nan());
    }
}
