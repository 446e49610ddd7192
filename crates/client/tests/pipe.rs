//! The client's reading of responses, against canned server bytes.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use vgirpc_client::{Client, ClientError, ServerLog};
use vgirpc_wire::ipc::{StreamReader, write_stream_bytes};
use vgirpc_wire::log::{ErrorInfo, Level, LogRecord, empty_batch};
use vgirpc_wire::metadata::{self, Metadata};

fn result_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new(
        "result",
        DataType::Utf8,
        false,
    )]))
}

fn params() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["hi"]))]).unwrap()
}

/// A unary response: a log batch, then the result, then a second response.
fn canned_responses() -> Vec<u8> {
    let schema = result_schema();
    let log = empty_batch(&schema);
    let log_md = LogRecord::new(Level::Info, "working")
        .with_extra("step", 1)
        .to_metadata()
        .with(metadata::SERVER_ID, "abc123")
        .with(metadata::REQUEST_ID, "r1");
    let result = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec!["hi"]))],
    )
    .unwrap();
    let none = Metadata::new();
    let mut bytes = write_stream_bytes(&schema, [(&log, &log_md), (&result, &none)]).unwrap();

    let mut error = ErrorInfo::new("ValueError", "bad value");
    error.error_kind = Some("session_lost".into());
    let error_md = error
        .to_log_record()
        .to_metadata()
        .with(metadata::REQUEST_ID, "r2");
    bytes.extend(write_stream_bytes(&schema, [(&empty_batch(&schema), &error_md)]).unwrap());
    bytes
}

#[test]
fn logs_are_delivered_and_collected_and_errors_keep_their_details() {
    let seen: Arc<Mutex<Vec<ServerLog>>> = Arc::default();
    let sink = seen.clone();
    let mut client = Client::from_io(Cursor::new(canned_responses()), Vec::new())
        .with_log_callback(move |log| sink.lock().unwrap().push(log.clone()));

    let answer = client.call("echo_string", &params()).unwrap();
    let column = answer.batch.column(0);
    assert_eq!(column.len(), 1);
    assert_eq!(
        column
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0),
        "hi"
    );
    assert_eq!(answer.logs.len(), 1);
    let log = &answer.logs[0];
    assert_eq!((log.level, log.message.as_str()), (Level::Info, "working"));
    assert_eq!(log.extra["step"], 1);
    assert_eq!(log.server_id.as_deref(), Some("abc123"));
    assert_eq!(log.request_id.as_deref(), Some("r1"));
    assert_eq!(*seen.lock().unwrap(), answer.logs);

    let err = client.call("echo_string", &params()).unwrap_err();
    match &err {
        ClientError::Remote {
            error_type,
            message,
            request_id,
            ..
        } => {
            assert_eq!(error_type, "ValueError");
            assert_eq!(message, "bad value");
            assert_eq!(request_id.as_deref(), Some("r2"));
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert!(err.is_session_lost());
    assert!(!err.is_connection_error());

    // The connection was read to its end: a third call sees a clean close.
    let err = client.call("echo_string", &params()).unwrap_err();
    assert!(matches!(err, ClientError::ConnectionClosed), "{err:?}");

    // Every request went out as one IPC stream naming its method.
    let (_, writer) = client.into_transport().into_inner().unwrap();
    let mut requests = Cursor::new(writer);
    for _ in 0..3 {
        let mut request = StreamReader::open(&mut requests).unwrap();
        let batch = request.next_batch().unwrap().unwrap();
        assert_eq!(batch.metadata.get(metadata::METHOD), Some("echo_string"));
        assert_eq!(batch.metadata.get(metadata::REQUEST_VERSION), Some("1"));
        assert_eq!(batch.batch, params());
        request.drain().unwrap();
    }
}

#[test]
fn a_response_without_a_result_is_a_protocol_error() {
    let schema = result_schema();
    let bytes = write_stream_bytes(&schema, []).unwrap();
    let mut client = Client::from_io(Cursor::new(bytes), Vec::new());
    let err = client.call("echo_string", &params()).unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

/// A producer answering two ticks with one batch each, then an error.
fn canned_producer() -> Vec<u8> {
    use arrow_array::Int64Array;
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch = |n: i64| {
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![n]))]).unwrap()
    };
    let error = ErrorInfo::new("RuntimeError", "boom")
        .to_log_record()
        .to_metadata();
    let none = Metadata::new();
    let (one, two, failed) = (batch(1), batch(2), empty_batch(&schema));
    write_stream_bytes(&schema, [(&one, &none), (&two, &none), (&failed, &error)]).unwrap()
}

#[test]
fn a_producer_error_ends_iteration_and_closes_the_stream() {
    let mut client = Client::from_io(Cursor::new(canned_producer()), Vec::new());
    let mut stream = client
        .stream("produce", &vgirpc_client::no_params())
        .unwrap();
    let items: Vec<_> = stream.by_ref().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok());
    assert!(matches!(&items[2], Err(ClientError::Remote { message, .. }) if message == "boom"));
    assert!(stream.is_finished());
    assert!(matches!(
        stream.next_batch(),
        Err(ClientError::StreamClosed)
    ));
    drop(stream);

    // The client sent the request, then one input stream: three ticks and
    // its end-of-stream marker.
    let (_, writer) = client.into_transport().into_inner().unwrap();
    let mut sent = Cursor::new(writer);
    StreamReader::open(&mut sent).unwrap().drain().unwrap();
    let mut input = StreamReader::open(&mut sent).unwrap();
    assert!(input.schema().fields().is_empty());
    let mut ticks = 0;
    while let Some(tick) = input.next_batch().unwrap() {
        assert_eq!(tick.batch.num_rows(), 0);
        ticks += 1;
    }
    assert_eq!(ticks, 3);
    assert_eq!(sent.position() as usize, sent.get_ref().len());
}

#[test]
fn cancel_before_any_input_sends_one_marked_batch() {
    // The server's answer to a cancel: an empty output stream.
    let schema = Arc::new(Schema::empty());
    let bytes = write_stream_bytes(&schema, []).unwrap();
    let mut client = Client::from_io(Cursor::new(bytes), Vec::new());
    let mut stream = client
        .stream("exchange", &vgirpc_client::no_params())
        .unwrap();
    stream.cancel().unwrap();
    stream.cancel().unwrap();
    stream.close().unwrap();
    let err = stream.exchange(&params()).unwrap_err();
    assert!(err.to_string().contains("ProtocolError"), "{err}");
    drop(stream);

    let (_, writer) = client.into_transport().into_inner().unwrap();
    let mut sent = Cursor::new(writer);
    StreamReader::open(&mut sent).unwrap().drain().unwrap();
    let mut input = StreamReader::open(&mut sent).unwrap();
    let cancel = input.next_batch().unwrap().unwrap();
    assert_eq!(cancel.batch.num_rows(), 0);
    assert_eq!(cancel.metadata.get(metadata::CANCEL), Some("1"));
    assert!(input.next_batch().unwrap().is_none());
    assert_eq!(sent.position() as usize, sent.get_ref().len());
}
