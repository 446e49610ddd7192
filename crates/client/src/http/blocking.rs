//! The blocking HTTP transport: the async calls of this module, each run to
//! completion on a one-thread runtime the transport owns.

use arrow_array::RecordBatch;
use vgirpc_wire::ipc::IpcBatch;

use super::HttpOptions;
use super::calls::Cursor;
use super::core::HttpCore;
use super::sticky::SessionState;
use crate::ClientError;
use crate::client::Client;
use crate::transport::CallIo;
use crate::transport::sealed::{Engine, StreamEngine};

/// The HTTP transport: a vgi-rpc server at a base URL.
///
/// Made by [`Client::connect_http`]; nothing is sent until the first call.
/// Only `http://` URLs are supported (there is no TLS here).
pub struct HttpTransport {
    runtime: OwnRuntime,
    core: HttpCore,
    /// The open sticky session, while a [`StickySession`](super::StickySession)
    /// scope lasts.
    pub(super) session: Option<SessionState>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.core.endpoint())
            .field("options", &self.core.options)
            .field("session", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl Client<HttpTransport> {
    /// A client of the server at `url` (e.g. `http://127.0.0.1:8000`),
    /// with default [`HttpOptions`].
    pub fn connect_http(url: &str) -> Result<Self, ClientError> {
        Ok(Self::new(HttpTransport::new(url, HttpOptions::default())?))
    }

    /// A client of the server at `url` with `options`.
    pub fn connect_http_with(url: &str, options: HttpOptions) -> Result<Self, ClientError> {
        Ok(Self::new(HttpTransport::new(url, options)?))
    }
}

/// The transport's runtime. Dropping a runtime blocks until its threads
/// stop, which a thread of another runtime must not do, so it is shut down
/// in the background instead.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the runtime lives until the transport drops")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl HttpTransport {
    /// A transport for the server at `url`; only `http://` is supported.
    pub fn new(url: &str, options: HttpOptions) -> Result<Self, ClientError> {
        let core = HttpCore::new(url, options)?;
        // One worker thread of its own keeps the pooled connections'
        // tasks running between calls, so a connection the server closed
        // is noticed and dropped before the next request would use it.
        let runtime = OwnRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("vgirpc-http-client")
                .enable_all()
                .build()
                .map_err(ClientError::Io)?,
        ));
        Ok(Self {
            runtime,
            core,
            session: None,
        })
    }

    /// The URL endpoint paths are appended to: base URL and prefix.
    pub fn endpoint(&self) -> &str {
        self.core.endpoint()
    }

    /// The options in force.
    pub fn options(&self) -> &HttpOptions {
        &self.core.options
    }

    /// Replaces the options (the prefix and base URL stay).
    pub fn set_options(&mut self, options: HttpOptions) {
        let prefix = std::mem::take(&mut self.core.options.prefix);
        self.core.options = HttpOptions { prefix, ..options };
    }

    /// HTTP requests this transport has sent, retries included: how many
    /// round trips the calls so far took. A producer stream on a server
    /// without a response cap takes one.
    pub fn requests_sent(&self) -> u64 {
        self.core.requests_sent()
    }

    /// Ends the open sticky session on the server.
    pub(super) fn delete_session(&mut self, token: &str) -> Result<(), ClientError> {
        let Self {
            runtime,
            core,
            session,
        } = self;
        block_on(runtime, core.delete_session(token, session.as_ref()))
    }
}

/// Runs `future` on the transport's own runtime. A thread of another
/// runtime (a `#[tokio::main]` program, a method served over HTTP) must not
/// block on a second one, so there a helper thread waits instead: slower
/// than the async client, but never a panic.
fn block_on<F>(runtime: &OwnRuntime, future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let runtime = runtime.get();
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    // The helper thread works inside the caller's span, so that its
    // requests carry the caller's trace.
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        scope
            .spawn(|| span.in_scope(|| runtime.block_on(future)))
            .join()
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    })
}

impl Engine for HttpTransport {
    type Stream<'a> = HttpStream<'a>;

    fn unary(
        &mut self,
        method: &str,
        params: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<IpcBatch, ClientError> {
        let Self {
            runtime,
            core,
            session,
        } = self;
        block_on(runtime, core.unary(session, method, params, io))
    }

    fn open_stream(
        &mut self,
        method: &str,
        params: &RecordBatch,
        header: bool,
        io: &mut CallIo<'_>,
    ) -> Result<(Self::Stream<'_>, Option<IpcBatch>), ClientError> {
        let (cursor, header) = {
            let Self {
                runtime,
                core,
                session,
            } = &mut *self;
            block_on(
                runtime,
                core.open_stream(session, method, params, header, io),
            )?
        };
        let stream = HttpStream {
            transport: self,
            cursor,
        };
        Ok((stream, header))
    }

    fn shut(&mut self) -> Result<(), ClientError> {
        // Pooled connections close when the transport drops; there is no
        // session to end on the server.
        Ok(())
    }
}

/// A stream over HTTP, driven by the blocking transport.
#[derive(Debug)]
pub struct HttpStream<'a> {
    transport: &'a mut HttpTransport,
    cursor: Cursor,
}

impl StreamEngine for HttpStream<'_> {
    fn tick(&mut self, io: &mut CallIo<'_>) -> Result<Option<IpcBatch>, ClientError> {
        let HttpTransport {
            runtime,
            core,
            session,
        } = &mut *self.transport;
        block_on(runtime, self.cursor.tick(core, session, io))
    }

    fn exchange(
        &mut self,
        input: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        let HttpTransport {
            runtime,
            core,
            session,
        } = &mut *self.transport;
        block_on(runtime, self.cursor.exchange(core, session, input, io))
    }

    fn finish(&mut self, cancel: bool, io: &mut CallIo<'_>) -> Result<(), ClientError> {
        let HttpTransport {
            runtime,
            core,
            session,
        } = &mut *self.transport;
        block_on(runtime, self.cursor.finish(core, session, cancel, io))
    }
}
