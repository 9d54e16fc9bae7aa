//! The cross-check: `wrk` (a closed loop of its own, HTTP/1.1 keep-alive) against each path's
//! entry, so that a reader can see the benchmark's own generator is not what limits a path.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::load::Target;

/// What wrk reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WrkResult {
    pub rps: f64,
    pub requests: u64,
    /// Latency percentiles from `--latency`, in microseconds.
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    /// Socket errors and non-2xx/3xx answers.
    pub errors: u64,
}

/// Where `wrk` is, if installed.
pub fn find() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("wrk"))
            .find(|p| p.is_file())
    })
}

/// Runs wrk against `target`; `cpus` (a `taskset -c` list) pins it like the generator.
pub fn run(
    wrk: &Path,
    target: &Target,
    connections: usize,
    threads: usize,
    duration: Duration,
    cpus: Option<&str>,
) -> anyhow::Result<WrkResult> {
    let url = format!("http://{}{}", target.addr, target.path);
    let mut cmd = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list]).arg(wrk);
            c
        }
        None => Command::new(wrk),
    };
    cmd.arg("-t")
        .arg(threads.clamp(1, connections.max(1)).to_string())
        .arg("-c")
        .arg(connections.to_string())
        .arg("-d")
        .arg(format!("{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-H")
        .arg(format!("Host: {}", target.host))
        .arg(&url);
    let out = cmd
        .output()
        .with_context(|| format!("running {}", wrk.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk {url} exited with {}: {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse(&stdout).with_context(|| format!("reading wrk's output:\n{stdout}"))
}

fn parse(out: &str) -> anyhow::Result<WrkResult> {
    let mut r = WrkResult::default();
    let mut seen_rps = false;
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => {
                r.rps = v.parse().with_context(|| format!("Requests/sec {v:?}"))?;
                seen_rps = true;
            }
            [p, v] if p.ends_with('%') => {
                let us = duration_us(v)?;
                match *p {
                    "50%" => r.p50_us = us,
                    "90%" => r.p90_us = us,
                    "99%" => r.p99_us = us,
                    _ => {}
                }
            }
            [n, "requests", "in", ..] => {
                r.requests = n.parse().with_context(|| format!("requests {n:?}"))?;
            }
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                for v in rest.iter().skip(1).step_by(2) {
                    r.errors += v.trim_end_matches(',').parse::<u64>().unwrap_or(0);
                }
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                r.errors += n.parse::<u64>().unwrap_or(0);
            }
            _ => {}
        }
    }
    if !seen_rps {
        bail!("no Requests/sec line");
    }
    Ok(r)
}

/// wrk's durations: `125.00us`, `2.31ms`, `1.02s`, `1.5m`.
fn duration_us(v: &str) -> anyhow::Result<f64> {
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {v:?}"))?;
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().with_context(|| format!("duration {v:?}"))?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => bail!("unknown unit in {v:?}"),
    };
    Ok(num * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 5s test @ http://127.230.201.1:8080/?size=1024
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   130.27us   40.10us   2.10ms   90.12%
    Req/Sec    60.12k     2.10k    65.00k    70.00%
  Latency Distribution
     50%  125.00us
     75%  140.00us
     90%  160.00us
     99%    2.31ms
  600000 requests in 5.00s, 700.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec: 120000.00
Transfer/sec:    140.00MB
";

    #[test]
    fn parses_a_report() {
        assert_eq!(
            parse(OUT).unwrap(),
            WrkResult {
                rps: 120000.0,
                requests: 600000,
                p50_us: 125.0,
                p90_us: 160.0,
                p99_us: 2310.0,
                errors: 8,
            }
        );
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration_us("125.00us").unwrap(), 125.0);
        assert_eq!(duration_us("2.5ms").unwrap(), 2500.0);
        assert_eq!(duration_us("1.00s").unwrap(), 1e6);
        assert_eq!(duration_us("1.5m").unwrap(), 90e6);
        assert!(duration_us("12").is_err());
        assert!(duration_us("1.0parsecs").is_err());
    }
}
