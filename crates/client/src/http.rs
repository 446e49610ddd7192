//! The HTTP transport, client side (WIRE_PROTOCOL §10, §12, and the sticky
//! sessions of `docs/sticky-sessions-spec.md`).
//!
//! Every call is one `POST`: `{base}{prefix}/{method}` for unary calls,
//! `/{method}/init` to start a stream and `/{method}/exchange` for each
//! later turn. Nothing ties one request to the next but the stream state
//! token the server hands out, which this transport keeps and sends back
//! itself: it never appears in the batches a caller sees. A producer's
//! batches arrive in responses that end with a fresh token until the
//! producer finishes, and the transport follows them one request at a time
//! as the caller asks for batches. Batches the server externalized are
//! fetched from their URL and returned in place of the pointer.
//!
//! Requests go through a hyper client that keeps connections alive and
//! reuses them; bodies are zstd-compressed both ways. The transport is
//! blocking: it drives its requests on a one-thread tokio runtime of its
//! own. Used from inside another tokio runtime it still works (each
//! request waits on a helper thread), but async code should prefer an
//! async client.

mod external;
mod retry;
mod sticky;

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow_array::RecordBatch;
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue,
    RETRY_AFTER,
};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use vgirpc_wire::ipc::{IpcBatch, ReadLimits, StreamReader, empty_schema, write_stream_bytes};
use vgirpc_wire::log::empty_batch;
use vgirpc_wire::metadata::{self, Metadata};
use vgirpc_wire::request::Request as RpcRequest;

pub use retry::RetryPolicy;
pub use sticky::{DetachedSession, StickySession};

use crate::ClientError;
use crate::client::{Client, Received, Special, receive};
use crate::transport::CallIo;
use crate::transport::sealed::{Engine, StreamEngine};
use retry::{is_transient, parse_retry_after};
use sticky::SessionState;

/// The content type of every vgi-rpc request and response body.
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// The only body codec: zstd both ways.
const ZSTD: &str = "zstd";

/// How an [`HttpTransport`] talks to its server.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    prefix: String,
    bearer_token: Option<String>,
    compression_level: Option<i32>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    max_response_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            bearer_token: None,
            compression_level: Some(3),
            retry: RetryPolicy::default(),
            timeout: None,
            max_response_bytes: 1 << 30,
        }
    }
}

impl HttpOptions {
    /// The defaults: endpoints at the root of the URL, zstd level 3 request
    /// bodies, [`RetryPolicy::default`], no timeout, responses up to 1 GiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// The path the server mounts its endpoints under (e.g. `/vgi`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let prefix = prefix.trim_end_matches('/');
        self.prefix = if prefix.is_empty() || prefix.starts_with('/') {
            prefix.to_owned()
        } else {
            format!("/{prefix}")
        };
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// zstd level for request bodies, or `None` to send them uncompressed.
    /// Responses are asked for in zstd either way.
    pub fn compression_level(mut self, level: Option<i32>) -> Self {
        self.compression_level = level;
        self
    }

    /// When failed requests are repeated (see [`RetryPolicy`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The longest one request may take, connecting included; a request
    /// that takes longer fails with [`ClientError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The largest response body accepted, after decompression.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }
}

/// The HTTP transport: a vgi-rpc server at a base URL.
///
/// Made by [`Client::connect_http`]; nothing is sent until the first call.
/// Only `http://` URLs are supported (there is no TLS here).
pub struct HttpTransport {
    runtime: OwnRuntime,
    client: HyperClient<HttpConnector, Full<Bytes>>,
    /// The URL the endpoint paths are appended to: the base URL and the
    /// prefix, without a trailing slash.
    endpoint: String,
    options: HttpOptions,
    /// The open sticky session, while a [`StickySession`] scope lasts.
    session: Option<SessionState>,
    /// Requests sent so far, retries included.
    requests: AtomicU64,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.endpoint)
            .field("options", &self.options)
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

/// A response, its body decoded.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Whether a request may be sent again after a failure that is not a
/// failure to connect (see [`RetryPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Repeating asks for the same answer.
    Safe,
    /// Repeating could run the method twice.
    Never,
}

impl HttpTransport {
    /// A transport for the server at `url`; only `http://` is supported.
    pub fn new(url: &str, options: HttpOptions) -> Result<Self, ClientError> {
        let base = url.trim_end_matches('/');
        let uri: Uri = base
            .parse()
            .map_err(|e| ClientError::Config(format!("invalid URL {url:?}: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(ClientError::Config(format!(
                    "unsupported URL scheme {other:?} in {url:?}: this client speaks plain http"
                )));
            }
            None => {
                return Err(ClientError::Config(format!(
                    "{url:?} is not an absolute http:// URL"
                )));
            }
        }
        if uri.query().is_some() {
            return Err(ClientError::Config(format!(
                "{url:?} has a query string; give the base URL only"
            )));
        }
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
        let client = HyperClient::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            runtime,
            client,
            endpoint: format!("{base}{}", options.prefix),
            options,
            session: None,
            requests: AtomicU64::new(0),
        })
    }

    /// The URL endpoint paths are appended to: base URL and prefix.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The options in force.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Replaces the options (the prefix and base URL stay).
    pub fn set_options(&mut self, options: HttpOptions) {
        let prefix = std::mem::take(&mut self.options.prefix);
        self.options = HttpOptions { prefix, ..options };
    }

    /// POSTs an Arrow body to `{endpoint}{path}` with the vgi-rpc headers,
    /// and keeps up with the sticky session the response may open or close.
    fn post(&mut self, path: &str, body: Vec<u8>, repeat: Repeat) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.endpoint);
        let mut headers = self.server_headers();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM));
        let body = match self.options.compression_level {
            Some(level) => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(ZSTD));
                zstd::bulk::compress(&body, level).map_err(ClientError::Io)?
            }
            None => body,
        };
        let reply = self.send(Method::POST, &url, headers, Bytes::from(body), repeat)?;
        if let Some(session) = &mut self.session {
            session.capture(&reply.headers);
        }
        Ok(reply)
    }

    /// The headers every request to the server carries: zstd accepted,
    /// the bearer token, and the sticky session's.
    fn server_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(ZSTD));
        if let Some(token) = &self.options.bearer_token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(session) = &self.session {
            session.apply(&mut headers);
        }
        headers
    }

    /// Sends one request, repeating it as the retry policy and `repeat`
    /// allow, and reads the whole response.
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        repeat: Repeat,
    ) -> Result<Reply, ClientError> {
        let policy = &self.options.retry;
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(method.clone(), url, &headers, body.clone());
            let more = attempt < policy.retries();
            let retry_after = match &outcome {
                Ok(reply) if more && repeat == Repeat::Safe && is_transient(reply.status) => reply
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
                Err(Failure::Connect(_)) if more => None,
                Err(Failure::Lost(_)) if more && repeat == Repeat::Safe => None,
                Ok(_) | Err(_) => return outcome.map_err(|failure| failure.into_error(url)),
            };
            std::thread::sleep(policy.delay(attempt, retry_after));
            attempt += 1;
        }
    }

    /// HTTP requests this transport has sent, retries included: how many
    /// round trips the calls so far took. A producer stream on a server
    /// without a response cap takes one.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Reply, Failure> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(body))
            .map_err(|e| Failure::Invalid(e.to_string()))?;
        request.headers_mut().extend(headers.clone());
        let limit = self.options.max_response_bytes;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    Failure::Connect(e.to_string())
                } else {
                    Failure::Lost(e.to_string())
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| Failure::Lost(format!("reading the response: {e}")))?
                .to_bytes();
            Ok((parts, body))
        };
        let (parts, body) = match self.options.timeout {
            Some(timeout) => self.block_on(async {
                tokio::time::timeout(timeout, exchange)
                    .await
                    .map_err(|_| Failure::TimedOut(timeout))?
            }),
            None => self.block_on(exchange),
        }?;
        let body = decode_body(&parts.headers, body, limit).map_err(Failure::Lost)?;
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Runs `future` on this transport's own runtime. A thread of another
    /// runtime (a `#[tokio::main]` program, a method served over HTTP) must
    /// not block on a second one, so there a helper thread waits instead:
    /// slower than an async client, but never a panic.
    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        let runtime = self.runtime.get();
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        })
    }

    /// Ends the open sticky session on the server (`DELETE
    /// {prefix}/__session__`); whether the server knew it makes no
    /// difference to the answer, by design.
    fn delete_session(&mut self, token: &str) -> Result<(), ClientError> {
        let url = format!("{}/__session__", self.endpoint);
        let mut headers = self.server_headers();
        let value = HeaderValue::from_str(token)
            .map_err(|_| ClientError::Config("the session token is not a valid header".into()))?;
        headers.insert(sticky::SESSION, value);
        let reply = self.send(Method::DELETE, &url, headers, Bytes::new(), Repeat::Never)?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(http_error(&reply))
        }
    }

    /// Reads one answer of a unary call or exchange turn from `reader`:
    /// external pointers are fetched and resolved on the way.
    fn read_item<R: Read>(
        &mut self,
        reader: &mut StreamReader<R>,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        match receive(reader, io)? {
            None => Ok(None),
            Some(Received::Data(batch)) | Some(Received::Special(batch, Special::StateToken)) => {
                Ok(Some(batch))
            }
            Some(Received::Special(pointer, Special::External(url))) => {
                self.fetch_external(pointer, &url, io).map(Some)
            }
            Some(Received::Special(_, Special::ShmPointer)) => Err(ClientError::Protocol(
                "the server sent a shared-memory pointer over HTTP".into(),
            )),
        }
    }

    /// Reads a producer's output (an init or continuation response) into
    /// `turn`: data batches in order, then the continuation token, the end
    /// of the stream, or the error that ended it.
    fn read_output<R: Read>(
        &mut self,
        reader: &mut StreamReader<R>,
        io: &mut CallIo<'_>,
        turn: &mut Turn,
    ) -> Result<(), ClientError> {
        loop {
            let item = match receive(reader, io) {
                Ok(item) => item,
                Err(err) if matches!(err, ClientError::Remote { .. }) => {
                    turn.failure = Some(err);
                    return Ok(());
                }
                Err(err) => return Err(err),
            };
            match item {
                None => {
                    turn.finished = true;
                    return Ok(());
                }
                Some(Received::Special(batch, Special::StateToken)) => {
                    turn.token = batch
                        .metadata
                        .get(metadata::STREAM_STATE)
                        .map(str::to_owned);
                    return Ok(());
                }
                Some(Received::Data(mut batch)) => {
                    batch.metadata.remove(metadata::STREAM_STATE);
                    turn.batches.push_back(batch);
                }
                Some(Received::Special(pointer, Special::External(url))) => {
                    let mut batch = match self.fetch_external(pointer, &url, io) {
                        Ok(batch) => batch,
                        Err(err) if !err.is_connection_error() => {
                            turn.failure = Some(err);
                            return Ok(());
                        }
                        Err(err) => return Err(err),
                    };
                    batch.metadata.remove(metadata::STREAM_STATE);
                    turn.batches.push_back(batch);
                }
                Some(Received::Special(_, Special::ShmPointer)) => {
                    return Err(ClientError::Protocol(
                        "the server sent a shared-memory pointer over HTTP".into(),
                    ));
                }
            }
        }
    }
}

/// Why one attempt at a request failed.
#[derive(Debug)]
enum Failure {
    /// No connection could be made: the request never left.
    Connect(String),
    /// The connection failed during the request.
    Lost(String),
    /// The request took longer than the timeout.
    TimedOut(Duration),
    /// The request could not be built.
    Invalid(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(message) => write!(f, "cannot connect: {message}"),
            Failure::Lost(message) | Failure::Invalid(message) => f.write_str(message),
            Failure::TimedOut(after) => write!(f, "no answer within {after:?}"),
        }
    }
}

impl Failure {
    fn into_error(self, url: &str) -> ClientError {
        match self {
            Failure::Connect(message) => ClientError::Connect {
                target: url.to_owned(),
                source: std::io::Error::other(message),
            },
            Failure::Lost(message) => ClientError::Io(std::io::Error::other(message)),
            Failure::TimedOut(after) => ClientError::Timeout(after),
            Failure::Invalid(message) => {
                ClientError::Config(format!("cannot request {url}: {message}"))
            }
        }
    }
}

/// The body as sent, decoded from zstd when the response says so.
fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, String> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        ZSTD => {
            let decoder = zstd::stream::read::Decoder::new(body.as_ref())
                .map_err(|e| format!("cannot decompress the response: {e}"))?;
            let mut plain = Vec::new();
            // One byte past the limit tells "at the limit" from "beyond it".
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut plain)
                .map_err(|e| format!("cannot decompress the response: {e}"))?;
            if plain.len() > limit {
                return Err(format!("the response exceeds {limit} bytes"));
            }
            Ok(Bytes::from(plain))
        }
        other => Err(format!("unsupported response Content-Encoding {other:?}")),
    }
}

/// A non-Arrow answer, as an error carrying the status and body text.
fn http_error(reply: &Reply) -> ClientError {
    let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]).into_owned();
    ClientError::Http {
        status: reply.status.as_u16(),
        body: text,
    }
}

/// Opens the first IPC stream of a reply, turning answers that are not
/// Arrow into errors: a `401` is the server's authentication failure, the
/// rest are reported with their status and the start of their text.
fn open_reply<'b, 's>(
    reply: &Reply,
    body: &'b mut &'s [u8],
    limits: ReadLimits,
) -> Result<StreamReader<&'b mut &'s [u8]>, ClientError> {
    if reply.status == StatusCode::UNAUTHORIZED {
        return Err(ClientError::Remote {
            error_type: "AuthenticationError".into(),
            message: String::from_utf8_lossy(&reply.body).into_owned(),
            traceback: String::new(),
            error_kind: None,
            request_id: None,
        });
    }
    let is_arrow = reply
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(ARROW_STREAM.as_bytes()));
    if !is_arrow {
        return Err(http_error(reply));
    }
    match StreamReader::try_open(body, limits) {
        Ok(Some(reader)) => Ok(reader),
        Ok(None) | Err(_) => Err(http_error(reply)),
    }
}

/// The request body: one IPC stream holding one batch.
fn request_body(batch: &RecordBatch, md: &Metadata) -> Result<Vec<u8>, ClientError> {
    write_stream_bytes(batch.schema_ref(), [(batch, md)]).map_err(|source| ClientError::Codec {
        context: "a request body".into(),
        source,
    })
}

/// What one producer response held.
#[derive(Debug, Default)]
struct Turn {
    batches: VecDeque<IpcBatch>,
    token: Option<String>,
    finished: bool,
    failure: Option<ClientError>,
}

impl Engine for HttpTransport {
    type Stream<'a> = HttpStream<'a>;

    fn unary(
        &mut self,
        method: &str,
        params: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<IpcBatch, ClientError> {
        let body = request_body(params, &RpcRequest::metadata_for(method))?;
        let reply = self.post(&format!("/{method}"), body, Repeat::Safe)?;
        let mut rest: &[u8] = &reply.body;
        let mut reader = open_reply(&reply, &mut rest, io.limits)?;
        let data = self.read_item(&mut reader, io)?;
        reader.drain().map_err(ClientError::from_wire)?;
        data.ok_or_else(|| {
            ClientError::Protocol(format!(
                "the response to {method}() ended without a result batch"
            ))
        })
    }

    fn open_stream(
        &mut self,
        method: &str,
        params: &RecordBatch,
        header: bool,
        io: &mut CallIo<'_>,
    ) -> Result<(Self::Stream<'_>, Option<IpcBatch>), ClientError> {
        let body = request_body(params, &RpcRequest::metadata_for(method))?;
        let reply = self.post(&format!("/{method}/init"), body, Repeat::Safe)?;
        let mut rest: &[u8] = &reply.body;
        let header = if header {
            let mut reader = open_reply(&reply, &mut rest, io.limits)?;
            let header = self.read_item(&mut reader, io)?;
            reader.drain().map_err(ClientError::from_wire)?;
            header
        } else {
            None
        };
        let mut turn = Turn::default();
        {
            let mut reader = open_reply(&reply, &mut rest, io.limits)?;
            self.read_output(&mut reader, io, &mut turn)?;
            if turn.failure.is_none() {
                reader.drain().map_err(ClientError::from_wire)?;
            }
        }
        // A stream that fails before its first batch fails to start.
        if turn.batches.is_empty()
            && let Some(err) = turn.failure.take()
        {
            return Err(err);
        }
        let stream = HttpStream {
            transport: self,
            method: method.to_owned(),
            turn,
        };
        Ok((stream, header))
    }

    fn shut(&mut self) -> Result<(), ClientError> {
        // Pooled connections close when the transport drops; there is no
        // session to end on the server.
        Ok(())
    }
}

/// A stream over HTTP: the state token, and a producer's batches received
/// but not yet asked for.
pub struct HttpStream<'a> {
    transport: &'a mut HttpTransport,
    method: String,
    turn: Turn,
}

impl std::fmt::Debug for HttpStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStream")
            .field("method", &self.method)
            .field("pending", &self.turn.batches.len())
            .field("has_token", &self.turn.token.is_some())
            .field("finished", &self.turn.finished)
            .finish_non_exhaustive()
    }
}

impl HttpStream<'_> {
    fn exchange_path(&self) -> String {
        format!("/{}/exchange", self.method)
    }

    /// The token, or the error of a stream that has none left.
    fn token(&self) -> Result<String, ClientError> {
        self.turn
            .token
            .clone()
            .ok_or_else(|| ClientError::Protocol("the stream has no state token left".into()))
    }
}

impl StreamEngine for HttpStream<'_> {
    fn tick(&mut self, io: &mut CallIo<'_>) -> Result<Option<IpcBatch>, ClientError> {
        loop {
            if let Some(batch) = self.turn.batches.pop_front() {
                return Ok(Some(batch));
            }
            if let Some(err) = self.turn.failure.take() {
                self.turn.token = None;
                return Err(err);
            }
            if self.turn.finished || self.turn.token.is_none() {
                return Ok(None);
            }
            // Continue the producer where the last response stopped.
            let md = Metadata::new().with(metadata::STREAM_STATE, self.token()?);
            let body = request_body(&empty_batch(&empty_schema()), &md)?;
            let path = self.exchange_path();
            let reply = self.transport.post(&path, body, Repeat::Safe)?;
            let mut rest: &[u8] = &reply.body;
            let mut reader = open_reply(&reply, &mut rest, io.limits)?;
            let mut turn = Turn::default();
            self.transport.read_output(&mut reader, io, &mut turn)?;
            self.turn = turn;
        }
    }

    fn exchange(
        &mut self,
        input: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        let md = Metadata::new().with(metadata::STREAM_STATE, self.token()?);
        let body = request_body(input, &md)?;
        let path = self.exchange_path();
        let reply = self.transport.post(&path, body, Repeat::Never)?;
        let mut rest: &[u8] = &reply.body;
        let mut reader = open_reply(&reply, &mut rest, io.limits)?;
        let answer = self.transport.read_item(&mut reader, io);
        if answer.is_err() {
            // The error ended the stream on the server.
            self.turn.token = None;
        }
        let Some(mut answer) = answer? else {
            self.turn.token = None;
            return Ok(None);
        };
        match answer.metadata.remove(metadata::STREAM_STATE) {
            Some(token) => {
                self.turn.token = Some(token);
                reader.drain().map_err(ClientError::from_wire)?;
            }
            // A server answers an exchange whose input has no columns as it
            // answers a producer: the token follows the data batch in a
            // batch of its own. Without one the old token stays, as with
            // the reference client.
            None => {
                while let Some(item) = receive(&mut reader, io)? {
                    if let Received::Special(batch, Special::StateToken) = item
                        && let Some(token) = batch.metadata.get(metadata::STREAM_STATE)
                    {
                        self.turn.token = Some(token.to_owned());
                    }
                }
            }
        }
        Ok(Some(answer))
    }

    fn finish(&mut self, cancel: bool, io: &mut CallIo<'_>) -> Result<(), ClientError> {
        self.turn.batches.clear();
        let token = self.turn.token.take();
        let live = !self.turn.finished && self.turn.failure.take().is_none();
        let Some(token) = token.filter(|_| cancel && live) else {
            // Closing needs no request: the server keeps nothing between
            // requests but what the token carried.
            return Ok(());
        };
        let md = Metadata::new()
            .with(metadata::STREAM_STATE, token)
            .with(metadata::CANCEL, "1");
        let body = request_body(&empty_batch(&empty_schema()), &md)?;
        let path = self.exchange_path();
        let reply = self.transport.post(&path, body, Repeat::Never)?;
        let mut rest: &[u8] = &reply.body;
        let mut reader = open_reply(&reply, &mut rest, io.limits)?;
        // What the cancelled stream still says is of no use; its logs are
        // delivered, its error (if any) dropped, as on a pipe.
        loop {
            match receive(&mut reader, io) {
                Ok(Some(_)) | Err(ClientError::Remote { .. }) => {}
                Ok(None) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
}
