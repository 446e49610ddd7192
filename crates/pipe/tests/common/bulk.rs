//! The service the shared-memory tests call, and the in-memory server that
//! answers a connection's worth of requests with shared-memory side
//! channels.

use std::io::Cursor;
use std::sync::Arc;

use vgirpc::arrow::array::{Int64Array, RecordBatch, StringArray};
use vgirpc::arrow::schema::{DataType, Field, Schema, SchemaRef};
use vgirpc::wire::ipc::{IpcBatch, StreamReader, write_stream_bytes};
use vgirpc::wire::metadata::Metadata;
use vgirpc::{
    AnnotatedBatch, CallContext, ExchangeState, OutputCollector, ProducerState, RpcError, Server,
    Stream, TransportKind,
};
use vgirpc_pipe::ShmSideChannels;

/// Service used by these tests.
#[vgirpc::service]
pub(crate) trait Bulk {
    /// A string of `length` characters.
    fn text(&self, length: i64) -> Result<String, RpcError>;
    /// One batch of `count` rows, then the end of the stream.
    fn rows(&self, count: i64) -> Result<Stream, RpcError>;
    /// Echoes each integer batch with its metadata.
    fn echo_ints(&self) -> Result<Stream, RpcError>;
    /// Echoes each dictionary-encoded batch with its metadata.
    fn echo_dict(&self) -> Result<Stream, RpcError>;
}

pub(crate) struct BulkImpl;

struct Rows {
    count: i64,
    sent: bool,
}

impl ProducerState for Rows {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.sent {
            return out.finish();
        }
        self.sent = true;
        out.emit(rows_batch(self.count))
    }
}

struct Echo;

impl ExchangeState for Echo {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        out.emit_with_metadata(input.batch.clone(), input.metadata.clone())
    }
}

pub(crate) fn rows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]))
}

pub(crate) fn rows_batch(count: i64) -> RecordBatch {
    let text: StringArray = (0..count).map(|i| Some(format!("row {i}"))).collect();
    RecordBatch::try_new(
        rows_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..count)),
            Arc::new(text),
        ],
    )
    .unwrap()
}

pub(crate) fn ints_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]))
}

pub(crate) fn dict_schema() -> SchemaRef {
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![Field::new("d", dict, true)]))
}

impl Bulk for BulkImpl {
    fn text(&self, length: i64) -> Result<String, RpcError> {
        Ok("x".repeat(usize::try_from(length).unwrap_or(0)))
    }
    fn rows(&self, count: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(rows_schema(), Rows { count, sent: false }))
    }
    fn echo_ints(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(ints_schema(), ints_schema(), Echo))
    }
    fn echo_dict(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(dict_schema(), dict_schema(), Echo))
    }
}

pub(crate) fn request(params: &RecordBatch, md: &Metadata) -> Vec<u8> {
    write_stream_bytes(params.schema_ref(), [(params, md)]).unwrap()
}

pub(crate) fn length_params(name: &str, value: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![value]))]).unwrap()
}

/// Serves `bytes` with shared-memory side channels and returns every IPC
/// stream the server wrote.
pub(crate) fn serve(bytes: Vec<u8>) -> Vec<Vec<IpcBatch>> {
    let server = Server::new(BulkServer::new(BulkImpl)).unwrap();
    let mut output = Vec::new();
    server
        .serve_with(
            Cursor::new(bytes),
            &mut output,
            &vgirpc::Peer::anonymous(TransportKind::Pipe),
            &ShmSideChannels,
        )
        .unwrap();
    read_streams(output)
}

pub(crate) fn read_streams(output: Vec<u8>) -> Vec<Vec<IpcBatch>> {
    let mut cursor = Cursor::new(output);
    let mut streams = Vec::new();
    while let Some(mut reader) = StreamReader::try_open(&mut cursor, Default::default()).unwrap() {
        let mut batches = Vec::new();
        while let Some(batch) = reader.next_batch().unwrap() {
            batches.push(batch);
        }
        streams.push(batches);
    }
    streams
}
