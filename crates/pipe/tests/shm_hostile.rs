//! What a peer may write that the server must refuse or work around:
//! pointers outside the segment, regions holding no batch, corrupt headers
//! and tables, and segment names or sizes that do not check out.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod bulk;
    pub(crate) mod client_writes;
    pub(crate) mod errors;
    pub(crate) mod segment;
}

use std::os::unix::fs::FileExt;

use common::bulk::{ints_schema, length_params, request, serve};
use common::client_writes::{input, ints, no_params, pointer, segment_bytes};
use common::errors::error_of;
use common::segment::{HEADER_SIZE, TestSegment, is_pointer};
use vgirpc::transport::SideChannels;
use vgirpc::wire::log::{ErrorInfo, empty_batch};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::Request;
use vgirpc_pipe::ShmSideChannels;

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
