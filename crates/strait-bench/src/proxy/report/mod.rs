//! The report: Markdown tables of every section, then the goals table.

mod goals;
mod latency;
mod memory;

use std::fmt::{self, Write as _};
use std::time::Duration;

use anyhow::Context;

use super::latency::LatencyResults;
use super::measure::{Measured, OTHERS_FLAG_PERCENT, STEAL_FLAG_PERCENT};
use super::memory::MemoryResults;
use super::scale::ScaleResults;
use super::stats::Spread;
use super::strait_mesh::StraitMesh;
use super::{Options, Path, http};

/// Everything measured.
#[derive(Debug)]
pub struct Report {
    opts: Options,
    /// How CPUs were split, when pinned.
    pinning: Option<String>,
    pub(super) latency: Option<LatencyResults>,
    pub(super) memory: Option<MemoryResults>,
    pub(super) scale: Option<ScaleResults>,
    pub(super) full_job: Option<FullJob>,
}

impl Report {
    pub(super) fn new(opts: Options, pinning: Option<String>) -> Report {
        Report {
            opts,
            pinning,
            latency: None,
            memory: None,
            scale: None,
            full_job: None,
        }
    }

    /// Every measured window, named, for the steal summary and errors.
    fn windows(&self) -> Vec<(String, &Measured)> {
        let mut out = Vec::new();
        if let Some(l) = &self.latency {
            for (shape, map) in [("fixed rate", &l.fixed), ("closed loop", &l.closed)] {
                for (path, runs) in map {
                    for (i, m) in runs.iter().enumerate() {
                        out.push((format!("run {} {} {shape}", i + 1, path.name()), m));
                    }
                }
            }
        }
        if let Some(mem) = &self.memory {
            for path in Path::PROXIES {
                let r = mem.of(path);
                out.push((
                    format!("memory {} held connections", path.name()),
                    &r.hold_load,
                ));
                out.push((format!("memory {} spike", path.name()), &r.spike_load));
            }
        }
        if let Some(s) = &self.scale {
            for path in Path::PROXIES {
                out.push((format!("scale {} load", path.name()), &s.of(path).load));
            }
        }
        out
    }
}

/// What shows that strait's proxies did their full job during the run, read from them.
#[derive(Clone, Debug)]
pub struct FullJob {
    /// Access logging as each sidecar's configuration says (client, server).
    access_log: Vec<bool>,
    /// The server sidecar's mTLS mode on the app's port.
    inbound_mtls: String,
    /// `istio_requests_total` summed over series, per sidecar (client, server).
    requests_counted: Vec<f64>,
}

impl FullJob {
    pub(super) fn check(mesh: &StraitMesh) -> anyhow::Result<FullJob> {
        let (client, server) = mesh.pods()?;
        let mut access_log = Vec::new();
        let mut inbound_mtls = String::new();
        let mut requests_counted = Vec::new();
        for (i, pod) in [client, server].iter().enumerate() {
            let dump = http::get_ok(pod.admin(), "/config_dump", Duration::from_secs(10))?;
            let v: serde_json::Value = serde_json::from_slice(&dump).context("config dump")?;
            access_log.push(
                v.pointer("/config/mesh/access_log")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(true),
            );
            if i == 1 {
                inbound_mtls = v
                    .pointer("/config/inbound/8080/mtls")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?")
                    .to_string();
            }
            let stats = http::get_ok(
                std::net::SocketAddr::new(pod.ip, 15090),
                "/stats/prometheus",
                Duration::from_secs(10),
            )?;
            requests_counted.push(counter_sum(
                &String::from_utf8_lossy(&stats),
                "istio_requests_total",
            ));
        }
        Ok(FullJob {
            access_log,
            inbound_mtls,
            requests_counted,
        })
    }
}

/// The sum of a counter's series in Prometheus text.
fn counter_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            let value = match rest.rfind('}') {
                Some(end) => &rest[end + 1..],
                None => rest,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// One line on a noise flag: how many windows it marks, and which.
fn flags(
    f: &mut fmt::Formatter<'_>,
    windows: &[(String, &Measured)],
    what: &str,
    value: fn(&Measured) -> f64,
    flagged: fn(&Measured) -> bool,
) -> fmt::Result {
    let marked: Vec<String> = windows
        .iter()
        .filter(|(_, m)| flagged(m))
        .map(|(n, m)| format!("{n} {:.1}%", value(m)))
        .collect();
    let highest = windows.iter().map(|(_, m)| value(m)).fold(0.0, f64::max);
    write!(
        f,
        "{what}: {} of {} measured windows (highest {highest:.1}%)",
        marked.len(),
        windows.len()
    )?;
    if marked.is_empty() {
        writeln!(f, ".")
    } else {
        writeln!(f, ": {}. Treat those with suspicion.", marked.join("; "))
    }
}

/// A spread cell: `median (min–max)`, or `-`.
fn cell(s: Option<Spread>, decimals: usize) -> String {
    s.map_or_else(|| "-".to_string(), |s| s.show(decimals).to_string())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        writeln!(
            f,
            "## strait's sidecar pair against Envoy's and against no proxy\n"
        )?;
        writeln!(
            f,
            "Figures are the median of {} runs with the range (min–max) in parentheses where runs differ. Load generator: {} thread(s), HTTP/1.1 keep-alive, {}-byte responses.",
            o.runs, o.threads, o.size
        )?;
        match &self.pinning {
            Some(p) => writeln!(f, "CPU pinning: {p}.")?,
            None => writeln!(
                f,
                "CPU pinning: off (generator, proxies, apps and control plane share every CPU)."
            )?,
        }
        let windows = self.windows();
        flags(
            f,
            &windows,
            &format!("Hypervisor steal (/proc/stat) above {STEAL_FLAG_PERCENT}%"),
            |m| m.steal,
            Measured::flagged,
        )?;
        flags(
            f,
            &windows,
            &format!(
                "Other processes busy (the machine's user and system time outside the measured path's processes and the generator: other users, the idle paths, the control plane) above {OTHERS_FLAG_PERCENT}% of all CPUs"
            ),
            |m| m.others,
            Measured::crowded,
        )?;
        if let Some(j) = &self.full_job {
            writeln!(
                f,
                "strait's sidecars did their full job: access log {} (config), inbound mTLS {} on the server (config), Istio metrics on (istio_requests_total counted {} by the client sidecar, {} by the server's).",
                if j.access_log.iter().any(|a| *a) {
                    "ON"
                } else {
                    "off"
                },
                j.inbound_mtls,
                j.requests_counted.first().copied().unwrap_or(0.0),
                j.requests_counted.get(1).copied().unwrap_or(0.0),
            )?;
        }
        writeln!(
            f,
            "The Envoys run upstream Envoy without Istio's telemetry filter (it exists only in istio-proxy), so they do less per request than an Istio sidecar."
        )?;
        if let Some(l) = &self.latency {
            latency::write(f, o, l)?;
        }
        if let Some(m) = &self.memory {
            memory::write_memory(f, o, m)?;
        }
        if let Some(s) = &self.scale {
            memory::write_scale(f, o, s)?;
        }
        goals::write(f, self)?;
        let mut errors = String::new();
        for (name, m) in &windows {
            if m.errors > 0 {
                let _ = writeln!(
                    errors,
                    "- {name}: {} failed requests (first: {})",
                    m.errors,
                    m.first_error.as_deref().unwrap_or("?")
                );
            }
        }
        if let Some(s) = &self.scale {
            for p in &s.problems {
                let _ = writeln!(errors, "- scale: {p}");
            }
        }
        if !errors.is_empty() {
            writeln!(f, "\n### Errors\n\n{errors}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_from_prometheus_text() {
        let text = "# TYPE istio_requests_total counter\nistio_requests_total{a=\"x}\",b=\"2\"} 10\nistio_requests_total{a=\"y\"} 5.5\nistio_requests_total_created 3\nistio_request_bytes_sum 9\n# EOF\n";
        assert_eq!(counter_sum(text, "istio_requests_total"), 15.5);
        assert_eq!(counter_sum("x 1\n", "istio_requests_total"), 0.0);
    }
}
