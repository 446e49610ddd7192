//! Reading back what the server stored in a segment: the allocation table
//! it updated and the batches its pointers name.

use std::os::unix::fs::FileExt;

use vgirpc::arrow::array::RecordBatch;
use vgirpc::wire::ipc::{EOS, IpcBatch, read_stream_bytes};
use vgirpc::wire::metadata;

use super::segment::{TestSegment, schema_message};

impl TestSegment {
    pub(crate) fn read(&self, offset: u64, length: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; usize::try_from(length).unwrap()];
        self.file.read_exact_at(&mut bytes, offset).unwrap();
        bytes
    }

    pub(crate) fn allocations(&self) -> Vec<(u64, u64)> {
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
}

/// Decodes what `pointer` refers to in `segment`.
pub(crate) fn read_pointer(
    segment: &TestSegment,
    pointer: &IpcBatch,
    dictionary: bool,
) -> RecordBatch {
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
