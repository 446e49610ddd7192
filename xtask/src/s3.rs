//! moto's S3 server, the emulator behind the S3 storage tests and the
//! conformance runs whose storage is S3: installed from PyPI into its own
//! venv (`target/moto-venv`, pinned by `conformance/s3-requirements.txt`),
//! started on a free loopback port, stopped by PID.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use anyhow::{Result, bail};

use crate::emulator::Emulator;
use crate::process::{cargo, run_ok, target_dir};
use crate::python::{self, Venv};

const REQUIREMENTS: &str = "conformance/s3-requirements.txt";

/// The bucket the conformance runs' workers externalize into.
pub(crate) const CONFORMANCE_BUCKET: &str = "vgi-conformance";

/// The emulator's venv, built on first use.
pub(crate) fn venv() -> Result<Venv> {
    let python = python::find_or_build()?;
    Venv::ensure_pinned(&target_dir()?.join("moto-venv"), &python, REQUIREMENTS)
}

/// A running `moto_server`, stopped when dropped.
pub(crate) struct Moto {
    _process: Emulator,
    endpoint: String,
}

impl Moto {
    /// Starts the emulator of `venv` on a free loopback port, waits until
    /// it listens and creates `bucket`. Its log goes to `target/s3/`.
    pub(crate) fn start(venv: &Venv, bucket: &str) -> Result<Self> {
        let process = Emulator::start(
            "moto",
            &venv.bin("moto_server"),
            |port| ["-H", "127.0.0.1", "-p", port].map(str::to_owned).to_vec(),
            "s3",
        )?;
        let port = process.port();
        create_bucket(port, bucket)?;
        Ok(Self {
            _process: process,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The variables the AWS SDKs and `object_store` read, set to reach
    /// `bucket` here; moto checks no credentials, but SigV4 needs some.
    pub(crate) fn client_env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_BUCKET", bucket.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}

/// `PUT /bucket`, unsigned: moto takes it, and xtask needs no S3 client.
fn create_bucket(port: u16, bucket: &str) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply.get(9..12).unwrap_or_default();
    if status != "200" {
        bail!("creating bucket {bucket} answered {status:?}");
    }
    Ok(())
}

/// `cargo xtask s3`: the emulator installed and started, and the storage
/// crate's tests run against it, required to pass rather than skip.
pub(crate) fn run() -> Result<()> {
    let venv = venv()?;
    let moto = Moto::start(&venv, "vgi-test")?;
    run_ok(
        cargo()
            .args(["test", "-p", "vgirpc-storage"])
            .env("VGI_S3_ENDPOINT", moto.endpoint())
            .env("VGI_REQUIRE_S3", "1"),
    )
}
