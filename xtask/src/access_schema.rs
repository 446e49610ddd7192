//! The conformance runs' access logs against the reference's JSON Schema:
//! the access-log crate's schema test, run over the `*.access.jsonl` files
//! this run wrote, as one more group of the summary.

use std::path::Path;
use std::process::Command;

use crate::report::{Group, Outcome, TestResult};

/// Group name in the summary.
const GROUP: &str = "access-log-schema";

/// Runs the check when the run wrote access logs into `out_dir`; `None`
/// when it wrote none (a run filtered to the client suite, say).
pub(crate) fn run(out_dir: &Path) -> Option<Group> {
    let wrote_logs = std::fs::read_dir(out_dir).ok()?.flatten().any(|entry| {
        entry
            .file_name()
            .to_string_lossy()
            .ends_with(".access.jsonl")
    });
    if !wrote_logs {
        return None;
    }
    println!("xtask: checking the access logs against the reference's schema");
    let mut group = Group::new(GROUP);
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "test",
            "-p",
            "vgirpc-access-log",
            "--test",
            "schema",
            "--",
            "--nocapture",
            "conformance_access_logs_satisfy_the_reference_schema",
        ])
        .output();
    match output {
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            // The test's own count, e.g. "676 records in 10 access logs, 0 invalid".
            let verdict = stderr
                .lines()
                .find(|line| line.contains(" access logs, "))
                .map(str::to_owned);
            if let Some(verdict) = &verdict {
                println!("xtask: {verdict}");
            }
            let passed = output.status.success() && verdict.is_some();
            if !passed {
                eprintln!("{stderr}");
            }
            group.tests.push(TestResult {
                id: "access_log.schema".to_owned(),
                outcome: if passed {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                },
                message: (!passed).then(|| {
                    verdict.unwrap_or_else(|| "the schema test checked no records".to_owned())
                }),
            });
        }
        Err(err) => group.error = Some(format!("running cargo test: {err}")),
    }
    Some(group)
}
