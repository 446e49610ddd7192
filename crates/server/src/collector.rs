//! What one stream step sends: its log batches and exactly one data batch.

use std::fmt;
use std::marker::PhantomData;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use serde_json::Value as Json;
use vgirpc_wire::log::{Level, LogRecord, empty_batch};
use vgirpc_wire::metadata::Metadata;
use vgirpc_wire::types::ArrowStruct;

use crate::conform::conform_to;
use crate::error::RpcError;

/// Collects what one `produce`/`exchange` call sends: log batches and
/// exactly one data batch, in the order they were emitted.
pub struct OutputCollector {
    schema: SchemaRef,
    entries: Vec<(RecordBatch, Metadata)>,
    data_emitted: bool,
    finished: bool,
    producer_mode: bool,
    budget: ResponseBudget,
    /// Data bytes the stream emitted before this call.
    prior_data_bytes: u64,
    /// Data bytes of this call's data batch.
    data_bytes: u64,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// What the transport will still take in the response a call's output
/// joins, fixed when the call starts (as in the reference): `None` where
/// there is no cap (pipes, Unix sockets, HTTP without caps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseBudget {
    /// HTTP body bytes left before `max_response_bytes`, IPC framing
    /// included.
    pub remaining_response_bytes: Option<u64>,
    /// Bytes left before `max_externalized_response_bytes`; `None` too
    /// when nothing is externalized.
    pub remaining_externalized_response_bytes: Option<u64>,
    /// Whether the server externalizes large batches into storage.
    pub externalization_enabled: bool,
}

impl ResponseBudget {
    /// A budget of `remaining_response_bytes` on the wire and
    /// `remaining_externalized_response_bytes` in storage.
    pub fn new(
        remaining_response_bytes: Option<u64>,
        remaining_externalized_response_bytes: Option<u64>,
        externalization_enabled: bool,
    ) -> Self {
        Self {
            remaining_response_bytes,
            remaining_externalized_response_bytes,
            externalization_enabled,
        }
    }
}

impl fmt::Debug for OutputCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputCollector")
            .field("schema", &self.schema)
            .field("entries", &self.entries.len())
            .field("finished", &self.finished)
            .finish()
    }
}

impl OutputCollector {
    pub(crate) fn new(
        schema: SchemaRef,
        producer_mode: bool,
        budget: ResponseBudget,
        prior_data_bytes: u64,
    ) -> Self {
        Self {
            schema,
            entries: Vec::new(),
            data_emitted: false,
            finished: false,
            producer_mode,
            budget,
            prior_data_bytes,
            data_bytes: 0,
            _not_sync: PhantomData,
        }
    }

    /// HTTP body bytes the response can still take before its cap, IPC
    /// framing included (so slightly conservative for payload sizes);
    /// `None` without a cap. Fixed when the call starts.
    pub fn remaining_response_bytes(&self) -> Option<u64> {
        self.budget.remaining_response_bytes
    }

    /// Bytes the response can still externalize before its cap; `None`
    /// without a cap or without externalization (tell them apart with
    /// [`externalization_enabled`](Self::externalization_enabled)).
    pub fn remaining_externalized_response_bytes(&self) -> Option<u64> {
        self.budget.remaining_externalized_response_bytes
    }

    /// Whether the server externalizes large batches into storage.
    pub fn externalization_enabled(&self) -> bool {
        self.budget.externalization_enabled
    }

    /// Data bytes (Arrow buffers) the stream has emitted so far, this
    /// call's data batch included.
    pub fn total_data_bytes(&self) -> u64 {
        self.prior_data_bytes + self.data_bytes
    }

    /// Whether [`finish`](Self::finish) has been called.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Schema every emitted data batch must have.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Emits the data batch of this call.
    ///
    /// A batch carrying extra columns is narrowed to the output schema;
    /// one missing a column is an error.
    pub fn emit(&mut self, batch: RecordBatch) -> Result<(), RpcError> {
        self.emit_with_metadata(batch, Metadata::new())
    }

    /// Emits the data batch with custom metadata attached.
    pub fn emit_with_metadata(
        &mut self,
        batch: RecordBatch,
        metadata: Metadata,
    ) -> Result<(), RpcError> {
        if self.data_emitted {
            return Err(RpcError::runtime_error(
                "Only one data batch may be emitted per call",
            ));
        }
        let batch = conform_to(&self.schema, batch)?;
        self.data_bytes = batch
            .columns()
            .iter()
            .map(|column| column.get_buffer_memory_size() as u64)
            .sum();
        self.entries.push((batch, metadata));
        self.data_emitted = true;
        Ok(())
    }

    /// Emits a data batch built from `columns` in output-schema order.
    pub fn emit_arrays(&mut self, columns: Vec<ArrayRef>) -> Result<(), RpcError> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| RpcError::value_error(format!("cannot build output batch: {e}")))?;
        self.emit(batch)
    }

    /// Emits a data batch with one row per value of `rows`, its columns
    /// named by the struct's fields: for a stream whose output schema is
    /// `R::schema()`.
    pub fn emit_rows<R: ArrowStruct>(&mut self, rows: &[R]) -> Result<(), RpcError> {
        let batch = R::rows_to_record_batch(rows)
            .map_err(|e| RpcError::value_error(format!("cannot build output batch: {e}")))?;
        self.emit(batch)
    }

    /// Ends a producer stream; no data batch is emitted by this call.
    pub fn finish(&mut self) -> Result<(), RpcError> {
        if !self.producer_mode {
            return Err(RpcError::runtime_error(
                "finish() is only allowed on producer streams",
            ));
        }
        self.finished = true;
        Ok(())
    }

    /// Sends a log message to the client ahead of the data batch.
    pub fn log(&mut self, level: Level, message: impl Into<String>) {
        self.push_log(LogRecord::new(level, message));
    }

    /// Sends a log message with structured extras to the client.
    pub fn log_with<K, V>(
        &mut self,
        level: Level,
        message: impl Into<String>,
        extra: impl IntoIterator<Item = (K, V)>,
    ) where
        K: Into<String>,
        V: Into<Json>,
    {
        let mut record = LogRecord::new(level, message);
        for (k, v) in extra {
            record.extra.insert(k.into(), v.into());
        }
        self.push_log(record);
    }

    pub(crate) fn push_log(&mut self, record: LogRecord) {
        self.entries
            .push((empty_batch(&self.schema), record.to_metadata()));
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Checks the call kept its contract and hands back what to send.
    pub(crate) fn into_entries(
        self,
        ctx_logs: Vec<LogRecord>,
    ) -> Result<Vec<(RecordBatch, Metadata)>, RpcError> {
        if !self.finished && !self.data_emitted {
            return Err(RpcError::runtime_error("No data batch was emitted"));
        }
        let mut entries: Vec<(RecordBatch, Metadata)> = ctx_logs
            .into_iter()
            .map(|r| (empty_batch(&self.schema), r.to_metadata()))
            .collect();
        entries.extend(self.entries);
        Ok(entries)
    }
}
