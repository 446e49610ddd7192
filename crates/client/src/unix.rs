//! The Unix-socket transport: the pipe protocol over a connected
//! `AF_UNIX` stream socket, to a worker listening on a path.

use std::io::{BufReader, BufWriter, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::ClientError;
use crate::transport::Connection;

/// A connection to a worker listening on a Unix socket.
///
/// Closing it (or dropping it) shuts the socket down, which tells the
/// worker this client is done. [`UnixTransport::shutdown_handle`] gives a
/// way to do that from another thread, e.g. to enforce a deadline on a
/// call: the blocked read then ends with
/// [`ClientError::ConnectionClosed`].
#[derive(Debug)]
pub struct UnixTransport {
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
    path: PathBuf,
    closed: bool,
}

impl UnixTransport {
    /// Connects to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref().to_path_buf();
        let stream = UnixStream::connect(&path).map_err(|source| ClientError::Connect {
            target: path.display().to_string(),
            source,
        })?;
        let reader = stream.try_clone().map_err(ClientError::Io)?;
        Ok(Self {
            reader: BufReader::with_capacity(256 * 1024, reader),
            writer: BufWriter::with_capacity(256 * 1024, stream),
            path,
            closed: false,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that shuts the connection down from any thread.
    pub fn shutdown_handle(&self) -> Result<ShutdownHandle, ClientError> {
        Ok(ShutdownHandle {
            stream: self.writer.get_ref().try_clone().map_err(ClientError::Io)?,
        })
    }
}

impl Connection for UnixTransport {
    type Reader = BufReader<UnixStream>;
    type Writer = BufWriter<UnixStream>;

    fn io(&mut self) -> (&mut Self::Reader, &mut Self::Writer) {
        (&mut self.reader, &mut self.writer)
    }

    /// Flushes what is pending and shuts the socket down both ways.
    fn close(&mut self) -> Result<(), ClientError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let flushed = self.writer.flush().map_err(ClientError::from_io);
        // The peer may have gone already; the socket is done either way.
        let _ = self.writer.get_ref().shutdown(Shutdown::Both);
        flushed
    }
}

impl Drop for UnixTransport {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; the socket closes regardless.
        let _ = Connection::close(self);
    }
}

/// Shuts a [`UnixTransport`]'s socket down from another thread.
#[derive(Debug)]
pub struct ShutdownHandle {
    stream: UnixStream,
}

impl ShutdownHandle {
    /// Shuts the socket down both ways; does nothing if it already is.
    pub fn shutdown(&self) {
        // Fails only when the socket is already shut down or gone.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
