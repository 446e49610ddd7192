//! Driving the probe service's streams one turn per request.

use arrow_array::RecordBatch;
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc_http::HttpConfig;

use super::probe::keyed;

/// A one-byte response cap: every producer turn ends after its first
/// batch, with a continuation token.
pub(crate) fn turn_by_turn() -> HttpConfig {
    keyed().with_max_response_bytes(1)
}

/// An exchange or continuation request carrying `token`.
pub(crate) fn turn(token: &str, batch: RecordBatch, extra: Metadata) -> Vec<u8> {
    let mut md = extra;
    md.insert(metadata::STREAM_STATE, token);
    write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap()
}

pub(crate) fn tick() -> RecordBatch {
    RecordBatch::new_empty(empty_schema())
}
