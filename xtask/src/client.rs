//! The client conformance suite (`client_conformance`, built with the
//! worker): our typed client against the reference worker and ours, over
//! every client transport.
//!
//! Each server and transport pair becomes a group named
//! `client-<server>-<transport>`, judged against the same ledgers as the
//! rest of the run. A test whose observations diverged between servers or
//! transports fails in every group that observed it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::cli_run::remove_stale;
use crate::process;
use crate::report::{Group, Outcome, TestResult};

/// The binary of the `vgirpc-conformance` package that runs the suite.
const BIN: &str = "client_conformance";

/// Runs the suite with the `client_conformance` in `release_dir`, against
/// the `reference` worker and ours beside it, or the `worker` command when
/// the run tests another worker. On a runner failure the result is one
/// group carrying the error.
pub(crate) fn run(
    release_dir: &Path,
    worker: Option<&str>,
    reference: &Path,
    filter: Option<&str>,
    out_dir: &Path,
) -> Vec<Group> {
    match run_suite(release_dir, worker, reference, filter, out_dir) {
        Ok(groups) => groups,
        Err(err) => {
            let mut group = Group::new("client");
            group.error = Some(format!("{err:#}"));
            vec![group]
        }
    }
}

fn run_suite(
    release_dir: &Path,
    worker: Option<&str>,
    reference: &Path,
    filter: Option<&str>,
    out_dir: &Path,
) -> Result<Vec<Group>> {
    let mut cmd = Command::new(binary(release_dir)?);
    cmd.arg("--json");
    if let Some(worker) = worker {
        // Both servers named, so the worker under test replaces ours.
        cmd.arg("--server")
            .arg(format!(
                "python-reference={} --describe",
                reference.display()
            ))
            .arg("--server")
            .arg(format!("worker={worker}"));
    }
    if let Some(filter) = filter {
        cmd.args(["--filter", filter]);
    }
    run_report(&mut cmd, &out_dir.join("client-conformance.json"))
}

/// The `client_conformance` in `dir`, which must have been built.
pub(crate) fn binary(dir: &Path) -> Result<PathBuf> {
    let binary = dir.join(BIN);
    if !binary.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p vgirpc-conformance`",
            binary.display()
        );
    }
    Ok(binary)
}

/// Runs `cmd`, a `client_conformance --json` command line, with its JSON
/// report going to `output`, and reads the groups back.
pub(crate) fn run_report(cmd: &mut Command, output: &Path) -> Result<Vec<Group>> {
    remove_stale(output)?;
    // The JSON report goes to the file, the text report to stderr.
    let file =
        fs::File::create(output).with_context(|| format!("creating {}", output.display()))?;
    cmd.stdout(file);
    let status = process::run(cmd)?;
    // 0: all passed, 1: some failed; anything else means the run broke.
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("{BIN} exited with {status} (its stderr is above)");
    }
    let text = fs::read_to_string(output)
        .with_context(|| format!("{BIN} wrote no {}", output.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", output.display()))?;
    parse(&json).with_context(|| format!("reading {}", output.display()))
}

/// The groups of a `client_conformance --json` report.
fn parse(json: &Value) -> Result<Vec<Group>> {
    let Some(runs) = json["runs"].as_array() else {
        bail!("no `runs` array");
    };
    let mut groups = Vec::new();
    for run in runs {
        let (Some(server), Some(transport), Some(tests)) = (
            run["server"].as_str(),
            run["transport"].as_str(),
            run["tests"].as_array(),
        ) else {
            bail!("a malformed run: {run}");
        };
        let mut group = Group::new(&group_name(server, transport));
        for test in tests {
            let (Some(id), Some(status)) = (test["test"].as_str(), test["status"].as_str()) else {
                bail!("a malformed test: {test}");
            };
            let outcome = match status {
                "passed" => Outcome::Passed,
                "failed" => Outcome::Failed,
                "skipped" => Outcome::Skipped,
                other => bail!("unknown status {other:?}"),
            };
            let message = (outcome != Outcome::Passed)
                .then(|| test["detail"].as_str().map(str::to_owned))
                .flatten();
            group.tests.push(TestResult {
                id: id.to_owned(),
                outcome,
                message,
            });
        }
        groups.push((format!("{server}/{transport}"), group));
    }
    for divergence in json["divergences"].as_array().into_iter().flatten() {
        let (Some(test), Some(observations)) = (
            divergence["test"].as_str(),
            divergence["observations"].as_object(),
        ) else {
            bail!("a malformed divergence: {divergence}");
        };
        let seen: Vec<String> = observations
            .iter()
            .map(|(run, observed)| format!("{run}: {}", observed.as_str().unwrap_or_default()))
            .collect();
        for (label, group) in &mut groups {
            if !observations.contains_key(label.as_str()) {
                continue;
            }
            if let Some(result) = group.tests.iter_mut().find(|t| t.id == test) {
                result.outcome = Outcome::Failed;
                result.message = Some(format!("observations diverged: {}", seen.join(" | ")));
            }
        }
    }
    Ok(groups.into_iter().map(|(_, group)| group).collect())
}

/// `client-<server>-<transport>`, e.g. `client-rust-pipe`.
fn group_name(server: &str, transport: &str) -> String {
    format!("client-{server}-{transport}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn runs_become_groups_and_divergences_fail_their_tests() {
        let report = json!({
            "runs": [
                {"server": "rust", "transport": "pipe", "tests": [
                    {"test": "a.one", "status": "passed", "detail": "1"},
                    {"test": "a.two", "status": "skipped", "detail": "n/a"},
                ]},
                {"server": "python-reference", "transport": "pipe", "tests": [
                    {"test": "a.one", "status": "passed", "detail": "2"},
                    {"test": "a.two", "status": "failed", "detail": "boom"},
                ]},
            ],
            "divergences": [
                {"test": "a.one", "observations": {"rust/pipe": "1", "python-reference/pipe": "2"}},
            ],
        });
        let groups = parse(&report).unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g.transport.as_str()).collect();
        assert_eq!(names, ["client-rust-pipe", "client-python-reference-pipe"]);
        for group in &groups {
            assert_eq!(group.tests[0].outcome, Outcome::Failed);
            let message = group.tests[0].message.as_deref().unwrap();
            assert!(message.contains("diverged") && message.contains("rust/pipe: 1"));
        }
        assert_eq!(groups[0].tests[1].outcome, Outcome::Skipped);
        assert_eq!(groups[0].tests[1].message.as_deref(), Some("n/a"));
        assert_eq!(groups[1].tests[1].message.as_deref(), Some("boom"));
        assert!(parse(&json!({})).is_err());
    }
}
