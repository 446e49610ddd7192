//! What each conformance method does, as the reference suite expects it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use vgirpc::{
    CallContext, DictString, FixedBinary, LargeBinary, LargeString, Level, RpcError, Stream,
};

use crate::probe::CancelProbe;
use crate::states::*;
use crate::types::*;

use super::{Conformance, ConformanceService};

impl ConformanceService for Conformance {
    fn echo_string(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
    fn echo_bytes(&self, data: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        Ok(data)
    }
    fn oversized_unary(&self, target_bytes: i64) -> Result<Vec<u8>, RpcError> {
        let len = usize::try_from(target_bytes)
            .map_err(|_| RpcError::value_error("target_bytes must be non-negative"))?;
        Ok(vec![0; len])
    }
    fn echo_int(&self, value: i64) -> Result<i64, RpcError> {
        Ok(value)
    }
    fn echo_float(&self, value: f64) -> Result<f64, RpcError> {
        Ok(value)
    }
    fn echo_bool(&self, value: bool) -> Result<bool, RpcError> {
        Ok(value)
    }

    fn void_noop(&self) -> Result<(), RpcError> {
        Ok(())
    }
    fn void_with_param(&self, _value: i64) -> Result<(), RpcError> {
        Ok(())
    }

    fn echo_enum(&self, status: Status) -> Result<Status, RpcError> {
        Ok(status)
    }
    fn echo_list(&self, values: Vec<String>) -> Result<Vec<String>, RpcError> {
        Ok(values)
    }
    fn echo_dict(&self, mapping: BTreeMap<String, i64>) -> Result<BTreeMap<String, i64>, RpcError> {
        Ok(mapping)
    }
    fn echo_nested_list(&self, matrix: Vec<Vec<i64>>) -> Result<Vec<Vec<i64>>, RpcError> {
        Ok(matrix)
    }

    fn echo_optional_string(&self, value: Option<String>) -> Result<Option<String>, RpcError> {
        Ok(value)
    }
    fn echo_optional_int(&self, value: Option<i64>) -> Result<Option<i64>, RpcError> {
        Ok(value)
    }

    fn echo_point(&self, point: Point) -> Result<Point, RpcError> {
        Ok(point)
    }
    fn echo_all_types(&self, data: AllTypes) -> Result<AllTypes, RpcError> {
        Ok(data)
    }
    fn echo_bounding_box(&self, r#box: BoundingBox) -> Result<BoundingBox, RpcError> {
        Ok(r#box)
    }
    fn inspect_point(&self, point: Point) -> Result<String, RpcError> {
        Ok(format!(
            "Point({}, {})",
            py_float(point.x),
            py_float(point.y)
        ))
    }

    fn echo_int32(&self, value: i32) -> Result<i32, RpcError> {
        Ok(value)
    }
    fn echo_float32(&self, value: f32) -> Result<f32, RpcError> {
        Ok(value)
    }
    fn echo_int8(&self, value: i8) -> Result<i8, RpcError> {
        Ok(value)
    }
    fn echo_int16(&self, value: i16) -> Result<i16, RpcError> {
        Ok(value)
    }
    fn echo_uint8(&self, value: u8) -> Result<u8, RpcError> {
        Ok(value)
    }
    fn echo_uint16(&self, value: u16) -> Result<u16, RpcError> {
        Ok(value)
    }
    fn echo_uint32(&self, value: u32) -> Result<u32, RpcError> {
        Ok(value)
    }
    fn echo_uint64(&self, value: u64) -> Result<u64, RpcError> {
        Ok(value)
    }
    fn echo_date(&self, value: NaiveDate) -> Result<NaiveDate, RpcError> {
        Ok(value)
    }
    fn echo_timestamp(&self, value: NaiveDateTime) -> Result<NaiveDateTime, RpcError> {
        Ok(value)
    }
    fn echo_timestamp_utc(&self, value: DateTime<Utc>) -> Result<DateTime<Utc>, RpcError> {
        Ok(value)
    }
    fn echo_time(&self, value: NaiveTime) -> Result<NaiveTime, RpcError> {
        Ok(value)
    }
    fn echo_duration(&self, value: TimeDelta) -> Result<TimeDelta, RpcError> {
        Ok(value)
    }
    fn echo_decimal(&self, value: Dec) -> Result<Dec, RpcError> {
        Ok(value)
    }
    fn echo_large_string(&self, value: LargeString) -> Result<LargeString, RpcError> {
        Ok(value)
    }
    fn echo_large_binary(&self, value: LargeBinary) -> Result<LargeBinary, RpcError> {
        Ok(value)
    }
    fn echo_fixed_binary(&self, value: FixedBinary<8>) -> Result<FixedBinary<8>, RpcError> {
        Ok(value)
    }
    fn echo_wide_types(&self, data: WideTypes) -> Result<WideTypes, RpcError> {
        Ok(data)
    }
    fn echo_container_wide_types(
        &self,
        data: ContainerWideTypes,
    ) -> Result<ContainerWideTypes, RpcError> {
        Ok(data)
    }
    fn echo_embedded_arrow(&self, data: EmbeddedArrow) -> Result<EmbeddedArrow, RpcError> {
        Ok(data)
    }
    fn echo_deep_nested(&self, data: DeepNested) -> Result<DeepNested, RpcError> {
        Ok(data)
    }
    fn echo_dict_encoded_string(&self, value: DictString) -> Result<DictString, RpcError> {
        Ok(value)
    }

    fn add_floats(&self, a: f64, b: f64) -> Result<f64, RpcError> {
        Ok(a + b)
    }
    fn concatenate(
        &self,
        prefix: String,
        suffix: String,
        separator: String,
    ) -> Result<String, RpcError> {
        Ok(format!("{prefix}{separator}{suffix}"))
    }
    fn with_defaults(
        &self,
        required: i64,
        optional_str: String,
        optional_int: i64,
    ) -> Result<String, RpcError> {
        Ok(format!(
            "required={required}, optional_str={optional_str}, optional_int={optional_int}"
        ))
    }

    fn raise_value_error(&self, message: String) -> Result<String, RpcError> {
        Err(RpcError::value_error(message))
    }
    fn raise_runtime_error(&self, message: String) -> Result<String, RpcError> {
        Err(RpcError::runtime_error(message))
    }
    fn raise_type_error(&self, message: String) -> Result<String, RpcError> {
        Err(RpcError::type_error(message))
    }

    // A few methods and states are async so that the conformance runs
    // cover the awaited path on every transport; each yields once so its
    // future really suspends. None of them is a benchmarked workload: an
    // awaited call costs a sync transport a hand-off to a runtime thread.
    async fn echo_with_info_log(
        &self,
        value: String,
        ctx: &CallContext,
    ) -> Result<String, RpcError> {
        tokio::task::yield_now().await;
        ctx.info(format!("info: {value}"));
        Ok(value)
    }
    fn echo_with_multi_logs(&self, value: String, ctx: &CallContext) -> Result<String, RpcError> {
        ctx.debug(format!("debug: {value}"));
        ctx.info(format!("info: {value}"));
        ctx.warn(format!("warn: {value}"));
        Ok(value)
    }
    fn echo_with_log_extras(&self, value: String, ctx: &CallContext) -> Result<String, RpcError> {
        ctx.log_with(
            Level::Info,
            format!("info: {value}"),
            [("source", "conformance"), ("detail", value.as_str())],
        );
        Ok(value)
    }
    fn echo_with_all_log_levels(
        &self,
        value: String,
        ctx: &CallContext,
    ) -> Result<String, RpcError> {
        for level in [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ] {
            ctx.log(level, format!("{}: {value}", level.as_str().to_lowercase()));
        }
        Ok(value)
    }

    fn produce_n(&self, count: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            counter_schema(),
            CounterState { count, current: 0 },
        ))
    }
    fn produce_empty(&self) -> Result<Stream, RpcError> {
        Ok(Stream::producer(counter_schema(), CounterState::default()))
    }
    fn produce_single(&self) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            counter_schema(),
            CounterState {
                count: 1,
                current: 0,
            },
        ))
    }
    fn produce_large_batches(
        &self,
        rows_per_batch: i64,
        batch_count: i64,
    ) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            counter_schema(),
            LargeProducerState {
                rows_per_batch,
                batch_count,
                current: 0,
            },
        ))
    }
    async fn produce_with_logs(&self, count: i64) -> Result<Stream, RpcError> {
        tokio::task::yield_now().await;
        Ok(Stream::async_producer(
            counter_schema(),
            LoggingProducerState { count, current: 0 },
        ))
    }
    fn produce_error_mid_stream(&self, emit_before_error: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            counter_schema(),
            ErrorAfterNState {
                emit_before_error,
                current: 0,
            },
        ))
    }
    fn produce_error_on_init(&self) -> Result<Stream, RpcError> {
        Err(RpcError::runtime_error("intentional init error"))
    }
    fn produce_oversized_batch(&self, rows_per_batch: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            counter_schema(),
            OversizedBatchState {
                rows_per_batch,
                emitted: false,
            },
        ))
    }

    fn produce_with_header(&self, count: i64) -> Result<Stream<ConformanceHeader>, RpcError> {
        let header = ConformanceHeader {
            total_expected: count,
            description: format!("producing {count} batches"),
        };
        Ok(
            Stream::producer(counter_schema(), CounterState { count, current: 0 })
                .with_header(header),
        )
    }
    fn produce_with_header_and_logs(
        &self,
        count: i64,
        ctx: &CallContext,
    ) -> Result<Stream<ConformanceHeader>, RpcError> {
        ctx.info("stream init log");
        let header = ConformanceHeader {
            total_expected: count,
            description: format!("producing {count} with logs"),
        };
        Ok(
            Stream::producer(counter_schema(), CounterState { count, current: 0 })
                .with_header(header),
        )
    }

    fn exchange_scale(&self, factor: f64) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            float_value_schema(),
            float_value_schema(),
            ScaleExchangeState { factor },
        ))
    }
    fn exchange_accumulate(&self) -> Result<Stream, RpcError> {
        Ok(Stream::async_exchange(
            float_value_schema(),
            accumulate_schema(),
            AccumulatingExchangeState::default(),
        ))
    }
    fn exchange_with_logs(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            float_value_schema(),
            float_value_schema(),
            LoggingExchangeState,
        ))
    }
    fn exchange_error_on_nth(&self, fail_on: i64) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            float_value_schema(),
            float_value_schema(),
            FailOnExchangeNState {
                fail_on,
                exchange_count: 0,
            },
        ))
    }
    fn exchange_zero_columns(&self) -> Result<Stream, RpcError> {
        let empty = vgirpc::wire::ipc::empty_schema();
        Ok(Stream::exchange(
            empty.clone(),
            empty,
            ZeroColumnExchangeState::default(),
        ))
    }
    fn exchange_error_on_init(&self) -> Result<Stream, RpcError> {
        Err(RpcError::runtime_error("intentional exchange init error"))
    }
    fn exchange_oversized(&self, rows_per_batch: i64) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            float_value_schema(),
            counter_schema(),
            OversizedExchangeState { rows_per_batch },
        ))
    }
    fn exchange_with_header(&self, factor: f64) -> Result<Stream<ConformanceHeader>, RpcError> {
        let header = ConformanceHeader {
            total_expected: 0,
            description: format!("scale by {}", py_float(factor)),
        };
        Ok(Stream::exchange(
            float_value_schema(),
            float_value_schema(),
            ScaleExchangeState { factor },
        )
        .with_header(header))
    }

    fn cancellable_producer(&self) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            counter_schema(),
            CancellableProducerState::default(),
        ))
    }
    fn cancellable_exchange(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            float_value_schema(),
            float_value_schema(),
            CancellableExchangeState,
        ))
    }
    fn cancel_probe_counters(&self) -> Result<Vec<i64>, RpcError> {
        Ok(CancelProbe::snapshot().to_vec())
    }
    fn reset_cancel_probe(&self) -> Result<(), RpcError> {
        CancelProbe::reset();
        Ok(())
    }

    fn produce_with_rich_header(
        &self,
        seed: i64,
        count: i64,
    ) -> Result<Stream<RichHeader>, RpcError> {
        Ok(
            Stream::producer(counter_schema(), CounterState { count, current: 0 })
                .with_header(RichHeader::from_seed(seed)?),
        )
    }
    fn produce_dynamic_schema(
        &self,
        seed: i64,
        count: i64,
        include_strings: bool,
        include_floats: bool,
    ) -> Result<Stream<RichHeader>, RpcError> {
        Ok(Stream::producer(
            dynamic_schema(include_strings, include_floats),
            DynamicProducerState {
                count,
                include_strings,
                include_floats,
                current: 0,
            },
        )
        .with_header(RichHeader::from_seed(seed)?))
    }
    fn exchange_cast_compatible(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            float_value_schema(),
            float_value_schema(),
            ScaleExchangeState { factor: 1.0 },
        ))
    }
    fn exchange_with_rich_header(
        &self,
        seed: i64,
        factor: f64,
    ) -> Result<Stream<RichHeader>, RpcError> {
        Ok(Stream::exchange(
            float_value_schema(),
            float_value_schema(),
            ScaleExchangeState { factor },
        )
        .with_header(RichHeader::from_seed(seed)?))
    }

    fn open_counter(&self, initial: i64, ctx: &CallContext) -> Result<i64, RpcError> {
        ctx.open_session(StickyCounter { value: initial })?;
        Ok(initial)
    }
    fn increment_counter(&self, by: i64, ctx: &CallContext) -> Result<i64, RpcError> {
        // The session's lock serializes calls on one counter; no guard here.
        let mut counter = ctx.session::<StickyCounter>().ok_or_else(no_counter)?;
        counter.value += by;
        Ok(counter.value)
    }
    fn close_counter(&self, ctx: &CallContext) -> Result<i64, RpcError> {
        let last = ctx.session::<StickyCounter>().ok_or_else(no_counter)?.value;
        ctx.close_session()?;
        Ok(last)
    }
    fn stream_session_counter(&self, count: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            session_counter_schema(),
            SessionCounterProducer { count, current: 0 },
        ))
    }
    fn exchange_session_counter(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            session_counter_input_schema(),
            session_counter_schema(),
            SessionCounterExchange,
        ))
    }
}

/// Formats a float the way Python's `str(float)` does for the values the
/// suite uses: integral values keep one decimal (`1.0`), others print
/// their shortest round-trip form.
fn py_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
