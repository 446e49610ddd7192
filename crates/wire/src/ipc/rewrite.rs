//! Giving an encoded record batch message custom metadata of its own.

use arrow_ipc::MessageHeader;
use flatbuffers::FlatBufferBuilder;

use crate::metadata::Metadata;
use crate::{Result, WireError};

/// Rebuilds an encoded record batch message with `metadata` as its custom
/// metadata; the body is untouched, so only the small header is rewritten.
pub(super) fn attach_custom_metadata(ipc_message: &[u8], metadata: &Metadata) -> Result<Vec<u8>> {
    let message = arrow_ipc::root_as_message(ipc_message)
        .map_err(|e| WireError::Malformed(format!("arrow produced an invalid message: {e}")))?;
    let batch = message
        .header_as_record_batch()
        .ok_or_else(|| WireError::Malformed("expected a record batch message".into()))?;

    let mut fbb = FlatBufferBuilder::with_capacity(ipc_message.len() + 64 * metadata.len());
    let nodes = batch.nodes().map(|nodes| {
        let nodes: Vec<_> = nodes.iter().copied().collect();
        fbb.create_vector(&nodes)
    });
    let buffers = batch.buffers().map(|buffers| {
        let buffers: Vec<_> = buffers.iter().copied().collect();
        fbb.create_vector(&buffers)
    });
    let compression = batch.compression().map(|c| {
        arrow_ipc::BodyCompression::create(
            &mut fbb,
            &arrow_ipc::BodyCompressionArgs {
                codec: c.codec(),
                method: c.method(),
            },
        )
    });
    let variadic = batch.variadicBufferCounts().map(|counts| {
        let counts: Vec<i64> = counts.iter().collect();
        fbb.create_vector(&counts)
    });
    let header = arrow_ipc::RecordBatch::create(
        &mut fbb,
        &arrow_ipc::RecordBatchArgs {
            length: batch.length(),
            nodes,
            buffers,
            compression,
            variadicBufferCounts: variadic,
        },
    );
    let entries: Vec<_> = metadata
        .iter()
        .map(|(k, v)| {
            let key = fbb.create_string(k);
            let value = fbb.create_string(v);
            arrow_ipc::KeyValue::create(
                &mut fbb,
                &arrow_ipc::KeyValueArgs {
                    key: Some(key),
                    value: Some(value),
                },
            )
        })
        .collect();
    let custom_metadata = fbb.create_vector(&entries);
    let rebuilt = arrow_ipc::Message::create(
        &mut fbb,
        &arrow_ipc::MessageArgs {
            version: message.version(),
            header_type: MessageHeader::RecordBatch,
            header: Some(header.as_union_value()),
            bodyLength: message.bodyLength(),
            custom_metadata: Some(custom_metadata),
        },
    );
    fbb.finish(rebuilt, None);
    Ok(fbb.finished_data().to_vec())
}
