//! The shared-memory side channel end to end: a server driven over
//! in-memory byte streams, with a real segment in /dev/shm formatted the way
//! a client formats it.

use std::fs::File;
use std::io::Cursor;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use vgirpc::arrow::array::{
    Array, DictionaryArray, Int64Array, RecordBatch, StringArray, types::Int32Type,
};
use vgirpc::arrow::schema::{DataType, Field, Schema, SchemaRef};
use vgirpc::transport::SideChannels;
use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::{
    EOS, IpcBatch, StreamReader, StreamWriter, empty_schema, read_stream_bytes, write_stream_bytes,
};
use vgirpc::wire::log::{ErrorInfo, empty_batch};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::Request;
use vgirpc::{
    AnnotatedBatch, CallContext, ExchangeState, OutputCollector, ProducerState, RpcError, Server,
    Stream, TransportKind,
};
use vgirpc_pipe::ShmSideChannels;

const HEADER_SIZE: u64 = 65_536;

/// Service used by these tests.
#[vgirpc::service]
pub trait Bulk {
    /// A string of `length` characters.
    fn text(&self, length: i64) -> Result<String, RpcError>;
    /// One batch of `count` rows, then the end of the stream.
    fn rows(&self, count: i64) -> Result<Stream, RpcError>;
    /// Echoes each integer batch with its metadata.
    fn echo_ints(&self) -> Result<Stream, RpcError>;
    /// Echoes each dictionary-encoded batch with its metadata.
    fn echo_dict(&self) -> Result<Stream, RpcError>;
}

struct BulkImpl;

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

fn rows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]))
}

fn rows_batch(count: i64) -> RecordBatch {
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

fn ints_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]))
}

fn ints(values: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        ints_schema(),
        vec![Arc::new(Int64Array::from(values.to_vec()))],
    )
    .unwrap()
}

/// Enough integers, from `start` on, for a batch worth a segment region
/// (at least `MIN_OFFLOAD_BYTES`).
fn many(start: i64) -> Vec<i64> {
    (start..start + 10_000).collect()
}

fn dict_schema() -> SchemaRef {
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![Field::new("d", dict, true)]))
}

fn dict_batch(values: &[&str]) -> RecordBatch {
    let array: DictionaryArray<Int32Type> = values.iter().copied().collect();
    RecordBatch::try_new(dict_schema(), vec![Arc::new(array)]).unwrap()
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

/// A segment file in /dev/shm, formatted as a client formats a fresh one:
/// the header with zero allocations, the data region after it.
struct TestSegment {
    name: String,
    path: PathBuf,
    file: File,
    size: u64,
}

impl TestSegment {
    fn create(size: u64) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vgirpc-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self::create_named(name, size)
    }

    /// A fresh segment under `name`, which must not exist.
    fn create_named(name: String, size: u64) -> Self {
        let path = PathBuf::from("/dev/shm").join(&name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(size).unwrap();
        let segment = Self {
            name,
            path,
            file,
            size,
        };
        segment.write_fixed_header(b"VGIS", 1, size - HEADER_SIZE, 0);
        segment
    }

    fn write_fixed_header(&self, magic: &[u8; 4], version: u32, data_size: u64, count: u32) {
        let mut header = magic.to_vec();
        header.extend(version.to_le_bytes());
        header.extend(data_size.to_le_bytes());
        header.extend(count.to_le_bytes());
        header.extend(0u32.to_le_bytes());
        self.file.write_all_at(&header, 0).unwrap();
    }

    fn request(&self, method: &str) -> Metadata {
        Request::metadata_for(method)
            .with(metadata::SHM_SEGMENT_NAME, self.name.as_str())
            .with(metadata::SHM_SEGMENT_SIZE, self.size.to_string())
    }

    fn read(&self, offset: u64, length: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; usize::try_from(length).unwrap()];
        self.file.read_exact_at(&mut bytes, offset).unwrap();
        bytes
    }

    fn allocations(&self) -> Vec<(u64, u64)> {
        let count = u32::from_le_bytes(self.read(16, 4).try_into().unwrap());
        self.read(24, u64::from(count) * 16)
            .chunks_exact(16)
            .map(|entry| {
                let offset = u64::from_le_bytes(entry[..8].try_into().unwrap());
                let length = u64::from_le_bytes(entry[8..].try_into().unwrap());
                (offset, length)
            })
            .collect()
    }

    fn set_allocations(&self, allocations: &[(u64, u64)]) {
        let count = u32::try_from(allocations.len()).unwrap();
        self.file.write_all_at(&count.to_le_bytes(), 16).unwrap();
        let entries: Vec<u8> = allocations
            .iter()
            .flat_map(|(offset, length)| [offset.to_le_bytes(), length.to_le_bytes()])
            .flatten()
            .collect();
        self.file.write_all_at(&entries, 24).unwrap();
    }

    /// Stores `bytes` as a client does: allocated after the last region
    /// and recorded in the table. Returns the pointer metadata.
    fn store(&self, bytes: &[u8]) -> Metadata {
        let mut allocations = self.allocations();
        let offset = allocations
            .last()
            .map_or(HEADER_SIZE, |(offset, length)| offset + length);
        self.file.write_all_at(bytes, offset).unwrap();
        allocations.push((offset, bytes.len() as u64));
        self.set_allocations(&allocations);
        pointer(offset, bytes.len() as u64)
    }
}

impl Drop for TestSegment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn pointer(offset: u64, length: u64) -> Metadata {
    Metadata::new()
        .with(metadata::SHM_OFFSET, offset.to_string())
        .with(metadata::SHM_LENGTH, length.to_string())
}

/// The schema message that opens an IPC stream on `schema`.
fn schema_message(schema: &SchemaRef) -> Vec<u8> {
    let mut bytes = StreamWriter::try_new(Vec::new(), schema)
        .unwrap()
        .finish()
        .unwrap();
    bytes.truncate(bytes.len() - EOS.len());
    bytes
}

/// How a batch is laid out in the segment: a whole IPC stream, or for
/// dictionary-encoded batches only the messages between schema and EOS.
fn segment_bytes(batch: &RecordBatch, dictionary: bool) -> Vec<u8> {
    let stream = write_stream_bytes(batch.schema_ref(), [(batch, &Metadata::new())]).unwrap();
    if !dictionary {
        return stream;
    }
    let prefix = schema_message(batch.schema_ref());
    assert!(stream.starts_with(&prefix));
    stream[prefix.len()..stream.len() - EOS.len()].to_vec()
}

/// Decodes what `pointer` refers to in `segment`.
fn read_pointer(segment: &TestSegment, pointer: &IpcBatch, dictionary: bool) -> RecordBatch {
    let offset: u64 = pointer
        .metadata
        .get(metadata::SHM_OFFSET)
        .unwrap()
        .parse()
        .unwrap();
    let length: u64 = pointer
        .metadata
        .get(metadata::SHM_LENGTH)
        .unwrap()
        .parse()
        .unwrap();
    let mut bytes = segment.read(offset, length);
    if dictionary {
        let mut stream = schema_message(pointer.batch.schema_ref());
        stream.append(&mut bytes);
        stream.extend(EOS);
        bytes = stream;
    }
    let (_, batches) = read_stream_bytes(&bytes).unwrap();
    assert_eq!(batches.len(), 1);
    batches.into_iter().next().unwrap().batch
}

fn request(params: &RecordBatch, md: &Metadata) -> Vec<u8> {
    write_stream_bytes(params.schema_ref(), [(params, md)]).unwrap()
}

fn length_params(name: &str, value: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![value]))]).unwrap()
}

fn no_params() -> RecordBatch {
    empty_batch(&empty_schema())
}

/// An input stream of `batches` with their metadata.
fn input(schema: &SchemaRef, batches: &[(RecordBatch, Metadata)]) -> Vec<u8> {
    write_stream_bytes(schema, batches.iter().map(|(b, m)| (b, m))).unwrap()
}

/// Producer ticks.
fn ticks(count: usize) -> Vec<u8> {
    let tick = (no_params(), Metadata::new());
    input(&empty_schema(), &vec![tick; count])
}

/// Serves `bytes` with shared-memory side channels and returns every IPC
/// stream the server wrote.
fn serve(bytes: Vec<u8>) -> Vec<Vec<IpcBatch>> {
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

fn read_streams(output: Vec<u8>) -> Vec<Vec<IpcBatch>> {
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

/// An action between two requests, and the request that follows it.
type Step = (Box<dyn FnOnce()>, Vec<u8>);

/// Request bytes handed to the server one request at a time, with an
/// action run before each request after the first (the client changing
/// its segment between two requests of one connection).
struct Staged {
    current: Cursor<Vec<u8>>,
    next: std::collections::VecDeque<Step>,
}

impl std::io::Read for Staged {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some((action, bytes)) = self.next.pop_front() else {
                return Ok(0);
            };
            action();
            self.current = Cursor::new(bytes);
        }
    }
}

/// Serves `first`, then for each step runs its action and serves its bytes,
/// all on one connection; returns every IPC stream the server wrote.
fn serve_staged(first: Vec<u8>, steps: Vec<Step>) -> Vec<Vec<IpcBatch>> {
    let server = Server::new(BulkServer::new(BulkImpl)).unwrap();
    let mut output = Vec::new();
    let reader = Staged {
        current: Cursor::new(first),
        next: steps.into(),
    };
    server
        .serve_with(
            reader,
            &mut output,
            &vgirpc::Peer::anonymous(TransportKind::Pipe),
            &ShmSideChannels,
        )
        .unwrap();
    read_streams(output)
}

fn is_pointer(batch: &IpcBatch) -> bool {
    classify(&batch.batch, &batch.metadata) == BatchKind::ShmPointer
}

fn error_of(stream: &[IpcBatch]) -> ErrorInfo {
    let last = stream.last().expect("an error batch");
    match classify(&last.batch, &last.metadata) {
        BatchKind::Error(info) => info,
        other => panic!("expected an error batch, got {other:?}"),
    }
}

fn offset_of(batch: &IpcBatch) -> u64 {
    batch
        .metadata
        .get(metadata::SHM_OFFSET)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn large_producer_batches_travel_through_the_segment() {
    let segment = TestSegment::create(8 * 1024 * 1024);
    let count = 200_000;
    let mut bytes = request(&length_params("count", count), &segment.request("rows"));
    bytes.extend(ticks(2));
    let streams = serve(bytes);
    assert_eq!(streams.len(), 1);
    let data = &streams[0];
    assert_eq!(data.len(), 1, "one data batch, then the end of the stream");
    assert!(is_pointer(&data[0]), "{:?}", data[0].metadata);
    assert_eq!(data[0].batch.num_rows(), 0);
    assert_eq!(data[0].batch.schema(), rows_schema());

    let length: u64 = data[0]
        .metadata
        .get(metadata::SHM_LENGTH)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        length > 2_000_000,
        "{length} bytes went through the segment"
    );
    assert_eq!(read_pointer(&segment, &data[0], false), rows_batch(count));
    // The server allocated the region; freeing it is the client's job.
    assert_eq!(segment.allocations(), vec![(offset_of(&data[0]), length)]);
}

#[test]
fn unary_results_travel_through_the_segment() {
    let segment = TestSegment::create(HEADER_SIZE + 1024 * 1024);
    let bytes = request(&length_params("length", 100_000), &segment.request("text"));
    let streams = serve(bytes);
    let result = &streams[0][0];
    assert!(is_pointer(result));
    let batch = read_pointer(&segment, result, false);
    let text = batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(text.value(0), "x".repeat(100_000));
}

fn text_of(segment: &TestSegment, result: &IpcBatch) -> String {
    assert!(
        is_pointer(result),
        "the result travels through the segment: {result:?}"
    );
    let batch = read_pointer(segment, result, false);
    let text = batch.column(0).as_any().downcast_ref::<StringArray>();
    text.unwrap().value(0).to_owned()
}

#[test]
fn a_segment_replaced_between_requests_of_a_connection_is_mapped_anew() {
    let first = TestSegment::create(HEADER_SIZE + 1024 * 1024);
    let name = first.name.clone();
    let params = length_params("length", 100_000);
    let before = request(&params, &first.request("text"));
    let replacement: Arc<std::sync::Mutex<Option<TestSegment>>> = Arc::default();
    let slot = Arc::clone(&replacement);
    let replace: Box<dyn FnOnce()> = Box::new(move || {
        let name = first.name.clone();
        drop(first); // removes the file
        *slot.lock().unwrap() = Some(TestSegment::create_named(
            name,
            HEADER_SIZE + 2 * 1024 * 1024,
        ));
    });
    let larger = Request::metadata_for("text")
        .with(metadata::SHM_SEGMENT_NAME, name.as_str())
        .with(
            metadata::SHM_SEGMENT_SIZE,
            (HEADER_SIZE + 2 * 1024 * 1024).to_string(),
        );
    let after = request(&params, &larger);
    let streams = serve_staged(before, vec![(replace, after)]);
    let second = replacement.lock().unwrap().take().unwrap();
    assert_eq!(text_of(&second, &streams[1][0]), "x".repeat(100_000));
    assert_eq!(second.allocations().len(), 1, "written into the new file");
}

#[test]
fn a_kept_segment_whose_header_is_corrupted_is_refused_on_the_next_request() {
    let size = HEADER_SIZE + 1024 * 1024;
    let segment = Arc::new(TestSegment::create(size));
    let params = length_params("length", 100_000);
    let call = || request(&params, &segment.request("text"));
    let corrupted = Arc::clone(&segment);
    let corrupt: Box<dyn FnOnce()> = Box::new(move || {
        corrupted.write_fixed_header(b"NOPE", 1, size - HEADER_SIZE, 0);
    });
    let streams = serve_staged(call(), vec![(corrupt, call())]);
    assert_eq!(text_of(&segment, &streams[0][0]), "x".repeat(100_000));
    assert!(error_of(&streams[1]).message.contains("bad shm magic"));
}

#[test]
fn exchange_inputs_are_resolved_and_freed_when_the_next_arrives() {
    let segment = TestSegment::create(HEADER_SIZE + 1024 * 1024);
    // Longer than the others, so an output placed where it was freed is
    // told apart from it.
    let first_values: Vec<i64> = (1..12_001).collect();
    let first = segment.store(&segment_bytes(&ints(&first_values), false));
    let last = segment.store(&segment_bytes(&ints(&many(7)), false));
    let pointer_to = |md: &Metadata| {
        let md = md.clone().with("user.key", "kept");
        (empty_batch(&ints_schema()), md)
    };
    let mut bytes = request(&no_params(), &segment.request("echo_ints"));
    bytes.extend(input(
        &ints_schema(),
        &[
            pointer_to(&first),
            (ints(&many(4)), Metadata::new()),
            pointer_to(&last),
        ],
    ));
    let streams = serve(bytes);
    let outputs = &streams[0];
    assert_eq!(outputs.len(), 3);
    let expected = [ints(&first_values), ints(&many(4)), ints(&many(7))];
    for (output, expected) in outputs.iter().zip(&expected) {
        assert!(is_pointer(output), "{:?}", output.metadata);
        assert_eq!(&read_pointer(&segment, output, false), expected);
    }
    // The state saw resolved inputs: pointer keys replaced by the segment's
    // name, other metadata kept. The echoed metadata then gained the
    // output's own pointer keys.
    for output in [&outputs[0], &outputs[2]] {
        assert_eq!(
            output.metadata.get(metadata::SHM_SOURCE),
            Some(segment.name.as_str())
        );
        assert_eq!(output.metadata.get("user.key"), Some("kept"));
    }
    assert_eq!(outputs[1].metadata.get(metadata::SHM_SOURCE), None);

    // The first input was freed when the second arrived; the last input
    // stays allocated, as in the reference, next to the three outputs.
    let region = |md: &Metadata| {
        let field = |key| md.get(key).unwrap().parse::<u64>().unwrap();
        (field(metadata::SHM_OFFSET), field(metadata::SHM_LENGTH))
    };
    let mut expected: Vec<(u64, u64)> = outputs.iter().map(|o| region(&o.metadata)).collect();
    expected.push(region(&last));
    expected.sort_unstable();
    assert_eq!(segment.allocations(), expected);
    assert!(!expected.contains(&region(&first)));
}

#[test]
fn dictionary_batches_are_stored_without_schema_and_end_marker() {
    let segment = TestSegment::create(HEADER_SIZE + 1024 * 1024);
    let batch = dict_batch(&["red", "green", "red", "blue"].repeat(5_000));
    let stored = segment_bytes(&batch, true);
    assert!(!stored.ends_with(&EOS));
    let pointer_md = segment.store(&stored);
    let mut bytes = request(&no_params(), &segment.request("echo_dict"));
    bytes.extend(input(
        &dict_schema(),
        &[(empty_batch(&dict_schema()), pointer_md)],
    ));
    let streams = serve(bytes);
    let output = &streams[0][0];
    assert!(is_pointer(output), "{:?}", output.metadata);
    assert_eq!(read_pointer(&segment, output, true), batch);
}

#[test]
fn a_full_segment_sends_batches_inline() {
    let segment = TestSegment::create(HEADER_SIZE + 256 * 1024);
    let mut bytes = Vec::new();
    for count in [100_000, 8_000, 3] {
        bytes.extend(request(
            &length_params("count", count),
            &segment.request("rows"),
        ));
        bytes.extend(ticks(2));
    }
    let streams = serve(bytes);
    let too_large = &streams[0][0];
    assert!(!is_pointer(too_large));
    assert_eq!(too_large.batch, rows_batch(100_000));
    assert!(!too_large.metadata.contains(metadata::SHM_OFFSET));
    let fitting = &streams[1][0];
    assert!(
        is_pointer(fitting),
        "a batch that fits still uses the segment"
    );
    assert_eq!(read_pointer(&segment, fitting, false), rows_batch(8_000));
    let small = &streams[2][0];
    assert!(!is_pointer(small), "a small batch is cheaper inline");
    assert_eq!(small.batch, rows_batch(3));
}

/// Runs one `echo_ints` exchange whose only input is a pointer batch with
/// `pointer_md`, returning the error the server answered with.
fn exchange_error(segment: &TestSegment, pointer_md: Metadata) -> ErrorInfo {
    let mut bytes = request(&no_params(), &segment.request("echo_ints"));
    bytes.extend(input(
        &ints_schema(),
        &[(empty_batch(&ints_schema()), pointer_md)],
    ));
    let streams = serve(bytes);
    assert_eq!(streams.len(), 1);
    error_of(&streams[0])
}

#[test]
fn out_of_range_pointers_are_refused_with_a_clear_error() {
    let size = HEADER_SIZE + 64 * 1024;
    let segment = TestSegment::create(size);
    for (offset, length) in [
        (size, 1),
        (size - 10, 100),
        (HEADER_SIZE, size),
        (0, 100),
        (HEADER_SIZE, u64::MAX),
        (u64::MAX, 1),
        (u64::MAX - 1, 2),
    ] {
        let err = exchange_error(&segment, pointer(offset, length));
        assert_eq!(
            err.message,
            format!(
                "shm pointer out of bounds: offset {offset} length {length} segment size {size}"
            )
        );
    }
}

#[test]
fn malformed_pointers_and_region_contents_are_errors_not_crashes() {
    let segment = TestSegment::create(HEADER_SIZE + 64 * 1024);
    // In range but nothing valid there: zeros, then random-looking bytes.
    let err = exchange_error(&segment, pointer(HEADER_SIZE, 4096));
    assert!(err.message.contains("cannot read the shm batch"), "{err}");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    segment.file.write_all_at(&garbage, HEADER_SIZE).unwrap();
    let err = exchange_error(&segment, pointer(HEADER_SIZE, 4096));
    assert!(err.message.contains("cannot read the shm batch"), "{err}");
    // A valid stream cut short.
    let stream = segment_bytes(&ints(&[1, 2, 3]), false);
    segment.file.write_all_at(&stream, HEADER_SIZE).unwrap();
    let err = exchange_error(&segment, pointer(HEADER_SIZE, stream.len() as u64 - 9));
    assert!(err.message.contains("cannot read the shm batch"), "{err}");

    let bad_offset = pointer(HEADER_SIZE, 10).with(metadata::SHM_OFFSET, "-1");
    let err = exchange_error(&segment, bad_offset);
    assert!(err.message.contains("invalid vgi_rpc.shm_offset"), "{err}");
    let mut no_length = pointer(HEADER_SIZE, 10);
    no_length.remove(metadata::SHM_LENGTH);
    let err = exchange_error(&segment, no_length);
    assert!(err.message.contains("lacks vgi_rpc.shm_length"), "{err}");
}

#[test]
fn freeing_a_region_the_table_does_not_hold_does_not_fail_the_stream() {
    // The client edits the allocation table too, so a region missing from
    // it is logged and left alone rather than failing the call.
    let segment = TestSegment::create(HEADER_SIZE + 1024 * 1024);
    // A valid batch the client wrote without recording an allocation, away
    // from where the server's outputs will go.
    let offset = HEADER_SIZE + 512 * 1024;
    let stream = segment_bytes(&ints(&many(1)), false);
    segment.file.write_all_at(&stream, offset).unwrap();
    let pointer_to = || {
        let md = pointer(offset, stream.len() as u64);
        (empty_batch(&ints_schema()), md)
    };
    let mut bytes = request(&no_params(), &segment.request("echo_ints"));
    bytes.extend(input(&ints_schema(), &[pointer_to(), pointer_to()]));
    let streams = serve(bytes);
    let outputs = &streams[0];
    assert_eq!(outputs.len(), 2, "both inputs are answered");
    assert!(
        outputs.iter().all(is_pointer),
        "and both answers travel through the segment"
    );
}

/// Answers a `text` call naming `md`'s segment, then a plain call, and
/// returns the first call's error after checking the second succeeded.
fn attach_error(md: Metadata) -> ErrorInfo {
    let params = length_params("length", 5);
    let mut bytes = request(&params, &md);
    bytes.extend(request(&params, &Request::metadata_for("text")));
    let streams = serve(bytes);
    assert_eq!(streams.len(), 2);
    let last = streams[1].last().unwrap();
    assert_eq!(last.batch.num_rows(), 1, "the worker keeps serving");
    error_of(&streams[0])
}

/// Formats a segment, damages it with `corrupt` and checks a request
/// naming it is refused with an error containing `expected`.
fn assert_refused(corrupt: impl Fn(&TestSegment), expected: &str) {
    let segment = TestSegment::create(CORRUPT_SIZE);
    corrupt(&segment);
    let err = attach_error(segment.request("text"));
    assert!(err.message.contains(expected), "{expected}: {err}");
}

const CORRUPT_SIZE: u64 = HEADER_SIZE + 64 * 1024;

#[test]
fn corrupt_headers_are_refused_with_a_clear_error() {
    let data_size = CORRUPT_SIZE - HEADER_SIZE;
    assert_refused(
        |s| s.write_fixed_header(b"VGIS", 1, data_size, 5000),
        "num_allocs 5000 exceeds the maximum of 4094",
    );
    assert_refused(
        |s| s.write_fixed_header(b"VGIS", 1, CORRUPT_SIZE, 0),
        "data_size mismatch",
    );
    assert_refused(
        |s| s.write_fixed_header(b"NOPE", 1, data_size, 0),
        "bad shm magic",
    );
    assert_refused(
        |s| s.write_fixed_header(b"VGIS", 2, data_size, 0),
        "unsupported shm version: 2",
    );
    assert_refused(
        |s| s.file.set_len(1024).unwrap(),
        "not more than its 65536-byte header",
    );
}

#[test]
fn a_corrupt_allocation_table_costs_an_inline_batch_not_the_call() {
    // The client rewrites the table as it releases our outputs, so a table
    // that does not make sense is worked around rather than refused.
    let size = HEADER_SIZE + 1024 * 1024;
    let segment = TestSegment::create(size);
    // A region reaching past the end of the segment.
    segment.set_allocations(&[(HEADER_SIZE, size)]);
    let params = length_params("length", 100_000);
    let streams = serve(request(&params, &segment.request("text")));
    let last = streams[0].last().unwrap();
    assert_eq!(last.batch.num_rows(), 1, "the result arrives inline");
    assert!(!is_pointer(last));
}

#[test]
fn bad_segment_names_and_sizes_are_refused_with_a_clear_error() {
    let named = |name: &str, size: &str| {
        Request::metadata_for("text")
            .with(metadata::SHM_SEGMENT_NAME, name)
            .with(metadata::SHM_SEGMENT_SIZE, size)
    };
    let err = attach_error(named("../etc/passwd", "131072"));
    assert!(err.message.contains("invalid shm segment name"), "{err}");
    let err = attach_error(named("vgirpc-test-no-such-segment", "131072"));
    assert!(err.message.contains("cannot open shm segment"), "{err}");
    let segment = TestSegment::create(HEADER_SIZE + 4096);
    let err = attach_error(named(&segment.name, "big"));
    assert!(
        err.message.contains("invalid vgi_rpc.shm_segment_size"),
        "{err}"
    );
    let mut no_size = segment.request("text");
    no_size.remove(metadata::SHM_SEGMENT_SIZE);
    let err = attach_error(no_size);
    assert!(
        err.message.contains("without vgi_rpc.shm_segment_size"),
        "{err}"
    );
}

#[test]
fn requests_naming_no_segment_get_no_side_channel() {
    let channel = ShmSideChannels
        .attach(&Request::metadata_for("text"))
        .unwrap();
    assert!(channel.is_none());
}
