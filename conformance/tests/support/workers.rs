//! The conformance worker binary, run as a child process of the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The conformance worker binary, ready to be given arguments.
pub(crate) fn worker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vgi-conformance-worker"))
}

/// A worker serving connections concurrently on a Unix socket until the
/// test drops it.
pub(crate) struct UnixWorker {
    child: Child,
    path: PathBuf,
}

impl UnixWorker {
    pub(crate) fn start(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("vgi-async-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut child = worker()
            .arg("--unix")
            .arg(&path)
            .arg("--threaded")
            // Tests connect and leave at their own pace.
            .args(["--idle-timeout", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim_end(), format!("UNIX:{}", path.display()));
        Self { child, path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
