//! How a client reaches a server: a byte stream in each direction.

use std::io::{BufReader, BufWriter, Read, Write};

use crate::ClientError;

/// A connection to one server: a reader of its responses and a writer of
/// requests, used in lockstep by one client at a time.
///
/// Implementing a new transport (a Unix socket, for example) means handing
/// out the two halves and saying how to end the connection. Readers should
/// buffer, since the IPC framing reads in small pieces; writers are
/// flushed by the client after every message it expects an answer to.
///
/// A transport that knows *why* a connection ended can report it as an
/// [`std::io::Error`] wrapping a [`crate::WorkerExit`], which the client
/// turns into [`ClientError::WorkerExited`]; a plain end of file becomes
/// [`ClientError::ConnectionClosed`].
pub trait Transport {
    /// Reads what the server sends.
    type Reader: Read;
    /// Writes what the server receives.
    type Writer: Write;

    /// Both halves at once, because a stream call holds both while it runs.
    fn io(&mut self) -> (&mut Self::Reader, &mut Self::Writer);

    /// Ends the connection. Must be safe to call more than once.
    fn close(&mut self) -> Result<(), ClientError>;
}

/// A transport over any reader/writer pair: in-process pipes, a socket and
/// its clone, or the standard streams of a process started elsewhere.
#[derive(Debug)]
pub struct PipeTransport<R: Read, W: Write> {
    reader: BufReader<R>,
    writer: BufWriter<W>,
}

impl<R: Read, W: Write> PipeTransport<R, W> {
    /// Wraps `reader` (server to client) and `writer` (client to server).
    pub fn new(reader: R, writer: W) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, reader),
            writer: BufWriter::with_capacity(64 * 1024, writer),
        }
    }

    /// Gives back the reader and writer; buffered input not yet consumed
    /// is lost, pending output is flushed.
    pub fn into_inner(self) -> Result<(R, W), ClientError> {
        let writer = self
            .writer
            .into_inner()
            .map_err(|e| ClientError::from_io(e.into_error()))?;
        Ok((self.reader.into_inner(), writer))
    }
}

impl<R: Read, W: Write> Transport for PipeTransport<R, W> {
    type Reader = BufReader<R>;
    type Writer = BufWriter<W>;

    fn io(&mut self) -> (&mut Self::Reader, &mut Self::Writer) {
        (&mut self.reader, &mut self.writer)
    }

    /// Flushes pending output; the halves close when the transport drops.
    fn close(&mut self) -> Result<(), ClientError> {
        self.writer.flush().map_err(ClientError::from_io)
    }
}
