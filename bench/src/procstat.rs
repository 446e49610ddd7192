//! What `/proc` says about the machine and about a server process.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

/// Clock ticks per second of the `utime`/`stime` fields (`USER_HZ`).
///
/// Asked of `getconf` because reading it directly needs `sysconf`; Linux
/// fixes it at 100 on every architecture we run on, hence the fallback.
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// The resolution of [`cpu_seconds`], in seconds.
pub(crate) fn cpu_resolution() -> f64 {
    1.0 / ticks_per_second()
}

/// CPU time a process has used so far, all threads included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTime {
    /// In user space: the process's own work.
    pub(crate) user_s: f64,
    /// In the kernel on its behalf: its system calls, wake-ups and faults.
    pub(crate) system_s: f64,
}

impl CpuTime {
    pub(crate) fn total_s(self) -> f64 {
        self.user_s + self.system_s
    }
}

/// User plus system CPU time `pid` has used so far, all threads included.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    cpu_time(pid).map(CpuTime::total_s)
}

/// User and system CPU time `pid` has used so far, all threads included.
pub(crate) fn cpu_time(pid: u32) -> Result<CpuTime> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is parenthesised and may hold spaces, so
    // fields are counted from the last ')'. After it come state (field 3)
    // and so on; utime and stime are fields 14 and 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("{path} has no command name");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<f64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .with_context(|| format!("{path} has no numeric field {n}"))
    };
    Ok(CpuTime {
        user_s: field(14)? / ticks_per_second(),
        system_s: field(15)? / ticks_per_second(),
    })
}

/// Nanoseconds `pid`'s main thread has spent on a CPU, from the first
/// field of `/proc/<pid>/schedstat`: exact, where [`cpu_seconds`] counts
/// clock ticks, but one thread only.
pub(crate) fn on_cpu_ns(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/schedstat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .with_context(|| format!("{path} does not start with a number: {stat:?}"))
}

/// Nanoseconds every thread `pid` has now spent on a CPU, summed over
/// `/proc/<pid>/task/*/schedstat`: exact, but blind to threads that have
/// exited, which [`cpu_time`] still counts.
pub(crate) fn threads_on_cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0;
    for task in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = task?.path().join("schedstat");
        // A thread may exit between the listing and the read.
        let Ok(stat) = fs::read_to_string(&path) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .with_context(|| format!("{} does not start with a number", path.display()))?;
    }
    Ok(total)
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// Current resident set (`VmRSS`).
    pub(crate) rss_kib: u64,
    /// Peak resident set so far (`VmHWM`).
    pub(crate) peak_kib: u64,
}

/// [`Memory`] of `pid`, from `/proc/<pid>/status`.
pub(crate) fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = |key: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{path} has no {key}"))
    };
    Ok(Memory {
        rss_kib: kib("VmRSS:")?,
        peak_kib: kib("VmHWM:")?,
    })
}

/// The 1-, 5- and 15-minute load averages: how busy the machine was with
/// other work, which wall-clock numbers on a small machine depend on.
pub(crate) fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The facts about the machine a result depends on.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cpu_model: String,
    pub(crate) logical_cpus: usize,
    pub(crate) kernel: String,
    pub(crate) memory_gib: f64,
}

impl Machine {
    /// Reads `/proc/cpuinfo`, `/proc/sys/kernel/osrelease` and `/proc/meminfo`.
    pub(crate) fn read() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let logical_cpus = cpuinfo
            .lines()
            .filter(|line| line.split(':').next().map(str::trim) == Some("processor"))
            .count();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let memory_gib = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("MemTotal:"))
                    .and_then(|rest| {
                        rest.trim()
                            .trim_end_matches("kB")
                            .trim()
                            .parse::<f64>()
                            .ok()
                    })
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        Self {
            cpu_model,
            logical_cpus,
            kernel,
            memory_gib,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "cpu_model": self.cpu_model,
            "logical_cpus": self.logical_cpus,
            "kernel": self.kernel,
            "memory_gib": (self.memory_gib * 10.0).round() / 10.0,
            "cpu_time_resolution_s": cpu_resolution(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        // The main thread, not this test's, so only readability is checked.
        let main_thread = on_cpu_ns(pid).unwrap();
        // Every thread, read after the main one's, so at least as much.
        assert!(threads_on_cpu_ns(pid).unwrap() >= main_thread);
        let memory = memory(pid).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
    }

    #[test]
    fn machine_facts_are_found() {
        let machine = Machine::read();
        assert!(machine.logical_cpus >= 1);
        assert_ne!(machine.kernel, "unknown");
    }
}
