//! The fuzz step: builds the targets of `fuzz/` with coverage
//! instrumentation on the stable toolchain (`cargo fuzz --sanitizer none`)
//! and runs each in turn, one job, on its committed corpus.
//!
//! libFuzzer finds the panics; the harness itself aborts an input that
//! makes a single allocation above its budget or takes over 100 ms, so
//! every failure is a crash here, with its input saved under
//! `fuzz/artifacts/<target>/` (not committed).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process::{cargo, run_ok, shell_quote, target_dir};

/// Every target, in the order they run: cheapest first, so a broken
/// reader is reported before the long HTTP run.
pub(crate) const TARGETS: &[&str] = &["ipc_reader", "describe", "shm", "token", "request", "http"];

/// The cargo-fuzz release `cargo xtask reliability` installs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The triple cargo-fuzz builds for, which names its output directory.
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// How long a quick run fuzzes each target after replaying its corpus.
const QUICK_SECONDS: u64 = 20;

/// Largest input libFuzzer makes; the committed seeds are below it.
const MAX_LEN: usize = 64 * 1024;

/// How often a long run prints libFuzzer's latest status line.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// How much fuzzing each target gets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Budget {
    /// Replay the corpus, then fuzz for [`QUICK_SECONDS`].
    Quick,
    /// Exactly this many executions (the corpus replay included).
    Runs(u64),
}

impl Budget {
    pub(crate) fn describe(self) -> String {
        match self {
            Budget::Quick => format!("quick: corpus replay + {QUICK_SECONDS} s per target"),
            Budget::Runs(runs) => format!("{runs} executions per target"),
        }
    }

    fn libfuzzer_args(self) -> Vec<String> {
        match self {
            Budget::Quick => vec![format!("-max_total_time={QUICK_SECONDS}")],
            Budget::Runs(runs) => vec![format!("-runs={runs}")],
        }
    }
}

/// The targets named on the command line, or all of them.
pub(crate) fn selected(names: &[String]) -> Result<Vec<&'static str>> {
    if let Some(unknown) = names.iter().find(|n| !TARGETS.contains(&n.as_str())) {
        bail!(
            "unknown fuzz target {unknown:?}; known: {}",
            TARGETS.join(", ")
        );
    }
    Ok(TARGETS
        .iter()
        .copied()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t))
        .collect())
}

/// Built fuzz targets and where their files go.
#[derive(Debug)]
pub(crate) struct Fuzzer {
    /// `<target>/fuzz`: the instrumented build, working corpora and logs.
    pub(crate) dir: PathBuf,
    /// The cargo-fuzz binary.
    pub(crate) cargo_fuzz: PathBuf,
}

/// What one target's run gave.
#[derive(Debug)]
struct RunStats {
    target: &'static str,
    executions: u64,
    elapsed: Duration,
    peak_rss_mb: u64,
    corpus_added: u64,
}

impl Fuzzer {
    /// Installs cargo-fuzz on first use and builds `targets`.
    pub(crate) fn prepare(targets: &[&str]) -> Result<Self> {
        let tools = target_dir()?.join("tools");
        let cargo_fuzz = tools.join("bin/cargo-fuzz");
        if !cargo_fuzz.is_file() {
            println!("\n==> reliability: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
            run_ok(
                cargo()
                    .args(["install", "cargo-fuzz", "--locked", "--version"])
                    .args([CARGO_FUZZ_VERSION, "--root", &tools.display().to_string()]),
            )?;
        }
        let fuzzer = Self {
            dir: target_dir()?.join("fuzz"),
            cargo_fuzz,
        };
        println!("\n==> reliability: building fuzz targets");
        let mut build = fuzzer.cargo_fuzz("build");
        if targets.len() == 1 {
            build.arg(targets[0]);
        }
        run_ok(&mut build)?;
        Ok(fuzzer)
    }

    /// `cargo fuzz <command>` with the options every command shares: no
    /// sanitizer (they need nightly) and the workspace's target directory.
    pub(crate) fn cargo_fuzz(&self, command: &str) -> Command {
        let mut cmd = Command::new(&self.cargo_fuzz);
        cmd.args([command, "--sanitizer", "none", "--target-dir"])
            .arg(&self.dir);
        cmd
    }

    /// The instrumented binary of `target`.
    pub(crate) fn binary(&self, target: &str) -> PathBuf {
        self.dir.join(TRIPLE).join("release").join(target)
    }

    /// Runs every target in turn; fails after the run if any target failed.
    pub(crate) fn run_all(&self, targets: &[&'static str], budget: Budget) -> Result<()> {
        let mut done = Vec::new();
        let mut failures = Vec::new();
        for &target in targets {
            match self.run(target, budget) {
                Ok(stats) => done.push(stats),
                Err(err) => {
                    eprintln!("fuzz {target}: FAILED: {err:#}");
                    failures.push(format!("{target}: {err:#}"));
                }
            }
        }
        let table = report(&done);
        print!("\n{table}");
        let path = self.dir.join("report.md");
        fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
        println!("(table also in {})", path.display());
        if !failures.is_empty() {
            bail!("fuzzing failed:\n  {}", failures.join("\n  "));
        }
        Ok(())
    }

    fn run(&self, target: &'static str, budget: Budget) -> Result<RunStats> {
        let corpus = Path::new("fuzz/corpus").join(target);
        let work = self.dir.join("corpus").join(target);
        let artifacts = Path::new("fuzz/artifacts").join(target);
        let logs = self.dir.join("logs");
        for dir in [&work, &artifacts, &logs] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log_path = logs.join(format!("{target}.log"));
        let mut cmd = Command::new(self.binary(target));
        // New inputs go to the first directory, so the committed corpus
        // stays as it is.
        cmd.arg(&work)
            .arg(&corpus)
            .args(budget.libfuzzer_args())
            .arg(format!("-max_len={MAX_LEN}"))
            // The harness's own limit is 100 ms; this catches a hang.
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        println!(
            "\nfuzz {target}: {} (log: {})",
            command_line(&cmd),
            log_path.display()
        );
        let started = Instant::now();
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.binary(target).display()))?;
        let stderr = child
            .stderr
            .take()
            .context("capturing libFuzzer's output")?;
        let mut log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut last_progress = Instant::now();
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading libFuzzer's output")?;
            writeln!(log, "{line}")?;
            if line.starts_with('#') && last_progress.elapsed() >= PROGRESS_EVERY {
                println!(
                    "fuzz {target}: [{:>5} s] {line}",
                    started.elapsed().as_secs()
                );
                last_progress = Instant::now();
            }
            text.push_str(&line);
            text.push('\n');
        }
        let status = child.wait()?;
        let elapsed = started.elapsed();
        if !status.success() {
            bail!(
                "{} ({status}); input: {}; log: {}",
                failure_reason(&text),
                saved_input(&text).unwrap_or("not saved"),
                log_path.display()
            );
        }
        let stat = |name: &str| {
            stat_line(&text, &format!("stat::{name}:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .with_context(|| format!("libFuzzer printed no {name}; see {}", log_path.display()))
        };
        let stats = RunStats {
            target,
            executions: stat("number_of_executed_units")?,
            elapsed,
            peak_rss_mb: stat("peak_rss_mb")?,
            corpus_added: stat("new_units_added")?,
        };
        println!(
            "fuzz {target}: ok, {} executions in {:.0} s ({:.0}/s), 0 crashes",
            stats.executions,
            elapsed.as_secs_f64(),
            stats.per_second()
        );
        Ok(stats)
    }
}

impl RunStats {
    fn per_second(&self) -> f64 {
        self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The rest of the first line of `text` that starts with `prefix`.
fn stat_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|line| line.strip_prefix(prefix))
}

/// Where libFuzzer saved the failing input.
fn saved_input(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        line.split_once("Test unit written to ")
            .map(|(_, path)| path.trim())
    })
}

/// Why a target's run failed, from its output.
fn failure_reason(text: &str) -> String {
    let markers = [
        ("==== ALLOCATION OVER BUDGET", "an allocation over budget"),
        ("==== SLOW INPUT", "an input slower than the time limit"),
        ("==== HANG", "a hang"),
        ("panicked at", "a panic"),
        ("ERROR: libFuzzer: timeout", "a timeout"),
        (
            "ERROR: libFuzzer: out-of-memory",
            "out of memory (rss limit)",
        ),
    ];
    for (marker, reason) in markers {
        if let Some(line) = text.lines().find(|l| l.contains(marker)) {
            return format!("{reason}: {}", line.trim_start_matches('='));
        }
    }
    "a crash".to_owned()
}

fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The run as a Markdown table, as `docs/reliability.md` records it.
fn report(done: &[RunStats]) -> String {
    let mut table = String::from(
        "| target | executions | time (s) | exec/s | peak RSS (MB) | new corpus inputs | crashes |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for stats in done {
        let _ = writeln!(
            table,
            "| `{}` | {} | {:.0} | {:.0} | {} | {} | 0 |",
            stats.target,
            stats.executions,
            stats.elapsed.as_secs_f64(),
            stats.per_second(),
            stats.peak_rss_mb,
            stats.corpus_added,
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_known_targets_in_run_order() {
        assert_eq!(selected(&[]).unwrap(), TARGETS);
        let picked = selected(&["http".into(), "shm".into()]).unwrap();
        assert_eq!(picked, ["shm", "http"]);
        assert!(selected(&["nope".into()]).is_err());
    }

    #[test]
    fn names_the_harness_failure() {
        let log = "INFO: x\n\n==== SLOW INPUT: 140 ms and 150 ms for 12 bytes (limit 100 ms)\n";
        assert!(failure_reason(log).starts_with("an input slower than the time limit"));
        let log = "thread '<unnamed>' panicked at crates/wire/src/ipc.rs:1:1:\n";
        assert!(failure_reason(log).starts_with("a panic"));
        assert_eq!(
            failure_reason("==12== ERROR: libFuzzer: deadly signal"),
            "a crash"
        );
    }

    #[test]
    fn reads_libfuzzer_final_stats() {
        let log = "stat::number_of_executed_units: 1234\nstat::peak_rss_mb:              77\n";
        assert_eq!(
            stat_line(log, "stat::peak_rss_mb:").map(str::trim),
            Some("77")
        );
        assert_eq!(
            stat_line(log, "stat::number_of_executed_units:").map(str::trim),
            Some("1234")
        );
    }
}
