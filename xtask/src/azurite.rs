//! Azurite, Azure Storage's emulator, behind the Azure storage tests:
//! installed from npm into `target/azurite` (its version pinned here),
//! its blob service started in memory on a free loopback port, stopped by
//! PID.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, anyhow};
use vgirpc_test_support::azurite;

use crate::emulator::Emulator;
use crate::process::{cargo, run_ok, target_dir};

const PACKAGE: &str = "azurite@3.37.0";

/// The installed package, installed first unless the version is already
/// there (npm's own record of it is the stamp).
pub(crate) fn install() -> Result<PathBuf> {
    let prefix = target_dir()?.join("azurite");
    let bin = prefix.join("node_modules/.bin/azurite-blob");
    let manifest = prefix.join("node_modules/azurite/package.json");
    let wanted = PACKAGE.rsplit('@').next().unwrap_or_default();
    let installed = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|package| package["version"] == wanted);
    if installed && bin.exists() {
        println!("xtask: reusing {} ({PACKAGE})", prefix.display());
        return Ok(bin);
    }
    std::fs::create_dir_all(&prefix)?;
    run_ok(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(PACKAGE),
    )
    .context("installing Azurite with npm (is Node.js installed?)")?;
    Ok(bin)
}

/// A running `azurite-blob`, stopped when dropped.
pub(crate) struct Azurite {
    _process: Emulator,
    endpoint: String,
}

impl Azurite {
    /// Starts the blob service of `bin` on a free loopback port, keeping
    /// nothing on disk, waits until it listens and creates `container` in
    /// the emulator's well-known account. Its log goes to `target/azurite/`.
    pub(crate) fn start(bin: &std::path::Path, container: &str) -> Result<Self> {
        let process = Emulator::start(
            "azurite-blob",
            bin,
            |port| {
                [
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    port,
                    "--inMemoryPersistence",
                ]
                .map(str::to_owned)
                .to_vec()
            },
            "azurite",
        )?;
        let endpoint = format!("http://127.0.0.1:{}/{}", process.port(), azurite::ACCOUNT);
        azurite::create_container(&endpoint, container).map_err(|e| anyhow!(e))?;
        Ok(Self {
            _process: process,
            endpoint,
        })
    }

    /// The blob service URL with the account,
    /// `http://127.0.0.1:PORT/devstoreaccount1`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// `cargo xtask azurite`: the emulator installed and started, and the
/// storage crate's Azure tests run against it, required to pass rather
/// than skip.
pub(crate) fn run() -> Result<()> {
    let azurite = Azurite::start(&install()?, "vgi-test")?;
    run_ok(
        cargo()
            .args(["test", "-p", "vgirpc-storage", "--test", "azure_emulator"])
            .env("VGI_AZURE_ENDPOINT", azurite.endpoint())
            .env("VGI_REQUIRE_AZURE", "1"),
    )
}
