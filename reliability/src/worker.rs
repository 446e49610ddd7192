//! The worker under attack: started on one transport, watched through
//! `/proc`, signalled, and waited for.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rustix::process::{Pid, Signal, kill_process};

/// How a client reaches the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The worker's stdin/stdout: one connection, the worker's whole life.
    Pipe,
    /// A Unix socket the worker listens on.
    Unix,
    /// HTTP on the loopback interface.
    Http,
}

impl Transport {
    pub(crate) const ALL: [Transport; 3] = [Transport::Pipe, Transport::Unix, Transport::Http];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Pipe => "pipe",
            Transport::Unix => "unix",
            Transport::Http => "http",
        }
    }

    pub(crate) fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .with_context(|| format!("unknown transport {name:?} (pipe, unix, http)"))
    }
}

/// Where a started worker listens.
#[derive(Debug)]
pub(crate) enum Address {
    /// Its stdin and stdout, taken by the first [`Worker::pipe`] call.
    Pipe(Option<(ChildStdin, ChildStdout)>),
    Unix(PathBuf),
    Http(SocketAddr),
}

/// How to start a worker.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) transport: Transport,
    /// Extra flags after the transport's own.
    pub(crate) args: Vec<String>,
    /// An address-space limit in bytes (`prlimit --as`), so an allocation
    /// sized by a peer's claim fails in the worker as it would on a
    /// machine with less memory.
    pub(crate) address_space: Option<u64>,
    /// An open-file limit (`prlimit --nofile`), as on a machine where the
    /// default of 1,024 applies.
    pub(crate) nofile: Option<u64>,
}

/// A running worker; killed when dropped.
#[derive(Debug)]
pub(crate) struct Worker {
    child: Child,
    pub(crate) address: Address,
    scratch: PathBuf,
}

impl Worker {
    pub(crate) fn start(launch: &Launch, scratch: &Path) -> Result<Self> {
        fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let mut command = if launch.address_space.is_some() || launch.nofile.is_some() {
            let mut command = Command::new("prlimit");
            if let Some(bytes) = launch.address_space {
                command.arg(format!("--as={bytes}"));
            }
            if let Some(files) = launch.nofile {
                command.arg(format!("--nofile={files}"));
            }
            command.arg("--").arg(&launch.program);
            command
        } else {
            Command::new(&launch.program)
        };
        let socket = scratch.join(format!("worker-{}.sock", std::process::id()));
        match launch.transport {
            Transport::Pipe => {}
            Transport::Unix => {
                command.arg("--unix").arg(&socket).arg("--threaded");
            }
            Transport::Http => {
                command.args(["--http", "--port", "0"]);
            }
        }
        command
            .args(&launch.args)
            .env("VGI_RPC_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.program.display()))?;
        let address = match launch.transport {
            Transport::Pipe => {
                let stdin = child.stdin.take().context("worker stdin")?;
                let stdout = child.stdout.take().context("worker stdout")?;
                Address::Pipe(Some((stdin, stdout)))
            }
            Transport::Unix => {
                let line = ready_line(&mut child, "UNIX:")?;
                Address::Unix(PathBuf::from(line))
            }
            Transport::Http => {
                let line = ready_line(&mut child, "PORT:")?;
                let port: u16 = line.parse().with_context(|| format!("port {line:?}"))?;
                Address::Http(SocketAddr::from(([127, 0, 0, 1], port)))
            }
        };
        Ok(Self {
            child,
            address,
            scratch: scratch.to_path_buf(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The worker's stdin and stdout (pipe workers; once).
    pub(crate) fn pipe(&mut self) -> Result<(ChildStdin, ChildStdout)> {
        match &mut self.address {
            Address::Pipe(pipe) => pipe.take().context("the pipe was taken already"),
            other => bail!("not a pipe worker: {other:?}"),
        }
    }

    pub(crate) fn unix(&self) -> Result<UnixStream> {
        match &self.address {
            Address::Unix(path) => {
                UnixStream::connect(path).with_context(|| format!("connecting {}", path.display()))
            }
            other => bail!("not a unix worker: {other:?}"),
        }
    }

    pub(crate) fn http(&self) -> Result<TcpStream> {
        match &self.address {
            Address::Http(addr) => {
                let stream =
                    TcpStream::connect(addr).with_context(|| format!("connecting {addr}"))?;
                stream.set_nodelay(true)?;
                Ok(stream)
            }
            other => bail!("not an HTTP worker: {other:?}"),
        }
    }

    pub(crate) fn url(&self) -> Result<String> {
        match &self.address {
            Address::Http(addr) => Ok(format!("http://{addr}")),
            other => bail!("not an HTTP worker: {other:?}"),
        }
    }

    /// Resident and peak resident memory now, in bytes.
    pub(crate) fn memory(&self) -> Result<Memory> {
        Memory::of(self.pid())
    }

    /// Starts a new peak: `VmHWM` is set back to the current resident size.
    pub(crate) fn reset_peak(&self) -> Result<()> {
        let path = format!("/proc/{}/clear_refs", self.pid());
        fs::write(&path, "5").with_context(|| format!("writing {path}"))
    }

    /// Whether the worker still runs.
    pub(crate) fn is_running(&mut self) -> Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }

    /// The exit status, once the worker ended within `timeout`.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn terminate(&self) -> Result<()> {
        let pid = Pid::from_raw(i32::try_from(self.pid())?).context("pid 0")?;
        kill_process(pid, Signal::TERM).context("sending SIGTERM")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Address::Unix(path) = &self.address {
            let _ = fs::remove_file(path);
        }
        let _ = fs::remove_dir(&self.scratch);
    }
}

/// Reads the worker's ready line (`UNIX:<path>`, `PORT:<n>`) from stdout.
fn ready_line(child: &mut Child, prefix: &str) -> Result<String> {
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the worker exited before announcing {prefix}");
        }
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return Ok(rest.to_owned());
        }
    }
}

/// A process's memory as `/proc/<pid>/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) resident: u64,
    /// `VmHWM`: the peak since start or the last reset.
    pub(crate) peak: u64,
}

impl Memory {
    pub(crate) fn of(pid: u32) -> Result<Self> {
        let path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .with_context(|| format!("{name} in {path}"))?;
            let kib: u64 = line
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("{name} {line:?}"))?;
            Ok(kib * 1024)
        };
        Ok(Self {
            resident: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }
}

/// Bytes as MiB, for reports.
pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
