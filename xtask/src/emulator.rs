//! A storage emulator as a child process: started on a free loopback port
//! with its log under `target/`, waited for until it listens, stopped by
//! PID when dropped (even when a later step fails).

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rustix::process::{Pid, Signal, kill_process};

use crate::process::target_dir;

/// A running emulator.
pub(crate) struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Runs `program` with the arguments `args` gives for a free port, its
    /// output in `target/{logs}/{name}-{port}.log`, and waits up to 60 s
    /// for the port to take connections.
    pub(crate) fn start(
        name: &str,
        program: &Path,
        args: impl FnOnce(&str) -> Vec<String>,
        logs: &str,
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let args = args(&port.to_string());
        let dir = target_dir()?.join(logs);
        std::fs::create_dir_all(&dir)?;
        let log_path = dir.join(format!("{name}-{port}.log"));
        let log = File::create(&log_path)?;
        println!(
            "+ {} {} &  (log: {})",
            program.display(),
            args.join(" "),
            log_path.display()
        );
        let child = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        // From here on, dropping stops the process, even on errors.
        let emulator = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "{name} did not listen on port {port} within 60 s (see {})",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("xtask: {name} listening on 127.0.0.1:{port}");
        Ok(emulator)
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if kill_process(Pid::from_child(&self.child), Signal::TERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
