//! Decoded schema messages kept per thread, bounded by their size.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use arrow_schema::{DataType, SchemaRef};

use super::frame::{Frame, ReadLimits, Source, body_length, read_header, verify_header};
use crate::{Result, WireError};

/// Schema messages decoded on this thread, by their exact bytes. A
/// connection repeats the same few schemas call after call, and verifying
/// and converting one is a large part of decoding a small request.
///
/// The keys are bytes a peer chose, so the cache is bounded by what it
/// holds, not by how many entries: a schema message above
/// [`SCHEMA_CACHE_ENTRY_BYTES`] is decoded every time instead of kept, and
/// the cache starts over once it holds [`SCHEMA_CACHE_BYTES`].
struct SchemaCache;

/// Largest schema message kept; vgi-rpc's own schemas are a few hundred
/// bytes, so only a peer's oddities are decoded again each time.
const SCHEMA_CACHE_ENTRY_BYTES: usize = 64 * 1024;
/// Bytes of schema messages kept per thread.
const SCHEMA_CACHE_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct CachedSchemas {
    by_message: HashMap<Box<[u8]>, SchemaRef>,
    /// Sum of the key lengths, which also bounds the decoded schemas'
    /// names and metadata.
    bytes: usize,
}

thread_local! {
    static SCHEMAS: RefCell<CachedSchemas> = RefCell::new(CachedSchemas::default());
}

impl SchemaCache {
    fn get(header: &[u8]) -> Option<SchemaRef> {
        SCHEMAS.with_borrow(|schemas| schemas.by_message.get(header).cloned())
    }

    fn put(header: Vec<u8>, schema: &SchemaRef) {
        if header.len() > SCHEMA_CACHE_ENTRY_BYTES {
            return;
        }
        SCHEMAS.with_borrow_mut(|schemas| {
            if schemas.bytes + header.len() > SCHEMA_CACHE_BYTES {
                // Dropped rather than cleared, so the memory goes back too.
                *schemas = CachedSchemas::default();
            }
            schemas.bytes += header.len();
            schemas
                .by_message
                .insert(header.into_boxed_slice(), Arc::clone(schema));
        });
    }
}

/// Reads a schema message, through [`SchemaCache`].
pub(super) fn read_schema<R: Read>(
    reader: &mut R,
    limits: &ReadLimits,
    source: Source<R>,
) -> Result<Frame<SchemaRef>> {
    let (header, _underway) = match read_header(reader, limits, source)? {
        Frame::Message(header) => header,
        Frame::EndOfStream => return Ok(Frame::EndOfStream),
        Frame::Eof => return Ok(Frame::Eof),
    };
    // Equal bytes are an equal message, body length included, and only
    // messages without a body are cached: nothing is left unread on a hit.
    if let Some(schema) = SchemaCache::get(&header) {
        return Ok(Frame::Message(schema));
    }
    let message = verify_header(&header)?;
    let body = (source.body)(reader, body_length(&message, limits)?)?;
    let decoded = message.header_as_schema().ok_or_else(|| {
        WireError::Malformed(format!(
            "expected a schema message, got {:?}",
            message.header_type()
        ))
    })?;
    let schema = arrow_ipc::convert::try_fb_to_schema(decoded)?;
    for field in schema.fields() {
        refuse_negative_sizes(field.data_type())?;
    }
    let schema = Arc::new(schema);
    if body.is_empty() {
        SchemaCache::put(header, &schema);
    }
    Ok(Frame::Message(schema))
}

/// Refuses the sizes arrow's flatbuffer conversion lets through but its
/// decoder cannot hold: a negative fixed width panics while a batch is
/// decoded against the schema.
fn refuse_negative_sizes(data_type: &DataType) -> Result<()> {
    match data_type {
        DataType::FixedSizeBinary(width) if *width < 0 => Err(WireError::Malformed(format!(
            "schema declares FixedSizeBinary with a negative width ({width})"
        ))),
        DataType::FixedSizeList(_, size) if *size < 0 => Err(WireError::Malformed(format!(
            "schema declares FixedSizeList with a negative size ({size})"
        ))),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => refuse_negative_sizes(f.data_type()),
        DataType::Struct(fields) => fields
            .iter()
            .try_for_each(|f| refuse_negative_sizes(f.data_type())),
        DataType::Union(fields, _) => fields
            .iter()
            .try_for_each(|(_, f)| refuse_negative_sizes(f.data_type())),
        DataType::Dictionary(_, values) => refuse_negative_sizes(values),
        DataType::RunEndEncoded(_, values) => refuse_negative_sizes(values.data_type()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::ipc::{StreamReader, read_stream_bytes, write_stream_bytes};
    use crate::metadata::Metadata;

    #[test]
    fn repeated_schemas_are_decoded_once_per_thread() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap();
        let first = StreamReader::open(bytes.as_slice()).unwrap();
        let second = StreamReader::open(bytes.as_slice()).unwrap();
        assert!(Arc::ptr_eq(first.schema(), second.schema()));
        // Past the cache's bound every schema still reads correctly.
        for width in 1..=300 {
            let fields: Vec<_> = (0..width % 5 + 1)
                .map(|i| Field::new(format!("c{i}_{width}"), DataType::Int64, true))
                .collect();
            let schema = Arc::new(Schema::new(fields));
            let bytes = write_stream_bytes(&schema, std::iter::empty()).unwrap();
            let (read, batches) = read_stream_bytes(&bytes).unwrap();
            assert_eq!(read, schema);
            assert!(batches.is_empty());
        }
        assert!(SCHEMAS.with_borrow(|schemas| schemas.bytes) <= SCHEMA_CACHE_BYTES);
    }
}
