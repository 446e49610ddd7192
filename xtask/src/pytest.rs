//! The reference's pytest suite, collected through `conformance/tests/`
//! whose conftest launches our worker: one session for every selected
//! pytest transport (the parameter ids of its `conformance_conn` fixture),
//! and the JSON report its plugin writes, read back.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::cli_run::remove_stale;
use crate::process;
use crate::python::Venv;
use crate::report::{Group, Outcome, TestResult};
use crate::s3;

/// `http_externalize_always` with moto's S3 emulator as the storage.
pub(crate) const S3_TRANSPORT: &str = "http_externalize_always_s3";

/// Group name for pytest tests that take no `conformance_conn` (HTTP-only
/// fixtures, in-process introspection): they run once per pytest session,
/// whatever transports were selected.
const COMMON: &str = "common";

/// Run the pytest suite once for all `transports`; returns one group per
/// transport plus [`COMMON`].
pub(crate) fn run(
    venv: &Venv,
    worker: &str,
    transports: &[&str],
    filter: Option<&str>,
    report: &Path,
) -> Vec<Group> {
    let mut groups: Vec<Group> = transports
        .iter()
        .chain([&COMMON])
        .map(|t| Group::new(t))
        .collect();
    let result = (|| -> Result<Vec<(Option<String>, TestResult)>> {
        remove_stale(report)?;
        let mut cmd = Command::new(venv.python());
        cmd.args(["-m", "pytest", "conformance/tests", "-q", "--tb=short"])
            .env("VGI_CONFORMANCE_WORKER", worker)
            .env("VGI_CONFORMANCE_TRANSPORTS", transports.join(","))
            .env("VGI_CONFORMANCE_REPORT", report)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        if let Some(filter) = filter {
            cmd.args(["-k", filter]);
        }
        // The S3 transport's worker finds the emulator through the AWS_*
        // variables, which the conftest passes on to it.
        let moto = if transports.contains(&S3_TRANSPORT) {
            Some(s3::Moto::start(&s3::venv()?, s3::CONFORMANCE_BUCKET)?)
        } else {
            None
        };
        if let Some(moto) = &moto {
            cmd.envs(moto.client_env(s3::CONFORMANCE_BUCKET));
        }
        let status = process::run(&mut cmd)?;
        // 0: passed, 1: some failed, 5: -k selected nothing; others: interrupted,
        // internal or usage error, where per-test outcomes cannot be trusted.
        if !matches!(status.code(), Some(0 | 1 | 5)) {
            bail!("pytest exited with {status} (its output is above)");
        }
        let tests = parse_report(report)?;
        if status.code() == Some(1) && !tests.iter().any(|(_, t)| t.outcome == Outcome::Failed) {
            bail!("pytest exited with {status} but reported no failing test");
        }
        Ok(tests)
    })();
    match result {
        Ok(tests) => {
            for (transport, test) in tests {
                let name = transport.as_deref().unwrap_or(COMMON);
                match groups.iter_mut().find(|g| g.transport == name) {
                    Some(group) => group.tests.push(test),
                    None => {
                        let mut group = Group::new(name);
                        group.tests.push(test);
                        groups.push(group);
                    }
                }
            }
        }
        Err(err) => {
            let message = format!("{err:#}");
            for group in &mut groups {
                group.error = Some(message.clone());
            }
        }
    }
    groups
}

/// Read the JSON the conftest's report plugin writes: `(transport, result)` pairs.
pub(crate) fn parse_report(path: &Path) -> Result<Vec<(Option<String>, TestResult)>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("pytest wrote no {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(tests) = json["tests"].as_array() else {
        bail!("{}: no `tests` array", path.display());
    };
    tests
        .iter()
        .map(|t| {
            let (Some(id), Some(outcome)) = (t["test"].as_str(), t["outcome"].as_str()) else {
                bail!("{}: malformed entry {t}", path.display());
            };
            let outcome = match outcome {
                "passed" => Outcome::Passed,
                "failed" => Outcome::Failed,
                "skipped" => Outcome::Skipped,
                other => bail!("{}: unknown outcome {other:?}", path.display()),
            };
            let result = TestResult {
                id: id.to_owned(),
                outcome,
                message: t["message"].as_str().map(str::to_owned),
            };
            Ok((t["transport"].as_str().map(str::to_owned), result))
        })
        .collect()
}
