//! The wire work of every call: decoding a request stream, encoding a
//! response stream, classifying a received batch.
//!
//! `cargo bench -p vgirpc-wire`; `cargo xtask bench` measures whole calls.

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Float64Array, RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, Schema, SchemaRef};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vgirpc_wire::classify::classify;
use vgirpc_wire::ipc::{ReadLimits, StreamReader, StreamWriter, empty_schema, write_stream_bytes};
use vgirpc_wire::log::{ErrorInfo, Level, LogRecord, empty_batch};
use vgirpc_wire::metadata::Metadata;
use vgirpc_wire::request::Request;

fn one_row(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn blob() -> Vec<u8> {
    (0..64 * 1024).map(|i| (i % 251) as u8).collect()
}

/// Parameter batches of the three request shapes the bench driver sends.
fn requests() -> Vec<(&'static str, RecordBatch)> {
    let no_params = RecordBatch::try_new_with_options(
        empty_schema(),
        Vec::new(),
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .unwrap();
    let blob = blob();
    vec![
        ("void_noop", no_params),
        (
            "add_floats",
            one_row(vec![
                ("a", Arc::new(Float64Array::from(vec![1.5])) as ArrayRef),
                ("b", Arc::new(Float64Array::from(vec![2.25])) as ArrayRef),
            ]),
        ),
        (
            "echo_bytes",
            one_row(vec![(
                "data",
                Arc::new(BinaryArray::from(vec![blob.as_slice()])) as ArrayRef,
            )]),
        ),
    ]
}

/// What a server does with a request's bytes: read the stream to its end,
/// then validate the first batch.
fn decode_request(bytes: &[u8]) -> Request {
    let mut stream = StreamReader::try_open(bytes, ReadLimits::default())
        .unwrap()
        .unwrap();
    let first = stream.next_batch().unwrap().unwrap();
    stream.drain().unwrap();
    Request::from_batch(first).unwrap()
}

fn request_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_decode");
    for (method, params) in requests() {
        let bytes = write_stream_bytes(
            params.schema_ref(),
            [(&params, &Request::metadata_for(method))],
        )
        .unwrap();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(method), &bytes, |b, bytes| {
            b.iter(|| decode_request(black_box(bytes)))
        });
    }
    group.finish();
}

/// Result batches as a server answers: void, a float, 64 KiB of bytes.
fn results() -> Vec<(&'static str, SchemaRef, RecordBatch)> {
    let void = empty_batch(&empty_schema());
    let float = one_row(vec![(
        "result",
        Arc::new(Float64Array::from(vec![3.75])) as ArrayRef,
    )]);
    let blob = blob();
    let bytes = one_row(vec![(
        "result",
        Arc::new(BinaryArray::from(vec![blob.as_slice()])) as ArrayRef,
    )]);
    vec![
        ("void", empty_schema(), void),
        ("float64", float.schema(), float),
        ("binary_64k", bytes.schema(), bytes),
    ]
}

/// One response stream: schema, an optional INFO log batch, the result, EOS.
fn encode_response(schema: &SchemaRef, result: &RecordBatch, log: Option<&Metadata>) -> Vec<u8> {
    let mut out = StreamWriter::try_new(Vec::with_capacity(1024), schema).unwrap();
    if let Some(log) = log {
        out.write(&empty_batch(schema), log).unwrap();
    }
    out.write(result, &Metadata::new()).unwrap();
    out.finish().unwrap()
}

fn response_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("response_encode");
    let log = LogRecord::new(Level::Info, "working").to_metadata();
    for (name, schema, result) in results() {
        group.bench_function(name, |b| {
            b.iter(|| encode_response(&schema, black_box(&result), None))
        });
    }
    let (_, schema, float) = results().swap_remove(1);
    group.bench_function("float64_with_log", |b| {
        b.iter(|| encode_response(&schema, black_box(&float), Some(&log)))
    });
    group.finish();
}

/// Opening and closing a response stream with no batch: the schema
/// message a stream starts with, for a void result and a ten-column one.
fn stream_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_open");
    let wide: SchemaRef = Arc::new(Schema::new(
        (0..10)
            .map(|i| Field::new(format!("column_{i}"), arrow_schema::DataType::Float64, true))
            .collect::<Vec<_>>(),
    ));
    for (name, schema) in [("void", empty_schema()), ("ten_columns", wide)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = StreamWriter::try_new(Vec::with_capacity(1024), black_box(&schema));
                out.unwrap().finish().unwrap()
            })
        });
    }
    group.finish();
}

fn batch_classification(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    let data = one_row(vec![(
        "result",
        Arc::new(Float64Array::from(vec![3.75])) as ArrayRef,
    )]);
    let schema = data.schema();
    let zero = empty_batch(&schema);
    let cases = [
        ("data", data, Metadata::new()),
        (
            "log",
            zero.clone(),
            LogRecord::new(Level::Info, "working")
                .with_extra("step", 1)
                .to_metadata(),
        ),
        (
            "error",
            zero,
            ErrorInfo::new("ValueError", "bad input")
                .to_log_record()
                .to_metadata(),
        ),
    ];
    for (name, batch, md) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| classify(black_box(batch), black_box(md)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    request_decode,
    response_encode,
    stream_open,
    batch_classification
);
criterion_main!(benches);
