//! A server driven over in-memory byte streams: every answer a client
//! relies on, and every way a peer can send bad input.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::{IpcBatch, StreamReader, StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::Request;
use vgirpc::{
    AnnotatedBatch, CallContext, ExchangeState, OutputCollector, ProducerState, RpcError, Server,
    Stream, TransportKind,
};

/// Service used by these tests.
#[vgirpc::service]
pub trait Probe {
    /// Echo.
    fn echo(&self, value: String) -> Result<String, RpcError>;
    /// Fails with a ValueError after logging.
    fn fail(&self, ctx: &CallContext, message: String) -> Result<i64, RpcError>;
    /// Optional parameter with a default.
    fn greet(
        &self,
        name: Option<String>,
        #[default("hi")] greeting: String,
    ) -> Result<String, RpcError>;
    /// Counts to `n`.
    fn count(&self, n: i64) -> Result<Stream, RpcError>;
    /// Doubles its input.
    fn double(&self) -> Result<Stream, RpcError>;
    /// Panics with `message`.
    fn explode(&self, message: String) -> Result<i64, RpcError>;
    /// A producer whose first step panics.
    fn explode_later(&self) -> Result<Stream, RpcError>;
}

struct Exploder;

impl ProducerState for Exploder {
    fn produce(&mut self, _out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        panic!("a step went wrong");
    }
}

struct ProbeImpl;

struct Counter {
    n: i64,
    at: i64,
}

impl ProducerState for Counter {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.at == self.n {
            return out.finish();
        }
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.at]))])?;
        self.at += 1;
        Ok(())
    }
}

struct Doubler;

impl ExchangeState for Doubler {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let values = input
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let doubled: Float64Array = values.iter().map(|v| v.map(|v| v * 2.0)).collect();
        out.emit_arrays(vec![Arc::new(doubled)])
    }
}

fn int_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, true)]))
}

fn float_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, true)]))
}

impl Probe for ProbeImpl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
    fn fail(&self, ctx: &CallContext, message: String) -> Result<i64, RpcError> {
        ctx.warn("about to fail");
        Err(RpcError::value_error(message))
    }
    fn greet(&self, name: Option<String>, greeting: String) -> Result<String, RpcError> {
        Ok(format!(
            "{greeting} {}",
            name.as_deref().unwrap_or("nobody")
        ))
    }
    fn count(&self, n: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(int_schema(), Counter { n, at: 0 }))
    }
    fn double(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(float_schema(), float_schema(), Doubler))
    }
    fn explode(&self, message: String) -> Result<i64, RpcError> {
        panic!("{message}");
    }
    fn explode_later(&self) -> Result<Stream, RpcError> {
        Ok(Stream::producer(int_schema(), Exploder))
    }
}

fn server() -> Server {
    Server::new(ProbeServer::new(ProbeImpl)).unwrap()
}

fn string_params(name: &str, value: Option<&str>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, true)]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))]).unwrap()
}

fn request_bytes(batch: &RecordBatch, md: &Metadata) -> Vec<u8> {
    write_stream_bytes(batch.schema_ref(), [(batch, md)]).unwrap()
}

fn call_bytes(method: &str, batch: &RecordBatch) -> Vec<u8> {
    request_bytes(batch, &Request::metadata_for(method))
}

/// Runs the server over `input` and returns every IPC stream it wrote.
fn serve(input: Vec<u8>) -> (Result<(), vgirpc::ServeError>, Vec<Vec<IpcBatch>>) {
    let mut output = Vec::new();
    let result = server().serve(Cursor::new(input), &mut output, TransportKind::Pipe);
    let mut cursor = Cursor::new(output);
    let mut streams = Vec::new();
    while let Some(mut reader) = StreamReader::try_open(&mut cursor, Default::default()).unwrap() {
        let mut batches = Vec::new();
        while let Some(batch) = reader.next_batch().unwrap() {
            batches.push(batch);
        }
        streams.push(batches);
    }
    (result, streams)
}

fn error_of(stream: &[IpcBatch]) -> vgirpc::wire::log::ErrorInfo {
    let last = stream.last().expect("an error batch");
    match classify(&last.batch, &last.metadata) {
        BatchKind::Error(info) => info,
        other => panic!("expected an error batch, got {other:?}"),
    }
}

fn string_result(stream: &[IpcBatch]) -> String {
    let last = stream.last().unwrap();
    let col = last
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    col.value(0).to_owned()
}

#[test]
fn unary_calls_answer_in_order() {
    let mut input = call_bytes("echo", &string_params("value", Some("a")));
    input.extend(call_bytes("echo", &string_params("value", Some("b"))));
    let (result, streams) = serve(input);
    result.unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(string_result(&streams[0]), "a");
    assert_eq!(string_result(&streams[1]), "b");
}

#[test]
fn defaults_fill_missing_parameters_and_nulls_reach_options() {
    let (result, streams) = serve(call_bytes("greet", &string_params("name", None)));
    result.unwrap();
    assert_eq!(string_result(&streams[0]), "hi nobody");
}

#[test]
fn method_errors_carry_type_logs_and_ids() {
    let (result, streams) = serve(call_bytes("fail", &string_params("message", Some("boom"))));
    result.unwrap();
    let stream = &streams[0];
    assert_eq!(stream.len(), 2, "one log batch, then the error");
    assert!(matches!(
        classify(&stream[0].batch, &stream[0].metadata),
        BatchKind::Log(_)
    ));
    let err = error_of(stream);
    assert_eq!(err.error_type, "ValueError");
    assert_eq!(err.message, "boom");
    assert_eq!(
        stream[1].metadata.get(metadata::SERVER_ID),
        Some(vgirpc::server_id())
    );
    assert_eq!(
        stream[1].metadata.get(metadata::REQUEST_ID).map(str::len),
        Some(16)
    );
}

#[test]
fn protocol_errors_are_answered_and_the_worker_keeps_serving() {
    let params = string_params("value", Some("x"));
    let no_method = Metadata::new().with(metadata::REQUEST_VERSION, "1");
    let wrong_version = Request::metadata_for("echo").with(metadata::REQUEST_VERSION, "9");
    let no_version = Metadata::new().with(metadata::METHOD, "echo");
    let two_rows = RecordBatch::try_new(
        params.schema(),
        vec![Arc::new(StringArray::from(vec!["a", "b"]))],
    )
    .unwrap();
    let mut input = Vec::new();
    input.extend(request_bytes(&params, &no_method));
    input.extend(request_bytes(&params, &wrong_version));
    input.extend(request_bytes(&params, &no_version));
    input.extend(call_bytes("echo", &two_rows));
    input.extend(call_bytes("no_such_method", &params));
    input.extend(call_bytes("echo", &string_params("value", None)));
    input.extend(call_bytes("echo", &params));
    let (result, streams) = serve(input);
    result.unwrap();
    assert_eq!(streams.len(), 7);
    let missing = error_of(&streams[0]);
    assert_eq!(missing.error_type, "RpcError");
    assert!(
        missing.message.starts_with("ProtocolError"),
        "{}",
        missing.message
    );
    assert_eq!(error_of(&streams[1]).error_type, "VersionError");
    assert_eq!(error_of(&streams[2]).error_type, "VersionError");
    assert!(error_of(&streams[3]).message.contains("Expected 1 row"));
    let unknown = error_of(&streams[4]);
    assert_eq!(
        unknown.error_kind.as_deref(),
        Some("method_not_implemented")
    );
    assert!(unknown.message.contains("'no_such_method'"));
    assert!(
        unknown.message.contains("'echo'"),
        "lists the available methods"
    );
    let null = error_of(&streams[5]);
    assert_eq!(null.error_type, "TypeError");
    assert!(null.message.contains("is not optional"));
    assert_eq!(string_result(&streams[6]), "x");
}

#[test]
fn truncated_and_garbage_input_end_the_connection_with_an_answer() {
    let mut truncated = call_bytes("echo", &string_params("value", Some("x")));
    truncated.truncate(truncated.len() - 12);
    let mut garbage = vec![0x01, 0x02, 0x03, 0x04];
    garbage.extend([0xAB; 64]);
    for input in [truncated, garbage] {
        let (result, streams) = serve(input);
        assert!(
            result.is_err(),
            "a desynchronised stream must end the connection"
        );
        assert_eq!(streams.len(), 1, "but only after answering with an error");
        assert!(!error_of(&streams[0]).message.is_empty());
    }
}

#[test]
fn a_huge_method_name_is_not_echoed_back_whole() {
    let name = "m".repeat(1 << 20);
    let (result, streams) = serve(call_bytes(&name, &string_params("value", Some("x"))));
    result.unwrap();
    let unknown = error_of(&streams[0]);
    assert_eq!(
        unknown.error_kind.as_deref(),
        Some("method_not_implemented")
    );
    assert!(
        unknown.message.len() < 4096,
        "an error of {} bytes",
        unknown.message.len()
    );
    assert!(
        unknown.message.contains("(1048576 bytes)"),
        "{}",
        unknown.message
    );
}

#[test]
fn a_panicking_method_is_an_error_answer_and_the_connection_serves_on() {
    let mut input = call_bytes("explode", &string_params("message", Some("boom")));
    input.extend(call_bytes(
        "explode_later",
        &RecordBatch::new_empty(empty_schema()),
    ));
    input.extend(tick_stream(1, false));
    input.extend(call_bytes(
        "echo",
        &string_params("value", Some("still here")),
    ));
    let (result, streams) = serve(input);
    result.unwrap();
    let unary = error_of(&streams[0]);
    assert_eq!(unary.error_type, "PanicError");
    assert_eq!(unary.error_kind.as_deref(), Some("panic"));
    assert!(unary.message.contains("boom"), "{}", unary.message);
    let step = error_of(&streams[1]);
    assert_eq!(step.error_type, "PanicError");
    assert!(
        step.message.contains("a step went wrong"),
        "{}",
        step.message
    );
    assert_eq!(string_result(&streams[2]), "still here");
}

/// A request stream whose record batch comes before the dictionary it
/// uses: each message of a valid stream, with those two swapped.
fn dictionary_after_its_batch() -> Vec<u8> {
    use arrow_array::DictionaryArray;
    use arrow_array::types::Int32Type;
    let values: DictionaryArray<Int32Type> = vec!["a"].into_iter().collect();
    let field = Field::new("value", values.data_type().clone(), false);
    let params =
        RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![Arc::new(values)]).unwrap();
    let bytes = request_bytes(&params, &Request::metadata_for("echo"));
    let mut messages = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let header = arrow_ipc::root_as_message(&bytes[at + 8..at + 8 + len]).unwrap();
        let end = at + 8 + len + usize::try_from(header.bodyLength()).unwrap();
        messages.push(bytes[at..end].to_vec());
        at = end;
    }
    assert_eq!(messages.len(), 3, "schema, dictionary, batch");
    messages.swap(1, 2);
    let mut swapped = messages.concat();
    swapped.extend(&bytes[at..]);
    swapped
}

#[test]
fn an_undecodable_batch_is_answered_with_arrow_s_reason() {
    let (result, streams) = serve(dictionary_after_its_batch());
    assert!(result.is_err());
    let err = error_of(&streams[0]);
    assert_eq!(err.error_type, "ArrowInvalid");
    assert!(err.message.contains("dictionaries"), "{}", err.message);
}

#[test]
fn empty_input_is_a_clean_close() {
    let (result, streams) = serve(Vec::new());
    result.unwrap();
    assert!(streams.is_empty());
}

fn tick_stream(ticks: usize, cancel: bool) -> Vec<u8> {
    let schema = empty_schema();
    let mut writer = StreamWriter::try_new(Vec::new(), &schema).unwrap();
    for _ in 0..ticks {
        writer
            .write(&empty_batch(&schema), &Metadata::new())
            .unwrap();
    }
    if cancel {
        let md = Metadata::new().with(metadata::CANCEL, "1");
        writer.write(&empty_batch(&schema), &md).unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn producer_streams_run_until_finished() {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let params = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![2]))]).unwrap();
    let mut input = call_bytes("count", &params);
    input.extend(tick_stream(3, false));
    input.extend(call_bytes("echo", &string_params("value", Some("after"))));
    let (result, streams) = serve(input);
    result.unwrap();
    assert_eq!(streams.len(), 2);
    let values: Vec<i64> = streams[0]
        .iter()
        .map(|b| {
            b.batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        })
        .collect();
    assert_eq!(values, vec![0, 1]);
    assert_eq!(string_result(&streams[1]), "after");
}

#[test]
fn exchange_streams_answer_each_input_and_cancel_cleanly() {
    let no_params = RecordBatch::new_empty(empty_schema());
    let mut input = call_bytes("double", &no_params);
    let mut writer = StreamWriter::try_new(Vec::new(), &float_schema()).unwrap();
    for v in [1.5, 4.0] {
        let batch =
            RecordBatch::try_new(float_schema(), vec![Arc::new(Float64Array::from(vec![v]))])
                .unwrap();
        writer.write(&batch, &Metadata::new()).unwrap();
    }
    let cancel = Metadata::new().with(metadata::CANCEL, "1");
    writer
        .write(&empty_batch(&float_schema()), &cancel)
        .unwrap();
    input.extend(writer.finish().unwrap());
    input.extend(call_bytes(
        "echo",
        &string_params("value", Some("still here")),
    ));
    let (result, streams) = serve(input);
    result.unwrap();
    let doubled: Vec<f64> = streams[0]
        .iter()
        .map(|b| {
            b.batch
                .column(0)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .value(0)
        })
        .collect();
    assert_eq!(doubled, vec![3.0, 8.0]);
    assert_eq!(string_result(&streams[1]), "still here");
}

#[test]
fn exchange_input_with_the_wrong_columns_is_a_type_error() {
    let no_params = RecordBatch::new_empty(empty_schema());
    let mut input = call_bytes("double", &no_params);
    let wrong = string_params("other", Some("x"));
    let mut writer = StreamWriter::try_new(Vec::new(), wrong.schema_ref()).unwrap();
    writer.write(&wrong, &Metadata::new()).unwrap();
    input.extend(writer.finish().unwrap());
    let (result, streams) = serve(input);
    result.unwrap();
    let err = error_of(&streams[0]);
    assert_eq!(err.error_type, "TypeError");
    assert!(err.message.contains("Input schema mismatch"));
}

/// One exchange turn of `double` with `input` as its only input batch.
fn double_once(input: ArrayRef) -> Vec<IpcBatch> {
    let no_params = RecordBatch::new_empty(empty_schema());
    let mut bytes = call_bytes("double", &no_params);
    let field = Field::new("v", input.data_type().clone(), true);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![input]).unwrap();
    let mut writer = StreamWriter::try_new(Vec::new(), batch.schema_ref()).unwrap();
    writer.write(&batch, &Metadata::new()).unwrap();
    bytes.extend(writer.finish().unwrap());
    let (result, mut streams) = serve(bytes);
    result.unwrap();
    streams.remove(0)
}

#[test]
fn exchange_input_that_does_not_convert_is_a_type_error_not_a_null() {
    let stream = double_once(Arc::new(StringArray::from(vec!["zz"])));
    let err = error_of(&stream);
    assert_eq!(err.error_type, "TypeError");
    // The reference's words, the schemas as pyarrow prints them.
    assert_eq!(
        err.message,
        "Input schema mismatch: expected v: double, got v: string"
    );
}

#[test]
fn exchange_input_of_a_compatible_type_is_converted() {
    let cases: [(ArrayRef, f64); 2] = [
        (Arc::new(StringArray::from(vec!["3.5"])), 7.0),
        (Arc::new(Int64Array::from(vec![3])), 6.0),
    ];
    for (input, expected) in cases {
        let stream = double_once(input.clone());
        let doubled = stream[0]
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap_or_else(|| panic!("no double result for {input:?}: {stream:?}"));
        assert_eq!(doubled.value(0), expected, "{input:?}");
    }
}

#[test]
fn describe_lists_methods_with_schemas() {
    let no_params = RecordBatch::new_empty(empty_schema());
    let (result, streams) = serve(call_bytes("__describe__", &no_params));
    result.unwrap();
    let batch = &streams[0][0];
    assert_eq!(batch.batch.num_rows(), 7);
    assert_eq!(batch.metadata.get(metadata::PROTOCOL_NAME), Some("Probe"));
    assert_eq!(batch.metadata.get(metadata::DESCRIBE_VERSION), Some("4"));
    let names = batch
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let names: Vec<&str> = (0..names.len()).map(|i| names.value(i)).collect();
    assert_eq!(
        names,
        vec![
            "count",
            "double",
            "echo",
            "explode",
            "explode_later",
            "fail",
            "greet"
        ]
    );
}

#[test]
fn a_large_value_of_the_wrong_type_is_refused_as_a_type_error() {
    use arrow_array::BinaryArray;
    let blob = vec![7u8; 1 << 20];
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Binary, true)])),
        vec![Arc::new(BinaryArray::from(vec![blob.as_slice()]))],
    )
    .unwrap();
    let (result, streams) = serve(call_bytes("count", &params));
    result.unwrap();
    let err = error_of(&streams[0]);
    assert_eq!(err.error_type, "TypeError");
    assert!(
        err.message
            .contains("count() parameter 'n': type mismatch: expected Int64, found Binary"),
        "{}",
        err.message
    );
}
