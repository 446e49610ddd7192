//! Building the body of a unary call or a stream's first request.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::request::Request as RpcRequest;

/// A request stream for `method` with one-row parameter columns.
pub(crate) fn request(method: &str, params: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let md = RpcRequest::metadata_for(method);
    let batch = if params.is_empty() {
        RecordBatch::new_empty(empty_schema())
    } else {
        let fields: Vec<Field> = params
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        let columns = params.into_iter().map(|(_, array)| array).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap()
}
