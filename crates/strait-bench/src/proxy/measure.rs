//! One measured window: load on one path, with what the path's processes, the generator and
//! the machine spent during the window (not the warm-up), and optionally the proxies' peak
//! memory.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::load::{self, Shape};
use super::procs::{self, MachineCpu, Memory};
use super::stats::quantile;
use super::{Bench, Lane};

/// Steal above this share of a window's CPU time flags the window.
pub const STEAL_FLAG_PERCENT: f64 = 5.0;
/// Other processes' CPU use above this share of the machine flags the window.
pub const OTHERS_FLAG_PERCENT: f64 = 10.0;

/// What one window measured.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Successful requests per second completed in the window.
    pub rps: f64,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU seconds over the window: the path's proxies together, its app, the generator.
    pub proxy_cpu: f64,
    pub app_cpu: f64,
    pub generator_cpu: f64,
    pub window: f64,
    /// Hypervisor steal over the window, percent of all CPU time.
    pub steal: f64,
    /// CPU time the machine's processes spent outside the path and the generator (other
    /// users of a shared machine, the idle paths, the control plane), percent of all CPUs.
    pub others: f64,
    /// Peak memory of each proxy during the window, when asked for.
    pub peak_memory: Vec<Memory>,
}

impl Measured {
    /// The proxies' CPU time per request, in microseconds (NaN without proxies).
    pub fn proxy_us_per_request(&self) -> f64 {
        per_request(self.proxy_cpu, self.requests)
    }

    pub fn generator_us_per_request(&self) -> f64 {
        per_request(self.generator_cpu, self.requests)
    }

    pub fn app_us_per_request(&self) -> f64 {
        per_request(self.app_cpu, self.requests)
    }

    /// The proxies' CPU use, in cores.
    pub fn proxy_vcpu(&self) -> f64 {
        self.proxy_cpu / self.window.max(1e-9)
    }

    /// Hypervisor steal above [`STEAL_FLAG_PERCENT`].
    pub fn flagged(&self) -> bool {
        self.steal > STEAL_FLAG_PERCENT
    }

    /// Other processes busy above [`OTHERS_FLAG_PERCENT`].
    pub fn crowded(&self) -> bool {
        self.others > OTHERS_FLAG_PERCENT
    }
}

fn per_request(cpu: f64, requests: u64) -> f64 {
    if requests == 0 || cpu.is_nan() {
        f64::NAN
    } else {
        cpu * 1e6 / requests as f64
    }
}

/// Counters read at each end of the window.
struct Counters {
    proxies: u64,
    apps: u64,
    generator: u64,
    machine: MachineCpu,
}

fn counters(lane: &Lane) -> anyhow::Result<Counters> {
    let sum = |pids: &[u32]| -> anyhow::Result<u64> {
        pids.iter()
            .map(|p| procs::cpu_ticks(*p).with_context(|| format!("process {p} gone?")))
            .sum()
    };
    Ok(Counters {
        proxies: sum(&lane.proxies)?,
        apps: sum(&lane.apps)?,
        generator: procs::cpu_ticks(std::process::id())?,
        machine: MachineCpu::now()?,
    })
}

/// How often proxies' memory is sampled when asked for.
const MEMORY_EVERY: Duration = Duration::from_millis(250);

/// Loads `lane` with `shape` over `connections` connections and measures the window.
pub fn run(
    bench: &Bench<'_>,
    lane: &Lane,
    shape: Shape,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    sample_memory: bool,
) -> anyhow::Result<Measured> {
    bench.pin_lane(lane)?;
    let running = load::start(&load::Plan {
        target: &lane.target,
        shape,
        connections,
        threads: bench.opts.threads,
        warmup,
        duration,
        pin: bench.pin.as_ref(),
    })?;
    sleep_until(running.measure_from);
    let before = counters(lane)?;
    let mut peak = vec![Memory::default(); lane.proxies.len()];
    while sample_memory && Instant::now() + MEMORY_EVERY < running.end {
        for (m, pid) in peak.iter_mut().zip(&lane.proxies) {
            *m = m.max(procs::memory(*pid)?);
        }
        std::thread::sleep(MEMORY_EVERY);
    }
    sleep_until(running.end);
    let after = counters(lane)?;
    if sample_memory {
        for (m, pid) in peak.iter_mut().zip(&lane.proxies) {
            *m = m.max(procs::memory(*pid)?);
        }
    }
    let mut sample = running
        .join()
        .with_context(|| format!("{} path ({})", lane.path.name(), lane.target.addr))?;
    sample.latencies_us.sort_unstable();
    let v = &sample.latencies_us;
    let ticks = bench.ticks;
    let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / ticks;
    let ours = secs(before.proxies, after.proxies)
        + secs(before.apps, after.apps)
        + secs(before.generator, after.generator);
    let busy = secs(before.machine.busy, after.machine.busy);
    let capacity = duration.as_secs_f64() * after.machine.cpus as f64;
    Ok(Measured {
        p50_us: quantile(v, 0.50),
        p90_us: quantile(v, 0.90),
        p99_us: quantile(v, 0.99),
        p999_us: quantile(v, 0.999),
        max_us: v.last().copied().unwrap_or(0),
        rps: sample.completed as f64 / duration.as_secs_f64().max(1e-9),
        requests: sample.completed,
        errors: sample.errors,
        first_error: sample.first_error,
        proxy_cpu: if lane.proxies.is_empty() {
            f64::NAN
        } else {
            secs(before.proxies, after.proxies)
        },
        app_cpu: secs(before.apps, after.apps),
        generator_cpu: secs(before.generator, after.generator),
        window: duration.as_secs_f64(),
        steal: before.machine.steal_percent_until(&after.machine),
        others: ((busy - ours).max(0.0) * 100.0 / capacity.max(1e-9)).min(100.0),
        peak_memory: if sample_memory { peak } else { Vec::new() },
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// A one-line summary for progress output.
pub fn summary(m: &Measured) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut s = format!(
        "p50 {:.3} p99 {:.3} p99.9 {:.3} ms, {:.0} req/s",
        ms(m.p50_us),
        ms(m.p99_us),
        ms(m.p999_us),
        m.rps
    );
    if !m.proxy_cpu.is_nan() {
        s.push_str(&format!(
            ", proxies {:.2} vCPU ({:.1} µs/req)",
            m.proxy_vcpu(),
            m.proxy_us_per_request()
        ));
    }
    s.push_str(&format!(", steal {:.1}%, others {:.0}%", m.steal, m.others));
    if m.errors > 0 {
        s.push_str(&format!(", {} errors", m.errors));
    }
    s
}
