//! Results of the proxy benchmark, and the tables printed from them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use super::Options;
use super::load::{Sample, Shape, quantile};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    Direct,
    Strait,
    Envoy,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Direct => "no proxy",
            Path::Strait => "strait",
            Path::Envoy => "Envoy",
        }
    }
}

/// One run of one shape on one path.
#[derive(Clone, Debug)]
pub struct Measured {
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    max_us: u64,
    rps: f64,
    errors: u64,
    first_error: Option<String>,
    /// CPU time of the path's proxies over the run, in vCPU (seconds per second).
    vcpu: f64,
    /// Proxy CPU per 1000 requests, in milliseconds.
    cpu_ms_per_1k: f64,
}

impl Measured {
    pub fn new(mut sample: Sample, window: Duration, cpu_seconds: f64, wall: Duration) -> Self {
        sample.latencies_us.sort_unstable();
        let v = &sample.latencies_us;
        let rps = v.len() as f64 / window.as_secs_f64().max(1e-9);
        let wall = wall.as_secs_f64().max(1e-9);
        let requests = rps * wall;
        Measured {
            p50_us: quantile(v, 0.50),
            p90_us: quantile(v, 0.90),
            p99_us: quantile(v, 0.99),
            max_us: v.last().copied().unwrap_or(0),
            rps,
            errors: sample.errors,
            first_error: sample.first_error,
            vcpu: cpu_seconds / wall,
            cpu_ms_per_1k: if requests > 0.0 {
                cpu_seconds * 1000.0 / requests * 1000.0
            } else {
                0.0
            },
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "p50 {} p90 {} p99 {} ms, {:.0} req/s, proxies {:.3} vCPU, {} errors",
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            self.rps,
            self.vcpu,
            self.errors
        )
    }
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Everything measured, by path and shape.
#[derive(Debug)]
pub struct Report {
    opts: Options,
    fixed: BTreeMap<Path, Vec<Measured>>,
    closed: BTreeMap<Path, Vec<Measured>>,
    /// (VmRSS, VmHWM) in KiB per proxy, client first.
    memory: BTreeMap<Path, Vec<(u64, u64)>>,
}

impl Report {
    pub fn new(opts: Options) -> Self {
        Report {
            opts,
            fixed: BTreeMap::new(),
            closed: BTreeMap::new(),
            memory: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, path: Path, shape: Shape, m: Measured) {
        let map = match shape {
            Shape::FixedRate(_) => &mut self.fixed,
            Shape::ClosedLoop => &mut self.closed,
        };
        map.entry(path).or_default().push(m);
    }

    pub fn memory(&mut self, path: Path, kib: (u64, u64)) {
        self.memory.entry(path).or_default().push(kib);
    }

    /// The median over runs of one figure.
    fn median(&self, fixed: bool, path: Path, f: impl Fn(&Measured) -> f64) -> f64 {
        let map = if fixed { &self.fixed } else { &self.closed };
        let mut v: Vec<f64> = map.get(&path).into_iter().flatten().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
    }

    /// Errors over all runs of a path, with the first message.
    fn errors(&self, path: Path) -> (u64, Option<&str>) {
        let all = self
            .fixed
            .get(&path)
            .into_iter()
            .chain(self.closed.get(&path))
            .flatten();
        let mut n = 0;
        let mut first = None;
        for m in all {
            n += m.errors;
            first = first.or(m.first_error.as_deref());
        }
        (n, first)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        let paths = [Path::Direct, Path::Strait, Path::Envoy];
        let lat = |p: Path, q: fn(&Measured) -> u64| self.median(true, p, |m| q(m) as f64) / 1000.0;
        writeln!(
            f,
            "### Latency at {} req/s ({} connections, {}-byte responses, {} s per run; median of {} runs)\n",
            o.rate,
            o.connections,
            o.size,
            o.duration.as_secs(),
            o.runs
        )?;
        writeln!(
            f,
            "| path | p50 ms | p90 ms | p99 ms | max ms | added p50 | added p90 | added p99 | proxies' CPU (vCPU) |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|")?;
        for p in paths {
            let added = |q: fn(&Measured) -> u64| {
                if p == Path::Direct {
                    "-".to_string()
                } else {
                    format!("{:.3}", lat(p, q) - lat(Path::Direct, q))
                }
            };
            writeln!(
                f,
                "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} |",
                p.name(),
                lat(p, |m| m.p50_us),
                lat(p, |m| m.p90_us),
                lat(p, |m| m.p99_us),
                lat(p, |m| m.max_us),
                added(|m| m.p50_us),
                added(|m| m.p90_us),
                added(|m| m.p99_us),
                if p == Path::Direct {
                    "-".to_string()
                } else {
                    format!("{:.3}", self.median(true, p, |m| m.vcpu))
                },
            )?;
        }
        writeln!(
            f,
            "\n### Throughput, closed loop ({} connections, {} s per run; median of {} runs)\n",
            o.closed_connections,
            o.duration.as_secs(),
            o.runs
        )?;
        writeln!(
            f,
            "| path | req/s | p50 ms | p99 ms | proxies' CPU per 1000 requests (ms) |"
        )?;
        writeln!(f, "|---|---|---|---|---|")?;
        for p in paths {
            writeln!(
                f,
                "| {} | {:.0} | {:.3} | {:.3} | {} |",
                p.name(),
                self.median(false, p, |m| m.rps),
                self.median(false, p, |m| m.p50_us as f64) / 1000.0,
                self.median(false, p, |m| m.p99_us as f64) / 1000.0,
                if p == Path::Direct {
                    "-".to_string()
                } else {
                    format!("{:.1}", self.median(false, p, |m| m.cpu_ms_per_1k))
                },
            )?;
        }
        writeln!(
            f,
            "\n### Memory after the runs (client proxy / server proxy)\n"
        )?;
        writeln!(f, "| path | RSS MiB | peak RSS MiB |")?;
        writeln!(f, "|---|---|---|")?;
        for p in [Path::Strait, Path::Envoy] {
            let m = self.memory.get(&p).map(Vec::as_slice).unwrap_or_default();
            let col = |pick: fn(&(u64, u64)) -> u64| {
                m.iter()
                    .map(|k| format!("{:.1}", pick(k) as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            writeln!(f, "| {} | {} | {} |", p.name(), col(|k| k.0), col(|k| k.1))?;
        }
        writeln!(
            f,
            "\n### strait relative to Envoy (below 1 is better, except throughput)\n"
        )?;
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "-".into()
            }
        };
        let added = |p: Path, q: fn(&Measured) -> u64| lat(p, q) - lat(Path::Direct, q);
        let mut line = String::new();
        for (name, q) in [
            ("p50", (|m: &Measured| m.p50_us) as fn(&Measured) -> u64),
            ("p90", |m| m.p90_us),
            ("p99", |m| m.p99_us),
        ] {
            let _ = write!(
                line,
                "added {name} latency {}, ",
                ratio(added(Path::Strait, q), added(Path::Envoy, q))
            );
        }
        let mem = |p: Path| {
            self.memory
                .get(&p)
                .map(|m| m.iter().map(|k| k.1).sum::<u64>())
                .unwrap_or(0) as f64
        };
        writeln!(
            f,
            "{line}CPU at fixed rate {}, CPU per request at full load {}, throughput {}, peak memory {}",
            ratio(
                self.median(true, Path::Strait, |m| m.vcpu),
                self.median(true, Path::Envoy, |m| m.vcpu)
            ),
            ratio(
                self.median(false, Path::Strait, |m| m.cpu_ms_per_1k),
                self.median(false, Path::Envoy, |m| m.cpu_ms_per_1k)
            ),
            ratio(
                self.median(false, Path::Strait, |m| m.rps),
                self.median(false, Path::Envoy, |m| m.rps)
            ),
            ratio(mem(Path::Strait), mem(Path::Envoy)),
        )?;
        for p in paths {
            if let (n, Some(first)) = self.errors(p) {
                writeln!(f, "\n{}: {n} failed requests (first: {first})", p.name())?;
            }
        }
        Ok(())
    }
}
