//! The crate layering of `docs/ARCHITECTURE.md`, checked against what the
//! manifests actually say (`cargo metadata`): a crate depends only on
//! crates of lower layers, and test helpers only from tests.

use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::process::cargo;

/// Every workspace package and its layer, lowest first. A new package
/// must be placed here before `cargo xtask ci` passes.
const LAYERS: &[(&str, u8)] = &[
    ("vgirpc-shm", 0),
    ("vgirpc-macros", 0),
    ("vgirpc-session", 0),
    ("vgirpc-token", 0),
    ("vgirpc-wire", 1),
    ("vgirpc-fetch", 1),
    ("vgirpc-client", 2),
    ("vgirpc-test-support", 2),
    ("vgirpc", 3),
    ("vgirpc-pipe", 4),
    ("vgirpc-access-log", 4),
    ("vgirpc-http", 4),
    ("vgirpc-storage", 5),
    ("vgirpc-cli", 5),
    ("vgirpc-conformance", 6),
    ("vgirpc-reliability", 5),
    ("vgirpc-bench", 5),
    ("vgirpc-examples", 5),
    ("xtask", 5),
];

/// Packages that only tests (dev-dependencies) and the harnesses may
/// depend on.
const TEST_ONLY: &[&str] = &["vgirpc-test-support", "vgirpc-conformance"];

/// Unpublished packages that exist to test the others: their own code may
/// use test-only packages (the test PKI of the HTTPS runs, for one).
const HARNESSES: &[&str] = &["vgirpc-conformance", "vgirpc-bench", "xtask"];

/// Packages narrower than their layer: the only workspace crates each may
/// depend on outside its tests.
const ONLY: &[(&str, &[&str])] = &[("vgirpc-cli", &["vgirpc-client", "vgirpc-wire"])];

/// One non-dev dependency edge between workspace packages.
#[derive(Debug, PartialEq)]
struct Edge {
    from: String,
    to: String,
    dev: bool,
}

pub(crate) fn run() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    let edges = edges(&metadata(&mut cmd)?)?;
    let problems = check(&edges);
    if !problems.is_empty() {
        bail!(
            "the crate graph breaks the layering of docs/ARCHITECTURE.md:\n  {}",
            problems.join("\n  ")
        );
    }
    println!(
        "layering: {} dependencies between workspace crates, all downward",
        edges.iter().filter(|e| !e.dev).count()
    );
    Ok(())
}

fn metadata(cmd: &mut Command) -> Result<Value> {
    let output = cmd.output().context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("reading cargo metadata's JSON")
}

/// The dependency edges between workspace packages.
fn edges(metadata: &Value) -> Result<Vec<Edge>> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata without packages")?;
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut edges = Vec::new();
    for package in packages {
        let from = package["name"]
            .as_str()
            .context("a package without a name")?;
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let Some(to) = dep["name"].as_str().filter(|n| names.contains(n)) else {
                continue;
            };
            edges.push(Edge {
                from: from.to_owned(),
                to: to.to_owned(),
                dev: dep["kind"].as_str() == Some("dev"),
            });
        }
    }
    Ok(edges)
}

/// Every way `edges` break the rules, one line each.
fn check(edges: &[Edge]) -> Vec<String> {
    let layer = |name: &str| LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
    let mut problems = Vec::new();
    for edge in edges {
        for name in [&edge.from, &edge.to] {
            if layer(name).is_none() {
                let line = format!("{name} has no layer: add it to xtask/src/layers.rs");
                if !problems.contains(&line) {
                    problems.push(line);
                }
            }
        }
        if edge.dev {
            continue;
        }
        if TEST_ONLY.contains(&edge.to.as_str()) && !HARNESSES.contains(&edge.from.as_str()) {
            problems.push(format!(
                "{} depends on {}, which only tests and the harnesses may use",
                edge.from, edge.to
            ));
        }
        if let (Some(from), Some(to)) = (layer(&edge.from), layer(&edge.to))
            && to >= from
        {
            problems.push(format!(
                "{} (layer {from}) depends on {} (layer {to}): dependencies go down",
                edge.from, edge.to
            ));
        }
        if let Some((_, allowed)) = ONLY.iter().find(|(n, _)| *n == edge.from)
            && !allowed.contains(&edge.to.as_str())
        {
            problems.push(format!(
                "{} may use only {}, not {}",
                edge.from,
                allowed.join(" and "),
                edge.to
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str, dev: bool) -> Edge {
        Edge {
            from: from.into(),
            to: to.into(),
            dev,
        }
    }

    #[test]
    fn downward_edges_and_test_helpers_in_tests_pass() {
        let edges = [
            edge("vgirpc", "vgirpc-wire", false),
            edge("vgirpc-http", "vgirpc", false),
            edge("vgirpc", "vgirpc-test-support", true),
            edge("vgirpc-macros", "vgirpc", true),
            edge("xtask", "vgirpc-test-support", false),
        ];
        assert_eq!(check(&edges), Vec::<String>::new());
    }

    #[test]
    fn upward_sideways_test_only_and_unknown_edges_are_reported() {
        let edges = [
            edge("vgirpc-client", "vgirpc", false),
            edge("vgirpc-pipe", "vgirpc-http", false),
            edge("vgirpc-http", "vgirpc-test-support", false),
            edge("vgirpc-cli", "vgirpc", false),
            edge("vgirpc-new", "vgirpc-wire", false),
        ];
        let problems = check(&edges);
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].contains("vgirpc-client (layer 2) depends on vgirpc (layer 3)"));
        assert!(problems[1].contains("vgirpc-pipe (layer 4) depends on vgirpc-http (layer 4)"));
        assert!(problems[2].contains("only tests and the harnesses may use"));
        assert!(problems[3].contains("vgirpc-cli may use only"));
        assert!(problems[4].contains("vgirpc-new has no layer"));
    }

    #[test]
    fn edges_come_from_cargo_metadata() {
        let metadata = serde_json::json!({"packages": [
            {"name": "vgirpc", "dependencies": [
                {"name": "vgirpc-wire", "kind": null},
                {"name": "arrow-array", "kind": null},
                {"name": "vgirpc-test-support", "kind": "dev"},
            ]},
            {"name": "vgirpc-wire", "dependencies": []},
            {"name": "vgirpc-test-support", "dependencies": []},
        ]});
        assert_eq!(
            edges(&metadata).unwrap(),
            [
                edge("vgirpc", "vgirpc-wire", false),
                edge("vgirpc", "vgirpc-test-support", true),
            ]
        );
    }
}
