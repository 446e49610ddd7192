//! What a call answers: a complete response stream, and the error and log
//! batches every transport sends the same way.

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use vgirpc_wire::ipc::StreamWriter;
use vgirpc_wire::log::{ErrorInfo, LogRecord, empty_batch};
use vgirpc_wire::metadata::{self, Metadata};

use crate::context::server_id;
use crate::error::ServeError;
use crate::observe::CallRecord;

/// Why a call failed, so transports can map failures to their own status
/// codes (HTTP 400/404/500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The request broke the protocol: missing metadata, wrong version,
    /// wrong row count.
    Protocol,
    /// The request named a method the service does not have.
    UnknownMethod,
    /// The method (or decoding its parameters) reported an error.
    Method,
}

/// A complete response: one IPC stream on `schema` holding `batches`.
#[derive(Debug)]
pub struct Answer {
    /// Schema of the response stream.
    pub schema: SchemaRef,
    /// Log batches, then the result or error batch, with their metadata.
    pub batches: Vec<(RecordBatch, Metadata)>,
    /// Set when the answer reports a failure.
    pub failure: Option<(FailureKind, ErrorInfo)>,
    /// What hooks are told about the call, when it reached a method.
    pub record: Option<Box<CallRecord>>,
}

impl Answer {
    pub(crate) fn error(
        schema: SchemaRef,
        kind: FailureKind,
        info: ErrorInfo,
        request_id: &str,
    ) -> Self {
        let batches = vec![error_batch(&schema, &info, request_id)];
        Self {
            schema,
            batches,
            failure: Some((kind, info)),
            record: None,
        }
    }

    /// Writes the answer as one IPC stream and flushes.
    pub fn write_to<W: Write>(&self, writer: &mut W) -> Result<(), ServeError> {
        let mut out = StreamWriter::try_new(&mut *writer, &self.schema)?;
        for (batch, md) in &self.batches {
            out.write(batch, md)?;
        }
        out.finish()?.flush()?;
        Ok(())
    }
}

/// Log and error batches carry the server and request ids so clients can
/// correlate them.
pub(crate) fn with_ids(mut md: Metadata, batch: &RecordBatch, request_id: &str) -> Metadata {
    if batch.num_rows() == 0 && md.contains(metadata::LOG_LEVEL) {
        md.insert(metadata::SERVER_ID, server_id());
        if !request_id.is_empty() {
            md.insert(metadata::REQUEST_ID, request_id);
        }
    }
    md
}

pub(crate) fn log_entries(
    schema: &SchemaRef,
    logs: Vec<LogRecord>,
    request_id: &str,
) -> Vec<(RecordBatch, Metadata)> {
    logs.into_iter()
        .map(|record| {
            let batch = empty_batch(schema);
            let md = with_ids(record.to_metadata(), &batch, request_id);
            (batch, md)
        })
        .collect()
}

/// The zero-row EXCEPTION batch reporting `info` on `schema`, carrying this
/// server's id and `request_id` (when not empty), as every transport sends it.
pub fn error_batch(
    schema: &SchemaRef,
    info: &ErrorInfo,
    request_id: &str,
) -> (RecordBatch, Metadata) {
    let batch = empty_batch(schema);
    let md = with_ids(info.to_log_record().to_metadata(), &batch, request_id);
    (batch, md)
}
