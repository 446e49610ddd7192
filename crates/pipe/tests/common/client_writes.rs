//! Writing into a segment what a client writes: batches laid out as a
//! region holds them, table entries, and the pointer batches naming them.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use vgirpc::arrow::array::{Int64Array, RecordBatch};
use vgirpc::arrow::schema::SchemaRef;
use vgirpc::wire::ipc::{EOS, empty_schema, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::{self, Metadata};

use super::bulk::ints_schema;
use super::segment::{TestSegment, schema_message};

impl TestSegment {
    pub(crate) fn set_allocations(&self, allocations: &[(u64, u64)]) {
        let count = u32::try_from(allocations.len()).unwrap();
        self.file.write_all_at(&count.to_le_bytes(), 16).unwrap();
        let entries: Vec<u8> = allocations
            .iter()
            .flat_map(|(offset, length)| [offset.to_le_bytes(), length.to_le_bytes()])
            .flatten()
            .collect();
        self.file.write_all_at(&entries, 24).unwrap();
    }
}

pub(crate) fn pointer(offset: u64, length: u64) -> Metadata {
    Metadata::new()
        .with(metadata::SHM_OFFSET, offset.to_string())
        .with(metadata::SHM_LENGTH, length.to_string())
}

/// How a batch is laid out in the segment: a whole IPC stream, or for
/// dictionary-encoded batches only the messages between schema and EOS.
pub(crate) fn segment_bytes(batch: &RecordBatch, dictionary: bool) -> Vec<u8> {
    let stream = write_stream_bytes(batch.schema_ref(), [(batch, &Metadata::new())]).unwrap();
    if !dictionary {
        return stream;
    }
    let prefix = schema_message(batch.schema_ref());
    assert!(stream.starts_with(&prefix));
    stream[prefix.len()..stream.len() - EOS.len()].to_vec()
}

pub(crate) fn ints(values: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        ints_schema(),
        vec![Arc::new(Int64Array::from(values.to_vec()))],
    )
    .unwrap()
}

pub(crate) fn no_params() -> RecordBatch {
    empty_batch(&empty_schema())
}

/// An input stream of `batches` with their metadata.
pub(crate) fn input(schema: &SchemaRef, batches: &[(RecordBatch, Metadata)]) -> Vec<u8> {
    write_stream_bytes(schema, batches.iter().map(|(b, m)| (b, m))).unwrap()
}
