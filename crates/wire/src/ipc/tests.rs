use std::io::Cursor;

use arrow_array::{ArrayRef, Int64Array, StringArray};
use bytes::Bytes;

use super::writer::{LARGE_BATCH_BYTES, write_options};
use super::*;
use crate::WireError;
use arrow_schema::{DataType, Field};

fn sample() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![Some("x"), None])),
        ],
    )
    .unwrap()
}

/// Batches that exercise every way a body is laid out: nulls, slices
/// (offsets Arrow must rebase), strings, dictionaries (one repeated,
/// one replaced), nesting, and no rows at all.
fn varied_batches() -> Vec<RecordBatch> {
    use arrow_array::builder::{Int32Builder, ListBuilder};
    use arrow_array::{Array, DictionaryArray, StructArray, types::Int32Type};
    let mut list = ListBuilder::new(Int32Builder::new());
    for row in [vec![Some(1), None], vec![], vec![Some(3), Some(4), Some(5)]] {
        list.values().extend(row);
        list.append(true);
    }
    let list = list.finish();
    let ints = Int64Array::from(vec![Some(10), None, Some(30)]);
    let point = StructArray::from(vec![(
        Arc::new(Field::new("x", DataType::Int64, true)),
        Arc::new(ints.clone()) as ArrayRef,
    )]);
    let dict = |values: &[&str]| {
        Arc::new(
            values
                .iter()
                .copied()
                .collect::<DictionaryArray<Int32Type>>(),
        ) as ArrayRef
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("l", list.data_type().clone(), true),
        Field::new("p", point.data_type().clone(), true),
        Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
    ]));
    let strings = StringArray::from(vec![Some("alpha"), None, Some("gamma")]);
    let batch = |d: ArrayRef| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(ints.clone()),
                Arc::new(strings.clone()),
                Arc::new(list.clone()),
                Arc::new(point.clone()),
                d,
            ],
        )
        .unwrap()
    };
    let full = batch(dict(&["a", "b", "a"]));
    vec![
        full.clone(),
        full.slice(1, 2),
        batch(dict(&["c", "c", "d"])),
        full.slice(0, 0),
    ]
}

/// Batches on both sides of `LARGE_BATCH_BYTES`, without dictionaries,
/// so the large ones take the encoder that shares Arrow's buffers.
fn large_and_small_batches() -> Vec<RecordBatch> {
    let rows = 3 * LARGE_BATCH_BYTES / 8;
    let values: Int64Array = (0..rows as i64)
        .map(|i| (i % 7 != 0).then_some(i))
        .collect();
    let text: StringArray = (0..rows)
        .map(|i| (i % 5 != 0).then(|| "v".repeat(i % 9)))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let full = RecordBatch::try_new(schema, vec![Arc::new(values), Arc::new(text)]).unwrap();
    assert!(full.get_array_memory_size() >= LARGE_BATCH_BYTES);
    vec![
        full.clone(),
        full.slice(3, 5),
        full.slice(rows / 3, rows / 2),
        full.slice(0, 0),
    ]
}

/// Our framing of `batches` without metadata is byte for byte Arrow's.
fn assert_framed_like_arrow(batches: &[RecordBatch]) {
    let schema = batches[0].schema();
    let mut theirs =
        arrow_ipc::writer::StreamWriter::try_new_with_options(Vec::new(), &schema, write_options())
            .unwrap();
    let mut ours = StreamWriter::try_new(Vec::new(), &schema).unwrap();
    for batch in batches {
        theirs.write(batch).unwrap();
        ours.write(batch, &Metadata::new()).unwrap();
    }
    theirs.finish().unwrap();
    assert_eq!(ours.finish().unwrap(), theirs.into_inner().unwrap());
}

/// Each batch comes back whole, with the metadata written with it.
fn assert_round_trip_with_metadata(batches: &[RecordBatch]) {
    let tagged: Vec<_> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| (b, Metadata::new().with("round", i.to_string())))
        .collect();
    let bytes =
        write_stream_bytes(&batches[0].schema(), tagged.iter().map(|(b, m)| (*b, m))).unwrap();
    let (_, read) = read_stream_bytes(&bytes).unwrap();
    assert_eq!(read.len(), batches.len());
    for (i, (got, sent)) in read.iter().zip(batches).enumerate() {
        assert_eq!(&got.batch, sent, "batch {i}");
        assert_eq!(got.metadata.get("round"), Some(i.to_string().as_str()));
    }
}

#[test]
fn batches_are_framed_exactly_as_arrow_frames_them() {
    assert_framed_like_arrow(&varied_batches());
    assert_framed_like_arrow(&large_and_small_batches());
}

/// Takes at most 5 bytes per write, across slices, and is interrupted
/// every third call, as a busy socket may be.
struct Grudging {
    bytes: Vec<u8>,
    calls: usize,
}

impl std::io::Write for Grudging {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_vectored(&[std::io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, slices: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let before = self.bytes.len();
        for slice in slices {
            let room = 5 - (self.bytes.len() - before);
            self.bytes
                .extend_from_slice(&slice[..slice.len().min(room)]);
        }
        Ok(self.bytes.len() - before)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn large_messages_survive_short_and_interrupted_writes() {
    let batches = large_and_small_batches();
    let schema = batches[0].schema();
    let sink = Grudging {
        bytes: Vec::new(),
        calls: 0,
    };
    let mut ours = StreamWriter::try_new(sink, &schema).unwrap();
    let mut whole = StreamWriter::try_new(Vec::new(), &schema).unwrap();
    for batch in &batches {
        ours.write(batch, &Metadata::new()).unwrap();
        whole.write(batch, &Metadata::new()).unwrap();
    }
    assert_eq!(ours.finish().unwrap().bytes, whole.finish().unwrap());
}

#[test]
fn shared_writes_frame_like_copied_ones_without_copying_large_buffers() {
    let batches = large_and_small_batches();
    let schema = batches[0].schema();
    let md = Metadata::new().with("k", "v");
    let mut chunks = Chunks::new();
    let mut shared = StreamWriter::try_new(&mut chunks, &schema).unwrap();
    let mut copied = StreamWriter::try_new(Vec::new(), &schema).unwrap();
    for batch in &batches {
        shared.write_shared(batch, &md).unwrap();
        copied.write(batch, &md).unwrap();
    }
    shared.finish().unwrap();
    let copied = copied.finish().unwrap();
    assert_eq!(chunks.len(), copied.len());
    let pieces = chunks.into_pieces();
    assert_eq!(pieces.concat(), copied);
    let column = batches[0].column(0).to_data().buffers()[0].as_ptr_range();
    assert!(
        pieces.iter().any(|piece| column.contains(&piece.as_ptr())),
        "a large column is a piece of its own"
    );
}

#[test]
fn batches_keep_their_metadata_and_values() {
    assert_round_trip_with_metadata(&varied_batches());
    assert_round_trip_with_metadata(&large_and_small_batches());
}

#[test]
fn in_memory_bodies_are_shared_not_copied() {
    let values: Vec<i64> = (0..4096).collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(values))],
    )
    .unwrap();
    let md = Metadata::new().with("k", "v");
    let mut bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
    bytes.extend(write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap());
    let bytes = Bytes::from(bytes);
    let range = bytes.as_ptr_range();
    let check_one = |read: IpcBatch| {
        assert_eq!(read.batch, batch);
        assert_eq!(read.metadata, md);
        let data = read.batch.column(0).to_data().buffers()[0].as_ptr();
        assert!(range.contains(&data), "the column is a slice of the input");
    };
    // Owned, then borrowed: either way the next stream starts where the
    // last one ended.
    let mut cursor = Cursor::new(bytes.clone());
    for _ in 0..2 {
        let mut reader = StreamReader::try_open_bytes(cursor, ReadLimits::default())
            .unwrap()
            .unwrap();
        check_one(reader.next_batch().unwrap().unwrap());
        assert!(reader.next_batch().unwrap().is_none());
        cursor = reader.into_inner();
    }
    let mut cursor = Cursor::new(bytes.clone());
    for _ in 0..2 {
        let mut reader = StreamReader::try_open_bytes(&mut cursor, ReadLimits::default())
            .unwrap()
            .unwrap();
        check_one(reader.next_batch().unwrap().unwrap());
        assert!(reader.next_batch().unwrap().is_none());
    }
    assert_eq!(cursor.position(), bytes.len() as u64);
    let cut = Cursor::new(bytes.slice(..bytes.len() / 2 - 100));
    let mut reader = StreamReader::try_open_bytes(cut, ReadLimits::default())
        .unwrap()
        .unwrap();
    assert!(matches!(
        reader.next_batch(),
        Err(WireError::Truncated { .. })
    ));
}

#[test]
fn metadata_survives_a_round_trip() {
    let batch = sample();
    let md = Metadata::new()
        .with("vgi_rpc.method", "echo")
        .with("k", "v");
    let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
    let (schema, batches) = read_stream_bytes(&bytes).unwrap();
    assert_eq!(schema, batch.schema());
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].batch, batch);
    assert_eq!(batches[0].metadata, md);
}

#[test]
fn streams_follow_each_other_on_one_byte_stream() {
    let batch = sample();
    let empty = Metadata::new();
    let mut bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &empty)]).unwrap();
    let second_md = Metadata::new().with("n", "2");
    bytes.extend(write_stream_bytes(batch.schema_ref(), [(&batch, &second_md)]).unwrap());
    let mut cursor = std::io::Cursor::new(bytes);
    let mut first = StreamReader::open(&mut cursor).unwrap();
    assert!(first.next_batch().unwrap().unwrap().metadata.is_empty());
    assert!(first.next_batch().unwrap().is_none());
    let mut second = StreamReader::open(&mut cursor).unwrap();
    assert_eq!(second.next_batch().unwrap().unwrap().metadata, second_md);
    second.drain().unwrap();
    assert!(
        StreamReader::try_open(&mut cursor, ReadLimits::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn truncated_stream_is_reported_not_panicked() {
    let batch = sample();
    let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap();
    for cut in 1..bytes.len() {
        let result = read_stream_bytes(&bytes[..cut]);
        assert!(result.is_err(), "cut at {cut} should fail");
    }
}

#[test]
fn corrupted_bytes_are_errors_not_panics() {
    let batch = sample();
    let md = Metadata::new().with("vgi_rpc.method", "echo");
    let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
    for position in 0..bytes.len() {
        for value in [0x00, 0x7F, 0xFF] {
            let mut corrupt = bytes.clone();
            corrupt[position] = value;
            // Any outcome but a panic is acceptable: some flips land in
            // padding or values and still decode.
            let _ = read_stream_bytes(&corrupt);
        }
    }
}

#[test]
fn oversized_length_prefix_is_rejected_before_allocating() {
    let mut bytes = vec![0xFF, 0xFF, 0xFF, 0xFF];
    bytes.extend(0x7FFF_FFF0u32.to_le_bytes());
    let limits = ReadLimits {
        max_metadata_bytes: 1024,
        ..ReadLimits::default()
    };
    let err = StreamReader::try_open(bytes.as_slice(), limits).unwrap_err();
    assert!(matches!(err, WireError::TooLarge { .. }), "{err:?}");
}

#[test]
fn garbage_is_malformed() {
    let mut bytes = vec![0xFF, 0xFF, 0xFF, 0xFF, 16, 0, 0, 0];
    bytes.extend([0xAB; 16]);
    let err = read_stream_bytes(&bytes).unwrap_err();
    assert!(matches!(err, WireError::Malformed(_)), "{err:?}");
}

#[test]
fn a_negative_fixed_width_is_refused_before_any_batch_is_decoded() {
    for data_type in [
        DataType::FixedSizeBinary(-247),
        DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Int64, true)), -2),
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::FixedSizeBinary(-1),
            true,
        ))),
    ] {
        let schema = Arc::new(Schema::new(vec![Field::new("result", data_type, true)]));
        let bytes = write_stream_bytes(&schema, std::iter::empty()).unwrap();
        let err = StreamReader::open(bytes.as_slice()).unwrap_err();
        assert!(
            matches!(&err, WireError::Malformed(m) if m.contains("negative")),
            "{err:?}"
        );
    }
}

/// Hands out one byte per read, noting for each whether the reader asking
/// was in the middle of a message.
struct Trickle<'a> {
    bytes: &'a [u8],
    at: usize,
    mid_message_at: Vec<bool>,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() || self.at == self.bytes.len() {
            return Ok(0);
        }
        self.mid_message_at.push(mid_message());
        buf[0] = self.bytes[self.at];
        self.at += 1;
        Ok(1)
    }
}

/// Where each message of an IPC stream starts, and where the stream ends.
fn message_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if len == 0 {
            return starts;
        }
        let message = arrow_ipc::root_as_message(&bytes[at + 8..at + 8 + len]).unwrap();
        at += 8 + len + usize::try_from(message.bodyLength()).unwrap();
    }
    starts
}

#[test]
fn a_message_is_underway_from_its_length_prefix_to_its_last_byte() {
    let batch = sample();
    let mut bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap();
    bytes.extend(write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap());
    let mut trickle = Trickle {
        bytes: &bytes,
        at: 0,
        mid_message_at: Vec::new(),
    };
    for _ in 0..2 {
        let mut reader = StreamReader::open(&mut trickle).unwrap();
        assert!(!mid_message());
        while reader.next_batch().unwrap().is_some() {
            assert!(!mid_message());
        }
    }
    assert_eq!(trickle.at, bytes.len());
    let first_stream = &bytes[..bytes.len() / 2];
    let mut starts = message_starts(first_stream);
    starts.extend(
        message_starts(first_stream)
            .iter()
            .map(|s| s + first_stream.len()),
    );
    for (at, &underway) in trickle.mid_message_at.iter().enumerate() {
        let start = starts.iter().rev().find(|&&s| s <= at).unwrap();
        // The four bytes of the prefix that open a message come before it
        // is underway; every byte after them is owed by the peer.
        assert_eq!(underway, at >= start + 4, "byte {at} (message at {start})");
    }
}

#[test]
fn a_message_that_fails_is_no_longer_underway() {
    let batch = sample();
    let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap();
    let cut = &bytes[..bytes.len() - 20];
    let mut reader = StreamReader::open(cut).unwrap();
    assert!(reader.next_batch().is_err());
    assert!(!mid_message());
}

#[test]
fn claimed_bodies_read_whole_in_any_pieces() {
    for rows in [0, 1, 9_000, 300_000] {
        let values: Vec<i64> = (0..rows).collect();
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap();
        let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap();
        let mut trickle = Trickle {
            bytes: &bytes,
            at: 0,
            mid_message_at: Vec::new(),
        };
        let read_slowly = StreamReader::open(&mut trickle).unwrap().next_batch();
        let read_at_once = StreamReader::open(bytes.as_slice()).unwrap().next_batch();
        assert_eq!(read_slowly.unwrap().unwrap().batch, batch);
        assert_eq!(read_at_once.unwrap().unwrap().batch, batch);
    }
}
