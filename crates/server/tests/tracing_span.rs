//! Every dispatch runs inside an `rpc` tracing span, so that what a method
//! logs names its call.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;
use vgirpc::wire::ipc::{StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc::{
    CallContext, OutputCollector, ProducerState, RpcError, Server, Stream, TransportKind,
};
use vgirpc_test_support::{Fields, SpanCapture};

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

fn run(input: Vec<u8>) -> SpanCapture {
    let capture = SpanCapture::default();
    let subscriber = Registry::default().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let server = Server::new(TracedServer::new(Impl)).unwrap();
        server
            .serve(Cursor::new(input), std::io::sink(), TransportKind::Pipe)
            .unwrap();
    });
    capture
}

fn span_of(capture: &SpanCapture, message: &str) -> Fields {
    capture
        .span_of(message, "rpc")
        .unwrap_or_else(|| panic!("no event {message:?} inside an rpc span"))
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
