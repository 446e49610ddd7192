//! Running child processes so that the log shows exactly what ran.
//!
//! Every command that matters is echoed as a copy-pasteable shell line before
//! it starts: when CI fails, the first thing anyone wants is to re-run the
//! failing step by hand.

use std::borrow::Cow;
use std::io::BufRead as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{Context as _, Result, bail};
use rustix::process::{Pid, Signal, kill_process};

/// A command running the cargo that started us, so a pinned toolchain is
/// used throughout.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The cargo target directory, relative to the workspace root when inside
/// it so echoed commands stay short.
pub(crate) fn target_dir() -> Result<PathBuf> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let Some(dir) = metadata["target_directory"].as_str() else {
        bail!("cargo metadata has no target_directory");
    };
    let dir = PathBuf::from(dir);
    let root = std::env::current_dir()?;
    Ok(dir
        .strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or(dir))
}

/// Echo `cmd`, then run it with inherited stdio and return how it exited.
pub(crate) fn run(cmd: &mut Command) -> Result<ExitStatus> {
    let line = display(cmd);
    println!("+ {line}");
    // Keep our echo ahead of the child's output when stdout is a pipe (CI).
    std::io::stdout().flush().ok();
    cmd.status()
        .with_context(|| format!("could not start `{line}`"))
}

/// [`run`], treating a non-zero exit as an error.
/// Installs the Debian package `package` with apt-get unless `binary`,
/// which it provides, is already there.
pub(crate) fn ensure_debian_package(binary: &Path, package: &str) -> Result<()> {
    if binary.is_file() {
        println!("xtask: using {}", binary.display());
        return Ok(());
    }
    println!(
        "xtask: {} is missing; installing Debian's {package} package with apt-get",
        binary.display()
    );
    run_ok(Command::new("apt-get").arg("update"))?;
    run_ok(
        Command::new("apt-get")
            .args(["install", "-y", package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if !binary.is_file() {
        bail!(
            "apt-get installed {package}, but {} is still missing",
            binary.display()
        );
    }
    Ok(())
}

pub(crate) fn run_ok(cmd: &mut Command) -> Result<()> {
    let status = run(cmd)?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Run a quiet probe (no echo) and return its trimmed stdout if it succeeded.
///
/// Used for questions like "is this a usable Python?", where failure is an
/// answer rather than an error.
pub(crate) fn probe(cmd: &mut Command) -> Option<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A server process started for one runner, stopped when dropped: SIGTERM
/// first, so it can clean up (a worker removes its socket file), then kill.
pub(crate) struct Background {
    child: Child,
}

impl Background {
    /// Echoes and starts `words` (a program and its arguments), and returns
    /// the process with the first line it prints on stdout, which announces
    /// it is ready.
    pub(crate) fn start(words: &[String]) -> Result<(Self, String)> {
        let line = shell_line(words);
        println!("+ {line} &");
        let (program, args) = words.split_first().context("an empty command line")?;
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        let stdout = child.stdout.take().context("capturing stdout")?;
        // From here on, dropping the process stops it, even on errors.
        let process = Self { child };
        let mut ready = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut ready)
            .with_context(|| format!("reading the ready line of `{line}`"))?;
        Ok((process, ready.trim_end().to_owned()))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let terminated = kill_process(Pid::from_child(&self.child), Signal::TERM).is_ok();
        if !terminated {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A command line split into words by shell rules (quotes, escapes), as
/// the reference's runners split a worker command.
pub(crate) fn shell_words(line: &str) -> Result<Vec<String>> {
    match shlex::split(line) {
        Some(words) if !words.is_empty() => Ok(words),
        _ => bail!("cannot split `{line}` into words: empty, or an unclosed quote"),
    }
}

/// `words` joined back into one shell line, each quoted where needed.
pub(crate) fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `cmd` as a shell line: explicitly set environment variables, program, arguments.
fn display(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                shell_quote(&value.to_string_lossy())
            ));
        }
    }
    words.push(shell_quote(&cmd.get_program().to_string_lossy()).into_owned());
    words.extend(
        cmd.get_args()
            .map(|arg| shell_quote(&arg.to_string_lossy()).into_owned()),
    );
    words.join(" ")
}

/// Quote `word` for a POSIX shell, leaving common safe words untouched.
pub(crate) fn shell_quote(word: &str) -> Cow<'_, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(
            shell_quote("target/release/worker"),
            "target/release/worker"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("scalar*"), "'scalar*'");
    }

    #[test]
    fn display_shows_env_program_and_args() {
        let mut cmd = Command::new("pytest");
        cmd.env("VGI_X", "a b").arg("-k").arg("echo and not bytes");
        assert_eq!(display(&cmd), "VGI_X='a b' pytest -k 'echo and not bytes'");
    }
}
