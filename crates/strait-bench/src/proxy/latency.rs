//! The latency section: per run, each path at a fixed rate and in a closed loop, paths taken
//! in a rotating order; then wrk against each path.

use std::collections::BTreeMap;

use super::load::Shape;
use super::measure::{self, Measured};
use super::wrk::{self, WrkResult};
use super::{Bench, Lane, Path};

/// Everything the section measured; each list is indexed by run.
#[derive(Debug, Default)]
pub struct LatencyResults {
    pub fixed: BTreeMap<Path, Vec<Measured>>,
    pub closed: BTreeMap<Path, Vec<Measured>>,
    /// wrk's figures per path, or why it could not run.
    pub wrk: BTreeMap<Path, Result<WrkResult, String>>,
    /// Why wrk was not run at all.
    pub wrk_skipped: Option<String>,
}

pub(super) fn run(
    bench: &Bench<'_>,
    lanes: &dyn Fn() -> anyhow::Result<Vec<Lane>>,
) -> anyhow::Result<LatencyResults> {
    let o = bench.opts;
    let mut out = LatencyResults::default();
    for run in 0..o.runs {
        // Read again every run: a sidecar that restarted has a new process id.
        let lanes = lanes()?;
        // Each run starts with the next path, so no path is always measured first.
        for k in 0..lanes.len() {
            let lane = &lanes[(run + k) % lanes.len()];
            for (shape, connections) in [
                (Shape::FixedRate(o.rate), o.connections),
                (Shape::ClosedLoop, o.closed_connections),
            ] {
                let m = measure::run(bench, lane, shape, connections, o.warmup, o.duration, false)?;
                eprintln!(
                    "run {}/{}: {} {}: {}",
                    run + 1,
                    o.runs,
                    lane.path.name(),
                    shape_name(shape),
                    measure::summary(&m)
                );
                let map = match shape {
                    Shape::FixedRate(_) => &mut out.fixed,
                    Shape::ClosedLoop => &mut out.closed,
                };
                map.entry(lane.path).or_default().push(m);
            }
        }
    }
    match &o.wrk {
        None => out.wrk_skipped = Some("wrk is not installed".into()),
        Some(path) => {
            for lane in lanes()? {
                bench.pin_lane(&lane)?;
                let cpus = bench.pin.as_ref().map(|p| p.generator_list());
                let r = wrk::run(
                    path,
                    &lane.target,
                    o.closed_connections,
                    o.threads,
                    o.wrk_duration,
                    cpus.as_deref(),
                );
                match &r {
                    Ok(w) => eprintln!(
                        "wrk: {}: {:.0} req/s, p50 {:.3} p99 {:.3} ms, {} errors",
                        lane.path.name(),
                        w.rps,
                        w.p50_us / 1000.0,
                        w.p99_us / 1000.0,
                        w.errors
                    ),
                    Err(e) => eprintln!("wrk: {}: {e:#}", lane.path.name()),
                }
                out.wrk.insert(lane.path, r.map_err(|e| format!("{e:#}")));
            }
        }
    }
    Ok(out)
}

pub fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::FixedRate(_) => "fixed rate",
        Shape::ClosedLoop => "closed loop",
    }
}
