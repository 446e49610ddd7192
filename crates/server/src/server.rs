use std::io::{Read, Write};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use vgirpc_wire::WireError;
use vgirpc_wire::describe::{self, DESCRIBE_METHOD, MethodType};
use vgirpc_wire::ipc::{IpcBatch, ReadLimits, StreamReader, StreamWriter, empty_schema};
use vgirpc_wire::log::{ErrorInfo, LogRecord, empty_batch, quoted};
use vgirpc_wire::metadata::{self, Metadata};
use vgirpc_wire::request::{Request, request_error_info};

use crate::context::{CallContext, TransportKind, new_request_id, server_id};
use crate::error::{RpcError, ServeError};
use crate::observe::{CallIdentity, CallRecord, CallStats, CallStatus, DispatchHook};
use crate::persist::{self, RestoredState, SavedStream};
use crate::service::{Outcome, Service};
use crate::session::SessionHost;
use crate::side::{NoSideChannels, SideChannel, SideChannels};
use crate::stream::{AnnotatedBatch, ErasedStream, OutputCollector, StreamKind, coerce_input};

/// Whether a connection has more requests after [`Server::serve_one`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// One request was answered; more may follow.
    Request,
    /// The peer closed the connection between requests.
    Closed,
}

/// Why a call failed, so transports can map failures to their own status
/// codes (HTTP 400/404/500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The request broke the protocol: missing metadata, wrong version,
    /// wrong row count.
    Protocol,
    /// The request named a method the service does not have.
    UnknownMethod,
    /// The method (or decoding its parameters) reported an error.
    Method,
}

/// A complete response: one IPC stream on `schema` holding `batches`.
#[derive(Debug)]
pub struct Answer {
    /// Schema of the response stream.
    pub schema: SchemaRef,
    /// Log batches, then the result or error batch, with their metadata.
    pub batches: Vec<(RecordBatch, Metadata)>,
    /// Set when the answer reports a failure.
    pub failure: Option<(FailureKind, ErrorInfo)>,
    /// What hooks are told about the call, when it reached a method.
    pub record: Option<Box<CallRecord>>,
}

impl Answer {
    fn error(schema: SchemaRef, kind: FailureKind, info: ErrorInfo, request_id: &str) -> Self {
        let batches = vec![error_batch(&schema, &info, request_id)];
        Self {
            schema,
            batches,
            failure: Some((kind, info)),
            record: None,
        }
    }

    /// Writes the answer as one IPC stream and flushes.
    pub fn write_to<W: Write>(&self, writer: &mut W) -> Result<(), ServeError> {
        let mut out = StreamWriter::try_new(&mut *writer, &self.schema)?;
        for (batch, md) in &self.batches {
            out.write(batch, md)?;
        }
        out.finish()?.flush()?;
        Ok(())
    }
}

/// What a request resolved to.
#[derive(Debug)]
pub enum Call {
    /// Answered in full (unary results, errors, `__describe__`).
    Answer(Answer),
    /// A stream that is now open (boxed: it is much larger than an answer).
    Stream(Box<OpenStream>),
}

/// A freshly opened stream: its header (if declared) and its running state.
#[derive(Debug)]
pub struct OpenStream {
    /// The header stream, sent before the data stream; init logs are in it.
    pub header: Option<Answer>,
    /// Log batches from initialization to send at the start of the output
    /// stream when there is no header.
    pub init_logs: Vec<(RecordBatch, Metadata)>,
    /// The running stream.
    pub stream: ActiveStream,
}

/// What one step of a stream produced.
#[derive(Debug)]
pub enum Step {
    /// Logs and one data batch; the stream goes on.
    Continue(Vec<(RecordBatch, Metadata)>),
    /// Final logs; the producer finished.
    Finished(Vec<(RecordBatch, Metadata)>),
    /// The step failed; the batches end with the error batch.
    Failed(Vec<(RecordBatch, Metadata)>, ErrorInfo),
}

/// A running producer or exchange stream, driven one input batch at a time.
pub struct ActiveStream {
    kind: StreamKind,
    output_schema: SchemaRef,
    request_id: String,
    method: String,
    transport: TransportKind,
    /// Accumulates what hooks are told; reset by each [`ActiveStream::take_record`].
    record: CallRecord,
    started: Instant,
    span: tracing::Span,
    /// Sticky-session support for the request now driving the stream.
    session: Option<Arc<dyn SessionHost>>,
}

impl std::fmt::Debug for ActiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveStream")
            .field("method", &self.method)
            .field("output_schema", &self.output_schema)
            .finish_non_exhaustive()
    }
}

impl ActiveStream {
    /// Schema of the output batches.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Schema the client's input batches must have (empty for producers).
    pub fn input_schema(&self) -> SchemaRef {
        match &self.kind {
            StreamKind::Producer(_) => empty_schema(),
            StreamKind::Exchange { input_schema, .. } => input_schema.clone(),
        }
    }

    /// Whether the client drives the stream with data (an exchange).
    pub fn is_exchange(&self) -> bool {
        matches!(self.kind, StreamKind::Exchange { .. })
    }

    /// Correlation id of the request that opened the stream.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Name of the stream method.
    pub fn method(&self) -> &str {
        &self.method
    }

    fn context(&self) -> CallContext {
        CallContext::new(
            self.request_id.as_str(),
            self.method.as_str(),
            self.transport,
        )
        .with_session_host(self.session.clone())
    }

    /// Installs the sticky-session support of the request about to step
    /// the stream: over HTTP each turn is its own request, and the session
    /// travels with the request rather than with the stream.
    pub fn bind_session(&mut self, host: Arc<dyn SessionHost>) {
        self.session = Some(host);
    }

    /// Id shared by every access record of this stream (32 hex characters).
    pub fn stream_id(&self) -> &str {
        self.record.stream_id.as_deref().unwrap_or_default()
    }

    /// The record of the stream's work since the previous call (or since it
    /// opened), ready for [`Server::emit`]; counters start over afterwards.
    pub fn take_record(&mut self) -> CallRecord {
        let mut record = self.record.clone();
        record.duration = self.started.elapsed();
        fill_session(&mut record, self.session.as_deref());
        self.record.request_data = None;
        self.record.stats = CallStats::default();
        self.record.status = CallStatus::Ok;
        self.record.cancelled = false;
        self.started = Instant::now();
        record
    }

    /// Counts batches sent to the client outside [`ActiveStream::step`]
    /// (the header stream, initialization logs).
    pub fn record_output(&mut self, batches: &[(RecordBatch, Metadata)]) {
        for (batch, _) in batches {
            self.record.stats.record_output(batch);
        }
    }

    /// Saves the stream so that [`Server::resume`], in this process or any
    /// other serving the same service, can continue it.
    ///
    /// Fails for states without `#[vgirpc::stream_state]`.
    pub fn save(&self) -> Result<SavedStream, RpcError> {
        let (saved, input_schema) = match &self.kind {
            StreamKind::Producer(state) => (state.save_state()?, empty_schema()),
            StreamKind::Exchange {
                input_schema,
                state,
            } => (state.save_state()?, input_schema.clone()),
        };
        Ok(SavedStream {
            state: persist::encode(&self.method, self.is_exchange(), saved),
            output_schema: self.output_schema.clone(),
            input_schema,
            stream_id: self.stream_id().to_owned(),
        })
    }

    /// Tells the state the client cancelled; the stream must not be stepped again.
    pub fn cancel(&mut self) {
        self.record.cancelled = true;
        let _span = self.span.enter();
        let ctx = self.context();
        let cancelled = catch_panic(|| {
            match &mut self.kind {
                StreamKind::Producer(state) => state.on_cancel(&ctx),
                StreamKind::Exchange { state, .. } => state.on_cancel(&ctx),
            }
            Ok(())
        });
        if let Err(err) = cancelled {
            // The client is gone from this stream; nothing is left to tell it.
            tracing::warn!(method = %self.method, error = %err, "on_cancel failed");
        }
    }

    /// Runs one `produce` (the input is the client's tick) or `exchange`.
    pub fn step(&mut self, input: IpcBatch) -> Step {
        let span = self.span.clone();
        let _span = span.enter();
        if self.is_exchange() {
            // Producer ticks are protocol artifacts, not input.
            self.record.stats.record_input(&input.batch);
        }
        let ctx = self.context();
        let producer_mode = match &self.kind {
            StreamKind::Producer(_) => true,
            StreamKind::Exchange { input_schema, .. } => input_schema.fields().is_empty(),
        };
        let mut collector = OutputCollector::new(self.output_schema.clone(), producer_mode);
        let result = catch_panic(|| match &mut self.kind {
            StreamKind::Producer(state) => state.produce(&mut collector, &ctx),
            StreamKind::Exchange {
                input_schema,
                state,
            } => coerce_input(input_schema, input.batch).and_then(|batch| {
                let input = AnnotatedBatch {
                    batch,
                    metadata: input.metadata,
                };
                state.exchange(&input, &mut collector, &ctx)
            }),
        });
        let finished = collector.is_finished();
        match result.and_then(|()| collector.into_entries(ctx.take_logs())) {
            Ok(entries) => {
                let entries: Vec<_> = entries
                    .into_iter()
                    .map(|(batch, md)| {
                        let md = with_ids(md, &batch, &self.request_id);
                        (batch, md)
                    })
                    .collect();
                self.record_output(&entries);
                if finished {
                    Step::Finished(entries)
                } else {
                    Step::Continue(entries)
                }
            }
            Err(err) => {
                tracing::debug!(method = %self.method, error = %err, "stream step failed");
                let info = err.info().clone();
                self.record.status = CallStatus::Error {
                    error_type: info.error_type.clone(),
                    message: info.message.clone(),
                };
                let entry = error_batch(&self.output_schema, &info, &self.request_id);
                self.record_output(std::slice::from_ref(&entry));
                Step::Failed(vec![entry], info)
            }
        }
    }
}

/// Serves a [`Service`] over any byte-stream connection.
///
/// The server owns no transport: pipe, Unix-socket and HTTP transports hand
/// it byte streams or decoded requests. It is cheap to clone and safe to
/// share between connection threads.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    service: Box<dyn Service>,
    describe: (RecordBatch, Metadata),
    protocol_hash: String,
    limits: ReadLimits,
    started_on: Mutex<Option<TransportKind>>,
    hooks: RwLock<Vec<Arc<dyn DispatchHook>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("protocol", &self.inner.service.protocol_name())
            .field("server_id", &server_id())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for `service` with default limits.
    pub fn new(service: impl Service) -> Result<Self, ServeError> {
        Self::with_limits(service, ReadLimits::default())
    }

    /// A server whose readers reject messages beyond `limits`.
    pub fn with_limits(service: impl Service, limits: ReadLimits) -> Result<Self, ServeError> {
        let describe =
            describe::describe_batch(service.protocol_name(), service.methods(), server_id())?;
        let protocol_hash = describe
            .1
            .get(metadata::PROTOCOL_HASH)
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            inner: Arc::new(Inner {
                service: Box::new(service),
                describe,
                protocol_hash,
                limits,
                started_on: Mutex::new(None),
                hooks: RwLock::new(Vec::new()),
            }),
        })
    }

    /// Adds a hook told about every completed call on every transport.
    pub fn add_hook(&self, hook: impl DispatchHook) {
        self.inner
            .hooks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(hook));
    }

    fn has_hooks(&self) -> bool {
        !self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_empty()
    }

    /// Hands a completed call's record to every hook.
    pub fn emit(&self, record: &CallRecord) {
        let hooks = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for hook in hooks {
            hook.on_call(record);
        }
    }

    /// SHA-256 over this service's `__describe__` payload.
    pub fn protocol_hash(&self) -> &str {
        &self.inner.protocol_hash
    }

    fn new_record(
        &self,
        method: &str,
        method_type: MethodType,
        kind: TransportKind,
        request_id: &str,
    ) -> CallRecord {
        CallRecord {
            protocol: self.inner.service.protocol_name().to_owned(),
            protocol_hash: self.inner.protocol_hash.clone(),
            method: method.to_owned(),
            method_type,
            transport: kind,
            request_id: request_id.to_owned(),
            stream_id: None,
            duration: std::time::Duration::ZERO,
            status: CallStatus::Ok,
            cancelled: false,
            request_data: None,
            stats: CallStats::default(),
            identity: CallIdentity::default(),
            remote_addr: String::new(),
            http_status: None,
            request_state: None,
            response_state: None,
            session_action: None,
            session_id: None,
        }
    }

    /// The served service.
    pub fn service(&self) -> &dyn Service {
        self.inner.service.as_ref()
    }

    /// Identity of this server process.
    pub fn server_id(&self) -> &'static str {
        server_id()
    }

    /// Limits applied when reading IPC streams from peers.
    pub fn limits(&self) -> ReadLimits {
        self.inner.limits
    }

    /// Fires the service's `on_serve_start` hook once per transport kind.
    pub fn notify_serve_start(&self, kind: TransportKind) -> Result<(), ServeError> {
        let mut started = self
            .inner
            .started_on
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *started == Some(kind) {
            return Ok(());
        }
        self.inner
            .service
            .on_serve_start(kind)
            .map_err(|e| ServeError::StartHook(e.to_string()))?;
        *started = Some(kind);
        Ok(())
    }

    /// Whether `method` is unary or a stream; `None` for unknown methods.
    /// `__describe__` is a unary method.
    pub fn method_type(&self, method: &str) -> Option<MethodType> {
        if method == DESCRIBE_METHOD {
            return Some(MethodType::Unary);
        }
        self.inner
            .service
            .methods()
            .iter()
            .find(|m| m.name == method)
            .map(|m| m.method_type)
    }

    /// The error answer for a method the service does not have, listing the
    /// ones it does.
    pub fn unknown_method(&self, method: &str, request_id: &str) -> Answer {
        let mut names: Vec<&str> = self
            .inner
            .service
            .methods()
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        names.sort_unstable();
        let listed: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        let mut info = ErrorInfo::new(
            "MethodNotImplementedError",
            format!(
                "Unknown method: '{}'. Available methods: [{}]",
                quoted(method),
                listed.join(", ")
            ),
        );
        info.error_kind = Some("method_not_implemented".into());
        Answer::error(empty_schema(), FailureKind::UnknownMethod, info, request_id)
    }

    /// Rebuilds a stream saved with [`ActiveStream::save`] so that it can
    /// take its next step; `request_id` correlates the logs of this turn.
    pub fn resume(
        &self,
        method: &str,
        saved: SavedStream,
        request_id: String,
        kind: TransportKind,
    ) -> Result<ActiveStream, RpcError> {
        if self.method_type(method) != Some(MethodType::Stream) {
            return Err(RpcError::runtime_error(format!(
                "{:?} is not a stream method of this service",
                quoted(method)
            )));
        }
        let SavedStream {
            state,
            output_schema,
            input_schema,
            stream_id,
        } = saved;
        let state = match persist::decode(method, &state)? {
            RestoredState::Producer(state) => StreamKind::Producer(state),
            RestoredState::Exchange(state) => StreamKind::Exchange {
                input_schema,
                state,
            },
        };
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format_args!("rpc {method}"),
            rpc.system = "vgi_rpc",
            rpc.service = self.inner.service.protocol_name(),
            rpc.method = %method,
            rpc.method_type = MethodType::Stream.as_str(),
            rpc.stream_id = %stream_id,
        );
        let mut record = self.new_record(method, MethodType::Stream, kind, &request_id);
        record.stream_id = Some(stream_id);
        Ok(ActiveStream {
            kind: state,
            output_schema,
            request_id,
            method: method.to_owned(),
            transport: kind,
            record,
            started: Instant::now(),
            span,
            session: None,
        })
    }

    /// Resolves one validated request: answers it, or opens its stream.
    pub fn dispatch(&self, request: Request, kind: TransportKind) -> Call {
        self.dispatch_with_session(request, kind, None)
    }

    /// [`Server::dispatch`] with a transport's sticky-session support for
    /// the request; an opened stream keeps it for the steps this request
    /// runs.
    pub fn dispatch_with_session(
        &self,
        request: Request,
        kind: TransportKind,
        session: Option<Arc<dyn SessionHost>>,
    ) -> Call {
        let started = Instant::now();
        let request_id = request
            .request_id()
            .map(str::to_owned)
            .unwrap_or_else(new_request_id);
        let methods = self.inner.service.methods();
        let index = methods.iter().position(|m| m.name == request.method);
        let method_type = index.map_or(MethodType::Unary, |i| methods[i].method_type);
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format_args!("rpc {}", request.method),
            rpc.system = "vgi_rpc",
            rpc.service = self.inner.service.protocol_name(),
            rpc.method = %request.method,
            rpc.method_type = method_type.as_str(),
            rpc.stream_id = tracing::field::Empty,
        );
        #[cfg(feature = "otel")]
        crate::otel::adopt_remote_parent(&span, &request.metadata);
        let _entered = span.enter();

        let mut record = self.new_record(&request.method, method_type, kind, &request_id);
        record.stats.record_input(&request.params);
        if self.has_hooks() {
            // Serialising the request costs a copy, so only pay it for hooks.
            record.request_data = vgirpc_wire::ipc::write_stream_bytes(
                request.params.schema_ref(),
                [(&request.params, &Metadata::new())],
            )
            .ok()
            .map(Arc::from);
        }
        let finish = |mut answer: Answer, mut record: CallRecord| {
            for (batch, _) in &answer.batches {
                record.stats.record_output(batch);
            }
            fill_session(&mut record, session.as_deref());
            if let Some((_, info)) = &answer.failure {
                record.status = CallStatus::Error {
                    error_type: info.error_type.clone(),
                    message: info.message.clone(),
                };
            }
            record.duration = started.elapsed();
            answer.record = Some(Box::new(record));
            Call::Answer(answer)
        };

        if request.method == DESCRIBE_METHOD {
            let (batch, md) = &self.inner.describe;
            let answer = Answer {
                schema: batch.schema(),
                batches: vec![(batch.clone(), md.clone())],
                failure: None,
                record: None,
            };
            return finish(answer, record);
        }
        let Some(index) = index else {
            // No method ran, so there is no call to record.
            return Call::Answer(self.unknown_method(&request.method, &request_id));
        };
        let description = &methods[index];
        let ctx = CallContext::new(request_id.as_str(), request.method.as_str(), kind)
            .with_session_host(session.clone());
        let outcome = catch_panic(|| self.inner.service.call(index, &request.params, &ctx));
        let logs = |schema: &SchemaRef| log_entries(schema, ctx.take_logs(), &request_id);
        match (description.method_type, outcome) {
            (_, Ok(Outcome::Unary(result))) => {
                let schema = result.schema();
                let mut batches = logs(&schema);
                batches.push((result, Metadata::new()));
                let answer = Answer {
                    schema,
                    batches,
                    failure: None,
                    record: None,
                };
                finish(answer, record)
            }
            (MethodType::Unary, Err(err)) => {
                let schema = description.result_schema.clone();
                let mut batches = logs(&schema);
                batches.push(error_batch(&schema, err.info(), &request_id));
                let answer = Answer {
                    schema,
                    batches,
                    failure: Some((FailureKind::Method, err.info().clone())),
                    record: None,
                };
                finish(answer, record)
            }
            (MethodType::Stream, Err(err)) => {
                tracing::debug!(error = %err, "stream init failed");
                record.stream_id = Some(new_stream_id());
                let answer = Answer::error(
                    empty_schema(),
                    FailureKind::Method,
                    err.info().clone(),
                    &request_id,
                );
                finish(answer, record)
            }
            (_, Ok(Outcome::Stream(stream))) => {
                let ErasedStream {
                    kind: state,
                    output_schema,
                    header,
                } = stream;
                let stream_id = new_stream_id();
                span.record("rpc.stream_id", stream_id.as_str());
                record.stream_id = Some(stream_id);
                let (header, init_logs) = match header {
                    Some(header) => {
                        let schema = header.schema();
                        let mut batches = logs(&schema);
                        batches.push((header, Metadata::new()));
                        let answer = Answer {
                            schema,
                            batches,
                            failure: None,
                            record: None,
                        };
                        (Some(answer), Vec::new())
                    }
                    None => (None, logs(&output_schema)),
                };
                let mut stream = ActiveStream {
                    kind: state,
                    output_schema,
                    request_id,
                    method: request.method,
                    transport: kind,
                    record,
                    started,
                    span: span.clone(),
                    session: session.clone(),
                };
                if let Some(header) = &header {
                    stream.record_output(&header.batches);
                }
                stream.record_output(&init_logs);
                Call::Stream(Box::new(OpenStream {
                    header,
                    init_logs,
                    stream,
                }))
            }
        }
    }

    /// Answers requests on one connection until the peer closes it.
    ///
    /// Returns `Ok(())` on a clean close. A peer that sends bytes which are
    /// not Arrow IPC gets an error response first, then the connection ends,
    /// because the byte stream cannot be resynchronised.
    pub fn serve<R: Read, W: Write>(
        &self,
        reader: R,
        writer: W,
        kind: TransportKind,
    ) -> Result<(), ServeError> {
        self.serve_with(reader, writer, kind, &NoSideChannels)
    }

    /// [`Server::serve`] with side channels (shared memory) the transport offers.
    pub fn serve_with<R: Read, W: Write>(
        &self,
        mut reader: R,
        mut writer: W,
        kind: TransportKind,
        side: &dyn SideChannels,
    ) -> Result<(), ServeError> {
        self.notify_serve_start(kind)?;
        let outcome = loop {
            match self.serve_one(&mut reader, &mut writer, kind, side) {
                Ok(Served::Request) => {}
                Ok(Served::Closed) => break Ok(()),
                Err(ServeError::Io(e)) if is_disconnect(&e) => break Ok(()),
                Err(ServeError::Wire(WireError::Io(e))) if is_disconnect(&e) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        side.connection_closed();
        outcome
    }

    /// Reads one request from `reader` and answers it on `writer`.
    pub fn serve_one<R: Read, W: Write>(
        &self,
        reader: &mut R,
        writer: &mut W,
        kind: TransportKind,
        side: &dyn SideChannels,
    ) -> Result<Served, ServeError> {
        let mut request_stream = match StreamReader::try_open(&mut *reader, self.inner.limits) {
            Ok(Some(stream)) => stream,
            Ok(None) => return Ok(Served::Closed),
            Err(err) => return Err(reject_stream(writer, err)),
        };
        let first = match request_stream.next_batch() {
            Ok(first) => first,
            Err(err) => return Err(reject_stream(writer, err)),
        };
        // Draining before any validation keeps the byte stream aligned on
        // the next request even when this one is rejected.
        if let Err(err) = request_stream.drain() {
            return Err(reject_stream(writer, err));
        }
        let request = first
            .ok_or_else(|| WireError::Protocol("request stream carried no batch".into()))
            .and_then(Request::from_batch);
        let request = match request {
            Ok(request) => request,
            Err(err) => {
                let answer = Answer::error(
                    empty_schema(),
                    FailureKind::Protocol,
                    request_error_info(&err),
                    "",
                );
                answer.write_to(writer)?;
                return Ok(Served::Request);
            }
        };
        let channel = match side.attach(&request.metadata) {
            Ok(channel) => channel,
            Err(err) => {
                let answer = Answer::error(
                    empty_schema(),
                    FailureKind::Protocol,
                    err.info().clone(),
                    "",
                );
                answer.write_to(writer)?;
                return Ok(Served::Request);
            }
        };
        match self.dispatch(request, kind) {
            Call::Answer(answer) => {
                let answer = offload(answer, channel.as_deref());
                answer.write_to(writer)?;
                if let Some(record) = &answer.record {
                    self.emit(record);
                }
            }
            Call::Stream(open) => {
                self.drive_stream(reader, writer, *open, channel.as_deref())?;
            }
        }
        Ok(Served::Request)
    }

    /// Runs the lockstep phase of a stream over a byte stream (WIRE_PROTOCOL §9).
    fn drive_stream<R: Read, W: Write>(
        &self,
        reader: &mut R,
        writer: &mut W,
        open: OpenStream,
        channel: Option<&dyn SideChannel>,
    ) -> Result<(), ServeError> {
        let OpenStream {
            header,
            init_logs,
            mut stream,
        } = open;
        if let Some(header) = header {
            header.write_to(writer)?;
        }
        let mut input = StreamReader::try_open(&mut *reader, self.inner.limits)?.ok_or(
            WireError::Truncated {
                context: "stream input schema",
            },
        )?;
        let output_schema = stream.output_schema().clone();
        let mut out = StreamWriter::try_new(&mut *writer, &output_schema)?;
        for (batch, md) in &init_logs {
            out.write(batch, md)?;
        }
        out.get_mut().flush()?;

        let mut connection_error = None;
        loop {
            let batch = match input.next_batch() {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(err) => {
                    let info = request_error_info(&err);
                    let (batch, md) = error_batch(&output_schema, &info, stream.request_id());
                    // The peer may be gone; the read error is what ends the connection.
                    let _ = out.write(&batch, &md);
                    connection_error = Some(err);
                    break;
                }
            };
            if batch.metadata.contains(metadata::CANCEL) {
                stream.cancel();
                break;
            }
            let resolved = match channel {
                Some(channel) => channel.resolve(batch),
                None => Ok(batch),
            };
            let batch = match resolved {
                Ok(resolved) => resolved,
                Err(err) => {
                    let (batch, md) = error_batch(&output_schema, err.info(), stream.request_id());
                    out.write(&batch, &md)?;
                    break;
                }
            };
            let (entries, done) = match stream.step(batch) {
                Step::Continue(entries) => (entries, false),
                Step::Finished(entries) | Step::Failed(entries, _) => (entries, true),
            };
            for (batch, md) in entries {
                let (batch, md) = match channel {
                    Some(channel) => channel.offload(batch, md),
                    None => (batch, md),
                };
                out.write(&batch, &md)?;
            }
            out.get_mut().flush()?;
            if done {
                break;
            }
        }
        out.finish()?.flush()?;
        // On a byte stream the whole stream is one call: one record.
        self.emit(&stream.take_record());
        if let Some(err) = connection_error {
            return Err(err.into());
        }
        // The client ends its input stream once it has seen ours end; reading
        // up to its EOS leaves the connection ready for the next request.
        input.drain()?;
        Ok(())
    }
}

/// Runs user code (a method, a stream step), turning a panic into the
/// error the client receives, so one bad call never ends the connection
/// or the worker.
fn catch_panic<T>(user_code: impl FnOnce() -> Result<T, RpcError>) -> Result<T, RpcError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(user_code))
        .unwrap_or_else(|payload| Err(RpcError::panicked(payload.as_ref())))
}

/// Records what the call did with sticky sessions; records of servers
/// without sticky sessions leave both fields out.
fn fill_session(record: &mut CallRecord, session: Option<&dyn SessionHost>) {
    if let Some(host) = session {
        record.session_action = Some(host.action().as_str().to_owned());
        record.session_id = host.session_id();
    }
}

/// Moves an answer's data batches into the side channel where it has room.
fn offload(mut answer: Answer, channel: Option<&dyn SideChannel>) -> Answer {
    if let Some(channel) = channel {
        answer.batches = answer
            .batches
            .into_iter()
            .map(|(batch, md)| channel.offload(batch, md))
            .collect();
    }
    answer
}

/// Answers a request stream that is not valid Arrow IPC, then reports the
/// failure so the caller ends the connection.
fn reject_stream<W: Write>(writer: &mut W, err: WireError) -> ServeError {
    if let WireError::Io(e) = &err
        && is_disconnect(e)
    {
        return ServeError::Wire(err);
    }
    let answer = Answer::error(
        empty_schema(),
        FailureKind::Protocol,
        request_error_info(&err),
        "",
    );
    // The peer may already be gone; the original error is what matters.
    let _ = answer.write_to(writer);
    ServeError::Wire(err)
}

/// Log and error batches carry the server and request ids so clients can
/// correlate them.
fn with_ids(mut md: Metadata, batch: &RecordBatch, request_id: &str) -> Metadata {
    if batch.num_rows() == 0 && md.contains(metadata::LOG_LEVEL) {
        md.insert(metadata::SERVER_ID, server_id());
        if !request_id.is_empty() {
            md.insert(metadata::REQUEST_ID, request_id);
        }
    }
    md
}

fn log_entries(
    schema: &SchemaRef,
    logs: Vec<LogRecord>,
    request_id: &str,
) -> Vec<(RecordBatch, Metadata)> {
    logs.into_iter()
        .map(|record| {
            let batch = empty_batch(schema);
            let md = with_ids(record.to_metadata(), &batch, request_id);
            (batch, md)
        })
        .collect()
}

/// The zero-row EXCEPTION batch reporting `info` on `schema`, carrying this
/// server's id and `request_id` (when not empty), as every transport sends it.
pub fn error_batch(
    schema: &SchemaRef,
    info: &ErrorInfo,
    request_id: &str,
) -> (RecordBatch, Metadata) {
    let batch = empty_batch(schema);
    let md = with_ids(info.to_log_record().to_metadata(), &batch, request_id);
    (batch, md)
}

/// A fresh stream id: 32 lowercase hex characters, like a UUID without dashes.
fn new_stream_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
    )
}

/// Servers are shared across connection threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Server>();
};
