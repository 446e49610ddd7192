//! `s3-interop`: each implementation's client resolving and uploading
//! through the other's S3 storage, in one moto emulator.
//!
//! * Our client against the reference's HTTP server with the reference's
//!   own `S3Storage` (`conformance/reference_s3_server.py`) and against our
//!   worker with `--s3-storage`, both externalizing every non-empty batch:
//!   the client suite over HTTP, groups `client-python-reference-s3-http`
//!   and `client-rust-s3-http`, whose observations must agree, so every
//!   answer our client read back from S3 is the one it reads inline. The
//!   reference server runs a second time with a 4 KiB inline request cap
//!   (`client-python-reference-s3-capped-http`), so our client's larger
//!   requests go to moto through the reference's pre-signed upload URLs.
//! * The reference Python client sending requests over our worker's inline
//!   cap through the upload URLs our `S3Storage` vends
//!   (`conformance/tests/s3_uploads.py`): group `s3-uploads`.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::cli_run::remove_stale;
use crate::process::{self, shell_words};
use crate::pytest;
use crate::python::Venv;
use crate::report::{Group, Outcome};
use crate::{client, s3};

/// The transport name `cargo xtask conformance` knows this run by.
pub(crate) const TRANSPORT: &str = "s3-interop";

/// The reference server with S3 storage, relative to the workspace root.
const REFERENCE_SERVER: &str = "conformance/reference_s3_server.py";

/// The upload tests, run by name (the main pytest session skips them).
const UPLOAD_TESTS: &str = "conformance/tests/s3_uploads.py";

/// The reference server's inline request cap in the capped run.
const REFERENCE_CAP: &str = "--max-request-bytes 4096";

/// Group of the upload tests.
const UPLOADS_GROUP: &str = "s3-uploads";

/// Our worker as the S3 pytest transport runs it: every non-empty batch
/// externalized, requests inline up to 1 MiB (our client has no uploads).
const OUR_FLAGS: &[&str] = &[
    "--s3-storage",
    "--externalize-threshold",
    "1",
    "--max-request-bytes",
    "1048576",
];

/// Both parts against one emulator; a part that cannot run becomes a group
/// carrying the error.
pub(crate) fn run(
    venv: &Venv,
    worker: &str,
    client_dir: &Path,
    filter: Option<&str>,
    out_dir: &Path,
) -> Vec<Group> {
    let moto = match s3::venv().and_then(|v| s3::Moto::start(&v, s3::CONFORMANCE_BUCKET)) {
        Ok(moto) => moto,
        Err(err) => {
            let mut group = Group::new(TRANSPORT);
            group.error = Some(format!("starting the S3 emulator: {err:#}"));
            return vec![group];
        }
    };
    let env = moto.client_env(s3::CONFORMANCE_BUCKET);
    let mut groups = match client_suite(venv, worker, client_dir, filter, out_dir, &env) {
        Ok(groups) => groups,
        Err(err) => {
            let mut group = Group::new("client-s3");
            group.error = Some(format!("{err:#}"));
            vec![group]
        }
    };
    let mut uploads = Group::new(UPLOADS_GROUP);
    match upload_tests(venv, worker, filter, out_dir, &env) {
        Ok(tests) => uploads.tests = tests,
        Err(err) => uploads.error = Some(format!("{err:#}")),
    }
    groups.push(uploads);
    groups
}

fn client_suite(
    venv: &Venv,
    worker: &str,
    client_dir: &Path,
    filter: Option<&str>,
    out_dir: &Path,
    env: &[(&str, String)],
) -> Result<Vec<Group>> {
    let binary = client::binary(client_dir)?;
    // client_conformance splits a server's command on spaces.
    let ours = shell_words(worker)?
        .into_iter()
        .chain(OUR_FLAGS.iter().map(|f| (*f).to_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let reference = format!("{} {REFERENCE_SERVER}", venv.python().display());
    let mut cmd = Command::new(binary);
    cmd.args(["--json", "--transport", "http"])
        .arg("--server")
        .arg(format!("python-reference-s3={reference}"))
        .arg("--server")
        .arg(format!(
            "python-reference-s3-capped={reference} {REFERENCE_CAP}"
        ))
        .arg("--server")
        .arg(format!("rust-s3={ours}"))
        .envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(filter) = filter {
        cmd.args(["--filter", filter]);
    }
    client::run_report(&mut cmd, &out_dir.join("client-conformance-s3.json"))
}

fn upload_tests(
    venv: &Venv,
    worker: &str,
    filter: Option<&str>,
    out_dir: &Path,
    env: &[(&str, String)],
) -> Result<Vec<crate::report::TestResult>> {
    let report = out_dir.join("s3-uploads-report.json");
    remove_stale(&report)?;
    let mut cmd = Command::new(venv.python());
    cmd.args(["-m", "pytest", UPLOAD_TESTS, "-q", "--tb=short"])
        .env("VGI_CONFORMANCE_WORKER", worker)
        .env("VGI_CONFORMANCE_REPORT", &report)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(filter) = filter {
        cmd.args(["-k", filter]);
    }
    let status = process::run(&mut cmd)?;
    // As in the main session: 0 passed, 1 some failed, 5 -k selected nothing.
    if !matches!(status.code(), Some(0 | 1 | 5)) {
        bail!("pytest exited with {status} (its output is above)");
    }
    let tests: Vec<_> = pytest::parse_report(&report)?
        .into_iter()
        .map(|(_, test)| test)
        .collect();
    if status.code() == Some(1) && !tests.iter().any(|t| t.outcome == Outcome::Failed) {
        bail!("pytest exited with {status} but reported no failing test");
    }
    Ok(tests)
}
