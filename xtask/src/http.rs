//! `vgi-rpc-test --url` against our worker serving HTTP.
//!
//! Some tests only run against a server configured for them: the
//! `http_response_cap.*` tests skip unless the server advertises response
//! caps, and two of them further need external storage while the other two
//! need it absent (externalization would rescue the oversized body). So the
//! transport runs the whole suite against a plain server, then re-runs the
//! tests the plain server had to skip against each server configuration
//! that can run them, as the reference's `tests/serve_conformance_http*.py`
//! servers are used. A test counts as skipped only if no configuration ran
//! it.
//!
//! `cli-http-s3` runs the caps' tests against the strict server whose
//! storage is moto's S3 emulator instead of the fake service.
//!
//! `cli-https` does the same over TLS: every server gets a certificate of a
//! CA made for the run, which `vgi-rpc-test` (httpx) trusts through
//! `SSL_CERT_FILE`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};
use vgirpc_test_support::pki::{Pki, PkiFiles};

use crate::cli_run::{cli_filter, cli_results, remove_stale};
use crate::process::{self, Background, shell_line, shell_words};
use crate::python::Venv;
use crate::report::{Group, Outcome, TestResult};
use crate::s3;

/// A server configuration the worker is started with.
#[derive(Debug)]
struct Profile {
    /// Label used in output file names.
    name: &'static str,
    /// Flags after `--http`.
    flags: &'static [&'static str],
    /// Whether it externalizes into the reference's fake storage service.
    fake_storage: bool,
    /// The test category it exists for; `None` for the plain server, which
    /// runs everything.
    category: Option<&'static str>,
}

/// Caps the reference's strict server uses by default (1 MiB each).
const STRICT: &[&str] = &[
    "--max-response-bytes",
    "1048576",
    "--max-externalized-response-bytes",
    "1048576",
];

const PROFILES: &[Profile] = &[
    Profile {
        name: "plain",
        flags: &[],
        fake_storage: false,
        category: None,
    },
    Profile {
        name: "strict",
        flags: STRICT,
        fake_storage: false,
        category: Some("http_response_cap"),
    },
    Profile {
        name: "strict-storage",
        flags: STRICT,
        fake_storage: true,
        category: Some("http_response_cap"),
    },
];

/// Runs the `cli-http` transport; runner failures become the group's error.
pub(crate) fn run_cli(
    venv: &Venv,
    worker: &str,
    transport: &str,
    filter: Option<&str>,
    out_dir: &Path,
    tls: bool,
) -> Group {
    let mut group = Group::new(transport);
    let tls = if tls {
        match Pki::generate().write_to(&out_dir.join(format!("{transport}-pki"))) {
            Ok(files) => Some(files),
            Err(err) => {
                group.error = Some(format!("writing the test certificates: {err}"));
                return group;
            }
        }
    } else {
        None
    };
    match run_profiles(venv, worker, transport, filter, out_dir, tls.as_ref()) {
        Ok(tests) => group.tests = tests,
        Err(err) => group.error = Some(format!("{err:#}")),
    }
    group
}

/// Runs the `cli-http-s3` transport: `http_response_cap.*` (or `filter`)
/// against the strict server externalizing into S3.
pub(crate) fn run_cli_s3(
    venv: &Venv,
    worker: &str,
    transport: &str,
    filter: Option<&str>,
    out_dir: &Path,
) -> Group {
    let mut group = Group::new(transport);
    match run_s3(venv, worker, transport, filter, out_dir) {
        Ok(tests) => group.tests = tests,
        Err(err) => group.error = Some(format!("{err:#}")),
    }
    group
}

fn run_s3(
    venv: &Venv,
    worker: &str,
    transport: &str,
    filter: Option<&str>,
    out_dir: &Path,
) -> Result<Vec<TestResult>> {
    let moto = s3::Moto::start(&s3::venv()?, s3::CONFORMANCE_BUCKET)?;
    let output = out_dir.join(format!("{transport}-strict.json"));
    let access_log = output.with_extension("access.jsonl");
    remove_stale(&access_log)?;
    // The worker reads its storage from the AWS_* variables; `env` sets
    // them and execs it, so it is still the process stopped by PID.
    let mut words = vec!["env".to_owned()];
    words.extend(
        moto.client_env(s3::CONFORMANCE_BUCKET)
            .into_iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    words.extend(shell_words(worker)?);
    words.push("--http".to_owned());
    words.extend(STRICT.iter().map(|f| (*f).to_owned()));
    words.extend([
        "--s3-storage".to_owned(),
        "--access-log".to_owned(),
        access_log.to_string_lossy().into_owned(),
    ]);
    let (_worker, port) = start_listening(&words)?;
    let selection = filter.map_or_else(|| "http_response_cap.*".to_owned(), cli_filter);
    run_vgi_rpc_test(
        venv,
        &CliRun {
            port,
            ca: None,
            filter: Some(&selection),
            output: &output,
            access_log: &access_log,
        },
    )
}

fn run_profiles(
    venv: &Venv,
    worker: &str,
    transport: &str,
    filter: Option<&str>,
    out_dir: &Path,
    tls: Option<&PkiFiles>,
) -> Result<Vec<TestResult>> {
    let mut storage: Option<(Background, String)> = None;
    let mut results: Vec<TestResult> = Vec::new();
    for profile in PROFILES {
        let selection = match profile.category {
            None => filter.map(cli_filter),
            Some(category) => {
                let prefix = format!("{category}.");
                let skipped = results
                    .iter()
                    .any(|t| t.outcome == Outcome::Skipped && t.id.starts_with(&prefix));
                if !skipped {
                    continue;
                }
                Some(format!("{category}.*"))
            }
        };
        let mut flags: Vec<String> = profile.flags.iter().map(|f| (*f).to_owned()).collect();
        if profile.fake_storage {
            if storage.is_none() {
                storage = Some(start_fake_storage(venv)?);
            }
            let (_, url) = storage.as_ref().expect("started above");
            flags.extend(["--fake-storage".to_owned(), url.clone()]);
        }
        let output = out_dir.join(format!("{transport}-{}.json", profile.name));
        // Every call must be logged to spec: the runner validates the
        // worker's access log after the tests.
        let access_log = output.with_extension("access.jsonl");
        remove_stale(&access_log)?;
        flags.extend([
            "--access-log".to_owned(),
            access_log.to_string_lossy().into_owned(),
        ]);
        if let Some(tls) = tls {
            flags.extend([
                "--tls-cert".to_owned(),
                tls.server_cert.to_string_lossy().into_owned(),
                "--tls-key".to_owned(),
                tls.server_key.to_string_lossy().into_owned(),
            ]);
        }
        let (_worker, port) = start_worker(worker, &flags)?;
        let run = CliRun {
            port,
            ca: tls.map(|files| files.ca.as_path()),
            filter: selection.as_deref(),
            output: &output,
            access_log: &access_log,
        };
        let tests = run_vgi_rpc_test(venv, &run)?;
        if profile.category.is_none() {
            results = tests;
        } else {
            merge(&mut results, tests);
        }
    }
    Ok(results)
}

/// Folds a re-run into `base`: a test skipped there takes the re-run's
/// result, and a failure in the re-run (its own access log, say) wins.
fn merge(base: &mut [TestResult], rerun: Vec<TestResult>) {
    for test in rerun {
        let Some(slot) = base.iter_mut().find(|t| t.id == test.id) else {
            continue;
        };
        let replaces = match (slot.outcome, test.outcome) {
            (_, Outcome::Skipped) => false,
            (Outcome::Skipped, _) => true,
            (_, outcome) => outcome == Outcome::Failed,
        };
        if replaces {
            *slot = test;
        }
    }
}

/// One `vgi-rpc-test` run against a listening worker.
struct CliRun<'a> {
    port: u16,
    /// The CA of an HTTPS worker.
    ca: Option<&'a Path>,
    filter: Option<&'a str>,
    output: &'a Path,
    access_log: &'a Path,
}

fn run_vgi_rpc_test(venv: &Venv, run: &CliRun<'_>) -> Result<Vec<TestResult>> {
    remove_stale(run.output)?;
    let mut cmd = Command::new(venv.bin("vgi-rpc-test"));
    let scheme = if run.ca.is_some() { "https" } else { "http" };
    cmd.args(["--url", &format!("{scheme}://127.0.0.1:{}", run.port)])
        .args(["--format", "json", "--output"])
        .arg(run.output)
        .arg("--access-log")
        .arg(run.access_log);
    if let Some(ca) = run.ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    if let Some(filter) = run.filter {
        cmd.args(["--filter", filter]);
    }
    let status = process::run(&mut cmd)?;
    cli_results(status, run.output, run.access_log)
}

/// Starts `words` and reads the port from the `PORT:<n>` line it prints
/// when ready.
fn start_listening(words: &[String]) -> Result<(Background, u16)> {
    let (process, ready) = Background::start(words)?;
    let port = ready
        .strip_prefix("PORT:")
        .and_then(|p| p.parse().ok())
        .with_context(|| {
            format!(
                "`{}` printed {ready:?}, expected PORT:<n>",
                shell_line(words)
            )
        })?;
    Ok((process, port))
}

pub(crate) fn start_worker(worker: &str, flags: &[String]) -> Result<(Background, u16)> {
    // The worker is a command line, as both runners take it.
    let mut words = shell_words(worker)?;
    words.push("--http".to_owned());
    words.extend_from_slice(flags);
    start_listening(&words)
}

/// The reference's in-memory object store, which the storage profiles
/// externalize into; returns it with its base URL.
fn start_fake_storage(venv: &Venv) -> Result<(Background, String)> {
    let words = [
        venv.python().to_string_lossy().into_owned(),
        "-m".to_owned(),
        "vgi_rpc.conformance.fake_storage".to_owned(),
        "--port".to_owned(),
        "0".to_owned(),
    ];
    let (process, port) = start_listening(&words)?;
    Ok((process, format!("http://127.0.0.1:{port}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, outcome: Outcome) -> TestResult {
        TestResult {
            id: id.to_owned(),
            outcome,
            message: None,
        }
    }

    #[test]
    fn reruns_fill_skips_and_report_failures() {
        let mut base = vec![
            result("a.one", Outcome::Passed),
            result("a.two", Outcome::Failed),
            result("cap.wire", Outcome::Skipped),
            result("cap.external", Outcome::Skipped),
            result("access_log.validation", Outcome::Passed),
        ];
        merge(
            &mut base,
            vec![
                result("a.one", Outcome::Skipped),
                result("a.two", Outcome::Passed),
                result("cap.wire", Outcome::Passed),
                result("cap.external", Outcome::Skipped),
                result("cap.unknown", Outcome::Passed),
                result("access_log.validation", Outcome::Failed),
            ],
        );
        let outcomes: Vec<_> = base.iter().map(|t| (t.id.as_str(), t.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("a.one", Outcome::Passed),
                ("a.two", Outcome::Failed),
                ("cap.wire", Outcome::Passed),
                ("cap.external", Outcome::Skipped),
                ("access_log.validation", Outcome::Failed),
            ]
        );
    }
}
