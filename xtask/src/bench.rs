//! `cargo xtask bench`: our worker and the reference Python worker, side by side.
//!
//! Builds the conformance worker and the bench driver (`bench/`) in release
//! mode, finds the reference worker in the conformance virtualenv, starts
//! moto's S3 emulator for the externalized workload, and runs the driver,
//! which prints the tables and writes JSON and Markdown under
//! `target/bench/`. Every option but `--skip-build` goes to the driver.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::process::{cargo, ensure_debian_package, run_ok, target_dir};
use crate::python::{self, Venv};
use crate::s3;

/// The reference's HTTP server on S3 storage, which the driver compares
/// our worker's `--s3-storage` with.
const REFERENCE_S3_SERVER: &str = "conformance/reference_s3_server.py";

/// The bucket both servers externalize into.
const BUCKET: &str = "vgi-bench";

/// Debian's nghttp2 load generator, which the driver uses when present.
const H2LOAD: &str = "/usr/bin/h2load";

/// `cargo xtask bench` options: `--skip-build`, and the driver's own.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// `--skip-build`: use the binaries already in the target directory.
    skip_build: bool,
    /// Passed to `vgirpc-bench` as they are (`--quick`, `--runs N`, ...).
    driver_args: Vec<String>,
}

impl Options {
    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Self {
        let mut options = Self::default();
        for arg in args {
            if arg == "--skip-build" {
                options.skip_build = true;
            } else {
                options.driver_args.push(arg);
            }
        }
        options
    }

    /// The soak measures our worker alone, so it needs no Python.
    fn needs_reference(&self) -> bool {
        !self
            .driver_args
            .iter()
            .any(|a| a == "--soak" || a == "-h" || a == "--help")
    }
}

pub(crate) fn run(options: &Options) -> Result<()> {
    let target = target_dir()?;
    if !options.skip_build {
        run_ok(cargo().args([
            "build",
            "--release",
            "-p",
            "vgirpc-conformance",
            "-p",
            "vgirpc-bench",
        ]))?;
    }
    // An external HTTP/2 load generator, so HTTP/1.1 and HTTP/2 are driven
    // by the same client; without it the driver's own client stands in.
    if let Err(err) = ensure_debian_package(Path::new(H2LOAD), "nghttp2-client") {
        println!("xtask: no {H2LOAD} ({err:#}); the HTTP/2 comparison uses the driver's client");
    }
    let release = target.join("release");
    let driver = existing(release.join("vgirpc-bench"))?;
    let ours = existing(release.join("vgi-conformance-worker"))?;

    let mut cmd = Command::new(driver);
    cmd.arg("--ours").arg(ours);
    // Held until the driver ends; dropping it stops the emulator.
    let _moto = if options.needs_reference() {
        let python = python::find_or_build()?;
        let venv = Venv::ensure(&target.join("conformance-venv"), &python)?;
        cmd.arg("--reference")
            .arg(existing(venv.bin("vgi-rpc-conformance"))?);
        emulator(&mut cmd)
    } else {
        None
    };
    cmd.arg("--out")
        .arg(target.join("bench"))
        .args(&options.driver_args);
    run_ok(&mut cmd)
}

/// moto's S3 emulator for the externalized workload, named to the driver
/// by the `AWS_*` variables; without it the workload is left out.
fn emulator(cmd: &mut Command) -> Option<s3::Moto> {
    match s3::venv().and_then(|v| s3::Moto::start(&v, BUCKET)) {
        Ok(moto) => {
            cmd.envs(moto.client_env(BUCKET))
                .args(["--reference-s3-server", REFERENCE_S3_SERVER]);
            Some(moto)
        }
        Err(err) => {
            println!("xtask: no S3 emulator ({err:#}); the externalized workload is left out");
            None
        }
    }
}

fn existing(path: PathBuf) -> Result<PathBuf> {
    if !path.is_file() {
        bail!(
            "{} does not exist; run without --skip-build",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_build_is_ours_and_the_rest_goes_to_the_driver() {
        let args = ["--quick", "--skip-build", "--runs", "3"].map(String::from);
        let options = Options::parse(args.into_iter());
        assert!(options.skip_build);
        assert_eq!(options.driver_args, ["--quick", "--runs", "3"]);
        assert!(options.needs_reference());
        let soak = Options::parse(["--soak".to_owned()].into_iter());
        assert!(!soak.needs_reference());
    }
}
