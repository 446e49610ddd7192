//! gcp-storage-emulator, the Google Cloud Storage emulator behind the GCS
//! storage tests: installed from PyPI into its own venv
//! (`target/gcs-venv`, pinned by `conformance/gcs-requirements.txt`),
//! started in memory on a free loopback port through
//! `conformance/gcs_emulator.py`, stopped by PID.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use anyhow::{Result, bail};

use crate::emulator::Emulator;
use crate::process::{cargo, run_ok, target_dir};
use crate::python::{self, Venv};

const REQUIREMENTS: &str = "conformance/gcs-requirements.txt";

/// The emulator's command line with the `ETag` fix `object_store` needs
/// (see the file).
const LAUNCHER: &str = "conformance/gcs_emulator.py";

/// The bucket of the storage tests; letters only, since the emulator does
/// not match percent-encoded bucket names, which `object_store` sends.
pub(crate) const BUCKET: &str = "vgitest";

/// The emulator's venv, built on first use.
pub(crate) fn venv() -> Result<Venv> {
    let python = python::find_or_build()?;
    Venv::ensure_pinned(&target_dir()?.join("gcs-venv"), &python, REQUIREMENTS)
}

/// A running `gcp-storage-emulator`, stopped when dropped.
pub(crate) struct Gcs {
    _process: Emulator,
    endpoint: String,
}

impl Gcs {
    /// Starts the emulator of `venv` on a free loopback port, keeping
    /// nothing on disk, waits until it listens and creates `bucket`. Its
    /// log goes to `target/gcs/`.
    pub(crate) fn start(venv: &Venv, bucket: &str) -> Result<Self> {
        let process = Emulator::start(
            "gcp-storage-emulator",
            &venv.python(),
            |port| {
                [
                    LAUNCHER,
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    port,
                    "--no-store-on-disk",
                ]
                .map(str::to_owned)
                .to_vec()
            },
            "gcs",
        )?;
        let port = process.port();
        create_bucket(port, bucket)?;
        Ok(Self {
            _process: process,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// `http://127.0.0.1:PORT`, as `STORAGE_EMULATOR_HOST` takes it.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// `POST /storage/v1/b`, the JSON API's bucket insert; the emulator wants
/// no credentials.
fn create_bucket(port: u16, bucket: &str) -> Result<()> {
    let body = serde_json::json!({ "name": bucket }).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "POST /storage/v1/b HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply.get(9..12).unwrap_or_default();
    if !matches!(status, "200" | "409") {
        bail!("creating bucket {bucket} answered {status:?}");
    }
    Ok(())
}

/// `cargo xtask gcs`: the emulator installed and started, and the storage
/// crate's GCS tests run against it, required to pass rather than skip.
pub(crate) fn run() -> Result<()> {
    let gcs = Gcs::start(&venv()?, BUCKET)?;
    run_ok(
        cargo()
            .args(["test", "-p", "vgirpc-storage", "--test", "gcs_emulator"])
            .env("VGI_GCS_ENDPOINT", gcs.endpoint())
            .env("VGI_REQUIRE_GCS", "1"),
    )
}
