//! The attack matrix and the soak: `vgirpc-reliability` against a release
//! build of the conformance worker, over pipe, Unix and HTTP.

use anyhow::{Context as _, Result};

use crate::process::{cargo, run_ok, target_dir};

/// Builds the worker and the driver, then runs every attack and the soak;
/// `quick` runs smaller attacks and a short soak.
pub(super) fn run(quick: bool) -> Result<()> {
    run_ok(cargo().args([
        "build",
        "--release",
        "-p",
        "vgirpc-conformance",
        "-p",
        "vgirpc-reliability",
        "--bin",
        "vgi-conformance-worker",
        "--bin",
        "vgirpc-reliability",
    ]))
    .context("building the worker and the attack driver")?;
    let release = target_dir()?.join("release");
    let results = target_dir()?.join("reliability");
    std::fs::create_dir_all(&results).with_context(|| format!("creating {}", results.display()))?;
    let mut driver = std::process::Command::new(release.join("vgirpc-reliability"));
    driver
        .arg("--worker")
        .arg(release.join("vgi-conformance-worker"))
        .arg("--output")
        .arg(results.join("attacks.json"));
    if quick {
        driver.arg("--quick");
    }
    run_ok(&mut driver).context("the attack matrix or the soak failed")
}
