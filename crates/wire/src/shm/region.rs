//! The bytes a batch occupies in a region, and which batches are worth a
//! region at all.

use std::io::{Cursor, Read};

use bytes::Bytes;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};

use crate::WireError;
use crate::ipc::{Chunks, EOS, ReadLimits, StreamReader, StreamWriter, write_stream_bytes};
use crate::metadata::Metadata;

use super::ShmError;

/// Smallest batch, by Arrow memory size, worth moving through a segment.
/// Below it the table update, the copy into the segment and the pointer
/// batch cost more than sending the bytes inline, which the protocol
/// always allows (a full segment does the same).
pub const MIN_OFFLOAD_BYTES: usize = 64 * 1024;

/// Whether `batch` should travel through a segment rather than inline:
/// data batches of at least [`MIN_OFFLOAD_BYTES`]. Zero-row batches (logs,
/// errors, empty results) always stay inline, where readers classify them
/// by their metadata.
pub fn worth_offloading(batch: &RecordBatch) -> bool {
    batch.num_rows() > 0 && batch.get_array_memory_size() >= MIN_OFFLOAD_BYTES
}

/// Whether a top-level column is dictionary-encoded, which changes how the
/// batch is laid out in a region.
fn has_dictionary_columns(schema: &SchemaRef) -> bool {
    schema
        .fields()
        .iter()
        .any(|field| matches!(field.data_type(), DataType::Dictionary(..)))
}

/// The schema message that opens an IPC stream on `schema`.
fn schema_message(schema: &SchemaRef) -> Result<Vec<u8>, ShmError> {
    let mut stream = StreamWriter::try_new(Vec::new(), schema)
        .and_then(StreamWriter::finish)
        .map_err(|e| ShmError::new(format!("cannot encode a schema message: {e}")))?;
    stream.truncate(stream.len() - EOS.len());
    Ok(stream)
}

/// The bytes a region holds for `batch`: a complete IPC stream, or for
/// dictionary-encoded batches only the dictionary and record batch
/// messages, as the reference reader expects. The pieces share the
/// batch's large Arrow buffers, so writing them into the segment is the
/// only copy of the data on the way in.
pub fn encode_region(batch: &RecordBatch) -> Result<Chunks, ShmError> {
    let schema = batch.schema_ref();
    let encode_error = |e: crate::WireError| {
        ShmError::new(format!("cannot encode a batch for shared memory: {e}"))
    };
    if !has_dictionary_columns(schema) {
        let mut chunks = Chunks::new();
        let mut writer = StreamWriter::try_new(&mut chunks, schema).map_err(encode_error)?;
        writer
            .write_shared(batch, &Metadata::new())
            .map_err(encode_error)?;
        writer.finish().map_err(encode_error)?;
        return Ok(chunks);
    }
    let stream = write_stream_bytes(schema, [(batch, &Metadata::new())]).map_err(encode_error)?;
    let prefix = schema_message(schema)?;
    stream
        .strip_prefix(prefix.as_slice())
        .and_then(|rest| rest.strip_suffix(&EOS[..]))
        .map(|messages| Chunks::from(messages.to_vec()))
        .ok_or_else(|| ShmError::new("unexpected ipc stream layout for a shm batch"))
}

/// Decodes the bytes of a region written by [`encode_region`] (or a peer)
/// against the pointer batch's `schema`, reading them as the framing asks
/// for them: a region claiming more than it holds costs what it holds.
pub fn decode_region(region: impl Read, schema: &SchemaRef) -> Result<RecordBatch, ShmError> {
    if has_dictionary_columns(schema) {
        let prefix = schema_message(schema)?;
        first_batch(StreamReader::open(
            prefix.as_slice().chain(region).chain(&EOS[..]),
        ))
    } else {
        first_batch(StreamReader::open(region))
    }
}

/// [`decode_region`] of a region already copied out of the segment (the
/// peer may change the segment underneath, so never the mapping itself):
/// the batch's buffers are slices of `region`, not copies.
pub fn decode_region_bytes(region: Bytes, schema: &SchemaRef) -> Result<RecordBatch, ShmError> {
    if has_dictionary_columns(schema) {
        return decode_region(region.as_ref(), schema);
    }
    let opened = StreamReader::try_open_bytes(Cursor::new(region), ReadLimits::default()).and_then(
        |stream| {
            stream.ok_or(WireError::Truncated {
                context: "schema message",
            })
        },
    );
    first_batch(opened)
}

/// The one batch a region holds, from its freshly opened stream.
fn first_batch<R: Read>(
    opened: Result<StreamReader<R>, WireError>,
) -> Result<RecordBatch, ShmError> {
    let wire = |e: WireError| ShmError::new(e.to_string());
    opened
        .map_err(wire)?
        .next_batch()
        .map_err(wire)?
        .map(|batch| batch.batch)
        .ok_or_else(|| ShmError::new("the region holds no record batch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use arrow_array::types::Int32Type;
    use arrow_array::{Array, DictionaryArray, Int64Array};
    use arrow_schema::{Field, Schema};

    #[test]
    fn regions_round_trip_plain_and_dictionary_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let plain =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
                .unwrap();
        let bytes = encode_region(&plain).unwrap().into_pieces().concat();
        assert!(bytes.ends_with(&EOS), "a complete stream");
        assert_eq!(decode_region(bytes.as_slice(), &schema).unwrap(), plain);
        assert_eq!(
            decode_region_bytes(Bytes::from(bytes), &schema).unwrap(),
            plain
        );

        let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "d",
            dict.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(dict)]).unwrap();
        let bytes = encode_region(&batch).unwrap().into_pieces().concat();
        assert!(!bytes.ends_with(&EOS), "no schema, no end marker");
        assert_eq!(decode_region(bytes.as_slice(), &schema).unwrap(), batch);
        assert_eq!(
            decode_region_bytes(Bytes::from(bytes), &schema).unwrap(),
            batch
        );

        let err = decode_region(&EOS[..], &schema).unwrap_err();
        assert!(!err.message().is_empty());
        for region in [&EOS[..], &[][..], &[0xff; 7][..]] {
            let err = decode_region_bytes(Bytes::from(region), &schema).unwrap_err();
            assert!(!err.message().is_empty());
        }
    }
}
