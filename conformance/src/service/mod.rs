//! The `ConformanceService` protocol and its implementation.
//!
//! Method names, parameter names, defaults and schemas follow the reference
//! protocol (`vgi_rpc/conformance/_protocol.py`) exactly, because the
//! reference suite calls this worker with its own client.

mod behaviour;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use vgirpc::{CallContext, DictString, FixedBinary, LargeBinary, LargeString, RpcError, Stream};

use crate::types::*;

/// Wire-protocol conformance service exercising every framework capability.
#[vgirpc::service]
pub trait ConformanceService {
    /// Echo a string value.
    fn echo_string(&self, value: String) -> Result<String, RpcError>;
    /// Echo a bytes value.
    fn echo_bytes(&self, data: Vec<u8>) -> Result<Vec<u8>, RpcError>;
    /// Return a payload of about `target_bytes` bytes.
    fn oversized_unary(&self, target_bytes: i64) -> Result<Vec<u8>, RpcError>;
    /// Echo an integer value.
    fn echo_int(&self, value: i64) -> Result<i64, RpcError>;
    /// Echo a float value.
    fn echo_float(&self, value: f64) -> Result<f64, RpcError>;
    /// Echo a boolean value.
    fn echo_bool(&self, value: bool) -> Result<bool, RpcError>;

    /// No-op returning void.
    fn void_noop(&self) -> Result<(), RpcError>;
    /// Accept a parameter, return void.
    fn void_with_param(&self, value: i64) -> Result<(), RpcError>;

    /// Echo an enum value.
    fn echo_enum(&self, status: Status) -> Result<Status, RpcError>;
    /// Echo a list of strings.
    fn echo_list(&self, values: Vec<String>) -> Result<Vec<String>, RpcError>;
    /// Echo a dict mapping.
    fn echo_dict(&self, mapping: BTreeMap<String, i64>) -> Result<BTreeMap<String, i64>, RpcError>;
    /// Echo a nested list.
    fn echo_nested_list(&self, matrix: Vec<Vec<i64>>) -> Result<Vec<Vec<i64>>, RpcError>;

    /// Echo an optional string.
    fn echo_optional_string(&self, value: Option<String>) -> Result<Option<String>, RpcError>;
    /// Echo an optional int.
    fn echo_optional_int(&self, value: Option<i64>) -> Result<Option<i64>, RpcError>;

    /// Echo a Point.
    fn echo_point(&self, point: Point) -> Result<Point, RpcError>;
    /// Echo an AllTypes record.
    fn echo_all_types(&self, data: AllTypes) -> Result<AllTypes, RpcError>;
    /// Echo a BoundingBox.
    fn echo_bounding_box(&self, r#box: BoundingBox) -> Result<BoundingBox, RpcError>;
    /// Accept a Point, return it formatted.
    fn inspect_point(&self, point: Point) -> Result<String, RpcError>;

    /// Echo an int32 value.
    fn echo_int32(&self, value: i32) -> Result<i32, RpcError>;
    /// Echo a float32 value.
    fn echo_float32(&self, value: f32) -> Result<f32, RpcError>;
    /// Echo an int8 value.
    fn echo_int8(&self, value: i8) -> Result<i8, RpcError>;
    /// Echo an int16 value.
    fn echo_int16(&self, value: i16) -> Result<i16, RpcError>;
    /// Echo a uint8 value.
    fn echo_uint8(&self, value: u8) -> Result<u8, RpcError>;
    /// Echo a uint16 value.
    fn echo_uint16(&self, value: u16) -> Result<u16, RpcError>;
    /// Echo a uint32 value.
    fn echo_uint32(&self, value: u32) -> Result<u32, RpcError>;
    /// Echo a uint64 value.
    fn echo_uint64(&self, value: u64) -> Result<u64, RpcError>;
    /// Echo a date32 value.
    fn echo_date(&self, value: NaiveDate) -> Result<NaiveDate, RpcError>;
    /// Echo a naive microsecond timestamp.
    fn echo_timestamp(&self, value: NaiveDateTime) -> Result<NaiveDateTime, RpcError>;
    /// Echo a UTC microsecond timestamp.
    fn echo_timestamp_utc(&self, value: DateTime<Utc>) -> Result<DateTime<Utc>, RpcError>;
    /// Echo a microsecond time of day.
    fn echo_time(&self, value: NaiveTime) -> Result<NaiveTime, RpcError>;
    /// Echo a microsecond duration.
    fn echo_duration(&self, value: TimeDelta) -> Result<TimeDelta, RpcError>;
    /// Echo a decimal128(20, 4) value.
    fn echo_decimal(&self, value: Dec) -> Result<Dec, RpcError>;
    /// Echo a large_string value.
    fn echo_large_string(&self, value: LargeString) -> Result<LargeString, RpcError>;
    /// Echo a large_binary value.
    fn echo_large_binary(&self, value: LargeBinary) -> Result<LargeBinary, RpcError>;
    /// Echo a fixed_size_binary(8) value.
    fn echo_fixed_binary(&self, value: FixedBinary<8>) -> Result<FixedBinary<8>, RpcError>;
    /// Echo every primitive width.
    fn echo_wide_types(&self, data: WideTypes) -> Result<WideTypes, RpcError>;
    /// Echo wide types inside containers.
    fn echo_container_wide_types(
        &self,
        data: ContainerWideTypes,
    ) -> Result<ContainerWideTypes, RpcError>;
    /// Echo an embedded Arrow batch and schema.
    fn echo_embedded_arrow(&self, data: EmbeddedArrow) -> Result<EmbeddedArrow, RpcError>;
    /// Echo deeply nested containers.
    fn echo_deep_nested(&self, data: DeepNested) -> Result<DeepNested, RpcError>;
    /// Echo a dictionary-encoded string.
    fn echo_dict_encoded_string(&self, value: DictString) -> Result<DictString, RpcError>;

    /// Add two floats.
    fn add_floats(&self, a: f64, b: f64) -> Result<f64, RpcError>;
    /// Concatenate prefix + separator + suffix.
    fn concatenate(
        &self,
        prefix: String,
        suffix: String,
        #[default("-")] separator: String,
    ) -> Result<String, RpcError>;
    /// Format every parameter value.
    fn with_defaults(
        &self,
        required: i64,
        #[default("default")] optional_str: String,
        #[default(42)] optional_int: i64,
    ) -> Result<String, RpcError>;

    /// Fail with a ValueError.
    fn raise_value_error(&self, message: String) -> Result<String, RpcError>;
    /// Fail with a RuntimeError.
    fn raise_runtime_error(&self, message: String) -> Result<String, RpcError>;
    /// Fail with a TypeError.
    fn raise_type_error(&self, message: String) -> Result<String, RpcError>;

    /// Echo, logging once at INFO.
    async fn echo_with_info_log(
        &self,
        value: String,
        ctx: &CallContext,
    ) -> Result<String, RpcError>;
    /// Echo, logging at DEBUG, INFO and WARN.
    fn echo_with_multi_logs(&self, value: String, ctx: &CallContext) -> Result<String, RpcError>;
    /// Echo, logging at INFO with extras.
    fn echo_with_log_extras(&self, value: String, ctx: &CallContext) -> Result<String, RpcError>;
    /// Echo, logging once at every non-exception level.
    fn echo_with_all_log_levels(
        &self,
        value: String,
        ctx: &CallContext,
    ) -> Result<String, RpcError>;

    /// Produce `count` batches of `{index, value}`.
    fn produce_n(&self, count: i64) -> Result<Stream, RpcError>;
    /// Produce zero batches.
    fn produce_empty(&self) -> Result<Stream, RpcError>;
    /// Produce exactly one batch.
    fn produce_single(&self) -> Result<Stream, RpcError>;
    /// Produce `batch_count` batches of `rows_per_batch` rows.
    fn produce_large_batches(
        &self,
        rows_per_batch: i64,
        batch_count: i64,
    ) -> Result<Stream, RpcError>;
    /// Produce batches with an INFO log before each.
    async fn produce_with_logs(&self, count: i64) -> Result<Stream, RpcError>;
    /// Fail after `emit_before_error` batches.
    fn produce_error_mid_stream(&self, emit_before_error: i64) -> Result<Stream, RpcError>;
    /// Fail during stream initialization.
    fn produce_error_on_init(&self) -> Result<Stream, RpcError>;
    /// Emit one batch of `rows_per_batch` rows, then finish.
    fn produce_oversized_batch(&self, rows_per_batch: i64) -> Result<Stream, RpcError>;

    /// Produce batches after a header.
    fn produce_with_header(&self, count: i64) -> Result<Stream<ConformanceHeader>, RpcError>;
    /// Produce batches after a header, logging during init.
    fn produce_with_header_and_logs(
        &self,
        count: i64,
        ctx: &CallContext,
    ) -> Result<Stream<ConformanceHeader>, RpcError>;

    /// Multiply input values by `factor`.
    fn exchange_scale(&self, factor: f64) -> Result<Stream, RpcError>;
    /// Keep a running sum and exchange count.
    fn exchange_accumulate(&self) -> Result<Stream, RpcError>;
    /// Log at INFO and DEBUG on every exchange.
    fn exchange_with_logs(&self) -> Result<Stream, RpcError>;
    /// Fail on the `fail_on`-th exchange.
    fn exchange_error_on_nth(&self, fail_on: i64) -> Result<Stream, RpcError>;
    /// Exchange zero-column batches.
    fn exchange_zero_columns(&self) -> Result<Stream, RpcError>;
    /// Fail during exchange initialization.
    fn exchange_error_on_init(&self) -> Result<Stream, RpcError>;
    /// Answer every input with an oversized batch.
    fn exchange_oversized(&self, rows_per_batch: i64) -> Result<Stream, RpcError>;
    /// Scale input values after a header.
    fn exchange_with_header(&self, factor: f64) -> Result<Stream<ConformanceHeader>, RpcError>;

    /// Produce forever until cancelled.
    fn cancellable_producer(&self) -> Result<Stream, RpcError>;
    /// Echo input until cancelled.
    fn cancellable_exchange(&self) -> Result<Stream, RpcError>;
    /// `[produce_calls, exchange_calls, on_cancel_calls]` seen by the server.
    fn cancel_probe_counters(&self) -> Result<Vec<i64>, RpcError>;
    /// Zero the cancel-probe counters.
    fn reset_cancel_probe(&self) -> Result<(), RpcError>;

    /// Produce batches after a header derived from `seed`.
    fn produce_with_rich_header(
        &self,
        seed: i64,
        count: i64,
    ) -> Result<Stream<RichHeader>, RpcError>;
    /// Produce batches of a schema chosen by flags, after a rich header.
    fn produce_dynamic_schema(
        &self,
        seed: i64,
        count: i64,
        include_strings: bool,
        include_floats: bool,
    ) -> Result<Stream<RichHeader>, RpcError>;
    /// Exchange expecting float64 input, cast from compatible types.
    fn exchange_cast_compatible(&self) -> Result<Stream, RpcError>;
    /// Scale input values after a rich header.
    fn exchange_with_rich_header(
        &self,
        seed: i64,
        factor: f64,
    ) -> Result<Stream<RichHeader>, RpcError>;

    /// Open a sticky session holding a counter.
    fn open_counter(&self, initial: i64, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Increment the sticky session's counter.
    fn increment_counter(&self, by: i64, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Close the sticky session, returning the counter's final value.
    fn close_counter(&self, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Emit `count` increments of the sticky session counter.
    fn stream_session_counter(&self, count: i64) -> Result<Stream, RpcError>;
    /// Add each input's `by` column to the sticky session counter.
    fn exchange_session_counter(&self) -> Result<Stream, RpcError>;
}

/// The reference behaviour of every conformance method.
#[derive(Debug, Default)]
pub struct Conformance;
