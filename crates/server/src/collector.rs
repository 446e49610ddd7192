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
    _not_sync: PhantomData<std::cell::Cell<()>>,
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
    pub(crate) fn new(schema: SchemaRef, producer_mode: bool) -> Self {
        Self {
            schema,
            entries: Vec::new(),
            data_emitted: false,
            finished: false,
            producer_mode,
            _not_sync: PhantomData,
        }
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
