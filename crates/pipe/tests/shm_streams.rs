//! Producer and exchange batches through the shared-memory side channel:
//! which travel through the segment, how they are laid out there, and
//! which regions stay allocated.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod bulk;
    pub(crate) mod client_writes;
    pub(crate) mod segment;
    pub(crate) mod server_writes;
}

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use common::bulk::{
    dict_schema, ints_schema, length_params, request, rows_batch, rows_schema, serve,
};
use common::client_writes::{input, ints, no_params, pointer, segment_bytes};
use common::segment::{HEADER_SIZE, TestSegment, is_pointer};
use common::server_writes::read_pointer;
use vgirpc::arrow::array::{DictionaryArray, RecordBatch, types::Int32Type};
use vgirpc::wire::ipc::{EOS, IpcBatch, empty_schema};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::{self, Metadata};

/// Enough integers, from `start` on, for a batch worth a segment region
/// (at least `MIN_OFFLOAD_BYTES`).
fn many(start: i64) -> Vec<i64> {
    (start..start + 10_000).collect()
}

fn dict_batch(values: &[&str]) -> RecordBatch {
    let array: DictionaryArray<Int32Type> = values.iter().copied().collect();
    RecordBatch::try_new(dict_schema(), vec![Arc::new(array)]).unwrap()
}

/// Producer ticks.
fn ticks(count: usize) -> Vec<u8> {
    let tick = (no_params(), Metadata::new());
    input(&empty_schema(), &vec![tick; count])
}

fn offset_of(batch: &IpcBatch) -> u64 {
    batch
        .metadata
        .get(metadata::SHM_OFFSET)
        .unwrap()
        .parse()
        .unwrap()
}

impl TestSegment {
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
