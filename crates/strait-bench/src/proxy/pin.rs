//! Pinning (`--pin`): the load generator on one CPU, the proxies and apps on the others, so
//! that the generator never takes CPU time from the path it measures (nor the reverse).
//!
//! Affinity is per thread, so a process is pinned by setting every thread listed in
//! `/proc/<pid>/task`; threads started later inherit their creator's, and the benchmark pins
//! again before every measurement to catch any that did not.

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

use super::procs;

/// Which CPUs the generator and everything else run on.
#[derive(Clone, Debug)]
pub struct Pinning {
    generator: Vec<usize>,
    others: Vec<usize>,
}

impl Pinning {
    /// Splits the CPUs this process may use: the first for the load generator, the rest for
    /// proxies and apps.
    pub fn split() -> anyhow::Result<Pinning> {
        let allowed = sched_getaffinity(Pid::from_raw(0)).context("reading this process's CPUs")?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|c| allowed.is_set(*c).unwrap_or(false))
            .collect();
        if cpus.len() < 2 {
            bail!("--pin needs at least 2 CPUs, this process may use {cpus:?}");
        }
        Ok(Pinning {
            generator: cpus[..1].to_vec(),
            others: cpus[1..].to_vec(),
        })
    }

    /// CPUs the generator runs on, for `taskset -c`.
    pub fn generator_list(&self) -> String {
        list(&self.generator)
    }

    /// Pins the calling thread to the generator's CPUs.
    pub fn pin_generator_thread(&self) -> anyhow::Result<()> {
        sched_setaffinity(Pid::from_raw(0), &set(&self.generator))
            .context("pinning a load generator thread")
    }

    /// Pins every thread of `pid` to the proxies' and apps' CPUs.
    pub fn pin_process(&self, pid: u32) -> anyhow::Result<()> {
        let cpus = set(&self.others);
        for tid in procs::threads(pid)? {
            let Ok(raw) = i32::try_from(tid) else {
                continue;
            };
            match sched_setaffinity(Pid::from_raw(raw), &cpus) {
                // A thread that ended since the listing.
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(e).with_context(|| format!("pinning thread {tid} of {pid}")),
            }
        }
        Ok(())
    }

    /// How the CPUs are split, for the report.
    pub fn describe(&self) -> String {
        format!(
            "load generator (and wrk) on CPU {}; proxies and apps on CPU {} (control plane and supervisor unpinned)",
            list(&self.generator),
            list(&self.others)
        )
    }
}

fn set(cpus: &[usize]) -> CpuSet {
    let mut s = CpuSet::new();
    for c in cpus {
        // Every CPU here came from an affinity mask, so it fits in one.
        let _ = s.set(*c);
    }
    s
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(list(&[0]), "0");
        assert_eq!(list(&[1, 2, 3]), "1,2,3");
        let s = set(&[1, 3]);
        assert!(s.is_set(1).unwrap() && s.is_set(3).unwrap() && !s.is_set(0).unwrap());
    }
}
