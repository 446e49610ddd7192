use std::fmt;
use std::marker::PhantomData;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_cast::CastOptions;
use arrow_schema::{ArrowError, DataType, SchemaRef};
use serde_json::Value as Json;
use vgirpc_wire::ipc::IpcBatch;
use vgirpc_wire::log::{Level, LogRecord, empty_batch};
use vgirpc_wire::metadata::Metadata;

use crate::context::CallContext;
use crate::error::RpcError;
use crate::persist::{SavedState, not_resumable};

/// An input batch of a stream together with its custom metadata.
pub type AnnotatedBatch = IpcBatch;

/// State of a producer stream: called once per client tick to emit the
/// next batch, until it calls [`OutputCollector::finish`].
pub trait ProducerState: Send + 'static {
    /// Emits exactly one data batch (plus any logs), or finishes the stream.
    fn produce(&mut self, out: &mut OutputCollector, ctx: &CallContext) -> Result<(), RpcError>;

    /// Called once when the client cancels the stream.
    fn on_cancel(&mut self, _ctx: &CallContext) {}

    /// Encodes the state so a stateless transport can resume it in another
    /// request or process. Provided by `#[vgirpc::stream_state]`, which also
    /// registers the matching decoder; without it the stream runs on
    /// connection transports only.
    #[doc(hidden)]
    fn save_state(&self) -> Result<SavedState, RpcError> {
        Err(not_resumable(std::any::type_name::<Self>()))
    }
}

/// State of an exchange stream: called once per client input batch.
pub trait ExchangeState: Send + 'static {
    /// Emits exactly one data batch (plus any logs) answering `input`.
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> Result<(), RpcError>;

    /// Called once when the client cancels the stream.
    fn on_cancel(&mut self, _ctx: &CallContext) {}

    /// Encodes the state for stateless transports; see
    /// `ProducerState::save_state`.
    #[doc(hidden)]
    fn save_state(&self) -> Result<SavedState, RpcError> {
        Err(not_resumable(std::any::type_name::<Self>()))
    }
}

/// Marker for streams without a header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoHeader;

pub(crate) enum StreamKind {
    Producer(Box<dyn ProducerState>),
    Exchange {
        input_schema: SchemaRef,
        state: Box<dyn ExchangeState>,
    },
}

/// What a stream method returns: the output schema, the state that
/// produces batches, and (for `Stream<H>`) the header sent before any data.
pub struct Stream<H = NoHeader> {
    pub(crate) kind: StreamKind,
    pub(crate) output_schema: SchemaRef,
    pub(crate) header: Option<H>,
}

impl<H> fmt::Debug for Stream<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            StreamKind::Producer(_) => "producer",
            StreamKind::Exchange { .. } => "exchange",
        };
        f.debug_struct("Stream")
            .field("kind", &kind)
            .field("output_schema", &self.output_schema)
            .field("has_header", &self.header.is_some())
            .finish()
    }
}

impl Stream<NoHeader> {
    /// A producer stream emitting batches of `output_schema`.
    pub fn producer(output_schema: SchemaRef, state: impl ProducerState) -> Self {
        Self {
            kind: StreamKind::Producer(Box::new(state)),
            output_schema,
            header: None,
        }
    }

    /// An exchange stream reading `input_schema` batches and answering each
    /// with an `output_schema` batch.
    pub fn exchange(
        input_schema: SchemaRef,
        output_schema: SchemaRef,
        state: impl ExchangeState,
    ) -> Self {
        Self {
            kind: StreamKind::Exchange {
                input_schema,
                state: Box::new(state),
            },
            output_schema,
            header: None,
        }
    }

    /// Attaches the header sent to the client before the first batch.
    pub fn with_header<H>(self, header: H) -> Stream<H> {
        Stream {
            kind: self.kind,
            output_schema: self.output_schema,
            header: Some(header),
        }
    }
}

impl<H> Stream<H> {
    /// Schema of the batches this stream emits.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Whether the client drives it with input batches.
    pub fn is_exchange(&self) -> bool {
        matches!(self.kind, StreamKind::Exchange { .. })
    }

    /// The header sent before the first batch, if any.
    pub fn header(&self) -> Option<&H> {
        self.header.as_ref()
    }

    /// Swaps the typed header for its encoded batch, for dispatch.
    pub(crate) fn into_erased(self, header: Option<RecordBatch>) -> ErasedStream {
        Stream {
            kind: self.kind,
            output_schema: self.output_schema,
            header,
        }
    }
}

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

/// Reconciles `batch` with `schema`: identical passes through, a superset
/// or reordering is projected by name, compatible types are cast.
pub(crate) fn conform_to(schema: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch, RpcError> {
    if batch.schema_ref().fields() == schema.fields() {
        if batch.schema_ref().metadata() == schema.metadata() {
            return Ok(batch);
        }
        return RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| RpcError::value_error(e.to_string()));
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch.column_by_name(field.name()).ok_or_else(|| {
            RpcError::value_error(format!(
                "emitted batch is missing column '{}' required by the output schema {schema}",
                field.name()
            ))
        })?;
        let column = if column.data_type() == field.data_type() {
            column.clone()
        } else {
            strict_cast(column, field.data_type()).map_err(|e| {
                RpcError::type_error(format!("cannot cast column '{}': {e}", field.name()))
            })?
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| RpcError::value_error(e.to_string()))
}

/// Casts `column` to `to` only where every value survives, as the
/// reference's (pyarrow's) safe cast does: a string that does not parse, a
/// number out of range or a fraction cast to an integer is an error,
/// where arrow's default cast would put a null in its place.
fn strict_cast(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let cast = arrow_cast::cast_with_options(
        column,
        to,
        &CastOptions {
            safe: false,
            ..CastOptions::default()
        },
    )?;
    if column.data_type().is_floating() && to.is_integer() {
        let as_floats = arrow_cast::cast(column, &DataType::Float64)?;
        let fraction = as_floats
            .as_primitive::<Float64Type>()
            .iter()
            .flatten()
            .find(|value| value.fract() != 0.0);
        if let Some(value) = fraction {
            return Err(ArrowError::CastError(format!(
                "Float value {value} was truncated converting to {to}"
            )));
        }
    }
    Ok(cast)
}

/// Reconciles a client's input batch with the declared input schema: the
/// field set must match exactly; order and compatible types may differ.
pub(crate) fn coerce_input(
    schema: &SchemaRef,
    batch: RecordBatch,
) -> Result<RecordBatch, RpcError> {
    if batch.schema_ref().fields() == schema.fields() {
        return Ok(batch);
    }
    let mismatch = || {
        RpcError::type_error(format!(
            "Input schema mismatch: expected {schema}, got {}",
            batch.schema()
        ))
    };
    let mut expected: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut got: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    expected.sort_unstable();
    got.sort_unstable();
    if expected != got {
        return Err(mismatch());
    }
    conform_to(schema, batch.clone()).map_err(|_| mismatch())
}

pub(crate) type ErasedStream = Stream<RecordBatch>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn strict_cast_refuses_what_would_lose_a_value() {
        let fraction: ArrayRef = Arc::new(Float64Array::from(vec![Some(3.0), None, Some(3.5)]));
        let err = strict_cast(&fraction, &DataType::Int64).unwrap_err();
        assert!(err.to_string().contains("3.5 was truncated"), "{err}");
        let huge: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX]));
        assert!(strict_cast(&huge, &DataType::Int32).is_err());
        let word: ArrayRef = Arc::new(StringArray::from(vec!["zz"]));
        assert!(strict_cast(&word, &DataType::Float64).is_err());
    }

    #[test]
    fn strict_cast_converts_what_survives() {
        let whole: ArrayRef = Arc::new(Float64Array::from(vec![Some(3.0), None]));
        let cast = strict_cast(&whole, &DataType::Int64).unwrap();
        assert_eq!(
            cast.as_primitive::<arrow_array::types::Int64Type>(),
            &Int64Array::from(vec![Some(3), None])
        );
        let number: ArrayRef = Arc::new(StringArray::from(vec!["3.5"]));
        let cast = strict_cast(&number, &DataType::Float64).unwrap();
        assert_eq!(cast.as_primitive::<Float64Type>().value(0), 3.5);
    }
}
