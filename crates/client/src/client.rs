//! The dynamic client: calls by method name with Arrow record batches.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;
use vgirpc_wire::classify::{BatchKind, classify};
use vgirpc_wire::describe::{DESCRIBE_METHOD, ServiceDescription, parse_describe_batch};
use vgirpc_wire::ipc::{IpcBatch, ReadLimits, StreamReader};
use vgirpc_wire::log::ErrorInfo;
use vgirpc_wire::metadata::{self, Metadata};

use crate::ClientError;
use crate::log::{LogCallback, ServerLog};
use crate::shm::{ShmSegment, ShmTransport};
use crate::stream::StreamCall;
use crate::subprocess::{SubprocessOptions, SubprocessTransport};
use crate::transport::{CallIo, Connection, PipeTransport, Transport};
use crate::unix::UnixTransport;

/// What a unary call returned.
#[derive(Debug, Clone)]
pub struct CallResult {
    /// The result batch: one row with a `result` column, or zero rows and
    /// no columns for a method without a return value.
    pub batch: RecordBatch,
    /// Custom metadata of the result batch.
    pub metadata: Metadata,
    /// Log messages the server sent before the result, in order (they are
    /// also passed to the log callback, if one is set).
    pub logs: Vec<ServerLog>,
}

/// A vgi-rpc client over one transport.
///
/// Calls run one at a time: a [`StreamCall`] borrows the client until it
/// is closed, mirroring the single lockstep conversation of the pipe
/// transport. A call that fails with a server error leaves the client
/// ready for the next call; one that fails with a connection error
/// ([`ClientError::is_connection_error`]) leaves a byte-stream connection
/// unusable (an HTTP client simply reconnects on its next request).
pub struct Client<T: Transport> {
    transport: T,
    on_log: Option<LogCallback>,
    limits: ReadLimits,
}

impl<T: Transport + fmt::Debug> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport)
            .field("on_log", &self.on_log.is_some())
            .finish_non_exhaustive()
    }
}

impl Client<SubprocessTransport> {
    /// Spawns a worker and talks to it over its stdin/stdout.
    pub fn spawn(command: Command) -> Result<Self, ClientError> {
        Ok(Self::new(SubprocessTransport::spawn(command)?))
    }

    /// Spawns a worker with explicit options.
    pub fn spawn_with(command: Command, options: SubprocessOptions) -> Result<Self, ClientError> {
        Ok(Self::new(SubprocessTransport::spawn_with(
            command, options,
        )?))
    }
}

impl Client<UnixTransport> {
    /// Connects to a worker listening on the Unix socket at `path`.
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Ok(Self::new(UnixTransport::connect(path)?))
    }
}

impl<R: Read, W: Write> Client<PipeTransport<R, W>> {
    /// A client over a reader (server to client) and a writer (client to
    /// server).
    pub fn from_io(reader: R, writer: W) -> Self {
        Self::new(PipeTransport::new(reader, writer))
    }
}

impl<C: Connection> Client<C> {
    /// Moves the client onto `segment`: from now on its requests name the
    /// segment, the server may answer with batches stored there, and large
    /// stream inputs are written there instead of onto the connection.
    pub fn with_shm(self, segment: ShmSegment) -> Client<ShmTransport<C>> {
        Client {
            transport: ShmTransport::new(self.transport, segment),
            on_log: self.on_log,
            limits: self.limits,
        }
    }
}

impl<T: Transport> Client<T> {
    /// A client over `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            on_log: None,
            limits: ReadLimits::default(),
        }
    }

    /// Sets the callback that receives server log messages.
    pub fn with_log_callback(mut self, callback: impl FnMut(&ServerLog) + Send + 'static) -> Self {
        self.set_log_callback(callback);
        self
    }

    /// Replaces the callback that receives server log messages.
    pub fn set_log_callback(&mut self, callback: impl FnMut(&ServerLog) + Send + 'static) {
        self.on_log = Some(Box::new(callback));
    }

    /// Bounds on the size of messages accepted from the server.
    pub fn with_read_limits(mut self, limits: ReadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably (to change its settings between calls).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Calls unary method `method` with a one-row parameter batch (one
    /// column per parameter; see [`no_params`] for methods without any).
    pub fn call(&mut self, method: &str, params: &RecordBatch) -> Result<CallResult, ClientError> {
        let mut logs = Vec::new();
        let mut io = CallIo {
            callback: self.on_log.as_mut(),
            collected: Some(&mut logs),
            limits: self.limits,
        };
        let data = self.transport.unary(method, params, &mut io)?;
        Ok(CallResult {
            batch: data.batch,
            metadata: data.metadata,
            logs,
        })
    }

    /// Starts stream method `method` (producer or exchange) that declares
    /// no header.
    ///
    /// On a byte-stream connection nothing is read until the first batch: a
    /// method that fails while starting reports its error then, and that
    /// leaves the connection out of step (the server answered the request
    /// with the error, so it reads this call's input as the next request),
    /// exactly as with the reference client; drop the client after such an
    /// error. Over HTTP the start is a request of its own, so its error is
    /// returned here and the client stays usable.
    pub fn stream(
        &mut self,
        method: &str,
        params: &RecordBatch,
    ) -> Result<StreamCall<'_, T>, ClientError> {
        self.open(method, params, false)
    }

    /// Starts stream method `method` that declares a header, reading the
    /// header before returning (see [`StreamCall::header`]).
    ///
    /// A method that fails while starting reports its error here, and the
    /// client stays usable. Which methods have headers is part of the
    /// service's contract; [`Client::describe`] reports it.
    pub fn stream_with_header(
        &mut self,
        method: &str,
        params: &RecordBatch,
    ) -> Result<StreamCall<'_, T>, ClientError> {
        self.open(method, params, true)
    }

    fn open(
        &mut self,
        method: &str,
        params: &RecordBatch,
        header: bool,
    ) -> Result<StreamCall<'_, T>, ClientError> {
        let mut io = CallIo {
            callback: self.on_log.as_mut(),
            collected: None,
            limits: self.limits,
        };
        let (engine, header_batch) = self
            .transport
            .open_stream(method, params, header, &mut io)?;
        let header_batch = match (header, header_batch) {
            (false, _) => None,
            (true, Some(batch)) => Some(batch.batch),
            (true, None) => {
                return Err(ClientError::Protocol(format!(
                    "the header stream of {method}() ended without a header batch"
                )));
            }
        };
        Ok(StreamCall::new(
            engine,
            &mut self.on_log,
            self.limits,
            header_batch,
        ))
    }

    /// Asks the server to describe itself (`__describe__`).
    pub fn describe(&mut self) -> Result<ServiceDescription, ClientError> {
        let result = self.call(DESCRIBE_METHOD, &no_params())?;
        parse_describe_batch(&result.batch, &result.metadata).map_err(|source| ClientError::Codec {
            context: "the __describe__ response".into(),
            source,
        })
    }

    /// Closes the connection (for a worker: stdin closes, then it exits or
    /// is killed after a timeout).
    pub fn close(mut self) -> Result<(), ClientError> {
        self.transport.shut()
    }

    /// Gives back the transport without closing it.
    pub fn into_transport(self) -> T {
        self.transport
    }
}

impl<T: Transport> AsRef<Client<T>> for Client<T> {
    fn as_ref(&self) -> &Client<T> {
        self
    }
}

impl<T: Transport> AsMut<Client<T>> for Client<T> {
    fn as_mut(&mut self) -> &mut Client<T> {
        self
    }
}

/// The parameter batch of a method without parameters: no columns, one row
/// (WIRE_PROTOCOL §5 asks conforming clients for one row).
pub fn no_params() -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    // Zero columns and an explicit row count are always a valid batch.
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), Vec::new(), &options)
        .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(Schema::empty())))
}

/// Opens the next IPC stream from the server; the server never closes a
/// connection between a request and its answer.
pub(crate) fn open_response<R: Read>(
    reader: R,
    limits: ReadLimits,
) -> Result<StreamReader<R>, ClientError> {
    StreamReader::try_open(reader, limits)
        .map_err(ClientError::from_wire)?
        .ok_or(ClientError::ConnectionClosed)
}

/// A batch that is neither a log message nor an error.
#[derive(Debug)]
pub(crate) enum Received {
    /// Application data.
    Data(IpcBatch),
    /// A zero-row batch that stands for something else.
    Special(IpcBatch, Special),
}

/// What a zero-row batch stands for.
#[derive(Debug)]
pub(crate) enum Special {
    /// A pointer into a shared-memory segment.
    ShmPointer,
    /// A pointer to an externalized batch at this URL.
    External(String),
    /// A stream state token, in the batch's metadata.
    StateToken,
}

/// Reads up to the next batch that is not a log message, delivering logs
/// on the way.
///
/// `Ok(None)` means the stream ended (EOS) first. An EXCEPTION batch
/// becomes [`ClientError::Remote`]; the stream is left unread after it.
pub(crate) fn receive<R: Read>(
    reader: &mut StreamReader<R>,
    io: &mut CallIo<'_>,
) -> Result<Option<Received>, ClientError> {
    while let Some(batch) = reader.next_batch().map_err(ClientError::from_wire)? {
        if let Some(received) = sort(batch, io)? {
            return Ok(Some(received));
        }
    }
    Ok(None)
}

/// Sorts one batch of a response: a log is delivered (`Ok(None)`), an
/// EXCEPTION batch becomes [`ClientError::Remote`], anything else is
/// returned.
pub(crate) fn sort(batch: IpcBatch, io: &mut CallIo<'_>) -> Result<Option<Received>, ClientError> {
    match classify(&batch.batch, &batch.metadata) {
        BatchKind::Data => Ok(Some(Received::Data(batch))),
        BatchKind::Log(record) => {
            io.deliver(ServerLog::new(record, &batch.metadata));
            Ok(None)
        }
        BatchKind::Error(info) => Err(remote_error(info, &batch.metadata)),
        BatchKind::ExternalPointer(url) => {
            Ok(Some(Received::Special(batch, Special::External(url))))
        }
        BatchKind::ShmPointer => Ok(Some(Received::Special(batch, Special::ShmPointer))),
        BatchKind::StateToken => Ok(Some(Received::Special(batch, Special::StateToken))),
    }
}

pub(crate) fn remote_error(info: ErrorInfo, md: &Metadata) -> ClientError {
    ClientError::Remote {
        error_type: info.error_type,
        message: info.message,
        traceback: info.traceback,
        error_kind: info
            .error_kind
            .or_else(|| md.get(metadata::ERROR_KIND).map(str::to_owned)),
        request_id: md.get(metadata::REQUEST_ID).map(str::to_owned),
    }
}
