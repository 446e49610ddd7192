//! An echo service and the request that calls it, for the tests that watch
//! what a dispatch records around a call.

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use vgirpc::RpcError;
use vgirpc::wire::ipc::write_stream_bytes;
use vgirpc::wire::metadata::Metadata;

/// Service used by these tests.
#[vgirpc::service]
pub(crate) trait Echo {
    /// Echo.
    fn echo(&self, value: String) -> Result<String, RpcError>;
}

pub(crate) struct EchoImpl;

impl Echo for EchoImpl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        // An event inside the call, by which a test finds the call's span.
        tracing::info!("echoing");
        Ok(value)
    }
}

/// One `echo("x")` request carrying `md`.
pub(crate) fn echo_request(md: &Metadata) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["x"]))]).unwrap();
    write_stream_bytes(&schema, [(&batch, md)]).unwrap()
}
