//! A stream between its steps: the state, its schemas and what hooks are
//! told about it.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use vgirpc_wire::ipc::{IpcBatch, empty_schema};
use vgirpc_wire::log::ErrorInfo;
use vgirpc_wire::metadata::Metadata;

use crate::answer::{error_batch, with_ids};
use crate::auth::AuthContext;
use crate::collector::{OutputCollector, ResponseBudget};
use crate::conform::coerce_input;
use crate::context::{CallContext, TransportKind};
use crate::error::{RpcError, catch_panic};
use crate::maybe_ready::MaybeReady;
use crate::observe::{CallRecord, CallStats, CallStatus, fill_session};
use crate::persist::{self, SavedStream};
use crate::session::SessionHost;
use crate::state::AnnotatedBatch;
use crate::stream::StreamKind;

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
    pub(crate) kind: StreamKind,
    pub(crate) output_schema: SchemaRef,
    pub(crate) request_id: String,
    pub(crate) method: String,
    pub(crate) transport: TransportKind,
    /// Accumulates what hooks are told; reset by each [`ActiveStream::take_record`].
    pub(crate) record: CallRecord,
    pub(crate) started: Instant,
    pub(crate) span: crate::call_span::CallSpan,
    /// Sticky-session support for the request now driving the stream.
    pub(crate) session: Option<Arc<dyn SessionHost>>,
    /// Who drives the stream.
    pub(crate) auth: Arc<AuthContext>,
    /// What the transport's response can still take, for the next call.
    pub(crate) budget: ResponseBudget,
    /// Data bytes emitted since the stream was opened or resumed here.
    pub(crate) data_bytes: u64,
    /// Work of the records already taken while the span runs, for its
    /// outcome attributes.
    #[cfg(feature = "otel")]
    pub(crate) taken: CallStats,
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
    /// What the response the next [`step`](Self::step)'s output joins can
    /// still take; the state sees it on its [`OutputCollector`]. Transports
    /// with caps set it before each step.
    pub fn set_response_budget(&mut self, budget: ResponseBudget) {
        self.budget = budget;
    }

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
        .with_auth(self.auth.clone())
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
    /// opened), ready for [`Server::emit`](crate::Server::emit); counters start over afterwards.
    pub fn take_record(&mut self) -> CallRecord {
        let mut record = self.record.clone();
        record.duration = self.started.elapsed();
        fill_session(&mut record, self.session.as_deref());
        #[cfg(feature = "otel")]
        {
            self.taken = crate::otel::sum(&self.taken, &record.stats);
        }
        self.record.request_data = None;
        self.record.stats = CallStats::default();
        self.record.status = CallStatus::Ok;
        self.record.cancelled = false;
        self.started = Instant::now();
        record
    }

    /// The work done since the span began.
    #[cfg(feature = "otel")]
    fn span_stats(&self) -> CallStats {
        crate::otel::sum(&self.taken, &self.record.stats)
    }

    /// Counts batches sent to the client outside [`ActiveStream::step`]
    /// (the header stream, initialization logs).
    pub fn record_output(&mut self, batches: &[(RecordBatch, Metadata)]) {
        for (batch, _) in batches {
            self.record.stats.record_output(batch);
        }
    }

    /// Saves the stream so that [`Server::resume`](crate::Server::resume), in this process or any
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

    /// Runs one `produce` (the input is the client's tick) or `exchange`,
    /// blocking this thread while an async state awaits (see
    /// [`block_on`](crate::block_on)).
    pub fn step(&mut self, input: IpcBatch) -> Step {
        let span = self.span.clone();
        let _span = span.enter();
        let (ctx, mut collector, input) = self.begin_turn(input);
        let result = input.and_then(|input| {
            catch_panic(|| Ok(run_state(&mut self.kind, &input, &mut collector, &ctx)))?.wait()
        });
        self.end_turn(result, collector, &ctx)
    }

    /// [`ActiveStream::step`] for async callers: an async state is awaited,
    /// a sync one runs in place.
    pub async fn step_async(&mut self, input: IpcBatch) -> Step {
        let span = self.span.clone();
        let (ctx, mut collector, input) = span.in_scope(|| self.begin_turn(input));
        let result = match input {
            Ok(input) => {
                let work = span.in_scope(|| {
                    catch_panic(|| Ok(run_state(&mut self.kind, &input, &mut collector, &ctx)))
                });
                match work {
                    Ok(work) => span.instrumented(work.resolve()).await,
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        };
        span.in_scope(|| self.end_turn(result, collector, &ctx))
    }

    /// Counts the input and prepares what the state's step is given; an
    /// exchange's input is checked against its declared schema first.
    fn begin_turn(
        &mut self,
        input: IpcBatch,
    ) -> (
        CallContext,
        OutputCollector,
        Result<AnnotatedBatch, RpcError>,
    ) {
        let ctx = self.context();
        let (producer_mode, input) = match &self.kind {
            StreamKind::Producer(_) => (true, Ok(input)),
            StreamKind::Exchange { input_schema, .. } => {
                // Producer ticks are protocol artifacts, not input.
                self.record.stats.record_input(&input.batch);
                let coerced = coerce_input(input_schema, input.batch).map(|batch| AnnotatedBatch {
                    batch,
                    metadata: input.metadata,
                });
                (input_schema.fields().is_empty(), coerced)
            }
        };
        let collector = OutputCollector::new(
            self.output_schema.clone(),
            producer_mode,
            self.budget,
            self.data_bytes,
        );
        (ctx, collector, input)
    }

    /// Turns what the state's step did into the batches the client receives.
    fn end_turn(
        &mut self,
        result: Result<(), RpcError>,
        collector: OutputCollector,
        ctx: &CallContext,
    ) -> Step {
        let finished = collector.is_finished();
        self.data_bytes = collector.total_data_bytes();
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
                    #[cfg(feature = "otel")]
                    self.span.succeed(&self.span_stats());
                    Step::Finished(entries)
                } else {
                    Step::Continue(entries)
                }
            }
            Err(err) => {
                tracing::debug!(method = %self.method, error = %err, "stream step failed");
                let info = err.info().clone();
                #[cfg(feature = "otel")]
                self.span.fail(&info, &self.span_stats());
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

/// Starts the state's step; `input` is ignored by producers.
fn run_state<'a>(
    kind: &'a mut StreamKind,
    input: &'a AnnotatedBatch,
    out: &'a mut OutputCollector,
    ctx: &'a CallContext,
) -> MaybeReady<'a, Result<(), RpcError>> {
    match kind {
        StreamKind::Producer(state) => state.produce(out, ctx),
        StreamKind::Exchange { state, .. } => state.exchange(input, out, ctx),
    }
}
