//! `client_conformance`: runs the client conformance suite
//! ([`vgirpc_conformance::client_suite`]) against conformance workers over
//! every client transport and compares what each one answered.
//!
//! ```text
//! client_conformance [--server NAME=COMMAND]... [--transport NAME]...
//!                    [--filter TEXT] [--timeout SECONDS] [--json] [--list]
//! ```
//!
//! Without `--server`, the servers are the Python reference worker of
//! `target/conformance-venv` (`vgi-rpc-conformance --describe`) and the
//! `vgi-conformance-worker` built next to this binary. `COMMAND` is split
//! on spaces; it must serve the pipe, and `--unix PATH --threaded` and
//! `--http` as both workers do. Without `--transport`, every transport
//! runs: `pipe`, `unix`, `shm` and `http`. Each server and transport pair
//! runs on its own thread.
//!
//! The text report goes to stdout: one line per server and transport, a
//! table of the counts, and a total line
//! `client-conformance: N passed, N failed, N skipped`; with `--json` the
//! report on stdout is one JSON object instead and the text goes to stderr.
//! The exit status is 0 only when every test passed on every server and
//! transport, and the observations agree within each family of
//! transports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use vgirpc_conformance::client_suite::{self, Divergence, Report, Server, TransportKind, Verdict};

const USAGE: &str = "usage: client_conformance [--server NAME=COMMAND]... [--transport NAME]... \
[--filter TEXT] [--timeout SECONDS] [--json] [--list]";

struct Options {
    servers: Vec<Server>,
    transports: Vec<TransportKind>,
    filter: Option<String>,
    timeout: Duration,
    json: bool,
    list: bool,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("client_conformance: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.list {
        for name in client_suite::test_names() {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let reports = run_all(&options);
    let divergences = client_suite::divergences(&reports);
    let text = text_report(&reports, &divergences);
    let written = if options.json {
        eprint!("{text}");
        writeln!(std::io::stdout(), "{}", json_report(&reports, &divergences))
    } else {
        write!(std::io::stdout(), "{text}")
    };
    if written.is_err() {
        return ExitCode::FAILURE;
    }
    let failed: usize = reports.iter().map(Report::failed).sum();
    if failed == 0 && divergences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every server over every transport, concurrently; reports in server,
/// then transport order.
fn run_all(options: &Options) -> Vec<Report> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = options
            .servers
            .iter()
            .flat_map(|server| {
                options
                    .transports
                    .iter()
                    .filter(|t| server.tls_and_http2 || !t.needs_tls_and_http2())
                    .map(move |t| (server, *t))
            })
            .map(|(server, transport)| {
                scope.spawn(move || {
                    client_suite::run(
                        server,
                        transport,
                        options.filter.as_deref(),
                        options.timeout,
                    )
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a suite run does not panic"))
            .collect()
    })
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        servers: Vec::new(),
        transports: Vec::new(),
        filter: None,
        timeout: Duration::from_secs(30),
        json: false,
        list: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--server" => {
                let spec = value("--server")?;
                let (name, command) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--server wants NAME=COMMAND, got {spec:?}"))?;
                options
                    .servers
                    .push(server(name, command.split_whitespace())?);
            }
            "--transport" => {
                let name = value("--transport")?;
                let transport = TransportKind::parse(&name).ok_or_else(|| {
                    format!("unknown transport {name:?} (pipe, unix, shm, http, h2c or https)")
                })?;
                if !options.transports.contains(&transport) {
                    options.transports.push(transport);
                }
            }
            "--filter" => options.filter = Some(value("--filter")?),
            "--timeout" => {
                let seconds: f64 = value("--timeout")?
                    .parse()
                    .map_err(|_| "--timeout wants a number of seconds".to_owned())?;
                options.timeout = Duration::try_from_secs_f64(seconds)
                    .map_err(|_| "--timeout wants a positive number of seconds".to_owned())?;
            }
            "--json" => options.json = true,
            "--list" => options.list = true,
            "-h" | "--help" => return Err("help requested".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.servers.is_empty() && !options.list {
        options.servers = default_servers()?;
    }
    if options.transports.is_empty() {
        options.transports = TransportKind::ALL.to_vec();
    }
    options.transports.sort();
    Ok(options)
}

fn server<'a>(name: &str, mut words: impl Iterator<Item = &'a str>) -> Result<Server, String> {
    let program = words
        .next()
        .ok_or_else(|| format!("server {name:?} has an empty command"))?;
    Ok(Server {
        name: name.to_owned(),
        program: program.to_owned(),
        args: words.map(str::to_owned).collect(),
        tls_and_http2: false,
    })
}

/// The reference worker from the conformance venv and our worker built
/// beside this binary.
fn default_servers() -> Result<Vec<Server>, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the conformance crate has no parent directory")?;
    let reference = workspace.join("target/conformance-venv/bin/vgi-rpc-conformance");
    if !reference.exists() {
        return Err(format!(
            "{} is missing; `cargo xtask conformance` creates it (or pass --server)",
            reference.display()
        ));
    }
    let ours = sibling("vgi-conformance-worker")?;
    if !ours.exists() {
        return Err(format!(
            "{} is missing; build it with `cargo build -p vgirpc-conformance` (same profile)",
            ours.display()
        ));
    }
    Ok(vec![
        Server {
            name: "python-reference".into(),
            program: reference.display().to_string(),
            args: vec!["--describe".into()],
            tls_and_http2: false,
        },
        Server {
            name: "rust".into(),
            program: ours.display().to_string(),
            args: Vec::new(),
            tls_and_http2: true,
        },
    ])
}

fn sibling(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
    let dir = exe.parent().ok_or("this binary has no directory")?;
    Ok(dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

fn text_report(reports: &[Report], divergences: &[Divergence]) -> String {
    let mut text = String::new();
    for report in reports {
        text.push_str(&format!(
            "{} ({}): {} passed, {} failed, {} skipped\n",
            report.label(),
            report.server.command_line(),
            report.passed(),
            report.failed(),
            report.skipped()
        ));
        for outcome in &report.outcomes {
            if let Verdict::Failed(message) = &outcome.verdict {
                text.push_str(&format!("  FAILED {}: {message}\n", outcome.test));
            }
        }
    }
    for divergence in divergences {
        text.push_str(&format!("DIVERGED {}:\n", divergence.test));
        for (run, observation) in &divergence.observations {
            text.push_str(&format!("  {run}: {observation}\n"));
        }
    }
    text.push_str(&table(reports));
    let passed: usize = reports.iter().map(Report::passed).sum();
    let failed: usize = reports.iter().map(Report::failed).sum::<usize>() + divergences.len();
    let skipped: usize = reports.iter().map(Report::skipped).sum();
    text.push_str(&format!(
        "client-conformance: {passed} passed, {failed} failed, {skipped} skipped\n"
    ));
    text
}

/// Counts per server and transport, one row each.
fn table(reports: &[Report]) -> String {
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|r| {
            [
                r.server.name.clone(),
                r.transport.name().to_owned(),
                r.passed().to_string(),
                r.failed().to_string(),
                r.skipped().to_string(),
            ]
        })
        .collect();
    let header = ["server", "transport", "passed", "failed", "skipped"].map(str::to_owned);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|row| row[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i < 2 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

fn json_report(reports: &[Report], divergences: &[Divergence]) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = reports
        .iter()
        .map(|report| {
            let failures: Vec<serde_json::Value> = report
                .outcomes
                .iter()
                .filter_map(|o| match &o.verdict {
                    Verdict::Failed(message) => Some(json!({"test": o.test, "error": message})),
                    _ => None,
                })
                .collect();
            let tests: Vec<serde_json::Value> = report
                .outcomes
                .iter()
                .map(|o| {
                    let (status, detail) = match &o.verdict {
                        Verdict::Passed(observation) => ("passed", observation),
                        Verdict::Failed(message) => ("failed", message),
                        Verdict::Skipped(reason) => ("skipped", reason),
                    };
                    json!({
                        "test": o.test,
                        "status": status,
                        "detail": detail,
                        "duration_ms": o.duration.as_secs_f64() * 1000.0,
                    })
                })
                .collect();
            json!({
                "server": report.server.name,
                "transport": report.transport.name(),
                "command": report.server.command_line(),
                "passed": report.passed(),
                "failed": report.failed(),
                "skipped": report.skipped(),
                "failures": failures,
                "tests": tests,
            })
        })
        .collect();
    let divergences: Vec<serde_json::Value> = divergences
        .iter()
        .map(|d| {
            let observations: serde_json::Map<String, serde_json::Value> = d
                .observations
                .iter()
                .map(|(run, observation)| (run.clone(), observation.clone().into()))
                .collect();
            json!({"test": d.test, "observations": observations})
        })
        .collect();
    json!({
        "runs": runs,
        "divergences": divergences,
        "passed": reports.iter().map(Report::passed).sum::<usize>(),
        "failed": reports.iter().map(Report::failed).sum::<usize>(),
        "skipped": reports.iter().map(Report::skipped).sum::<usize>(),
    })
}
