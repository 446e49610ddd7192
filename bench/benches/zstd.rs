//! zstd on vgi-rpc bodies, as the HTTP transport runs it: small bodies with
//! a context kept per thread (and, for comparison, with a fresh context per
//! body, which is what a request cost before contexts were kept), large
//! bodies compressed as a stream of 64 KiB pieces with the content size in
//! the frame, and decompressed as a stream.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vgirpc_wire::ipc::write_stream_bytes;
use vgirpc_wire::metadata::Metadata;

const LEVEL: i32 = 3;
const PIECE: usize = 64 * 1024;

/// An IPC stream holding one batch with one column.
fn body(name: &str, column: Arc<dyn arrow_array::Array>) -> Vec<u8> {
    let field = Field::new(name, column.data_type().clone(), true);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![column]).unwrap();
    write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap()
}

fn small(c: &mut Criterion) {
    let plain = body("result", Arc::new(StringArray::from(vec!["hello"])));
    let mut group = c.benchmark_group("zstd_small");
    group.throughput(Throughput::Bytes(plain.len() as u64));
    let mut kept = zstd::bulk::Compressor::new(LEVEL).unwrap();
    group.bench_function("compress_kept_context", |b| {
        b.iter(|| kept.compress(black_box(&plain)).unwrap())
    });
    group.bench_function("compress_new_context", |b| {
        b.iter(|| zstd::bulk::compress(black_box(&plain), LEVEL).unwrap())
    });
    let compressed = zstd::bulk::compress(&plain, LEVEL).unwrap();
    let mut decompressor = zstd::bulk::Decompressor::new().unwrap();
    group.bench_function("decompress_kept_context", |b| {
        b.iter(|| {
            decompressor
                .decompress(black_box(&compressed), plain.len())
                .unwrap()
        })
    });
    group.finish();
}

fn large(c: &mut Criterion) {
    let values: Float64Array = (0..1_000_000)
        .map(|i| Some(f64::from(i % 1000) * 0.5))
        .collect();
    let plain = body("value", Arc::new(values));
    let mut group = c.benchmark_group("zstd_stream_8mb");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(plain.len() as u64));
    group.bench_function("compress", |b| {
        b.iter(|| {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL).unwrap();
            encoder.include_contentsize(true).unwrap();
            encoder
                .set_pledged_src_size(Some(plain.len() as u64))
                .unwrap();
            for piece in plain.chunks(PIECE) {
                encoder.write_all(piece).unwrap();
            }
            encoder.finish().unwrap()
        })
    });
    let compressed = zstd::encode_all(plain.as_slice(), LEVEL).unwrap();
    group.bench_function("decompress", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(plain.len());
            zstd::stream::read::Decoder::new(black_box(compressed.as_slice()))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            out
        })
    });
    group.finish();
}

criterion_group!(benches, small, large);
criterion_main!(benches);
