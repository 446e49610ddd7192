//! `cargo xtask conformance`: the reference vgi-rpc conformance suite against our worker.
//!
//! Two runners from the vgi-rpc package exercise the worker:
//!
//! * `vgi-rpc-test`, the standalone runner, for the `cli-*` transports;
//! * the package's pytest suite, collected through `conformance/tests/`
//!   whose conftest launches our worker, for the pytest transports.  One
//!   pytest session covers all selected pytest transports at once: they are
//!   the parameter ids of its `conformance_conn` fixture.
//!
//! The `client` transport runs our own client conformance suite instead
//! (see [`crate::client`]): our client against the reference worker and ours.
//! `oauth-token-proxy` runs the reference's OAuth token-proxy test, which
//! is not part of the packaged suite (see [`crate::oauth`]).
//!
//! Each runner writes machine-readable results, which are judged against
//! `conformance/known-failures.txt` and `conformance/allowed-skips.txt` (see
//! [`crate::expectations`]) and summarised by [`crate::report`].

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cli_run::{cli_filter, cli_results, remove_stale};
use crate::expectations::{Ledger, is_glob};
use crate::http;
use crate::process::{self, Background, run_ok, shell_quote, shell_words, target_dir};
use crate::pytest;
use crate::python::{self, Venv};
use crate::report::{Group, Summary, TestResult};

/// How a transport is exercised.
#[derive(Debug)]
enum Runner {
    /// `vgi-rpc-test` against the worker, reached as `target` says.
    Cli { target: CliTarget },
    /// `vgi-rpc-test --url` against our worker serving HTTP, once per server
    /// configuration the suite needs (see [`crate::http`]); over HTTPS with
    /// a CA made for the run when `tls`.
    CliHttp { tls: bool },
    /// `vgi-rpc-test --url` against the strict-cap server whose storage is
    /// moto's S3 emulator (see [`crate::http::run_cli_s3`]).
    CliS3,
    /// The pytest suite, with this transport as the `conformance_conn` parameter
    /// (it must exist in `conformance/tests/conftest.py`).
    Pytest,
    /// Our client against the reference worker and ours, over every client
    /// transport (see [`crate::client`]); one group per server and transport.
    Client,
    /// The reference's OAuth token-proxy test with our worker in the Go
    /// worker's place (see [`crate::oauth`]).
    OAuthTokenProxy,
    /// Each implementation's client through the other's S3 storage (see
    /// [`crate::s3_interop`]).
    S3Interop,
}

/// One row of [`TRANSPORTS`].
#[derive(Debug)]
struct Transport {
    name: &'static str,
    runner: Runner,
}

/// Every transport the harness knows, in report order; all run by default.
///
/// Adding one is a row here, plus a connector in the conftest for pytest
/// transports.  Transports that need a listening worker (unix sockets,
/// HTTP) will also need the worker started before its runner.
const TRANSPORTS: &[Transport] = &[
    Transport {
        name: "cli-pipe",
        runner: Runner::Cli {
            target: CliTarget::Launch(&[]),
        },
    },
    Transport {
        name: "cli-shm",
        runner: Runner::Cli {
            target: CliTarget::Launch(&["--shm", "4194304"]),
        },
    },
    Transport {
        name: "cli-unix",
        runner: Runner::Cli {
            target: CliTarget::Unix(&["--no-threaded"]),
        },
    },
    Transport {
        name: "cli-unix-threaded",
        runner: Runner::Cli {
            target: CliTarget::Unix(&["--threaded"]),
        },
    },
    Transport {
        name: "cli-http",
        runner: Runner::CliHttp { tls: false },
    },
    Transport {
        name: "cli-https",
        runner: Runner::CliHttp { tls: true },
    },
    Transport {
        name: "cli-http-s3",
        runner: Runner::CliS3,
    },
    Transport {
        name: "pipe",
        runner: Runner::Pytest,
    },
    Transport {
        name: "subprocess",
        runner: Runner::Pytest,
    },
    Transport {
        name: "unix",
        runner: Runner::Pytest,
    },
    Transport {
        name: "unix_threaded",
        runner: Runner::Pytest,
    },
    Transport {
        name: "unix_launcher",
        runner: Runner::Pytest,
    },
    Transport {
        name: "http",
        runner: Runner::Pytest,
    },
    Transport {
        name: "http_externalize_always",
        runner: Runner::Pytest,
    },
    Transport {
        name: pytest::S3_TRANSPORT,
        runner: Runner::Pytest,
    },
    Transport {
        name: "http_roundrobin",
        runner: Runner::Pytest,
    },
    Transport {
        name: "client",
        runner: Runner::Client,
    },
    Transport {
        name: crate::oauth::GROUP,
        runner: Runner::OAuthTokenProxy,
    },
    Transport {
        name: crate::s3_interop::TRANSPORT,
        runner: Runner::S3Interop,
    },
];

const KNOWN_FAILURES: &str = "conformance/known-failures.txt";
const ALLOWED_SKIPS: &str = "conformance/allowed-skips.txt";

/// The worker binary built from the `vgirpc-conformance` package.
pub(crate) const WORKER_PACKAGE: &str = "vgirpc-conformance";
pub(crate) const WORKER_BIN: &str = "vgi-conformance-worker";

/// Command-line options of `cargo xtask conformance`.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// `--transport NAME` (repeatable); empty means every transport.
    transports: Vec<String>,
    /// `--filter PATTERN`: test selection for both runners.
    filter: Option<String>,
    /// `--skip-build`: test the worker binary already in the target directory.
    skip_build: bool,
    /// `--debug`: test debug builds; CI uses them because the test suite has
    /// already compiled them, which saves a whole release build.
    debug: bool,
    /// `--worker CMD` or `$VGI_CONFORMANCE_WORKER`: a worker command line to
    /// test instead of ours, e.g. the reference Python worker when checking
    /// the harness itself.  Nothing is built then.
    worker: Option<String>,
}

impl Options {
    /// The options `cargo xtask ci` runs with: everything, on debug builds.
    pub(crate) fn for_ci() -> Self {
        Self {
            debug: true,
            ..Self::default()
        }
    }

    /// Parse the arguments after `conformance`; `--opt value` and `--opt=value` both work.
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self> {
        let mut options = Self::default();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            let mut value = || match inline.clone().or_else(|| args.next()) {
                Some(value) => Ok(value),
                None => Err(anyhow::anyhow!("{flag} needs a value")),
            };
            match flag.as_str() {
                "--transport" => options.transports.push(value()?),
                "--filter" => options.filter = Some(value()?),
                "--worker" => options.worker = Some(value()?),
                "--skip-build" if inline.is_none() => options.skip_build = true,
                "--debug" if inline.is_none() => options.debug = true,
                "--client" if inline.is_none() => options.transports.push("client".to_owned()),
                _ => bail!("unknown conformance option {arg:?} (see `cargo xtask help`)"),
            }
        }
        Ok(options)
    }

    /// The transports to run, validated, in [`TRANSPORTS`] order.
    fn selected(&self) -> Result<Vec<&'static Transport>> {
        if let Some(unknown) = self
            .transports
            .iter()
            .find(|n| !TRANSPORTS.iter().any(|t| t.name == *n))
        {
            let known: Vec<_> = TRANSPORTS.iter().map(|t| t.name).collect();
            bail!("unknown transport {unknown:?}; known: {}", known.join(", "));
        }
        Ok(TRANSPORTS
            .iter()
            .filter(|t| self.transports.is_empty() || self.transports.iter().any(|n| n == t.name))
            .collect())
    }
}

/// How `vgi-rpc-test` reaches the worker.
#[derive(Debug, Clone, Copy)]
enum CliTarget {
    /// It launches the worker itself: `--cmd <worker>` plus these arguments.
    Launch(&'static [&'static str]),
    /// We start the worker on a Unix socket with these extra flags and
    /// point `--unix` at it.
    Unix(&'static [&'static str]),
}

/// Run the suite as `options` says; an error if anything unexpected happened.
pub(crate) fn run(options: &Options) -> Result<()> {
    let transports = options.selected()?;
    let pytest: Vec<&str> = transports
        .iter()
        .filter(|t| matches!(t.runner, Runner::Pytest))
        .map(|t| t.name)
        .collect();
    if let Some(filter) = &options.filter
        && is_glob(filter)
        && !pytest.is_empty()
    {
        bail!(
            "--filter {filter:?} is a glob, which pytest -k cannot take; \
             use a plain word, or add --transport cli-pipe to run only vgi-rpc-test"
        );
    }

    // Loaded up front so a malformed line fails before minutes of building.
    let known = Ledger::load(Path::new(KNOWN_FAILURES))?;
    let allowed = Ledger::load(Path::new(ALLOWED_SKIPS))?;

    let target = target_dir()?;
    let worker = match options
        .worker
        .clone()
        .or_else(|| std::env::var("VGI_CONFORMANCE_WORKER").ok())
    {
        Some(worker) if !worker.trim().is_empty() => worker,
        _ => build_worker(&target, options.skip_build, options.debug)?,
    };
    let python = python::find_or_build()?;
    println!("xtask: using Python {}", python.display());
    let venv = Venv::ensure(&target.join("conformance-venv"), &python)?;
    let out_dir = target.join("conformance");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let mut groups = Vec::new();
    for transport in &transports {
        if let Runner::CliHttp { tls } = transport.runner {
            let filter = options.filter.as_deref();
            groups.push(http::run_cli(
                &venv,
                &worker,
                transport.name,
                filter,
                &out_dir,
                tls,
            ));
        }
        if let Runner::CliS3 = transport.runner {
            groups.push(http::run_cli_s3(
                &venv,
                &worker,
                transport.name,
                options.filter.as_deref(),
                &out_dir,
            ));
        }
        if let Runner::Client = transport.runner {
            // Our worker is built next to the suite's binary unless the run
            // tests another worker, which then stands in for ours.
            let custom = options
                .worker
                .clone()
                .or_else(|| std::env::var("VGI_CONFORMANCE_WORKER").ok())
                .filter(|w| !w.trim().is_empty());
            groups.extend(crate::client::run(
                &target.join(profile_dir(options.debug)),
                custom.as_deref(),
                &venv.bin("vgi-rpc-conformance"),
                options.filter.as_deref(),
                &out_dir,
            ));
        }
        if let Runner::S3Interop = transport.runner {
            groups.extend(crate::s3_interop::run(
                &venv,
                &worker,
                &target.join(profile_dir(options.debug)),
                options.filter.as_deref(),
                &out_dir,
            ));
        }
        if let Runner::OAuthTokenProxy = transport.runner {
            groups.push(crate::oauth::run(
                &venv,
                &worker,
                options.filter.as_deref(),
                &out_dir,
            ));
        }
        if let Runner::Cli { target } = transport.runner {
            let output = out_dir.join(format!("{}.json", transport.name));
            groups.push(run_cli(
                &venv,
                &worker,
                transport.name,
                target,
                options.filter.as_deref(),
                &output,
            ));
        }
    }
    if !pytest.is_empty() {
        let report = out_dir.join("pytest-report.json");
        groups.extend(pytest::run(
            &venv,
            &worker,
            &pytest,
            options.filter.as_deref(),
            &report,
        ));
    }
    groups.extend(crate::access_schema::run(&out_dir));
    if options.filter.is_none() {
        // An unfiltered run that executed nothing is broken, however green it looks.
        for group in groups
            .iter_mut()
            .filter(|g| g.tests.is_empty() && g.error.is_none())
        {
            group.error = Some("ran no tests".to_owned());
        }
    }

    let summary = Summary::new(&groups, &known, &allowed);
    summary.print(&worker);
    // Stale entries only make sense to point out on a complete, clean run:
    // a filter leaves entries unmatched, and a broken test skips nothing.
    if options.filter.is_none() && summary.ok() {
        let ran: Vec<String> = groups.iter().map(|g| g.transport.clone()).collect();
        for ledger in [&known, &allowed] {
            for entry in ledger.unused(&ran) {
                println!(
                    "note: {} matched no result; if the test was fixed or renamed, remove it ({})",
                    entry.origin, entry.reason
                );
            }
        }
    }
    let summary_path = out_dir.join("summary.json");
    let json = summary.to_json(&worker, options.filter.as_deref());
    fs::write(&summary_path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", summary_path.display()))?;
    println!("xtask: wrote {}", summary_path.display());
    println!("{}", summary.closing_line());
    if !summary.ok() {
        bail!("conformance run had unexpected results (see above)");
    }
    Ok(())
}

/// The target subdirectory of the chosen build profile.
fn profile_dir(debug: bool) -> &'static str {
    if debug { "debug" } else { "release" }
}

/// Build the worker (unless told not to) and return its command line.
fn build_worker(target: &Path, skip_build: bool, debug: bool) -> Result<String> {
    if !skip_build {
        let mut cmd = process::cargo();
        cmd.arg("build");
        if !debug {
            cmd.arg("--release");
        }
        run_ok(cmd.args(["-p", WORKER_PACKAGE]))?;
    }
    let binary = target.join(profile_dir(debug)).join(WORKER_BIN);
    if !binary.is_file() {
        bail!(
            "{} does not exist; run without --skip-build",
            binary.display()
        );
    }
    // Both runners split the worker command with shell rules, so quote the path.
    Ok(shell_quote(&binary.to_string_lossy()).into_owned())
}

/// Run `vgi-rpc-test` for one transport; runner-level failures become the group's error.
fn run_cli(
    venv: &Venv,
    worker: &str,
    transport: &str,
    target: CliTarget,
    filter: Option<&str>,
    output: &Path,
) -> Group {
    let mut group = Group::new(transport);
    let result = (|| -> Result<Vec<TestResult>> {
        remove_stale(output)?;
        // Every call the suite makes must be logged to spec: the runner
        // validates the worker's access log after the tests.
        let access_log = output.with_extension("access.jsonl");
        remove_stale(&access_log)?;
        let mut cmd = Command::new(venv.bin("vgi-rpc-test"));
        // Held until the run ends; dropping it stops the socket worker.
        let _unix_worker = match target {
            CliTarget::Launch(extra_args) => {
                let logged = format!(
                    "{worker} --access-log {}",
                    shell_quote(&access_log.to_string_lossy())
                );
                cmd.args(["--cmd", &logged]).args(extra_args);
                None
            }
            CliTarget::Unix(flags) => {
                let socket = std::env::temp_dir()
                    .join(format!("vgi-xtask-{}-{transport}.sock", std::process::id()));
                let listening = start_unix_worker(worker, &socket, flags, &access_log)?;
                cmd.arg("--unix").arg(&socket);
                Some(listening)
            }
        };
        cmd.args(["--format", "json", "--output"]).arg(output);
        cmd.arg("--access-log").arg(&access_log);
        if let Some(filter) = filter {
            cmd.args(["--filter", &cli_filter(filter)]);
        }
        let status = process::run(&mut cmd)?;
        cli_results(status, output, &access_log)
    })();
    match result {
        Ok(tests) => group.tests = tests,
        Err(err) => group.error = Some(format!("{err:#}")),
    }
    group
}

/// Starts `worker --unix socket flags...` for the length of one runner and
/// waits for its ready line.
fn start_unix_worker(
    worker: &str,
    socket: &Path,
    flags: &[&str],
    access_log: &Path,
) -> Result<Background> {
    let _ = fs::remove_file(socket);
    let mut words = shell_words(worker)?;
    words.extend([
        "--unix".to_owned(),
        socket.to_string_lossy().into_owned(),
        "--access-log".to_owned(),
        access_log.to_string_lossy().into_owned(),
    ]);
    words.extend(flags.iter().map(|f| (*f).to_owned()));
    let (worker, ready) = Background::start(&words)?;
    let expected = format!("UNIX:{}", socket.display());
    if ready != expected {
        bail!("worker printed {ready:?}, expected {expected:?}");
    }
    Ok(worker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        Options::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn options() {
        let o = parse(&[
            "--transport",
            "pipe",
            "--transport=cli-pipe",
            "--filter",
            "echo",
            "--skip-build",
        ])
        .unwrap();
        assert_eq!(o.transports, ["pipe", "cli-pipe"]);
        assert_eq!(o.filter.as_deref(), Some("echo"));
        assert!(o.skip_build);
        let names: Vec<_> = o.selected().unwrap().iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            ["cli-pipe", "pipe"],
            "report order, not argument order"
        );

        assert!(parse(&["--transport"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--skip-build=yes"]).is_err());
        assert!(
            parse(&["--transport", "carrier-pigeon"])
                .unwrap()
                .selected()
                .is_err()
        );
        assert_eq!(
            parse(&[]).unwrap().selected().unwrap().len(),
            TRANSPORTS.len()
        );
    }

    #[test]
    fn client_selects_the_client_suite() {
        let names: Vec<_> = parse(&["--client"])
            .unwrap()
            .selected()
            .unwrap()
            .iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["client"]);
        assert!(parse(&["--client=yes"]).is_err());
    }

    #[test]
    fn plain_filter_words_become_substring_globs() {
        assert_eq!(cli_filter("echo_string"), "*echo_string*");
        assert_eq!(cli_filter("scalar_echo.*,void"), "scalar_echo.*,*void*");
    }
}
