//! The pipe transport of vgi-rpc: serve a service over standard input and
//! standard output, as a worker process launched by a client.
//!
//! Standard output carries nothing but Arrow IPC; diagnostics belong on
//! standard error. [`serve_stdio`] returns when its input reaches end of
//! file or when SIGTERM or SIGINT arrives (after answering the request in
//! flight), so the worker's own cleanup runs before it exits.
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
//! let stopped = vgirpc_pipe::serve_stdio(&server).unwrap();
//! eprintln!("worker stopped: {stopped:?}");
//! ```

#![warn(missing_docs)]

use std::io::{BufReader, BufWriter};
use std::os::fd::AsFd;

mod shm;
mod stdio;
mod unix;

pub use shm::ShmSideChannels;
pub use stdio::{StdioShutdown, serve_stdio};
pub use unix::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_DRAIN_GRACE, DEFAULT_MAX_ACTIVE_REQUESTS,
    DEFAULT_MAX_CONNECTIONS, UnixConfig, UnixShutdown, serve_unix, serve_unix_until,
};

use vgirpc::{Peer, ServeError, Server, TransportKind};

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
        &Peer::anonymous(TransportKind::Pipe),
        &ShmSideChannels,
    )?;
    Ok(())
}

/// Capacity of the buffered reader and writer over stdin and stdout.
const BUFFER_BYTES: usize = 256 * 1024;

/// Bytes a pipe holds with [`enlarge_pipe`]: Linux's limit for
/// unprivileged processes (`/proc/sys/fs/pipe-max-size`).
const PIPE_BUFFER_BYTES: usize = 1 << 20;

/// Grows a pipe's kernel buffer from the default 64 KiB, so a large batch
/// crosses in 16 times fewer wake-ups of each side. Descriptors that are
/// not pipes (a file, a terminal) are left alone.
pub(crate) fn enlarge_pipe(fd: &impl AsFd) {
    if let Err(err) = rustix::pipe::fcntl_setpipe_size(fd, PIPE_BUFFER_BYTES) {
        tracing::debug!(%err, "pipe buffer left at its default size");
    }
}
