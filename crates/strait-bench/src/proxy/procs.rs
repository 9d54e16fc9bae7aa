//! What a process costs, and what the machine did, from `/proc`: CPU time, resident and
//! private memory, the threads of a process, and the machine's CPU time by kind (for
//! hypervisor steal).

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

/// Clock ticks per second, the unit of `/proc/<pid>/stat` and `/proc/stat` times.
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

fn read(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

/// User plus system CPU time of `pid` so far (all its threads, living and gone), in clock
/// ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = read(&path)?;
    let f = stat_fields(&stat).with_context(|| format!("{path}: unexpected format"))?;
    Ok(f.field(14)? + f.field(15)?)
}

/// When `pid` started, in clock ticks since boot (`starttime`).
pub fn start_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = read(&path)?;
    stat_fields(&stat)
        .and_then(|f| f.field(22))
        .with_context(|| format!("{path}: unexpected format"))
}

/// Seconds since boot, from `/proc/uptime` (centisecond resolution).
pub fn uptime() -> anyhow::Result<f64> {
    let text = read("/proc/uptime")?;
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .context("/proc/uptime: unexpected format")
}

/// The fields of a `/proc/<pid>/stat` line after the command name, which may hold spaces
/// and parentheses, so fields are counted from its closing parenthesis.
struct StatFields<'a>(Vec<&'a str>);

fn stat_fields(stat: &str) -> anyhow::Result<StatFields<'_>> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("no command name");
    };
    Ok(StatFields(rest.split_whitespace().collect()))
}

impl StatFields<'_> {
    /// Field `n`, numbered from 1 as in proc(5): the state is field 3.
    fn field(&self, n: usize) -> anyhow::Result<u64> {
        let value = self
            .0
            .get(n - 3)
            .with_context(|| format!("field {n} missing"))?;
        value
            .parse::<u64>()
            .with_context(|| format!("field {n} is {value:?}"))
    }
}

/// A process's memory, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set (`VmRSS`): private and shared pages, the binary's text included.
    pub rss: u64,
    /// Resident private anonymous memory (`RssAnon`): heap, stacks, what the process itself
    /// allocated. What it would cost per extra copy.
    pub private: u64,
    /// Peak resident set (`VmHWM`).
    pub peak: u64,
}

impl Memory {
    /// The larger of each figure: for the peak of several samples.
    pub fn max(self, other: Memory) -> Memory {
        Memory {
            rss: self.rss.max(other.rss),
            private: self.private.max(other.private),
            peak: self.peak.max(other.peak),
        }
    }

    pub fn plus(self, other: Memory) -> Memory {
        Memory {
            rss: self.rss + other.rss,
            private: self.private + other.private,
            peak: self.peak + other.peak,
        }
    }
}

/// The memory of `pid` now.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    parse_memory(&read(&path)?).with_context(|| format!("{path}: unexpected format"))
}

fn parse_memory(status: &str) -> anyhow::Result<Memory> {
    let value = |key: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {key}"))
    };
    Ok(Memory {
        rss: value("VmRSS")?,
        private: value("RssAnon")?,
        peak: value("VmHWM")?,
    })
}

/// The thread ids of `pid`.
pub fn threads(pid: u32) -> anyhow::Result<Vec<u32>> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(tid);
        }
    }
    Ok(out)
}

/// The machine's CPU time by kind, summed over CPUs (the `cpu` line of `/proc/stat`), in
/// clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineCpu {
    /// Every kind but guest time (already counted in user time).
    pub total: u64,
    /// Time a hypervisor ran something else while this machine's CPUs wanted to run.
    pub steal: u64,
    /// User, nice and system time: what processes ran (interrupt time aside).
    pub busy: u64,
    /// CPUs (the `cpuN` lines).
    pub cpus: u64,
}

impl MachineCpu {
    pub fn now() -> anyhow::Result<MachineCpu> {
        parse_machine_cpu(&read("/proc/stat")?).context("/proc/stat: unexpected format")
    }

    /// The share of CPU time stolen between `self` and a later reading, in percent.
    pub fn steal_percent_until(&self, later: &MachineCpu) -> f64 {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return 0.0;
        }
        later.steal.saturating_sub(self.steal) as f64 * 100.0 / total as f64
    }
}

fn parse_machine_cpu(stat: &str) -> anyhow::Result<MachineCpu> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>().with_context(|| format!("field {v:?}")))
        .collect::<anyhow::Result<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    if fields.len() < 8 {
        bail!(
            "{} fields in the cpu line, expected at least 8",
            fields.len()
        );
    }
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Ok(MachineCpu {
        total: fields[..8].iter().sum(),
        steal: fields[7],
        busy: fields[..3].iter().sum(),
        cpus: u64::try_from(cpus.max(1)).unwrap_or(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let line =
            "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0 98765 0";
        let f = stat_fields(line).unwrap();
        assert_eq!(f.field(14).unwrap() + f.field(15).unwrap(), 281);
        assert_eq!(f.field(22).unwrap(), 98765);
        assert!(stat_fields("4242 no-parens").is_err());
        assert!(stat_fields("4242 (x) S 1 2").unwrap().field(14).is_err());
    }

    #[test]
    fn memory_from_status() {
        let status = "Name:\tstrait\nVmPeak:\t  100 kB\nVmHWM:\t    9000 kB\nVmRSS:\t    8000 kB\nRssAnon:\t    3000 kB\nRssFile:\t    5000 kB\n";
        assert_eq!(
            parse_memory(status).unwrap(),
            Memory {
                rss: 8000,
                private: 3000,
                peak: 9000
            }
        );
        assert!(parse_memory("VmRSS:\t1 kB\n").is_err());
        let a = Memory {
            rss: 1,
            private: 5,
            peak: 3,
        };
        let b = Memory {
            rss: 4,
            private: 2,
            peak: 3,
        };
        assert_eq!(
            a.max(b),
            Memory {
                rss: 4,
                private: 5,
                peak: 3
            }
        );
        assert_eq!(a.plus(b).rss, 5);
    }

    #[test]
    fn steal_from_proc_stat() {
        let before =
            parse_machine_cpu("cpu  100 0 50 800 10 0 5 5 7 0\ncpu0 1 2 3 4 5 6 7 8\n").unwrap();
        assert_eq!(before.total, 970);
        assert_eq!(before.steal, 5);
        assert_eq!((before.busy, before.cpus), (150, 1));
        let after = parse_machine_cpu(
            "cpu  150 0 70 900 10 0 5 35 9 0\ncpu0 1 2 3 4 5 6 7 8\ncpu1 1 2 3 4 5 6 7 8\n",
        )
        .unwrap();
        assert_eq!((after.busy, after.cpus), (220, 2));
        // 200 ticks passed, 30 of them stolen.
        assert!((before.steal_percent_until(&after) - 15.0).abs() < 1e-9);
        assert_eq!(before.steal_percent_until(&before), 0.0);
        assert!(parse_machine_cpu("cpu  1 2 3\n").is_err());
        assert!(parse_machine_cpu("intr 1\n").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(start_ticks(pid).unwrap() > 0);
        assert!(uptime().unwrap() > 0.0);
        let m = memory(pid).unwrap();
        assert!(m.rss > 0 && m.peak >= m.rss && m.private <= m.rss);
        assert!(threads(pid).unwrap().contains(&pid));
        assert!(MachineCpu::now().unwrap().total > 0);
    }
}
