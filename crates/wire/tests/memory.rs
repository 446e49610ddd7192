//! What reading a peer's bytes costs in memory: never more than the bytes
//! actually sent plus a fixed margin, and nothing kept afterwards.
//!
//! A counting allocator watches this test binary and refuses allocations
//! beyond a budget (a refused allocation aborts the test unless the code
//! under test asked with `try_reserve`); the tests take turns through one
//! lock so each sees only its own allocations.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use cap::Cap;
use flatbuffers::FlatBufferBuilder;
use vgirpc_wire::WireError;
use vgirpc_wire::ipc::{EAGER_RESERVE_BYTES, ReadLimits, StreamReader, write_stream_bytes};
use vgirpc_wire::metadata::Metadata;

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

static TURN: Mutex<()> = Mutex::new(());

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
}

/// The schema message of `schema`, without the end-of-stream marker.
fn schema_message(schema: &Arc<Schema>) -> Vec<u8> {
    let mut bytes = write_stream_bytes(schema, std::iter::empty()).unwrap();
    bytes.truncate(bytes.len() - 8);
    bytes
}

/// A framed record batch message of one row that declares a body of
/// `body_len` bytes, followed by `sent` bytes of that body.
fn batch_claiming(body_len: i64, sent: usize) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let nodes = fbb.create_vector(&[arrow_ipc::FieldNode::new(1, 0)]);
    let buffers = fbb.create_vector(&[
        arrow_ipc::Buffer::new(0, 0),
        arrow_ipc::Buffer::new(0, body_len),
    ]);
    let header = arrow_ipc::RecordBatch::create(
        &mut fbb,
        &arrow_ipc::RecordBatchArgs {
            length: 1,
            nodes: Some(nodes),
            buffers: Some(buffers),
            compression: None,
            variadicBufferCounts: None,
        },
    );
    let message = arrow_ipc::Message::create(
        &mut fbb,
        &arrow_ipc::MessageArgs {
            version: arrow_ipc::MetadataVersion::V5,
            header_type: arrow_ipc::MessageHeader::RecordBatch,
            header: Some(header.as_union_value()),
            bodyLength: body_len,
            custom_metadata: None,
        },
    );
    fbb.finish(message, None);
    let mut flatbuffer = fbb.finished_data().to_vec();
    flatbuffer.resize(flatbuffer.len().next_multiple_of(8), 0);
    let mut bytes = vec![0xFF, 0xFF, 0xFF, 0xFF];
    bytes.extend(u32::try_from(flatbuffer.len()).unwrap().to_le_bytes());
    bytes.extend(flatbuffer);
    bytes.extend(std::iter::repeat_n(0u8, sent));
    bytes
}

/// Runs `read` allowed to hold at most `budget` more bytes than before.
fn within_budget<T>(budget: usize, read: impl FnOnce() -> T) -> T {
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + budget)
        .expect("the limit is above what is allocated");
    let outcome = read();
    ALLOCATOR.set_limit(usize::MAX).expect("no limit");
    outcome
}

/// What a read of a few hundred bytes may hold: the eager reservation and
/// the small buffers around it.
const BUDGET: usize = EAGER_RESERVE_BYTES + 1024 * 1024;

#[test]
fn a_declared_body_length_is_not_reserved_before_its_bytes_arrive() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut bytes = schema_message(&schema());
    bytes.extend(batch_claiming(1 << 31, 300));
    assert!(bytes.len() < 1024, "a request of {} bytes", bytes.len());

    let outcome = within_budget(BUDGET, || {
        let mut reader = StreamReader::try_open(bytes.as_slice(), ReadLimits::default())
            .unwrap()
            .unwrap();
        reader.next_batch().map(|_| ())
    });
    let err = outcome.unwrap_err();
    assert!(matches!(err, WireError::Truncated { .. }), "{err:?}");
}

#[test]
fn a_declared_header_length_is_not_reserved_before_its_bytes_arrive() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut bytes = vec![0xFF, 0xFF, 0xFF, 0xFF];
    bytes.extend((60u32 << 20).to_le_bytes());
    bytes.extend([0u8; 64]);
    let outcome = within_budget(BUDGET, || {
        StreamReader::try_open(bytes.as_slice(), ReadLimits::default()).err()
    });
    assert!(
        matches!(outcome, Some(WireError::Truncated { .. })),
        "{outcome:?}"
    );
}

/// Found by fuzzing HTTP: a 1.7 KB request body whose second stream's
/// header claimed 16 MiB had that much reserved (the eager reservation)
/// while the body and its decoder were still held.
#[test]
fn claims_past_the_end_of_bytes_in_memory_reserve_nothing() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut header_claim = vec![0xFF, 0xFF, 0xFF, 0xFF];
    header_claim.extend((60u32 << 20).to_le_bytes());
    header_claim.extend([0u8; 64]);
    let mut body_claim = schema_message(&schema());
    body_claim.extend(batch_claiming(1 << 31, 300));
    // What an in-memory read may hold: far less than the eager reservation.
    let budget = 64 * 1024;
    for bytes in [header_claim, body_claim] {
        let bytes = Bytes::from(bytes);
        let outcome = within_budget(budget, || {
            let opened =
                StreamReader::try_open_bytes(Cursor::new(bytes.clone()), ReadLimits::default());
            match opened {
                Ok(Some(mut reader)) => reader.next_batch().map(|_| ()),
                Ok(None) => Ok(()),
                Err(err) => Err(err),
            }
        });
        assert!(
            matches!(outcome, Err(WireError::Truncated { .. })),
            "{outcome:?}"
        );
    }
}

#[test]
fn a_body_larger_than_the_eager_reservation_still_reads_whole() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rows = EAGER_RESERVE_BYTES / 8 * 3 + 5;
    let values: Vec<i64> = (0..rows as i64).collect();
    let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(values))]).unwrap();
    let bytes = write_stream_bytes(&schema(), [(&batch, &Metadata::new())]).unwrap();
    let mut reader = StreamReader::try_open(bytes.as_slice(), ReadLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(reader.next_batch().unwrap().unwrap().batch, batch);
    assert!(reader.next_batch().unwrap().is_none());
}

#[test]
fn schemas_a_peer_sends_are_not_kept_after_reading() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // Warm the thread's cache and buffers with an ordinary schema first.
    let plain = write_stream_bytes(&schema(), std::iter::empty()).unwrap();
    StreamReader::open(plain.as_slice())
        .unwrap()
        .drain()
        .unwrap();

    let before = ALLOCATOR.allocated();
    for i in 0..20 {
        let metadata = HashMap::from([(format!("blob{i}"), "x".repeat(2 << 20))]);
        let schema = Arc::new(Schema::new_with_metadata(
            vec![Field::new("v", DataType::Int64, false)],
            metadata,
        ));
        let bytes = write_stream_bytes(&schema, std::iter::empty()).unwrap();
        let mut reader = StreamReader::open(bytes.as_slice()).unwrap();
        assert_eq!(reader.schema(), &schema);
        reader.drain().unwrap();
    }
    let kept = ALLOCATOR.allocated().saturating_sub(before);
    assert!(
        kept < 1 << 20,
        "reading 20 schemas of 2 MiB each left {kept} bytes allocated"
    );
}
