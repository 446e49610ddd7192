//! A Python interpreter and virtualenv able to run the vgi-rpc conformance suite.
//!
//! vgi-rpc needs Python >= 3.13; Debian 12 (our CI image) ships 3.11 and
//! prebuilt interpreters cannot be downloaded there.  So an existing 3.13+ is
//! preferred wherever one can be found, and as a last resort
//! `xtask/scripts/build-python3.13.sh` compiles Debian trixie's CPython source
//! package into a per-user cache, where later runs find it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::process::{probe, run_ok};

/// Where pins for the conformance virtualenv live, relative to the workspace root.
const REQUIREMENTS: &str = "conformance/requirements.txt";

/// Exits 0 only for a Python >= 3.13 with the modules `venv` needs to bootstrap pip over TLS.
const USABLE_CHECK: &str =
    "import sys, ssl, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 13) else 1)";

/// The interpreter's version, recorded in the venv stamp so switching Pythons rebuilds the venv.
const VERSION_QUERY: &str = "import sys; print(sys.version)";

fn is_usable(python: &Path) -> bool {
    probe(Command::new(python).args(["-c", USABLE_CHECK])).is_some()
}

/// Find a usable Python >= 3.13, building one if there is none.
///
/// Order: `$VGI_PYTHON` (an error if set but unusable: an explicit choice
/// should not be silently replaced), `python3.14` and `python3.13` on `PATH`,
/// the cached build, `uv python find 3.13`, and finally a fresh build.
pub(crate) fn find_or_build() -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os("VGI_PYTHON").filter(|v| !v.is_empty()) {
        let python = PathBuf::from(explicit);
        if !is_usable(&python) {
            bail!(
                "VGI_PYTHON={} is not a Python >= 3.13 with ssl and venv",
                python.display()
            );
        }
        return Ok(python);
    }
    let cached = cached_build_prefix()?.join("bin/python3.13");
    let uv_found = || {
        probe(Command::new("uv").args(["python", "find", "3.13"]))
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    };
    let candidates = [
        PathBuf::from("python3.14"),
        PathBuf::from("python3.13"),
        cached,
    ];
    if let Some(found) = candidates
        .into_iter()
        .find(|python| is_usable(python))
        .or_else(|| uv_found().filter(|python| is_usable(python)))
    {
        return Ok(found);
    }
    build()
}

/// `${VGI_PYTHON_PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}/vgi-python3.13}`.
fn cached_build_prefix() -> Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(prefix) = non_empty("VGI_PYTHON_PREFIX") {
        return Ok(PathBuf::from(prefix));
    }
    let data_home = match (non_empty("XDG_DATA_HOME"), non_empty("HOME")) {
        (Some(data), _) => PathBuf::from(data),
        (None, Some(home)) => Path::new(&home).join(".local/share"),
        (None, None) => bail!("neither XDG_DATA_HOME nor HOME is set; set VGI_PYTHON"),
    };
    Ok(data_home.join("vgi-python3.13"))
}

fn build() -> Result<PathBuf> {
    let prefix = cached_build_prefix()?;
    println!(
        "xtask: no Python >= 3.13 found; building CPython 3.13 into {} (a few minutes, once)",
        prefix.display()
    );
    let output = Command::new("bash")
        .arg("xtask/scripts/build-python3.13.sh")
        .env("VGI_PYTHON_PREFIX", &prefix)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not run xtask/scripts/build-python3.13.sh")?;
    if !output.status.success() {
        bail!(
            "building Python 3.13 failed ({}); set VGI_PYTHON to an existing 3.13+",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let python = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    if !is_usable(&python) {
        bail!(
            "the Python build reported {:?}, which is not usable",
            python.display()
        );
    }
    Ok(python)
}

/// The conformance virtualenv: vgi-rpc and the test tools, pinned.
#[derive(Debug)]
pub(crate) struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// Reuse the venv at `dir` if it was built from the current requirements
    /// with the same interpreter; otherwise recreate it from scratch, so no
    /// stale package can survive a pin change.
    pub(crate) fn ensure(dir: &Path, python: &Path) -> Result<Self> {
        Self::ensure_pinned(dir, python, REQUIREMENTS)
    }

    /// [`Venv::ensure`] for another requirements file (relative to the
    /// workspace root), such as an emulator's.
    pub(crate) fn ensure_pinned(dir: &Path, python: &Path, pins: &str) -> Result<Self> {
        let venv = Self {
            dir: dir.to_path_buf(),
        };
        let requirements = fs::read_to_string(pins).with_context(|| format!("reading {pins}"))?;
        let version = probe(Command::new(python).args(["-c", VERSION_QUERY]))
            .with_context(|| format!("{} did not report its version", python.display()))?;
        // The stamp is the full input rather than a digest of it: std has no
        // stable hash, and the file is small.
        let wanted = format!("python {version}\n{requirements}");
        let stamp = dir.join("requirements.stamp");
        let interpreter_ok = is_usable(&venv.python());
        if interpreter_ok && fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
            println!("xtask: reusing {} (requirements unchanged)", dir.display());
            return Ok(venv);
        }

        run_ok(
            Command::new(python)
                .args(["-m", "venv", "--clear"])
                .arg(dir),
        )?;
        run_ok(Command::new(venv.python()).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
            pins,
        ]))?;
        // Written last: an interrupted install leaves no stamp and is redone.
        fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))?;
        Ok(venv)
    }

    /// The venv's interpreter.
    pub(crate) fn python(&self) -> PathBuf {
        self.bin("python")
    }

    /// A console script installed into the venv, e.g. `vgi-rpc-test`.
    pub(crate) fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }
}
