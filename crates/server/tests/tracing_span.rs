//! Every dispatch runs inside an `rpc` tracing span, so that what a method
//! logs names its call.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod echo;
}

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use common::echo::{EchoImpl, EchoServer, echo_request};
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

/// A service with a stream method, for the span of a stream's turns.
#[vgirpc::service]
pub trait Streams {
    /// Emits one batch.
    fn once(&self) -> Result<Stream, RpcError>;
}

struct StreamsImpl;

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

impl Streams for StreamsImpl {
    fn once(&self) -> Result<Stream, RpcError> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        Ok(Stream::producer(schema, Once(false)))
    }
}

/// Serves `input` with the server `build` makes under a subscriber that
/// records every event with its span.
fn run(build: impl FnOnce() -> Server, input: Vec<u8>) -> SpanCapture {
    let capture = SpanCapture::default();
    let subscriber = Registry::default().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        build()
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
    let capture = run(
        || Server::new(EchoServer::new(EchoImpl)).unwrap(),
        echo_request(&Request::metadata_for("echo")),
    );
    let span = span_of(&capture, "echoing");
    assert_eq!(span["rpc.service"], "Echo");
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
    let capture = run(
        || Server::new(StreamsServer::new(StreamsImpl)).unwrap(),
        input,
    );
    let span = span_of(&capture, "producing");
    assert_eq!(span["rpc.method"], "once");
    assert_eq!(span["rpc.method_type"], "stream");
    assert_eq!(span["rpc.stream_id"].len(), 32);
}
