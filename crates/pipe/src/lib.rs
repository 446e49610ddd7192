//! The pipe transport of vgi-rpc: serve a service over standard input and
//! standard output, as a worker process launched by a client.
//!
//! Standard output carries nothing but Arrow IPC; diagnostics belong on
//! standard error. The worker exits cleanly when its input reaches end of
//! file or when it receives SIGTERM or SIGINT.
//!
//! ```no_run
//! use vgirpc::{RpcError, Server};
//!
//! #[vgirpc::service]
//! pub trait Greeter {
//!     /// Say hello.
//!     fn greet(&self, name: String) -> Result<String, RpcError>;
//! }
//!
//! struct Hello;
//! impl Greeter for Hello {
//!     fn greet(&self, name: String) -> Result<String, RpcError> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! let server = Server::new(GreeterServer::new(Hello)).unwrap();
//! vgirpc_pipe::serve_stdio(&server).unwrap();
//! ```

use std::io::{BufReader, BufWriter};
use std::os::fd::AsFd;

mod shm;
mod unix;

pub use shm::ShmSideChannels;
pub use unix::{
    DEFAULT_DRAIN_GRACE, DEFAULT_MAX_ACTIVE_REQUESTS, DEFAULT_MAX_CONNECTIONS, UnixConfig,
    UnixShutdown, serve_unix, serve_unix_until,
};

use signal_hook::consts::{SIGINT, SIGTERM};
use vgirpc::{ServeError, Server, TransportKind};

/// Why the pipe transport stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipeError {
    /// Serving the connection failed.
    #[error("serving over stdio failed")]
    Serve(#[from] ServeError),
    /// The termination signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// The Unix socket could not be bound or listened on.
    #[error("cannot listen on unix socket {path}")]
    Bind {
        /// The socket path.
        path: std::path::PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The accept loop's runtime could not be started.
    #[error("cannot start the accept loop")]
    Runtime(#[source] std::io::Error),
    /// A connection's socket could not be prepared.
    #[error("connection socket error")]
    Io(#[from] std::io::Error),
}

/// Serves `server` on this process's stdin and stdout until stdin closes.
///
/// SIGTERM and SIGINT end the process with status 0: every response is
/// flushed as soon as it is complete, so nothing written is lost. Requests
/// that name a shared-memory segment use it as a side channel
/// ([`ShmSideChannels`]).
pub fn serve_stdio(server: &Server) -> Result<(), PipeError> {
    exit_on_termination_signals()?;
    // Std's handles buffer on their own, and stdout's is line-buffered: a
    // response containing a newline byte would go out in two writes and
    // wake the client twice. Plain files over the same descriptors leave
    // buffering to the writers below, which flush once per response.
    let stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let stdout = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    enlarge_pipe(&stdin);
    enlarge_pipe(&stdout);
    let reader = BufReader::with_capacity(256 * 1024, stdin);
    let writer = BufWriter::with_capacity(256 * 1024, stdout);
    server.serve_with(reader, writer, TransportKind::Pipe, &ShmSideChannels)?;
    tracing::debug!("stdin closed; pipe transport finished");
    Ok(())
}

/// Serves `server` over any reader/writer pair with pipe semantics, e.g.
/// the two ends of an in-process pipe in tests.
pub fn serve_pipe<R: std::io::Read, W: std::io::Write>(
    server: &Server,
    reader: R,
    writer: W,
) -> Result<(), PipeError> {
    server.serve_with(
        BufReader::new(reader),
        BufWriter::new(writer),
        TransportKind::Pipe,
        &ShmSideChannels,
    )?;
    Ok(())
}

/// Bytes a pipe holds with [`enlarge_pipe`]: Linux's limit for
/// unprivileged processes (`/proc/sys/fs/pipe-max-size`).
const PIPE_BUFFER_BYTES: usize = 1 << 20;

/// Grows a pipe's kernel buffer from the default 64 KiB, so a large batch
/// crosses in 16 times fewer wake-ups of each side. Descriptors that are
/// not pipes (a file, a terminal) are left alone.
fn enlarge_pipe(fd: &impl AsFd) {
    if let Err(err) = rustix::pipe::fcntl_setpipe_size(fd, PIPE_BUFFER_BYTES) {
        tracing::debug!(%err, "pipe buffer left at its default size");
    }
}

fn exit_on_termination_signals() -> Result<(), PipeError> {
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(PipeError::Signals)?;
    std::thread::Builder::new()
        .name("vgirpc-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!(signal, "termination signal received; exiting");
                std::process::exit(0);
            }
        })
        .map_err(PipeError::Signals)?;
    Ok(())
}
