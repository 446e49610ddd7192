//! The async client: calls from tokio tasks, sharing one client.
//!
//! [`AsyncClient`] is cheap to clone and its calls take `&self`, so any
//! number of tasks call through one client at once:
//!
//! | made by | calls run |
//! |---|---|
//! | [`AsyncClient::connect_unix`] | one after another, on one connection |
//! | [`AsyncClient::connect_unix_with`] | concurrently, on up to N connections opened as needed (for servers that serve connections concurrently) |
//! | [`AsyncClient::spawn`] | one after another: a worker process serves one connection |
//! | [`AsyncClient::connect_unix_with_shm`], [`AsyncClient::spawn_with_shm`] | as above, with batches passed through a shared-memory segment per connection |
//! | `AsyncClient::connect_http` (feature `http`) | concurrently, one request each (a stream: one per turn), over pooled keep-alive connections |
//!
//! Over a byte stream (Unix socket, worker process), a call holds its
//! connection until it is done; a stream holds it until it is closed,
//! cancelled or dropped. A stream dropped half-way leaves its connection
//! out of step, so the connection is closed instead of reused. Over HTTP
//! nothing is held between requests: a stream is its state token.
//!
//! Connections belong to the runtime that opened them: their I/O is
//! driven by that runtime, so a client is used from tasks of the runtime
//! it was made on (or made again for another one). Calls over HTTP need
//! the runtime's time driver (retry pauses, the timeout), which
//! `#[tokio::main]` enables.

mod connection;
mod pool;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use vgirpc_wire::describe::{DESCRIBE_METHOD, ServiceDescription, parse_describe_batch};
use vgirpc_wire::ipc::{IpcBatch, ReadLimits};
use vgirpc_wire::log::empty_batch;

use self::connection::{Connection, StreamSides};
use self::pool::{Checkout, Pool, leaves_connection_aligned};
use crate::ClientError;
use crate::ShmSegment;
use crate::client::{CallResult, no_params};
use crate::log::ServerLog;
#[cfg(feature = "http")]
use crate::transport::CallIo;

type LogHandler = Arc<dyn Fn(&ServerLog) + Send + Sync>;

/// An async client of one server; clone it to share it between tasks.
#[derive(Clone)]
pub struct AsyncClient {
    backend: Backend,
    limits: ReadLimits,
    on_log: Option<LogHandler>,
}

#[derive(Clone)]
enum Backend {
    Connections(Arc<Pool>),
    #[cfg(feature = "http")]
    Http(Arc<crate::http::HttpCore>),
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Connections(_) => "connections",
            #[cfg(feature = "http")]
            Backend::Http(_) => "http",
        };
        f.debug_struct("AsyncClient")
            .field("backend", &backend)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl AsyncClient {
    fn new(backend: Backend) -> Self {
        Self {
            backend,
            limits: ReadLimits::default(),
            on_log: None,
        }
    }

    /// A client of the server listening on the Unix socket at `path`, on
    /// one connection: calls from many tasks take turns on it.
    ///
    /// One connection is the safe default: a server that serves one
    /// connection at a time (the reference's default, and ours without
    /// `threaded`) would leave a second connection waiting for the first
    /// to close, which a pooled connection never does.
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Self::connect_unix_with(path, 1).await
    }

    /// [`AsyncClient::connect_unix`] with up to `connections` connections,
    /// opened as concurrent calls need them, for servers that serve
    /// connections concurrently. The first is opened now, so a wrong path
    /// is reported here.
    pub async fn connect_unix_with(
        path: impl AsRef<Path>,
        connections: usize,
    ) -> Result<Self, ClientError> {
        Self::unix_pool(path.as_ref(), connections, None).await
    }

    /// [`AsyncClient::connect_unix_with`], each connection with a
    /// shared-memory segment of `segment_bytes` (64 KiB of header
    /// included) that the client creates and owns: the server writes large
    /// results there and the client its large stream inputs, instead of
    /// sending them over the socket (WIRE_PROTOCOL §11). The server must
    /// run on this host.
    pub async fn connect_unix_with_shm(
        path: impl AsRef<Path>,
        connections: usize,
        segment_bytes: u64,
    ) -> Result<Self, ClientError> {
        Self::unix_pool(path.as_ref(), connections, Some(segment_bytes)).await
    }

    async fn unix_pool(
        path: &Path,
        connections: usize,
        segment_bytes: Option<u64>,
    ) -> Result<Self, ClientError> {
        let path = path.to_owned();
        let first = unix_connection(path.clone(), segment_bytes).await?;
        let pool = Pool::new(connections, first, move || {
            unix_connection(path.clone(), segment_bytes)
        });
        Ok(Self::new(Backend::Connections(Arc::new(pool))))
    }

    /// A client of a worker process started with `command`, speaking over
    /// its stdin and stdout; calls run one at a time. The worker's stderr is
    /// inherited. It is killed when the last clone of the client drops.
    pub async fn spawn(command: std::process::Command) -> Result<Self, ClientError> {
        Self::spawn_worker(command, None).await
    }

    /// [`AsyncClient::spawn`], with a shared-memory segment of
    /// `segment_bytes` as side channel (see
    /// [`AsyncClient::connect_unix_with_shm`]).
    pub async fn spawn_with_shm(
        command: std::process::Command,
        segment_bytes: u64,
    ) -> Result<Self, ClientError> {
        Self::spawn_worker(command, Some(segment_bytes)).await
    }

    async fn spawn_worker(
        command: std::process::Command,
        segment_bytes: Option<u64>,
    ) -> Result<Self, ClientError> {
        let mut command = tokio::process::Command::from(command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(ClientError::Io)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ClientError::Config(
                "the worker's stdio is not piped".into(),
            ));
        };
        let owner: Arc<dyn Send + Sync> = Arc::new(std::sync::Mutex::new(child));
        let first = with_segment(Connection::new(stdout, stdin, Some(owner)), segment_bytes)?;
        // A worker has one connection; once it is gone, there is no other.
        let pool = Pool::new(1, first, || async { Err(ClientError::ConnectionClosed) });
        Ok(Self::new(Backend::Connections(Arc::new(pool))))
    }

    /// A client of the HTTP server at `url` (e.g. `http://127.0.0.1:8000`),
    /// with default options. Nothing is sent until the first call; calls
    /// from many tasks run concurrently.
    #[cfg(feature = "http")]
    pub fn connect_http(url: &str) -> Result<Self, ClientError> {
        Self::connect_http_with(url, crate::http::HttpOptions::default())
    }

    /// [`AsyncClient::connect_http`] with `options` (prefix, bearer token,
    /// retries, timeout, ...). Sticky sessions are a blocking-client
    /// feature (`http::StickySession`); this client sends no session
    /// headers.
    #[cfg(feature = "http")]
    pub fn connect_http_with(
        url: &str,
        options: crate::http::HttpOptions,
    ) -> Result<Self, ClientError> {
        let core = crate::http::HttpCore::new(url, options)?;
        Ok(Self::new(Backend::Http(Arc::new(core))))
    }

    /// Calls `callback` with every log message the server sends, from the
    /// task whose call received it.
    pub fn with_log_callback(
        mut self,
        callback: impl Fn(&ServerLog) + Send + Sync + 'static,
    ) -> Self {
        self.on_log = Some(Arc::new(callback));
        self
    }

    /// Bounds on the size of messages accepted from the server.
    pub fn with_read_limits(mut self, limits: ReadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Calls unary method `method` with a one-row parameter batch.
    pub async fn call(
        &self,
        method: &str,
        params: &RecordBatch,
    ) -> Result<CallResult, ClientError> {
        let mut logs = Vec::new();
        let data = match &self.backend {
            Backend::Connections(pool) => {
                let mut checkout = pool.checkout().await?;
                let result = checkout
                    .connection()
                    .unary(method, params, self.limits, &mut logs)
                    .await;
                if leaves_connection_aligned(&result) {
                    checkout.release();
                }
                result
            }
            #[cfg(feature = "http")]
            Backend::Http(core) => {
                let mut io = CallIo::collecting(&mut logs, self.limits);
                core.unary(&mut None, method, params, &mut io).await
            }
        };
        self.deliver(&logs);
        let data = data?;
        Ok(CallResult {
            batch: data.batch,
            metadata: data.metadata,
            logs,
        })
    }

    /// Starts stream method `method` that declares no header.
    pub async fn stream(
        &self,
        method: &str,
        params: &RecordBatch,
    ) -> Result<AsyncStream, ClientError> {
        self.open(method, params, false).await
    }

    /// Starts stream method `method` that declares a header, reading the
    /// header before returning (see [`AsyncStream::header`]).
    pub async fn stream_with_header(
        &self,
        method: &str,
        params: &RecordBatch,
    ) -> Result<AsyncStream, ClientError> {
        self.open(method, params, true).await
    }

    async fn open(
        &self,
        method: &str,
        params: &RecordBatch,
        header: bool,
    ) -> Result<AsyncStream, ClientError> {
        let mut logs = Vec::new();
        let opened = match &self.backend {
            Backend::Connections(pool) => {
                let mut checkout = pool.checkout().await?;
                let header = checkout
                    .connection()
                    .open_stream(method, params, header, self.limits, &mut logs)
                    .await;
                if header.is_err() && leaves_connection_aligned(&header) {
                    // The server refused to start; the connection is between calls.
                    checkout.release();
                }
                header.map(|header| {
                    let sides = Sides::Connection(Some(checkout), Box::default());
                    (sides, header)
                })
            }
            #[cfg(feature = "http")]
            Backend::Http(core) => {
                let mut io = CallIo::collecting(&mut logs, self.limits);
                core.open_stream(&mut None, method, params, header, &mut io)
                    .await
                    .map(|(cursor, header)| (Sides::Http(Arc::clone(core), cursor), header))
            }
        };
        self.deliver(&logs);
        let (sides, header) = opened?;
        Ok(AsyncStream {
            client: self.clone(),
            sides,
            header: header.map(|h| h.batch),
            state: State::Open,
        })
    }

    /// Asks the server to describe itself (`__describe__`).
    pub async fn describe(&self) -> Result<ServiceDescription, ClientError> {
        let result = self.call(DESCRIBE_METHOD, &no_params()).await?;
        parse_describe_batch(&result.batch, &result.metadata).map_err(|source| ClientError::Codec {
            context: "the __describe__ response".into(),
            source,
        })
    }

    fn deliver(&self, logs: &[ServerLog]) {
        if let Some(callback) = &self.on_log {
            logs.iter().for_each(|log| callback(log));
        }
    }
}

async fn unix_connection(
    path: std::path::PathBuf,
    segment_bytes: Option<u64>,
) -> Result<Connection, ClientError> {
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .map_err(|source| {
            ClientError::Config(format!("cannot connect to {}: {source}", path.display()))
        })?;
    let (reader, writer) = stream.into_split();
    with_segment(Connection::new(reader, writer, None), segment_bytes)
}

fn with_segment(
    connection: Connection,
    segment_bytes: Option<u64>,
) -> Result<Connection, ClientError> {
    match segment_bytes {
        Some(bytes) => Ok(connection.with_segment(ShmSegment::create(bytes)?)),
        None => Ok(connection),
    }
}

/// Where an async stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The server ended its output; only closing remains.
    Ended,
    Closed,
}

/// The transport side of a running stream.
enum Sides {
    /// The connection goes back to the client as soon as the stream ends.
    Connection(Option<Checkout>, Box<StreamSides>),
    /// Each turn is a request of its own.
    #[cfg(feature = "http")]
    Http(Arc<crate::http::HttpCore>, crate::http::Cursor),
}

/// A running stream call of an [`AsyncClient`]: a producer
/// ([`AsyncStream::next_batch`]) or an exchange ([`AsyncStream::exchange`]).
///
/// Close or cancel it when done with it; dropping it half-way closes its
/// connection instead of returning it to the client's pool.
pub struct AsyncStream {
    client: AsyncClient,
    sides: Sides,
    header: Option<RecordBatch>,
    state: State,
}

impl std::fmt::Debug for AsyncStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncStream")
            .field("state", &self.state)
            .field("has_header", &self.header.is_some())
            .finish_non_exhaustive()
    }
}

impl AsyncStream {
    /// The header batch, for streams opened with
    /// [`AsyncClient::stream_with_header`].
    pub fn header(&self) -> Option<&RecordBatch> {
        self.header.as_ref()
    }

    /// Whether the stream has ended or been closed.
    pub fn is_finished(&self) -> bool {
        self.state != State::Open
    }

    /// Producer streams: the next batch, or `None` once the producer has
    /// finished (the stream is then closed, and its connection free).
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, ClientError> {
        match self.state {
            State::Open => {}
            State::Ended => return Ok(None),
            State::Closed => return Err(ClientError::StreamClosed),
        }
        let tick = empty_batch(&Arc::new(Schema::empty()));
        let answer = self.turn(Turn::Produce(&tick)).await?;
        match answer {
            Some(batch) => Ok(Some(batch.batch)),
            None => {
                self.state = State::Ended;
                self.close().await?;
                Ok(None)
            }
        }
    }

    /// Exchange streams: sends `input` and returns the server's answer;
    /// [`ClientError::StreamEnded`] if the server finished instead.
    pub async fn exchange(&mut self, input: &RecordBatch) -> Result<RecordBatch, ClientError> {
        if self.state != State::Open {
            return Err(ClientError::StreamClosed);
        }
        match self.turn(Turn::Exchange(input)).await? {
            Some(batch) => Ok(batch.batch),
            None => {
                self.close().await?;
                Err(ClientError::StreamEnded)
            }
        }
    }

    /// Ends the stream; the connection goes back to the client. Safe to
    /// call more than once.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        self.finish(false).await
    }

    /// Asks the server to stop the stream (its cancel hook runs), then ends it.
    pub async fn cancel(&mut self) -> Result<(), ClientError> {
        self.finish(true).await
    }

    async fn turn(&mut self, turn: Turn<'_>) -> Result<Option<IpcBatch>, ClientError> {
        let limits = self.client.limits;
        let mut logs = Vec::new();
        let answer = match &mut self.sides {
            Sides::Connection(Some(checkout), sides) => {
                sides
                    .round_trip(checkout.connection(), turn.input(), limits, &mut logs)
                    .await
            }
            Sides::Connection(None, _) => Err(ClientError::StreamClosed),
            #[cfg(feature = "http")]
            Sides::Http(core, cursor) => {
                let mut io = CallIo::collecting(&mut logs, limits);
                match turn {
                    Turn::Produce(_) => cursor.tick(core, &mut None, &mut io).await,
                    Turn::Exchange(input) => cursor.exchange(core, &mut None, input, &mut io).await,
                }
            }
        };
        self.client.deliver(&logs);
        match answer {
            Ok(answer) => Ok(answer),
            Err(err) if err.is_connection_error() => {
                self.state = State::Closed;
                Err(err)
            }
            Err(err) => {
                // A server error ends the stream; closing it completes the
                // exchange of end markers, so the connection stays usable.
                let _ = self.close().await;
                Err(err)
            }
        }
    }

    async fn finish(&mut self, cancel: bool) -> Result<(), ClientError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.state = State::Closed;
        let limits = self.client.limits;
        let mut logs = Vec::new();
        let finished = match &mut self.sides {
            Sides::Connection(checkout, sides) => match checkout.take() {
                Some(mut checkout) => {
                    let finished = sides
                        .finish(checkout.connection(), cancel, limits, &mut logs)
                        .await;
                    if finished.is_ok() {
                        checkout.release();
                    }
                    finished
                }
                None => Ok(()),
            },
            #[cfg(feature = "http")]
            Sides::Http(core, cursor) => {
                let mut io = CallIo::collecting(&mut logs, limits);
                cursor.finish(core, &mut None, cancel, &mut io).await
            }
        };
        self.client.deliver(&logs);
        finished
    }
}

/// One turn of a stream: a producer asked for its next batch (the input
/// is the empty tick a byte stream sends), or an exchange's input.
#[derive(Clone, Copy)]
enum Turn<'a> {
    Produce(&'a RecordBatch),
    Exchange(&'a RecordBatch),
}

impl<'a> Turn<'a> {
    fn input(self) -> &'a RecordBatch {
        match self {
            Turn::Produce(input) | Turn::Exchange(input) => input,
        }
    }
}

/// An async stream with its header decoded into `H` (`()` for methods
/// without a header): what the async typed clients generated by
/// `#[vgirpc::service]` return for stream methods. It dereferences to the
/// [`AsyncStream`] it wraps.
#[derive(Debug)]
pub struct AsyncTypedStream<H = ()> {
    header: H,
    stream: AsyncStream,
}

impl<H> AsyncTypedStream<H> {
    /// Wraps a stream whose header was decoded into `header`.
    pub fn new(header: H, stream: AsyncStream) -> Self {
        Self { header, stream }
    }

    /// The decoded header.
    pub fn header(&self) -> &H {
        &self.header
    }

    /// The header and the dynamic stream.
    pub fn into_parts(self) -> (H, AsyncStream) {
        (self.header, self.stream)
    }
}

impl<H> std::ops::Deref for AsyncTypedStream<H> {
    type Target = AsyncStream;

    fn deref(&self) -> &AsyncStream {
        &self.stream
    }
}

impl<H> std::ops::DerefMut for AsyncTypedStream<H> {
    fn deref_mut(&mut self) -> &mut AsyncStream {
        &mut self.stream
    }
}
