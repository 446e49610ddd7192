//! Request bytes written by hand, for tests that speak to a worker over a
//! raw pipe or socket without a client.

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use vgirpc_wire::ipc::write_stream_bytes;
use vgirpc_wire::request::Request;

/// The request stream of a call to `method` whose one parameter, `value`,
/// is the string `text` (the shape of the conformance `echo_string`).
pub fn string_call(method: &str, text: &str) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(vec![text]))],
    )
    .expect("one string column matches its schema");
    write_stream_bytes(&schema, [(&batch, &Request::metadata_for(method))])
        .expect("a request stream writes to memory")
}
