//! The subprocess transport: spawn a worker and talk to it over its
//! standard input and output (the vgi-rpc pipe transport, client side).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::transport::Connection;
use crate::{ClientError, WorkerExit};

/// Lines of worker stderr kept for error reports.
const STDERR_TAIL_LINES: usize = 20;
/// Longest stderr line kept; longer ones are cut.
const STDERR_LINE_CHARS: usize = 500;

/// What happens to the worker's standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StderrMode {
    /// Copied to this process's stderr, and the last lines kept for
    /// error reports.
    #[default]
    Forward,
    /// Kept for error reports only.
    Capture,
    /// Sent to the null device.
    Discard,
}

/// How a worker is started and stopped.
#[derive(Debug, Clone)]
pub struct SubprocessOptions {
    stderr: StderrMode,
    close_timeout: Duration,
    exit_grace: Duration,
}

impl Default for SubprocessOptions {
    fn default() -> Self {
        Self {
            stderr: StderrMode::Forward,
            close_timeout: Duration::from_secs(10),
            exit_grace: Duration::from_secs(2),
        }
    }
}

impl SubprocessOptions {
    /// What to do with the worker's standard error (default: forward).
    pub fn stderr(mut self, mode: StderrMode) -> Self {
        self.stderr = mode;
        self
    }

    /// How long [`Connection::close`] waits for the worker to exit after its
    /// stdin closes before killing it (default: 10 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How long a failed read or write waits for the worker's exit status
    /// to report it (default: 2 s).
    pub fn exit_grace(mut self, grace: Duration) -> Self {
        self.exit_grace = grace;
        self
    }
}

/// A worker process whose stdin/stdout carry vgi-rpc.
///
/// Reads and writes that fail because the worker died report
/// [`ClientError::WorkerExited`] with its exit status and last stderr
/// lines instead of hanging or failing obscurely. Dropping the transport
/// closes it: stdin is closed, the worker gets `close_timeout` to exit and
/// is killed otherwise.
#[derive(Debug)]
pub struct SubprocessTransport {
    reader: WorkerStdout,
    writer: WorkerStdin,
    worker: Arc<Worker>,
    close_timeout: Duration,
    closed: bool,
}

impl SubprocessTransport {
    /// Spawns `command` with default options.
    pub fn spawn(command: Command) -> Result<Self, ClientError> {
        Self::spawn_with(command, SubprocessOptions::default())
    }

    /// Spawns `command`; its stdin, stdout and stderr are replaced.
    pub fn spawn_with(
        mut command: Command,
        options: SubprocessOptions,
    ) -> Result<Self, ClientError> {
        let description = describe_command(&command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(match options.stderr {
                StderrMode::Discard => Stdio::null(),
                StderrMode::Forward | StderrMode::Capture => Stdio::piped(),
            });
        let mut child = command.spawn().map_err(|source| ClientError::Spawn {
            command: description.clone(),
            source,
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            // Both were requested as pipes just above, so spawn hands them out.
            let _ = child.kill();
            let _ = child.wait();
            return Err(ClientError::Spawn {
                command: description,
                source: io::Error::other("worker pipes were not created"),
            });
        };
        let tail = Arc::new(StderrTail::default());
        match child.stderr.take() {
            Some(stderr) => {
                let tail = tail.clone();
                let forward = options.stderr == StderrMode::Forward;
                let spawned = std::thread::Builder::new()
                    .name("vgirpc-worker-stderr".into())
                    .spawn(move || tail.collect(stderr, forward));
                if let Err(source) = spawned {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ClientError::Spawn {
                        command: description,
                        source,
                    });
                }
            }
            None => tail.finish(),
        }
        let worker = Arc::new(Worker {
            command: description,
            child: Mutex::new(child),
            tail,
            exit_grace: options.exit_grace,
        });
        Ok(Self {
            reader: WorkerStdout {
                inner: BufReader::with_capacity(256 * 1024, stdout),
                worker: worker.clone(),
            },
            writer: WorkerStdin {
                inner: Some(BufWriter::with_capacity(256 * 1024, stdin)),
                worker: worker.clone(),
            },
            worker,
            close_timeout: options.close_timeout,
            closed: false,
        })
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.worker.lock_child().id()
    }

    /// The worker's exit status, if it has exited.
    pub fn try_exit_status(&self) -> Option<ExitStatus> {
        self.worker.lock_child().try_wait().ok().flatten()
    }

    /// The last lines the worker wrote to stderr (empty when discarded).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.worker.tail.lines()
    }

    /// A handle that kills the worker from another thread, e.g. to enforce
    /// a deadline on a call: the blocked read then reports
    /// [`ClientError::WorkerExited`].
    pub fn kill_handle(&self) -> KillHandle {
        KillHandle {
            worker: self.worker.clone(),
        }
    }
}

/// Kills a worker from any thread (see [`SubprocessTransport::kill_handle`]).
#[derive(Debug, Clone)]
pub struct KillHandle {
    worker: Arc<Worker>,
}

impl KillHandle {
    /// Kills the worker; does nothing if it has already exited.
    pub fn kill(&self) {
        let mut child = self.worker.lock_child();
        if child.try_wait().ok().flatten().is_none() {
            // Failure means it exited between the check and the kill.
            let _ = child.kill();
        }
    }
}

impl Connection for SubprocessTransport {
    type Reader = WorkerStdout;
    type Writer = WorkerStdin;

    fn io(&mut self) -> (&mut Self::Reader, &mut Self::Writer) {
        (&mut self.reader, &mut self.writer)
    }

    /// Closes the worker's stdin (its signal to exit), waits up to the
    /// close timeout, then kills it.
    fn close(&mut self) -> Result<(), ClientError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        // A worker that already died cannot take the last bytes; its exit
        // is reported below, not this flush.
        let _ = self.writer.shut();
        let mut child = self.worker.lock_child();
        if wait_timeout(&mut child, self.close_timeout)
            .map_err(ClientError::Io)?
            .is_none()
        {
            // kill() fails only if the worker exited in the meantime.
            let _ = child.kill();
            child.wait().map_err(ClientError::Io)?;
        }
        Ok(())
    }
}

impl Drop for SubprocessTransport {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; close() already did its best
        // to reap the worker.
        let _ = self.close();
    }
}

/// The worker's stdout as the client reads it.
///
/// End of file is never expected by a client (the server never speaks
/// first), so it becomes an error carrying the worker's exit report.
#[derive(Debug)]
pub struct WorkerStdout {
    inner: BufReader<ChildStdout>,
    worker: Arc<Worker>,
}

impl Read for WorkerStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                self.worker.exit_report(),
            ));
        }
        Ok(n)
    }
}

/// The worker's stdin as the client writes it.
#[derive(Debug)]
pub struct WorkerStdin {
    inner: Option<BufWriter<ChildStdin>>,
    worker: Arc<Worker>,
}

impl WorkerStdin {
    /// Flushes and closes the pipe, which tells the worker to exit.
    fn shut(&mut self) -> io::Result<()> {
        match self.inner.take() {
            Some(mut writer) => writer.flush(),
            None => Ok(()),
        }
    }

    fn diagnose(&self, err: io::Error) -> io::Error {
        if err.kind() == io::ErrorKind::BrokenPipe {
            io::Error::new(io::ErrorKind::BrokenPipe, self.worker.exit_report())
        } else {
            err
        }
    }
}

impl Write for WorkerStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let writer = self.inner.as_mut().ok_or_else(closed_stdin)?;
        writer.write(buf).map_err(|e| self.diagnose(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        let writer = self.inner.as_mut().ok_or_else(closed_stdin)?;
        writer.flush().map_err(|e| self.diagnose(e))
    }
}

fn closed_stdin() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the worker's stdin is closed")
}

#[derive(Debug)]
struct Worker {
    command: String,
    child: Mutex<Child>,
    tail: Arc<StderrTail>,
    exit_grace: Duration,
}

impl Worker {
    fn lock_child(&self) -> MutexGuard<'_, Child> {
        // A panic while holding the lock leaves the Child itself intact.
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (briefly) for the worker to exit and for its stderr to drain,
    /// then describes what happened.
    fn exit_report(&self) -> WorkerExit {
        let status = wait_timeout(&mut self.lock_child(), self.exit_grace)
            .ok()
            .flatten();
        // The last stderr lines are usually the explanation; give the
        // reader thread a moment to catch up with a process that just died.
        self.tail.wait_finished(Duration::from_millis(500));
        WorkerExit {
            command: self.command.clone(),
            status,
            stderr_tail: self.tail.lines(),
        }
    }
}

/// Polls for the child's exit; `Ok(None)` when it is still running after
/// `timeout`. Polling keeps this free of platform-specific wait APIs.
fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[derive(Debug, Default)]
struct StderrTail {
    state: Mutex<TailState>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct TailState {
    lines: VecDeque<String>,
    done: bool,
}

impl StderrTail {
    fn lock(&self) -> MutexGuard<'_, TailState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the worker's stderr to its end (runs on its own thread).
    fn collect(&self, stderr: impl Read, forward: bool) {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if forward {
                // Our own stderr being gone must not stop the collection.
                let _ = io::stderr().write_all(&line);
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let mut state = self.lock();
            if state.lines.len() == STDERR_TAIL_LINES {
                state.lines.pop_front();
            }
            state
                .lines
                .push_back(text.chars().take(STDERR_LINE_CHARS).collect());
        }
        self.finish();
    }

    fn finish(&self) {
        self.lock().done = true;
        self.finished.notify_all();
    }

    fn wait_finished(&self, timeout: Duration) {
        let state = self.lock();
        // A timeout is fine: the report then carries the lines seen so far.
        let _ = self
            .finished
            .wait_timeout_while(state, timeout, |s| !s.done);
    }

    fn lines(&self) -> Vec<String> {
        self.lock().lines.iter().cloned().collect()
    }
}

/// The command line for messages: program and arguments, space separated.
fn describe_command(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
