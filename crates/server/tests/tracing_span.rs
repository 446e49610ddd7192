//! Every dispatch runs inside an `rpc` span that tracing layers (Sentry,
//! OpenTelemetry) can attach to.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use tracing::field::{Field as TracingField, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};
use vgirpc::wire::ipc::{StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc::{
    CallContext, OutputCollector, ProducerState, RpcError, Server, Stream, TransportKind,
};

/// Service used by this test.
#[vgirpc::service]
pub trait Traced {
    /// Echo.
    fn echo(&self, value: String) -> Result<String, RpcError>;
    /// Emits one batch.
    fn once(&self) -> Result<Stream, RpcError>;
}

struct Impl;

struct Once(bool);

impl ProducerState for Once {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.0 {
            return out.finish();
        }
        self.0 = true;
        tracing::info!("producing");
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![1]))])
    }
}

impl Traced for Impl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        tracing::info!("echoing");
        Ok(value)
    }
    fn once(&self) -> Result<Stream, RpcError> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        Ok(Stream::producer(schema, Once(false)))
    }
}

type Fields = BTreeMap<String, String>;

/// An event's message and the fields of the `rpc` span it happened in.
type Event = (String, Option<Fields>);

/// Records each span's fields, and which span each event happened in.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<BTreeMap<u64, (String, Fields)>>>,
    events: Arc<Mutex<Vec<Event>>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &TracingField, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &TracingField, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S>
    for Capture
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.spans
            .lock()
            .unwrap()
            .insert(id.into_u64(), (name, fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some((_, fields)) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        let span = ctx
            .lookup_current()
            .and_then(|span| {
                self.spans
                    .lock()
                    .unwrap()
                    .get(&span.id().into_u64())
                    .cloned()
            })
            .filter(|(name, _)| name == "rpc")
            .map(|(_, fields)| fields);
        let message = fields.remove("message").unwrap_or_default();
        self.events.lock().unwrap().push((message, span));
    }
}

fn run(input: Vec<u8>) -> Capture {
    let capture = Capture::default();
    let subscriber = Registry::default().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let server = Server::new(TracedServer::new(Impl)).unwrap();
        server
            .serve(Cursor::new(input), std::io::sink(), TransportKind::Pipe)
            .unwrap();
    });
    capture
}

fn span_of(capture: &Capture, message: &str) -> Fields {
    let events = capture.events.lock().unwrap();
    let (_, span) = events
        .iter()
        .find(|(m, _)| m == message)
        .unwrap_or_else(|| panic!("no event {message:?}"));
    span.clone().expect("the event happened inside an rpc span")
}

#[test]
fn unary_calls_run_in_an_rpc_span() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["x"]))]).unwrap();
    let capture =
        run(write_stream_bytes(&schema, [(&batch, &Request::metadata_for("echo"))]).unwrap());
    let span = span_of(&capture, "echoing");
    assert_eq!(span["otel.name"], "rpc echo");
    assert_eq!(span["rpc.system"], "vgi_rpc");
    assert_eq!(span["rpc.service"], "Traced");
    assert_eq!(span["rpc.method"], "echo");
    assert_eq!(span["rpc.method_type"], "unary");
    assert!(!span.contains_key("rpc.stream_id"));
}

#[test]
fn stream_turns_run_in_the_span_with_the_stream_id() {
    let no_params = RecordBatch::new_empty(empty_schema());
    let mut input = write_stream_bytes(
        no_params.schema_ref(),
        [(&no_params, &Request::metadata_for("once"))],
    )
    .unwrap();
    let ticks = empty_schema();
    let mut writer = StreamWriter::try_new(Vec::new(), &ticks).unwrap();
    for _ in 0..2 {
        writer
            .write(&empty_batch(&ticks), &Metadata::new())
            .unwrap();
    }
    input.extend(writer.finish().unwrap());
    let capture = run(input);
    let span = span_of(&capture, "producing");
    assert_eq!(span["rpc.method"], "once");
    assert_eq!(span["rpc.method_type"], "stream");
    assert_eq!(span["rpc.stream_id"].len(), 32);
}
