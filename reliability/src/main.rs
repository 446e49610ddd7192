//! `vgirpc-reliability`: attacks and load against the running conformance
//! worker, each checked for its answer, the worker's memory, and that the
//! worker serves on. `cargo xtask reliability` builds the worker and runs
//! it; results are written as JSON beside the printed table.

mod attacks;
mod link;
mod payloads;
mod raw;
mod soak;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use attacks::{ATTACKS, Settings};
use worker::{Launch, Transport, mib};

const USAGE: &str = "\
usage: vgirpc-reliability --worker PATH [options]

  --worker PATH        the vgi-conformance-worker binary to attack
  --transport NAME     pipe, unix or http (repeatable; default: all)
  --quick              smaller attacks and a short soak, for CI
  --soak-seconds N     how long the soak runs (default 60; quick: 10)
  --connections N      connections of the soak (default 64)
  --zstd-cap BYTES     the worker's decompressed-size cap for zstd bodies
                       (default 268435456, the HTTP transport's default)
  --finding N          only the attacks replaying finding N (repeatable)
  --skip-attacks       only the soak
  --skip-soak          only the attacks
  --output PATH        where to write the JSON results";

struct Options {
    worker: PathBuf,
    transports: Vec<Transport>,
    quick: bool,
    soak_seconds: Option<u64>,
    connections: usize,
    zstd_cap: u64,
    attacks: bool,
    /// Findings to replay; empty replays them all.
    findings: Vec<u8>,
    soak: bool,
    output: Option<PathBuf>,
}

impl Options {
    fn parse() -> Result<Option<Self>> {
        let mut args = std::env::args().skip(1);
        let mut worker = None;
        let mut options = Options {
            worker: PathBuf::new(),
            transports: Vec::new(),
            quick: false,
            soak_seconds: None,
            connections: 64,
            zstd_cap: 256 << 20,
            attacks: true,
            findings: Vec::new(),
            soak: true,
            output: None,
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--worker" => worker = Some(PathBuf::from(value()?)),
                "--transport" => options.transports.push(Transport::parse(&value()?)?),
                "--quick" => options.quick = true,
                "--soak-seconds" => options.soak_seconds = Some(value()?.parse()?),
                "--connections" => options.connections = value()?.parse()?,
                "--zstd-cap" => options.zstd_cap = value()?.parse()?,
                "--finding" => options.findings.push(value()?.parse()?),
                "--skip-attacks" => options.attacks = false,
                "--skip-soak" => options.soak = false,
                "--output" => options.output = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Ok(None),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        options.worker = worker.with_context(|| format!("--worker is required\n\n{USAGE}"))?;
        if options.transports.is_empty() {
            options.transports = Transport::ALL.to_vec();
        }
        Ok(Some(options))
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("vgirpc-reliability: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs what the options ask for; `Ok(false)` when any check failed.
fn run() -> Result<bool> {
    let Some(options) = Options::parse()? else {
        println!("{USAGE}");
        return Ok(true);
    };
    let launch = Launch {
        program: options.worker.clone(),
        transport: Transport::Pipe,
        args: Vec::new(),
        address_space: None,
        nofile: None,
    };
    let settings = Settings {
        zstd_cap: options.zstd_cap,
        quick: options.quick,
    };
    let mut passed = true;
    let mut attack_rows = Vec::new();
    if options.attacks {
        println!("attack matrix ({} attacks)", ATTACKS.len());
        for attack in ATTACKS {
            for &transport in attack.transports {
                if !options.transports.contains(&transport)
                    || !(options.findings.is_empty() || options.findings.contains(&attack.finding))
                {
                    continue;
                }
                let verdict = attacks::run(attack, transport, &launch, &settings);
                let ok = verdict.failures.is_empty();
                passed &= ok;
                println!(
                    "  [{}] #{:<2} {:<5} {} -> {}\n        RSS {:.0} MiB idle, peak {:.0} MiB, after {:.0} MiB",
                    if ok { "pass" } else { "FAIL" },
                    verdict.finding,
                    transport.name(),
                    verdict.attack,
                    verdict.answer,
                    mib(verdict.baseline),
                    mib(verdict.peak),
                    mib(verdict.after),
                );
                for failure in &verdict.failures {
                    println!("        {failure}");
                }
                attack_rows.push(json!({
                    "finding": verdict.finding,
                    "attack": verdict.attack,
                    "transport": transport.name(),
                    "answer": verdict.answer,
                    "rss_idle": verdict.baseline,
                    "rss_peak": verdict.peak,
                    "rss_after": verdict.after,
                    "failures": verdict.failures,
                }));
            }
        }
    }
    let mut soak_rows = Vec::new();
    if options.soak {
        let seconds = options
            .soak_seconds
            .unwrap_or(if options.quick { 10 } else { 60 });
        let load = soak::Load {
            connections: options.connections,
            soak: Duration::from_secs(seconds),
        };
        for &transport in &options.transports {
            if transport == Transport::Pipe {
                continue;
            }
            println!(
                "soak: {} connections over {} for {seconds} s, then SIGTERM under load",
                load.connections,
                transport.name()
            );
            let report = soak::run(&launch, transport, load)?;
            let ok = report.failures.is_empty();
            passed &= ok;
            println!(
                "  [{}] {} calls, {} wrong; RSS {:.0} MiB steady, {:.0} MiB after; \
                 SIGTERM: {} answered after it, {} lost, {} refused, exit {}",
                if ok { "pass" } else { "FAIL" },
                report.calls,
                report.wrong_replies,
                mib(report.start_rss),
                mib(report.end_rss),
                report.answered_after_signal,
                report.lost,
                report.refused,
                report.exit,
            );
            for failure in &report.failures {
                println!("        {failure}");
            }
            soak_rows.push(json!({
                "transport": transport.name(),
                "connections": load.connections,
                "seconds": seconds,
                "calls": report.calls,
                "wrong_replies": report.wrong_replies,
                "rss_start": report.start_rss,
                "rss_end": report.end_rss,
                "answered_after_signal": report.answered_after_signal,
                "lost": report.lost,
                "refused": report.refused,
                "exit": report.exit,
                "failures": report.failures,
            }));
        }
    }
    if let Some(path) = &options.output {
        let results = json!({ "attacks": attack_rows, "soak": soak_rows, "passed": passed });
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{}",
        if passed {
            "all checks passed"
        } else {
            "some checks FAILED"
        }
    );
    Ok(passed)
}
