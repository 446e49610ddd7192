//! What a `vgi-rpc-test` run leaves behind, read back: its JSON results
//! and its verdict on the worker's access log; shared by the transports
//! that run the reference's command-line suite.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::expectations::is_glob;
use crate::report::{Outcome, TestResult};

/// Remove `path` so a runner that dies cannot leave a previous run's results to be read.
pub(crate) fn remove_stale(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The results of a `vgi-rpc-test` run that exited with `status`, plus
/// `access_log.validation`: whether the runner accepted the worker's access
/// log at `access_log`.
pub(crate) fn cli_results(
    status: std::process::ExitStatus,
    output: &Path,
    access_log: &Path,
) -> Result<Vec<TestResult>> {
    // 0: all passed, 1: some failed; anything else means the run itself broke.
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("vgi-rpc-test exited with {status} (its stderr is above)");
    }
    let mut tests = parse_cli_results(output)?;
    // A failing exit with no failing test can only be the access-log check.
    let log_failed =
        status.code() == Some(1) && !tests.iter().any(|t| t.outcome == Outcome::Failed);
    tests.push(TestResult {
        id: "access_log.validation".to_owned(),
        outcome: if log_failed {
            Outcome::Failed
        } else {
            Outcome::Passed
        },
        message: log_failed.then(|| {
            format!(
                "vgi-rpc-test rejected {} (its stderr is above)",
                access_log.display()
            )
        }),
    });
    Ok(tests)
}

/// vgi-rpc-test matches whole names, pytest `-k` substrings: give plain words
/// substring semantics on both sides so one `--filter` selects the same tests.
pub(crate) fn cli_filter(filter: &str) -> String {
    filter
        .split(',')
        .map(|part| {
            if is_glob(part) {
                part.to_owned()
            } else {
                format!("*{}*", part.trim())
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Read `vgi-rpc-test --format json` output.
fn parse_cli_results(path: &Path) -> Result<Vec<TestResult>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("vgi-rpc-test wrote no {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(results) = json["results"].as_array() else {
        bail!("{}: no `results` array", path.display());
    };
    results
        .iter()
        .map(|r| {
            let Some(name) = r["name"].as_str() else {
                bail!("{}: a result without a name: {r}", path.display());
            };
            let text = |key: &str| r[key].as_str().map(str::to_owned);
            // Skipped results also carry passed=true, so test the skip first.
            let (outcome, message) = if r["skipped"].as_bool() == Some(true) {
                (Outcome::Skipped, text("skip_reason"))
            } else if r["passed"].as_bool() == Some(true) {
                (Outcome::Passed, None)
            } else {
                (Outcome::Failed, text("error"))
            };
            Ok(TestResult {
                id: name.to_owned(),
                outcome,
                message,
            })
        })
        .collect()
}
