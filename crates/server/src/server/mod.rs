mod hooks;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use vgirpc_wire::describe::{self, DESCRIBE_METHOD, MethodType};
use vgirpc_wire::ipc::{ReadLimits, empty_schema};
use vgirpc_wire::log::{ErrorInfo, quoted};
use vgirpc_wire::metadata::{self, Metadata};
use vgirpc_wire::request::Request;

use crate::active_stream::ActiveStream;
use crate::answer::{Answer, FailureKind, error_batch, log_entries};
use crate::call_span::{CallSpan, SpanStart};
use crate::collector::ResponseBudget;
use crate::context::{CallContext, Peer, TransportKind, new_request_id, random_hex, server_id};
use crate::error::{RpcError, ServeError, catch_panic};
use crate::maybe_ready::MaybeReady;
use crate::observe::{CallRecord, CallStatus, fill_session};
use crate::persist::{self, RestoredState, SavedStream};
use crate::service::{Outcome, Service};
use crate::session::SessionHost;
use crate::stream::{ErasedStream, StreamKind};
use hooks::Observers;

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
    observers: RwLock<Arc<hooks::Observers>>,
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
                observers: RwLock::new(Arc::new(hooks::Observers::at_start())),
            }),
        })
    }

    /// SHA-256 over this service's `__describe__` payload.
    pub fn protocol_hash(&self) -> &str {
        &self.inner.protocol_hash
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
    /// take its next step for `peer`; `request_id` correlates the logs of
    /// this turn.
    pub fn resume(
        &self,
        method: &str,
        saved: SavedStream,
        request_id: String,
        peer: &Peer,
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
        let span = self.call_span(
            &self.observers(),
            &SpanStart {
                method,
                method_type: MethodType::Stream,
                stream_id: Some(stream_id.as_str()),
                auth: &peer.auth,
                metadata: None,
            },
        );
        let mut record = self.new_record(method, MethodType::Stream, peer, &request_id);
        record.stream_id = Some(stream_id);
        Ok(ActiveStream {
            kind: state,
            output_schema,
            request_id,
            method: method.to_owned(),
            transport: peer.transport,
            record,
            started: Instant::now(),
            span,
            session: peer.session.clone(),
            auth: peer.auth.clone(),
            budget: ResponseBudget::default(),
            data_bytes: 0,
            #[cfg(feature = "otel")]
            taken: crate::observe::CallStats::default(),
        })
    }

    /// Resolves one validated request from an anonymous caller: answers
    /// it, or opens its stream.
    pub fn dispatch(&self, request: Request, kind: TransportKind) -> Call {
        self.dispatch_from(request, &Peer::anonymous(kind))
    }

    /// [`Server::dispatch`] for a request from `peer`: its identity reaches
    /// the method ([`CallContext::auth`]) and the call's record, and its
    /// sticky-session support, if any, stays with an opened stream for the
    /// steps this request runs.
    ///
    /// An `async fn` method blocks this thread until it completes (see
    /// [`block_on`](crate::block_on)); async callers use
    /// [`Server::dispatch_async`] instead.
    pub fn dispatch_from(&self, request: Request, peer: &Peer) -> Call {
        // One entry for the whole call: each entry and exit is work for
        // every subscriber layer, and an attach and detach of the
        // OpenTelemetry context when the server is instrumented.
        let route = self.route(&request.method);
        let observers = self.observers();
        let span = self.request_span(&observers, &request, route, peer);
        let _entered = span.enter();
        let call = match self.prepare(&observers, request, route, peer, &span) {
            Ok(call) => call,
            Err(answered) => return *answered,
        };
        let outcome = self.invoke(&call).and_then(MaybeReady::wait);
        self.conclude(call, outcome)
    }

    /// [`Server::dispatch_from`] for async callers: an `async fn` method is
    /// awaited, a plain one runs in place.
    pub async fn dispatch_async(&self, request: Request, peer: &Peer) -> Call {
        let route = self.route(&request.method);
        let observers = self.observers();
        let span = self.request_span(&observers, &request, route, peer);
        let call = match span.in_scope(|| self.prepare(&observers, request, route, peer, &span)) {
            Ok(call) => call,
            Err(answered) => return *answered,
        };
        let outcome = match span.in_scope(|| self.invoke(&call)) {
            Ok(work) => span.instrumented(work.resolve()).await,
            Err(err) => Err(err),
        };
        span.in_scope(|| self.conclude(call, outcome))
    }

    /// The method a request names, looked up once per call.
    fn route(&self, method: &str) -> Route {
        let methods = self.inner.service.methods();
        let index = methods.iter().position(|m| m.name == method);
        Route {
            index,
            method_type: index.map_or(MethodType::Unary, |i| methods[i].method_type),
        }
    }

    /// The spans a request's call runs in, the dispatch span a child of
    /// the caller's when the request names one.
    fn request_span(
        &self,
        observers: &Observers,
        request: &Request,
        route: Route,
        peer: &Peer,
    ) -> CallSpan {
        self.call_span(
            observers,
            &SpanStart {
                method: &request.method,
                method_type: route.method_type,
                stream_id: None,
                auth: &peer.auth,
                metadata: Some(&request.metadata),
            },
        )
    }

    /// `observers` are the ones the whole call reports to, read once: a
    /// hook added meanwhile reaches the next call, not half of this one.
    fn call_span(
        &self,
        #[cfg_attr(
            not(feature = "otel"),
            expect(unused_variables, reason = "only the OpenTelemetry span reads them")
        )]
        observers: &Observers,
        start: &SpanStart<'_>,
    ) -> CallSpan {
        CallSpan {
            tracing: tracing::info_span!(
                target: "vgirpc::call",
                "rpc",
                rpc.service = self.inner.service.protocol_name(),
                rpc.method = start.method,
                rpc.method_type = start.method_type.as_str(),
                rpc.stream_id = start.stream_id,
            ),
            #[cfg(feature = "otel")]
            otel: observers.tracing().map(|tracing| tracing.start(start)),
        }
    }

    /// Everything up to calling the method, inside `span`; requests no
    /// method serves (`__describe__`, unknown names) are answered here, as
    /// the error (boxed: rare, so the common path moves less).
    fn prepare(
        &self,
        observers: &Observers,
        request: Request,
        route: Route,
        peer: &Peer,
        span: &CallSpan,
    ) -> Result<Dispatch, Box<Call>> {
        let started = Instant::now();
        let request_id = request
            .request_id()
            .map(str::to_owned)
            .unwrap_or_else(new_request_id);
        let Route { index, method_type } = route;
        let mut record = self.new_record(&request.method, method_type, peer, &request_id);
        record.stats.record_input(&request.params);
        if observers.wants_params() {
            record.params = Some(request.params.clone());
        }
        if observers.wants_request_data() {
            // Serialising the request costs a copy, so only pay it for hooks.
            record.request_data = vgirpc_wire::ipc::write_stream_bytes(
                request.params.schema_ref(),
                [(&request.params, &Metadata::new())],
            )
            .ok()
            .map(Arc::from);
        }
        if request.method == DESCRIBE_METHOD {
            let (batch, md) = &self.inner.describe;
            let answer = Answer {
                schema: batch.schema(),
                batches: vec![(batch.clone(), md.clone())],
                failure: None,
                record: None,
            };
            let call = finish_answer(answer, record, peer.session.as_deref(), started);
            return Err(Box::new(call));
        }
        let Some(index) = index else {
            // No method ran, so there is no call to record.
            let answer = self.unknown_method(&request.method, &request_id);
            return Err(Box::new(Call::Answer(answer)));
        };
        let ctx = CallContext::for_peer(request_id.as_str(), request.method.as_str(), peer);
        Ok(Dispatch {
            index,
            params: request.params,
            method: request.method,
            request_id,
            peer: peer.clone(),
            ctx,
            record,
            span: span.clone(),
            started,
        })
    }

    /// Starts the method: a plain one runs to completion here.
    fn invoke<'a>(
        &'a self,
        call: &'a Dispatch,
    ) -> Result<MaybeReady<'a, Result<Outcome, RpcError>>, RpcError> {
        catch_panic(|| Ok(self.inner.service.call(call.index, &call.params, &call.ctx)))
    }

    /// Turns what the method returned into the answer or the open stream.
    fn conclude(&self, call: Dispatch, outcome: Result<Outcome, RpcError>) -> Call {
        let Dispatch {
            index,
            method,
            request_id,
            peer,
            ctx,
            mut record,
            span,
            started,
            ..
        } = call;
        let description = &self.inner.service.methods()[index];
        let logs = |schema: &SchemaRef| log_entries(schema, ctx.take_logs(), &request_id);
        let finish = |answer: Answer, record: CallRecord| {
            let call = finish_answer(answer, record, peer.session.as_deref(), started);
            #[cfg(feature = "otel")]
            if let Call::Answer(answer) = &call {
                span.end(answer);
            }
            call
        };
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
                span.record_stream_id(&stream_id);
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
                    method,
                    transport: peer.transport,
                    record,
                    started,
                    span,
                    session: peer.session.clone(),
                    auth: peer.auth.clone(),
                    budget: ResponseBudget::default(),
                    data_bytes: 0,
                    #[cfg(feature = "otel")]
                    taken: crate::observe::CallStats::default(),
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
}

/// Where a request goes: its method's index, if the service has it, and
/// the kind of call (unary for names no method has).
#[derive(Debug, Clone, Copy)]
struct Route {
    index: Option<usize>,
    method_type: MethodType,
}

/// A request on its way to its method, between [`Server::prepare`] and
/// [`Server::conclude`].
struct Dispatch {
    index: usize,
    params: RecordBatch,
    method: String,
    request_id: String,
    peer: Peer,
    ctx: CallContext,
    record: CallRecord,
    span: CallSpan,
    started: Instant,
}

/// Completes a call's record from its answer and attaches it.
fn finish_answer(
    mut answer: Answer,
    mut record: CallRecord,
    session: Option<&dyn SessionHost>,
    started: Instant,
) -> Call {
    for (batch, _) in &answer.batches {
        record.stats.record_output(batch);
    }
    fill_session(&mut record, session);
    if let Some((_, info)) = &answer.failure {
        record.status = CallStatus::Error {
            error_type: info.error_type.clone(),
            message: info.message.clone(),
        };
    }
    record.duration = started.elapsed();
    answer.record = Some(Box::new(record));
    Call::Answer(answer)
}

/// A fresh stream id: 32 lowercase hex characters, like a UUID without dashes.
fn new_stream_id() -> String {
    random_hex(16)
}

/// Servers are shared across connection threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Server>();
};
