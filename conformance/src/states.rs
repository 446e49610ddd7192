//! Stream states of the conformance service, one per reference state class.
//!
//! Each derives `ArrowStruct` and is a `#[vgirpc::stream_state]`, so that an
//! HTTP continuation token can carry it to whichever worker serves the next
//! turn, as the reference's dataclass states travel.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgirpc::{
    AnnotatedBatch, ArrowStruct, AsyncExchangeState, AsyncProducerState, CallContext,
    ExchangeState, Level, OutputCollector, ProducerState, RpcError, SessionState,
};

use crate::probe::{CancelProbe, Counter};

/// `{index: int64, value: int64}`, the schema most producers emit.
pub fn counter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("index", DataType::Int64, true),
        Field::new("value", DataType::Int64, true),
    ]))
}

/// `{value: float64}`, the input and output of the scaling exchanges.
pub fn float_value_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        true,
    )]))
}

/// `{running_sum: float64, exchange_count: int64}`.
pub fn accumulate_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("running_sum", DataType::Float64, true),
        Field::new("exchange_count", DataType::Int64, true),
    ]))
}

/// Output schema of `produce_dynamic_schema` for the given flags.
pub fn dynamic_schema(include_strings: bool, include_floats: bool) -> SchemaRef {
    let mut fields = vec![Field::new("index", DataType::Int64, true)];
    if include_strings {
        fields.push(Field::new("label", DataType::Utf8, true));
    }
    if include_floats {
        fields.push(Field::new("score", DataType::Float64, true));
    }
    Arc::new(Schema::new(fields))
}

fn emit_counter_rows(
    out: &mut OutputCollector,
    indices: impl Iterator<Item = i64>,
) -> Result<(), RpcError> {
    let indices: Vec<i64> = indices.collect();
    let values: Vec<i64> = indices.iter().map(|i| i * 10).collect();
    out.emit_arrays(vec![
        Arc::new(Int64Array::from(indices)),
        Arc::new(Int64Array::from(values)),
    ])
}

fn float_column<'a>(input: &'a AnnotatedBatch, name: &str) -> Result<&'a Float64Array, RpcError> {
    input
        .batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .ok_or_else(|| RpcError::type_error(format!("input needs a float64 column '{name}'")))
}

/// Emits `{index, value = index * 10}` rows `current..count`, one per tick.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct CounterState {
    pub count: i64,
    pub current: i64,
}

#[vgirpc::stream_state]
impl ProducerState for CounterState {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.current >= self.count {
            return out.finish();
        }
        emit_counter_rows(out, std::iter::once(self.current))?;
        self.current += 1;
        Ok(())
    }
}

/// Like [`CounterState`], with an INFO log before every batch.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct LoggingProducerState {
    pub count: i64,
    pub current: i64,
}

#[vgirpc::stream_state]
impl AsyncProducerState for LoggingProducerState {
    async fn produce(
        &mut self,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        tokio::task::yield_now().await;
        if self.current >= self.count {
            return out.finish();
        }
        out.log(Level::Info, format!("producing batch {}", self.current));
        emit_counter_rows(out, std::iter::once(self.current))?;
        self.current += 1;
        Ok(())
    }
}

/// Emits `batch_count` batches of `rows_per_batch` consecutive rows.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct LargeProducerState {
    pub rows_per_batch: i64,
    pub batch_count: i64,
    pub current: i64,
}

#[vgirpc::stream_state]
impl ProducerState for LargeProducerState {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.current >= self.batch_count {
            return out.finish();
        }
        let offset = self.current * self.rows_per_batch;
        emit_counter_rows(out, offset..offset + self.rows_per_batch)?;
        self.current += 1;
        Ok(())
    }
}

/// Emits one batch of `rows_per_batch` rows, then finishes.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct OversizedBatchState {
    pub rows_per_batch: i64,
    pub emitted: bool,
}

#[vgirpc::stream_state]
impl ProducerState for OversizedBatchState {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.emitted {
            return out.finish();
        }
        emit_counter_rows(out, 0..self.rows_per_batch)?;
        self.emitted = true;
        Ok(())
    }
}

/// Emits `emit_before_error` batches, then fails.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct ErrorAfterNState {
    pub emit_before_error: i64,
    pub current: i64,
}

#[vgirpc::stream_state]
impl ProducerState for ErrorAfterNState {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.current >= self.emit_before_error {
            return Err(RpcError::runtime_error(format!(
                "intentional error after {} batches",
                self.emit_before_error
            )));
        }
        emit_counter_rows(out, std::iter::once(self.current))?;
        self.current += 1;
        Ok(())
    }
}

/// Emits `count` rows of a schema chosen by the two flags.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct DynamicProducerState {
    pub count: i64,
    pub include_strings: bool,
    pub include_floats: bool,
    pub current: i64,
}

#[vgirpc::stream_state]
impl ProducerState for DynamicProducerState {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.current >= self.count {
            return out.finish();
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![self.current]))];
        if self.include_strings {
            columns.push(Arc::new(StringArray::from(vec![format!(
                "row-{}",
                self.current
            )])));
        }
        if self.include_floats {
            columns.push(Arc::new(Float64Array::from(vec![
                self.current as f64 * 1.5,
            ])));
        }
        out.emit_arrays(columns)?;
        self.current += 1;
        Ok(())
    }
}

/// Never finishes; counts its calls and cancellation in the probe.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct CancellableProducerState {
    pub current: i64,
}

#[vgirpc::stream_state]
impl ProducerState for CancellableProducerState {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        CancelProbe::bump(Counter::Produce);
        emit_counter_rows(out, std::iter::once(self.current))?;
        self.current += 1;
        Ok(())
    }

    fn on_cancel(&mut self, _ctx: &CallContext) {
        CancelProbe::bump(Counter::OnCancel);
    }
}

/// Multiplies the `value` column by `factor`.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct ScaleExchangeState {
    pub factor: f64,
}

#[vgirpc::stream_state]
impl ExchangeState for ScaleExchangeState {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        // A vectorised kernel over the values buffer; the null bitmap is
        // shared with the input rather than rebuilt element by element.
        let factor = self.factor;
        let scaled: Float64Array = float_column(input, "value")?.unary(|v| v * factor);
        out.emit_arrays(vec![Arc::new(scaled)])
    }
}

/// Keeps a running sum of `value` and a count of exchanges.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct AccumulatingExchangeState {
    pub running_sum: f64,
    pub exchange_count: i64,
}

#[vgirpc::stream_state]
impl AsyncExchangeState for AccumulatingExchangeState {
    async fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        tokio::task::yield_now().await;
        let sum: f64 = float_column(input, "value")?.iter().flatten().sum();
        self.running_sum += sum;
        self.exchange_count += 1;
        out.emit_arrays(vec![
            Arc::new(Float64Array::from(vec![self.running_sum])),
            Arc::new(Int64Array::from(vec![self.exchange_count])),
        ])
    }
}

/// Logs at INFO and DEBUG, then echoes the input.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct LoggingExchangeState;

#[vgirpc::stream_state]
impl ExchangeState for LoggingExchangeState {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        out.log(Level::Info, "exchange processing");
        out.log(Level::Debug, "exchange debug");
        out.emit(input.batch.clone())
    }
}

/// Accepts and answers zero-column batches.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct ZeroColumnExchangeState {
    pub call_count: i64,
}

#[vgirpc::stream_state]
impl ExchangeState for ZeroColumnExchangeState {
    fn exchange(
        &mut self,
        _input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        self.call_count += 1;
        out.emit(RecordBatch::new_empty(out.output_schema().clone()))
    }
}

/// Echoes input until the `fail_on`-th exchange, which fails.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct FailOnExchangeNState {
    pub fail_on: i64,
    pub exchange_count: i64,
}

#[vgirpc::stream_state]
impl ExchangeState for FailOnExchangeNState {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        self.exchange_count += 1;
        if self.exchange_count >= self.fail_on {
            return Err(RpcError::runtime_error(format!(
                "intentional error on exchange {}",
                self.exchange_count
            )));
        }
        out.emit(input.batch.clone())
    }
}

/// Answers every input with `rows_per_batch` counter rows.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct OversizedExchangeState {
    pub rows_per_batch: i64,
}

#[vgirpc::stream_state]
impl ExchangeState for OversizedExchangeState {
    fn exchange(
        &mut self,
        _input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        emit_counter_rows(out, 0..self.rows_per_batch)
    }
}

/// Echoes input; counts its calls and cancellation in the probe.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct CancellableExchangeState;

#[vgirpc::stream_state]
impl ExchangeState for CancellableExchangeState {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        CancelProbe::bump(Counter::Exchange);
        out.emit(input.batch.clone())
    }

    fn on_cancel(&mut self, _ctx: &CallContext) {
        CancelProbe::bump(Counter::OnCancel);
    }
}

/// `{value: int64}`, the output of the session-counter streams.
pub fn session_counter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Int64,
        true,
    )]))
}

/// `{by: int64}`, the input of `exchange_session_counter`.
pub fn session_counter_input_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("by", DataType::Int64, true)]))
}

/// The error of the session-counter methods when no counter is bound.
pub(crate) fn no_counter() -> RpcError {
    RpcError::runtime_error("no sticky counter bound to this request")
}

/// The object `open_counter` binds to a sticky session; the unary counter
/// methods and both session-counter streams find it again through
/// [`CallContext::session`].
///
/// Its close hook is observable in the worker's log (`sticky counter
/// closed`, at INFO, with the final value), so tests can watch eviction,
/// explicit close and drain shutdown from outside the process.
#[derive(Debug)]
pub struct StickyCounter {
    pub value: i64,
}

impl SessionState for StickyCounter {
    fn close(&mut self) {
        tracing::info!(value = self.value, "sticky counter closed");
    }
}

/// `stream_session_counter`: increments the session's counter and emits
/// it, `count` times. The stream state only counts turns; the counter
/// itself stays in the session, found again on every turn.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct SessionCounterProducer {
    pub count: i64,
    pub current: i64,
}

#[vgirpc::stream_state]
impl ProducerState for SessionCounterProducer {
    fn produce(&mut self, out: &mut OutputCollector, ctx: &CallContext) -> Result<(), RpcError> {
        if self.current >= self.count {
            return out.finish();
        }
        let mut counter = ctx.session::<StickyCounter>().ok_or_else(no_counter)?;
        counter.value += 1;
        self.current += 1;
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![counter.value]))])
    }
}

/// `exchange_session_counter`: adds each input's `by` column to the
/// session's counter and emits it.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct SessionCounterExchange;

#[vgirpc::stream_state]
impl ExchangeState for SessionCounterExchange {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let by = input
            .batch
            .column_by_name("by")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| RpcError::type_error("input needs an int64 column 'by'"))?;
        let mut counter = ctx.session::<StickyCounter>().ok_or_else(no_counter)?;
        counter.value += by.iter().flatten().sum::<i64>();
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![counter.value]))])
    }
}
