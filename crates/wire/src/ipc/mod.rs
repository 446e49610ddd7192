//! Arrow IPC stream framing with per-batch custom metadata.
//!
//! A vgi-rpc byte stream carries several IPC streams back to back
//! (WIRE_PROTOCOL §2): each is a schema message, dictionary and record batch
//! messages, and an end-of-stream marker. [`StreamReader`] reads exactly one
//! such stream and stops right after its EOS marker, so the next reader can
//! pick up where it left off; [`StreamWriter`] writes one.
//!
//! arrow-ipc's own stream reader and writer cannot attach metadata to an
//! individual record batch message, which vgi-rpc relies on for every log,
//! error and request batch, so the message framing lives here while Arrow
//! does the body encoding and decoding.

#[cfg(feature = "tokio")]
pub mod async_frame;
mod chunks;
mod encoded_schemas;
mod frame;
mod reader;
mod rewrite;
mod schema_cache;
mod writer;

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

pub use chunks::Chunks;
pub use frame::{EAGER_RESERVE_BYTES, EOS, IpcBatch, ReadLimits, mid_message};
pub use reader::StreamReader;
pub use writer::StreamWriter;

use crate::Result;
use crate::metadata::Metadata;

/// Writes a complete IPC stream holding `batches` to a byte vector.
pub fn write_stream_bytes<'a>(
    schema: &SchemaRef,
    batches: impl IntoIterator<Item = (&'a RecordBatch, &'a Metadata)>,
) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    for (batch, metadata) in batches {
        writer.write(batch, metadata)?;
    }
    writer.finish()
}

/// Reads every batch of one complete IPC stream held in `bytes`.
pub fn read_stream_bytes(bytes: &[u8]) -> Result<(SchemaRef, Vec<IpcBatch>)> {
    let mut reader = StreamReader::open(bytes)?;
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        batches.push(batch);
    }
    Ok((reader.schema().clone(), batches))
}

/// The empty schema (`pa.schema([])`), used for errors, ticks and void results.
pub fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

#[cfg(test)]
mod tests;
