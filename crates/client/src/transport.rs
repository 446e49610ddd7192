//! How a client reaches a server.
//!
//! Two layers: a [`Connection`] is a byte stream in each direction, which
//! is all the pipe protocol needs (subprocess, Unix socket, in-process
//! pipes); a [`Transport`] is what [`Client`](crate::Client) runs over: a
//! way to make unary calls and to drive streams. Every connection is a
//! transport, speaking the pipe protocol over its bytes; so are
//! [`ShmTransport`](crate::ShmTransport), a connection with a shared-memory
//! side channel, and the HTTP transport, where each call and stream turn
//! is a request of its own.

use std::io::{BufReader, BufWriter, Read, Write};

use arrow_array::RecordBatch;
use vgirpc_wire::ipc::{IpcBatch, ReadLimits};

use crate::ClientError;
use crate::log::{LogCallback, ServerLog};

/// A byte-stream connection to one server: a reader of its responses and a
/// writer of requests, used in lockstep by one client at a time.
///
/// Implementing a new byte-stream transport means handing out the two
/// halves and saying how to end the connection; the client speaks the pipe
/// protocol over them. Readers should buffer, since the IPC framing reads
/// in small pieces; writers are flushed by the client after every message
/// it expects an answer to.
///
/// A connection that knows *why* it ended can report it as an
/// [`std::io::Error`] wrapping a [`crate::WorkerExit`], which the client
/// turns into [`ClientError::WorkerExited`]; a plain end of file becomes
/// [`ClientError::ConnectionClosed`].
pub trait Connection {
    /// Reads what the server sends.
    type Reader: Read;
    /// Writes what the server receives.
    type Writer: Write;

    /// Both halves at once, because a stream call holds both while it runs.
    fn io(&mut self) -> (&mut Self::Reader, &mut Self::Writer);

    /// Ends the connection. Must be safe to call more than once.
    fn close(&mut self) -> Result<(), ClientError>;
}

/// What a [`Client`](crate::Client) runs over.
///
/// Implemented by every [`Connection`] (the pipe protocol over its bytes),
/// by [`ShmTransport`](crate::ShmTransport) and, with the `http` feature, by
/// `HttpTransport`. The trait is sealed: new byte-stream transports
/// implement [`Connection`] instead.
pub trait Transport: sealed::Engine {}

impl<T: sealed::Engine> Transport for T {}

/// Where a transport delivers what the server says besides data, and how
/// large a message it may accept.
pub struct CallIo<'a> {
    pub(crate) callback: Option<&'a mut LogCallback>,
    pub(crate) collected: Option<&'a mut Vec<ServerLog>>,
    pub(crate) limits: ReadLimits,
}

impl std::fmt::Debug for CallIo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallIo")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<'a> CallIo<'a> {
    /// I/O that only collects logs, into `logs`.
    pub(crate) fn collecting(logs: &'a mut Vec<ServerLog>, limits: ReadLimits) -> Self {
        Self {
            callback: None,
            collected: Some(logs),
            limits,
        }
    }

    /// Hands a server log message to the callback and the collection.
    pub(crate) fn deliver(&mut self, log: ServerLog) {
        if let Some(callback) = self.callback.as_mut() {
            callback(&log);
        }
        if let Some(collected) = self.collected.as_mut() {
            collected.push(log);
        }
    }
}

pub(crate) mod sealed {
    use super::*;

    /// The calls a transport makes: the crate-private face of
    /// [`Transport`](super::Transport).
    pub trait Engine {
        /// A running stream on this transport.
        type Stream<'a>: StreamEngine
        where
            Self: 'a;

        /// Sends a unary request and returns the result batch.
        fn unary(
            &mut self,
            method: &str,
            params: &RecordBatch,
            io: &mut CallIo<'_>,
        ) -> Result<IpcBatch, ClientError>;

        /// Starts a stream; with `header`, also reads the header the method
        /// declares and returns it.
        fn open_stream(
            &mut self,
            method: &str,
            params: &RecordBatch,
            header: bool,
            io: &mut CallIo<'_>,
        ) -> Result<(Self::Stream<'_>, Option<IpcBatch>), ClientError>;

        /// Ends the connection; safe to call more than once.
        fn shut(&mut self) -> Result<(), ClientError>;
    }

    /// One running stream, driven by [`StreamCall`](crate::StreamCall),
    /// which keeps the state machine common to every transport.
    pub trait StreamEngine {
        /// Producer streams: the next batch, or `None` once the server has
        /// finished (the engine has then done whatever ending the stream
        /// takes on its side).
        fn tick(&mut self, io: &mut CallIo<'_>) -> Result<Option<IpcBatch>, ClientError>;

        /// Exchange streams: sends `input`, returns the answer, or `None`
        /// when the server ended the stream instead.
        fn exchange(
            &mut self,
            input: &RecordBatch,
            io: &mut CallIo<'_>,
        ) -> Result<Option<IpcBatch>, ClientError>;

        /// Ends the stream from the client's side: closes it, or with
        /// `cancel` asks the server to stop. Called at most once.
        fn finish(&mut self, cancel: bool, io: &mut CallIo<'_>) -> Result<(), ClientError>;
    }
}

/// A connection over any reader/writer pair: in-process pipes, a socket and
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

impl<R: Read, W: Write> Connection for PipeTransport<R, W> {
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
