//! With the `sentry` feature, calls reach Sentry as the reference's
//! `SentryConfig` describes: checked on the events and envelopes the SDK's
//! test transport captures. docs/observability.md maps each of the
//! reference's Sentry tests to the test here that covers it.
#![cfg(feature = "sentry")]

mod context;
mod errors;
mod ids;
mod params;
mod performance;

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use sentry_core::protocol::{Context, EnvelopeItem, Event, Map, SpanStatus, Transaction, Value};
use sentry_core::test::{with_captured_envelopes_options, with_captured_events};
use sentry_core::{ClientOptions, Envelope};
use vgirpc::sentry::SentryConfig;
use vgirpc::transport::Call;
use vgirpc::wire::ipc::{StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc::{
    ArrowStruct, CallContext, OutputCollector, Peer, ProducerState, RpcError, Server, Stream,
    TransportKind,
};

/// A request of the VGI protocol wrapping another.
#[derive(Debug, Clone, ArrowStruct)]
pub struct Bind {
    /// The wrapped call.
    pub bind_call: BindCall,
}

/// The wrapped call.
#[derive(Debug, Clone, ArrowStruct)]
pub struct BindCall {
    /// Transaction id.
    pub transaction_id: String,
}

/// A request carrying the ids itself, one level down.
#[derive(Debug, Clone, ArrowStruct)]
pub struct Open {
    /// Attach id.
    pub attach_id: Vec<u8>,
    /// Transaction id, when there is one.
    pub transaction_id: Option<Vec<u8>>,
}

/// Service used by these tests.
#[vgirpc::service]
pub trait Reported {
    /// Echo.
    fn echo(&self, value: String) -> Result<String, RpcError>;
    /// Always fails.
    fn fail(&self, value: String) -> Result<String, RpcError>;
    /// Fails as the reference's `PermissionError`.
    fn denied(&self) -> Result<(), RpcError>;
    /// Fails, with parameters worth recording.
    fn search(
        &self,
        table: String,
        query: String,
        password: String,
        limit: i64,
    ) -> Result<i64, RpcError>;
    /// Succeeds, with parameters of every primitive type.
    fn scan(
        &self,
        table: String,
        limit: i64,
        include_archived: bool,
        ratio: f64,
        columns: Vec<String>,
    ) -> Result<i64, RpcError>;
    /// Fails, carrying an attach id.
    fn attach(&self, attach_id: Vec<u8>) -> Result<i64, RpcError>;
    /// Fails, carrying an attach id as hex text.
    fn attach_hex(&self, attach_id: String) -> Result<i64, RpcError>;
    /// Fails, carrying a number where an id would be.
    fn attach_number(&self, attach_id: i64) -> Result<i64, RpcError>;
    /// Fails, carrying a transaction id two levels down.
    fn bind(&self, request: Bind) -> Result<i64, RpcError>;
    /// Fails, carrying the ids one level down.
    fn open(&self, request: Open) -> Result<i64, RpcError>;
    /// A stream whose first step fails.
    fn broken(&self) -> Result<Stream, RpcError>;
    /// A stream of three batches.
    fn count(&self) -> Result<Stream, RpcError>;
}

struct Broken;

impl ProducerState for Broken {
    fn produce(&mut self, _: &mut OutputCollector, _: &CallContext) -> Result<(), RpcError> {
        Err(RpcError::runtime_error("stream broke"))
    }
}

struct Count(i64);

impl ProducerState for Count {
    fn produce(&mut self, out: &mut OutputCollector, _: &CallContext) -> Result<(), RpcError> {
        if self.0 == 0 {
            return out.finish();
        }
        let batch = RecordBatch::try_new(
            value_schema(),
            vec![Arc::new(arrow_array::Int64Array::from(vec![self.0]))],
        )
        .map_err(|err| RpcError::runtime_error(err.to_string()))?;
        self.0 -= 1;
        out.emit(batch)
    }
}

fn value_schema() -> arrow_schema::SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
}

struct Impl;

impl Reported for Impl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
    fn fail(&self, value: String) -> Result<String, RpcError> {
        Err(RpcError::value_error(format!("bad {value}")))
    }
    fn denied(&self) -> Result<(), RpcError> {
        Err(RpcError::new("PermissionError", "forbidden"))
    }
    fn search(&self, _: String, _: String, _: String, _: i64) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("search failed"))
    }
    fn scan(&self, _: String, _: i64, _: bool, _: f64, _: Vec<String>) -> Result<i64, RpcError> {
        Ok(0)
    }
    fn attach(&self, _: Vec<u8>) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("attach failed"))
    }
    fn attach_hex(&self, _: String) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("attach failed"))
    }
    fn attach_number(&self, _: i64) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("attach failed"))
    }
    fn bind(&self, _: Bind) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("bind failed"))
    }
    fn open(&self, _: Open) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("open failed"))
    }
    fn broken(&self) -> Result<Stream, RpcError> {
        Ok(Stream::producer(value_schema(), Broken))
    }
    fn count(&self) -> Result<Stream, RpcError> {
        Ok(Stream::producer(value_schema(), Count(3)))
    }
}

fn text(value: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![value]))
}

/// Dispatches `method` with `columns` from `peer` and tells the hooks.
fn call(server: &Server, peer: &Peer, method: &str, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), array.null_count() > 0))
        .collect();
    let params = if fields.is_empty() {
        Ok(RecordBatch::new_empty(empty_schema()))
    } else {
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
    }
    .unwrap();
    let request = Request {
        method: method.to_owned(),
        params,
        metadata: Request::metadata_for(method),
    };
    match server.dispatch_from(request, peer) {
        Call::Answer(answer) => server.emit(answer.record.as_deref().unwrap()),
        Call::Stream(_) => panic!("{method} is unary"),
    }
}

fn anonymous() -> Peer {
    Peer::anonymous(TransportKind::Pipe)
}

/// Events from `calls` against a server built while the test client is
/// bound, configured by `config` when given.
fn events(config: Option<SentryConfig>, calls: impl FnOnce(&Server)) -> Vec<Event<'static>> {
    with_captured_events(|| {
        let server = Server::new(ReportedServer::new(Impl)).unwrap();
        if let Some(config) = config {
            server.instrument_sentry(config);
        }
        calls(&server);
    })
}

/// The one event `calls` produce.
fn event(config: Option<SentryConfig>, calls: impl FnOnce(&Server)) -> Event<'static> {
    let mut events = events(config, calls);
    assert_eq!(events.len(), 1, "one event expected: {events:?}");
    events.remove(0)
}

/// Envelope items from `calls` against a server instrumented by `config`,
/// every transaction sampled.
fn items(config: SentryConfig, calls: impl FnOnce(&Server)) -> Vec<EnvelopeItem> {
    let envelopes: Vec<Envelope> = with_captured_envelopes_options(
        || {
            let server = Server::new(ReportedServer::new(Impl)).unwrap();
            server.instrument_sentry(config);
            calls(&server);
        },
        ClientOptions::new().traces_sample_rate(1.0),
    );
    envelopes
        .into_iter()
        .flat_map(|envelope| envelope.into_items())
        .collect()
}

fn transactions(items: &[EnvelopeItem]) -> Vec<&Transaction<'static>> {
    items
        .iter()
        .filter_map(|item| match item {
            EnvelopeItem::Transaction(t) => Some(&**t),
            _ => None,
        })
        .collect()
}

/// A transaction's status and span data.
fn trace<'a>(
    transaction: &'a Transaction<'static>,
) -> (Option<SpanStatus>, &'a Map<String, Value>) {
    match transaction.contexts.get("trace") {
        Some(Context::Trace(trace)) => (trace.status, &trace.data),
        other => panic!("trace context: {other:?}"),
    }
}

fn tag<'a>(event: &'a Event<'static>, key: &str) -> Option<&'a str> {
    event.tags.get(key).map(String::as_str)
}

fn fail(server: &Server) {
    call(server, &anonymous(), "fail", vec![("value", text("x"))]);
}

/// The request bytes of the stream `method` and one tick of its input.
fn stream_input(method: &str) -> Vec<u8> {
    let no_params = RecordBatch::new_empty(empty_schema());
    let mut input = write_stream_bytes(
        no_params.schema_ref(),
        [(&no_params, &Request::metadata_for(method))],
    )
    .unwrap();
    let ticks = empty_schema();
    let mut writer = StreamWriter::try_new(Vec::new(), &ticks).unwrap();
    for _ in 0..4 {
        writer
            .write(&empty_batch(&ticks), &Metadata::new())
            .unwrap();
    }
    input.extend(writer.finish().unwrap());
    input
}

/// Serves the stream `method` to its end over an in-memory pipe.
fn serve_stream(server: &Server, method: &str) {
    server
        .serve(
            std::io::Cursor::new(stream_input(method)),
            std::io::sink(),
            TransportKind::Pipe,
        )
        .unwrap();
}
