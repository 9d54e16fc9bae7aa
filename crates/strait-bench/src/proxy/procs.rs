//! What a process costs, from `/proc`: CPU time and resident memory.

use std::process::{Child, ChildStdin, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Stops a child that ends when its stdin closes: closes `lifeline`, waits up to `grace`,
/// then kills it.
pub fn stop_child(child: &mut Child, lifeline: &mut Option<ChildStdin>, grace: Duration) {
    lifeline.take();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat` CPU times.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// User plus system CPU time of `pid` so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("{path}: unexpected format"))
}

/// `utime + stime` from a stat line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("no command name");
    };
    // After the name: state (field 3) … utime (14), stime (15).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let value = fields
            .get(n - 3)
            .with_context(|| format!("field {n} missing"))?;
        value
            .parse::<u64>()
            .with_context(|| format!("field {n} is {value:?}"))
    };
    Ok(field(14)? + field(15)?)
}

/// Resident and peak resident memory of `pid`, in KiB (`VmRSS`, `VmHWM`).
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let value = |key: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{path}: no {key}"))
    };
    Ok((value("VmRSS:")?, value("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let line = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(line).unwrap(), 281);
        assert!(parse_cpu_ticks("4242 no-parens").is_err());
        assert!(parse_cpu_ticks("4242 (x) S 1 2").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        let (rss, hwm) = memory_kib(pid).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
