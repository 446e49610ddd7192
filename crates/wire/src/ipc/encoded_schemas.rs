//! Schema messages encoded per thread, framed as a stream writer writes
//! them. A server answers call after call with the same few schemas, and
//! encoding a schema's flatbuffer is a large part of writing a small
//! response.
//!
//! Only schemas without dictionaries are kept: with them, encoding also
//! assigns dictionary ids in the writer's tracker, which a cached message
//! would skip.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use arrow_schema::SchemaRef;

/// Schemas kept per thread: a service's methods answer with a handful,
/// and a lookup scans them all.
const KEPT_SCHEMAS: usize = 16;

/// Largest message kept, so that a program writing huge schemas holds at
/// most a few of them per thread.
const KEPT_MESSAGE_BYTES: usize = 64 * 1024;

thread_local! {
    /// Most recently kept last.
    static ENCODED: RefCell<VecDeque<(SchemaRef, Arc<[u8]>)>> =
        const { RefCell::new(VecDeque::new()) };
}

/// The framed schema message kept for `schema`: the same `Arc` first, as a
/// method's answers share their schema, then an equal schema.
pub(super) fn cached(schema: &SchemaRef) -> Option<Arc<[u8]>> {
    ENCODED.with_borrow(|kept| {
        kept.iter()
            .find(|(kept, _)| Arc::ptr_eq(kept, schema))
            .or_else(|| kept.iter().find(|(kept, _)| **kept == **schema))
            .map(|(_, message)| Arc::clone(message))
    })
}

/// Keeps `message`, the framed schema message of `schema`, which has no
/// dictionaries, in place of the least recently kept one.
pub(super) fn keep(schema: &SchemaRef, message: Vec<u8>) {
    if message.len() > KEPT_MESSAGE_BYTES {
        return;
    }
    ENCODED.with_borrow_mut(|kept| {
        if kept.len() == KEPT_SCHEMAS {
            kept.pop_front();
        }
        kept.push_back((Arc::clone(schema), message.into()));
    });
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::ipc::{read_stream_bytes, write_stream_bytes};
    use crate::metadata::Metadata;

    fn schema(name: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]))
    }

    fn stream(schema: &SchemaRef) -> Vec<u8> {
        let batch = RecordBatch::try_new(
            Arc::clone(schema),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        write_stream_bytes(schema, [(&batch, &Metadata::new())]).unwrap()
    }

    #[test]
    fn a_kept_message_is_what_encoding_writes() {
        let first = schema("a");
        let written = stream(&first);
        assert!(cached(&first).is_some(), "kept once written");
        // An equal schema in another Arc is written from the kept message.
        let again = stream(&schema("a"));
        assert_eq!(written, again);
        let (read, batches) = read_stream_bytes(&again).unwrap();
        assert_eq!(read, first);
        assert_eq!(batches.len(), 1);
    }

    #[test]
    fn different_schemas_never_share_a_message() {
        for i in 0..KEPT_SCHEMAS * 2 {
            let schema = schema(&format!("c{i}"));
            let (read, _) = read_stream_bytes(&stream(&schema)).unwrap();
            assert_eq!(read, schema, "round {i}");
        }
        assert!(ENCODED.with_borrow(VecDeque::len) <= KEPT_SCHEMAS);
        // The oldest went first; the newest is still kept.
        assert!(cached(&schema("c0")).is_none());
        assert!(cached(&schema(&format!("c{}", KEPT_SCHEMAS * 2 - 1))).is_some());
    }

    #[test]
    fn schemas_with_dictionaries_are_encoded_each_time() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        )]));
        write_stream_bytes(&schema, std::iter::empty()).unwrap();
        assert!(cached(&schema).is_none());
    }
}
