//! The `oauth-token-proxy` group: the reference's cross-implementation
//! test of the OAuth token proxy, `tests/test_oauth_token_proxy_conformance.py`,
//! with our worker in the Go worker's place (`GO_CONFORMANCE_WORKER`, which
//! it starts with `--http-pkce`).
//!
//! The test ships in vgi-rpc's source distribution, not its wheel, so it is
//! taken from the sdist of the version `conformance/requirements.txt` pins.
//! It imports werkzeug for its in-process Python server, which the venv
//! does not have; werkzeug goes into a directory of the group's own on
//! `PYTHONPATH`, leaving the shared venv as its requirements say.
//! `conformance/oauth/conftest.py` keeps only the Go parameter and writes
//! the outcomes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cli_run::remove_stale;
use crate::expectations::is_glob;
use crate::process::{self, run_ok, shell_words};
use crate::pytest;
use crate::python::Venv;
use crate::report::{Group, Outcome, TestResult};

/// The group's name in the summary.
pub(crate) const GROUP: &str = "oauth-token-proxy";

const TEST_FILE: &str = "test_oauth_token_proxy_conformance.py";
const CONFTEST: &str = "conformance/oauth/conftest.py";
const REQUIREMENTS: &str = "conformance/requirements.txt";

/// What the test imports beyond the venv: the versions the reference's
/// own lock file resolves.
const EXTRA_PACKAGES: &[&str] = &["werkzeug==3.1.6", "markupsafe==3.0.3"];

/// Keeps pytest from taking settings from any directory above the group's.
const PYTEST_INI: &str = "[pytest]\naddopts = -p no:cacheprovider\n";

/// Extracts one member of a source archive to a file.
const EXTRACT: &str = "import sys, tarfile
archive, member, dest = sys.argv[1:]
with tarfile.open(archive) as tar:
    source = tar.extractfile(member)
    if source is None:
        sys.exit(f'{member} is not a file in {archive}')
    with open(dest, 'wb') as out:
        out.write(source.read())
";

/// Runs the test against `worker` in `out_dir/oauth-token-proxy`; runner
/// failures become the group's error.
pub(crate) fn run(venv: &Venv, worker: &str, filter: Option<&str>, out_dir: &Path) -> Group {
    let mut group = Group::new(GROUP);
    match run_test(venv, worker, filter, &out_dir.join(GROUP)) {
        Ok(tests) => group.tests = tests,
        Err(err) => group.error = Some(format!("{err:#}")),
    }
    group
}

fn run_test(
    venv: &Venv,
    worker: &str,
    filter: Option<&str>,
    dir: &Path,
) -> Result<Vec<TestResult>> {
    let binary = match shell_words(worker)?.as_slice() {
        [binary] => PathBuf::from(binary),
        _ => bail!(
            "the test starts the worker itself, so it needs one executable path, not {worker:?}"
        ),
    };
    let binary = fs::canonicalize(&binary)
        .with_context(|| format!("finding the worker {}", binary.display()))?;
    if let Some(filter) = filter
        && is_glob(filter)
    {
        bail!("--filter {filter:?} is a glob, which pytest -k cannot take");
    }
    prepare(venv, dir)?;
    // pytest runs in `dir`, so every path it is given is absolute; the
    // venv's interpreter keeps its link, which is what makes it the venv's.
    let dir = std::path::absolute(dir)?;
    let report = dir.join("report.json");
    remove_stale(&report)?;
    let mut cmd = Command::new(std::path::absolute(venv.python())?);
    cmd.current_dir(&dir)
        .args(["-m", "pytest", TEST_FILE, "-q", "--tb=short"])
        .env("GO_CONFORMANCE_WORKER", &binary)
        .env("VGI_OAUTH_IMPL", "go")
        .env("VGI_CONFORMANCE_REPORT", &report)
        .env("PYTHONPATH", dir.join("site"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(filter) = filter {
        cmd.args(["-k", filter]);
    }
    let status = process::run(&mut cmd)?;
    // 0: passed, 1: some failed, 5: -k selected nothing.
    if !matches!(status.code(), Some(0 | 1 | 5)) {
        bail!("pytest exited with {status} (its output is above)");
    }
    let tests: Vec<TestResult> = pytest::parse_report(&report)?
        .into_iter()
        .map(|(_, test)| test)
        .collect();
    if status.code() == Some(1) && !tests.iter().any(|t| t.outcome == Outcome::Failed) {
        bail!("pytest exited with {status} but reported no failing test");
    }
    Ok(tests)
}

/// Fills `dir` with the test, its conftest and its extra packages; the
/// download and the install are skipped when the stamp says they are done
/// for the same versions.
fn prepare(venv: &Venv, dir: &Path) -> Result<()> {
    let version = pinned_version()?;
    let wanted = format!("vgi-rpc {version}\n{}\n", EXTRA_PACKAGES.join("\n"));
    let stamp = dir.join("prepared.stamp");
    let test = dir.join(TEST_FILE);
    if !(test.is_file() && fs::read_to_string(&stamp).is_ok_and(|have| have == wanted)) {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let sdist = dir.join("sdist");
        fs::create_dir_all(&sdist).with_context(|| format!("creating {}", sdist.display()))?;
        run_ok(
            Command::new(venv.python())
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-input", "--no-deps", "--no-binary", ":all:", "--dest"])
                .arg(&sdist)
                .arg(format!("vgi-rpc=={version}")),
        )?;
        let archive = sdist.join(format!("vgi_rpc-{version}.tar.gz"));
        run_ok(
            Command::new(venv.python())
                .args(["-c", EXTRACT])
                .arg(&archive)
                .arg(format!("vgi_rpc-{version}/tests/{TEST_FILE}"))
                .arg(&test),
        )?;
        run_ok(
            Command::new(venv.python())
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-input", "--no-deps", "--target"])
                .arg(dir.join("site"))
                .args(EXTRA_PACKAGES),
        )?;
        // Written last: an interrupted preparation is redone.
        fs::write(&stamp, &wanted).with_context(|| format!("writing {}", stamp.display()))?;
    }
    // Ours, so refreshed on every run.
    fs::copy(CONFTEST, dir.join("conftest.py")).with_context(|| format!("copying {CONFTEST}"))?;
    fs::write(dir.join("pytest.ini"), PYTEST_INI).context("writing pytest.ini")?;
    Ok(())
}

/// The vgi-rpc version the venv is built from.
fn pinned_version() -> Result<String> {
    let requirements =
        fs::read_to_string(REQUIREMENTS).with_context(|| format!("reading {REQUIREMENTS}"))?;
    pinned_in(&requirements).with_context(|| format!("{REQUIREMENTS} pins no vgi-rpc version"))
}

fn pinned_in(requirements: &str) -> Option<String> {
    requirements.lines().find_map(|line| {
        let line = line.split('#').next()?.trim();
        let (name, version) = line.split_once("==")?;
        let name = name.split('[').next()?.trim();
        (name == "vgi-rpc").then(|| version.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_read_from_the_requirements() {
        let requirements = "# comment\npytest==9.2.0\n\
                            vgi-rpc[http,conformance]==0.17.1  # the reference\n";
        assert_eq!(pinned_in(requirements).as_deref(), Some("0.17.1"));
        assert_eq!(pinned_in("vgi-rpc-extra==1\n"), None);
    }
}
