//! Judging raw test outcomes against the ledgers, and reporting them.
//!
//! A run is green only if every failure is a known failure, every known
//! failure still fails (a fixed one must leave the ledger, or it would hide
//! a later regression), and every skip is allowed.  The report ends with a
//! `N passed, N failed, N skipped` line counting exactly that.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::expectations::Ledger;

/// What a runner said about one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// One test's raw outcome.
#[derive(Debug)]
pub(crate) struct TestResult {
    /// The id ledger entries match (see [`crate::expectations`]).
    pub(crate) id: String,
    pub(crate) outcome: Outcome,
    /// The failure message or skip reason.
    pub(crate) message: Option<String>,
}

/// Everything one transport produced.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) transport: String,
    pub(crate) tests: Vec<TestResult>,
    /// Set when the runner itself broke, so `tests` cannot be trusted.
    pub(crate) error: Option<String>,
}

impl Group {
    pub(crate) fn new(transport: &str) -> Self {
        Self {
            transport: transport.to_owned(),
            tests: Vec::new(),
            error: None,
        }
    }
}

/// `(test id, explanation)`.
type Line = (String, String);

/// One transport's results after judging.
#[derive(Debug, Default)]
struct Judged {
    transport: String,
    error: Option<String>,
    passed: usize,
    /// Failed and not listed: the run fails.
    failures: Vec<Line>,
    /// Failed and listed in known-failures, with the listed reason.
    xfails: Vec<Line>,
    /// Passed although listed in known-failures, with the entry's location: the run fails.
    xpasses: Vec<Line>,
    /// Allowed skips, counted per reason given by the runner.
    skips: BTreeMap<String, usize>,
    /// Skipped without a matching allowed-skips entry: the run fails.
    bad_skips: Vec<Line>,
}

impl Judged {
    fn skipped(&self) -> usize {
        self.skips.values().sum()
    }

    fn problems(&self) -> usize {
        self.failures.len()
            + self.xpasses.len()
            + self.bad_skips.len()
            + usize::from(self.error.is_some())
    }
}

/// The judged results of a whole run.
#[derive(Debug)]
pub(crate) struct Summary {
    groups: Vec<Judged>,
}

impl Summary {
    pub(crate) fn new(groups: &[Group], known: &Ledger, allowed: &Ledger) -> Self {
        let groups = groups
            .iter()
            .map(|group| {
                let mut judged = Judged {
                    transport: group.transport.clone(),
                    error: group.error.clone(),
                    ..Judged::default()
                };
                for test in &group.tests {
                    let message = test.message.clone().unwrap_or_default();
                    let line = |text: String| (test.id.clone(), text);
                    match (test.outcome, known.find(&group.transport, &test.id)) {
                        (Outcome::Passed, None) => judged.passed += 1,
                        (Outcome::Passed, Some(entry)) => {
                            judged.xpasses.push(line(entry.origin.clone()))
                        }
                        (Outcome::Failed, Some(entry)) => {
                            judged.xfails.push(line(entry.reason.clone()))
                        }
                        (Outcome::Failed, None) => judged.failures.push(line(message)),
                        (Outcome::Skipped, _) => match allowed.find(&group.transport, &test.id) {
                            Some(_) => *judged.skips.entry(message).or_default() += 1,
                            None => judged.bad_skips.push(line(message)),
                        },
                    }
                }
                judged
            })
            .collect();
        Self { groups }
    }

    /// Whether the run met every expectation.
    pub(crate) fn ok(&self) -> bool {
        self.groups.iter().all(|g| g.problems() == 0)
    }

    /// The per-transport table, then the details a reader needs to act on.
    pub(crate) fn print(&self, worker: &str) {
        println!("\nconformance results for worker {worker}\n");
        // Wide enough for the longest transport name (http_externalize_always).
        let width = self
            .groups
            .iter()
            .map(|g| g.transport.len())
            .chain([14])
            .max()
            .unwrap_or(14);
        println!(
            "{:<width$} {:>7} {:>7} {:>7} {:>7} {:>8} {:>11}",
            "transport", "passed", "failed", "xfail", "xpass", "skipped", "unexp-skip"
        );
        for g in &self.groups {
            if let Some(error) = &g.error {
                println!("{:<width$} ERROR: {error}", g.transport);
                continue;
            }
            println!(
                "{:<width$} {:>7} {:>7} {:>7} {:>7} {:>8} {:>11}",
                g.transport,
                g.passed,
                g.failures.len(),
                g.xfails.len(),
                g.xpasses.len(),
                g.skipped(),
                g.bad_skips.len()
            );
        }

        let section = |title: &str, pick: fn(&Judged) -> &Vec<Line>| {
            if self.groups.iter().all(|g| pick(g).is_empty()) {
                return;
            }
            println!("\n{title}");
            for g in &self.groups {
                for (id, text) in pick(g) {
                    println!("  {:<width$} {id}: {text}", g.transport);
                }
            }
        };
        section("Expected failures (conformance/known-failures.txt):", |g| {
            &g.xfails
        });
        if self.groups.iter().any(|g| !g.skips.is_empty()) {
            println!("\nAllowed skips (conformance/allowed-skips.txt), by reason:");
            for g in &self.groups {
                for (reason, count) in &g.skips {
                    println!("  {:<width$} {count:>3} x {reason}", g.transport);
                }
            }
        }
        section("FAILED:", |g| &g.failures);
        section(
            "Unexpectedly passing — remove the entry from conformance/known-failures.txt:",
            |g| &g.xpasses,
        );
        section(
            "Unexpected skips — fix them, or list them with a reason in conformance/allowed-skips.txt:",
            |g| &g.bad_skips,
        );
        println!();
    }

    /// The last line of the report, counting what gates the run: expected
    /// failures count as skipped, unexpected passes and skips as failed.
    pub(crate) fn closing_line(&self) -> String {
        let passed: usize = self.groups.iter().map(|g| g.passed).sum();
        let failed: usize = self.groups.iter().map(Judged::problems).sum();
        let skipped: usize = self
            .groups
            .iter()
            .map(|g| g.skipped() + g.xfails.len())
            .sum();
        format!("conformance: {passed} passed, {failed} failed, {skipped} skipped")
    }

    /// The `summary.json` document: counts and test ids per transport.
    pub(crate) fn to_json(&self, worker: &str, filter: Option<&str>) -> Value {
        let lines = |lines: &[Line], key: &str| -> Vec<Value> {
            lines
                .iter()
                .map(|(id, text)| json!({ "test": id, key: text }))
                .collect()
        };
        let transports: serde_json::Map<String, Value> = self
            .groups
            .iter()
            .map(|g| {
                let value = json!({
                    "ok": g.problems() == 0,
                    "error": g.error,
                    "passed": g.passed,
                    "failed": g.failures.len(),
                    "xfail": g.xfails.len(),
                    "xpass": g.xpasses.len(),
                    "skipped": g.skipped(),
                    "unexpected_skips": g.bad_skips.len(),
                    "failing": g.failures.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                    "failures": lines(&g.failures, "message"),
                    "expected_failures": lines(&g.xfails, "reason"),
                    "unexpected_passes": lines(&g.xpasses, "entry"),
                    "unexpected_skipped": lines(&g.bad_skips, "reason"),
                    "skip_reasons": g.skips,
                });
                (g.transport.clone(), value)
            })
            .collect();
        json!({ "ok": self.ok(), "worker": worker, "filter": filter, "transports": transports })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn ledger(text: &str) -> Ledger {
        Ledger::parse(Path::new("ledger.txt"), text).unwrap()
    }

    fn result(id: &str, outcome: Outcome) -> TestResult {
        TestResult {
            id: id.to_owned(),
            outcome,
            message: Some(format!("{id} says why")),
        }
    }

    #[test]
    fn judges_against_ledgers() {
        let known = ledger("pipe T::known_bad  # tracked\npipe T::fixed  # was broken\n");
        let allowed = ledger("* T::http_*  # HTTP only\n");
        let mut group = Group::new("pipe");
        group.tests = vec![
            result("T::ok", Outcome::Passed),
            result("T::known_bad", Outcome::Failed),
            result("T::fixed", Outcome::Passed),
            result("T::new_bug", Outcome::Failed),
            result("T::http_health", Outcome::Skipped),
            result("T::mystery", Outcome::Skipped),
        ];
        let summary = Summary::new(&[group], &known, &allowed);
        let g = &summary.groups[0];
        assert_eq!(g.passed, 1);
        assert_eq!(
            g.xfails,
            [("T::known_bad".to_owned(), "tracked".to_owned())]
        );
        assert_eq!(g.xpasses.len(), 1);
        assert_eq!(g.failures[0].0, "T::new_bug");
        assert_eq!(g.skipped(), 1);
        assert_eq!(g.bad_skips[0].0, "T::mystery");
        assert!(!summary.ok());
        assert_eq!(
            summary.closing_line(),
            "conformance: 1 passed, 3 failed, 2 skipped"
        );
        let json = summary.to_json("w", None);
        assert_eq!(json["transports"]["pipe"]["failing"], json!(["T::new_bug"]));
        assert_eq!(json["ok"], json!(false));
    }

    #[test]
    fn runner_errors_fail_the_run() {
        let empty = ledger("");
        let mut group = Group::new("cli-pipe");
        group.error = Some("vgi-rpc-test exited with 2".to_owned());
        let summary = Summary::new(&[group], &empty, &empty);
        assert!(!summary.ok());
        assert_eq!(
            summary.closing_line(),
            "conformance: 0 passed, 1 failed, 0 skipped"
        );
    }
}
