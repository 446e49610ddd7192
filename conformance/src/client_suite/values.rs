//! The values the tests send and expect, and calls several tests share.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use chrono::{NaiveTime, TimeDelta};
use vgirpc::client::Transport;
use vgirpc::{FixedBinary, LargeBinary, LargeString};

use super::checks::{Failure, SAMPLE_FLOAT, approx, date, dec, eq, point, text, timestamp};
use super::connection::Ctx;
use crate::types::*;

pub(super) fn all_types(with_values: bool) -> AllTypes {
    if with_values {
        AllTypes {
            str_field: "hello".into(),
            bytes_field: vec![1, 2, 3],
            int_field: 42,
            float_field: SAMPLE_FLOAT,
            bool_field: true,
            list_of_int: vec![1, 2, 3],
            list_of_str: vec!["a".into(), "b".into()],
            dict_field: BTreeMap::from([("k".into(), 1)]),
            enum_field: Status::Active,
            nested_point: point(1.0, 2.0),
            optional_str: Some("present".into()),
            optional_int: Some(7),
            optional_nested: Some(point(3.0, 4.0)),
            list_of_nested: vec![point(5.0, 6.0)],
            annotated_int32: 100,
            annotated_float32: 1.5,
            nested_list: vec![vec![1, 2], vec![3]],
            dict_str_str: BTreeMap::from([("key".into(), "val".into())]),
        }
    } else {
        AllTypes {
            str_field: "test".into(),
            bytes_field: Vec::new(),
            int_field: 0,
            float_field: 0.0,
            bool_field: false,
            list_of_int: Vec::new(),
            list_of_str: Vec::new(),
            dict_field: BTreeMap::new(),
            enum_field: Status::Pending,
            nested_point: point(0.0, 0.0),
            optional_str: None,
            optional_int: None,
            optional_nested: None,
            list_of_nested: Vec::new(),
            annotated_int32: 0,
            annotated_float32: 0.0,
            nested_list: Vec::new(),
            dict_str_str: BTreeMap::new(),
        }
    }
}

pub(super) fn utc_timestamp() -> chrono::DateTime<chrono::Utc> {
    timestamp(2026, 4, 25, 12, 0, 0, 123_456).and_utc()
}

pub(super) fn wide_types() -> WideTypes {
    WideTypes {
        int8_field: -12,
        int16_field: -30000,
        int32_field: 2_000_000_000,
        uint8_field: 200,
        uint16_field: 60000,
        uint32_field: 4_000_000_000,
        uint64_field: 18_000_000_000_000_000_000,
        float32_field: 1.5,
        date_field: date(2026, 4, 25),
        timestamp_field: timestamp(2026, 4, 25, 12, 0, 0, 123_456),
        timestamp_utc_field: utc_timestamp(),
        time_field: NaiveTime::from_hms_micro_opt(12, 30, 45, 123_456).expect("a valid time"),
        duration_field: TimeDelta::seconds(10) + TimeDelta::microseconds(500),
        decimal_field: dec(123_456_789),
        large_string_field: LargeString("wide string".into()),
        large_binary_field: LargeBinary(b"wide bytes".to_vec()),
        fixed_binary_field: FixedBinary(*b"12345678"),
    }
}

pub(super) fn check_rich_header(actual: &RichHeader, seed: i64) -> Result<(), Failure> {
    let expected = RichHeader::from_seed(seed).map_err(|err| Failure::check(err.to_string()))?;
    eq(&actual.str_field, &expected.str_field)?;
    eq(&actual.bytes_field, &expected.bytes_field)?;
    eq(actual.int_field, expected.int_field)?;
    approx(actual.float_field, expected.float_field)?;
    eq(actual.bool_field, expected.bool_field)?;
    eq(&actual.list_of_int, &expected.list_of_int)?;
    eq(&actual.list_of_str, &expected.list_of_str)?;
    eq(&actual.dict_field, &expected.dict_field)?;
    eq(actual.enum_field, expected.enum_field)?;
    approx(actual.nested_point.x, expected.nested_point.x)?;
    approx(actual.nested_point.y, expected.nested_point.y)?;
    eq(&actual.optional_str, &expected.optional_str)?;
    eq(actual.optional_int, expected.optional_int)?;
    match (&actual.optional_nested, &expected.optional_nested) {
        (None, None) => {}
        (Some(a), Some(e)) => {
            approx(a.x, e.x)?;
            approx(a.y, e.y)?;
        }
        (a, e) => eq(a, e)?,
    }
    eq(actual.list_of_nested.len(), expected.list_of_nested.len())?;
    for (a, e) in actual.list_of_nested.iter().zip(&expected.list_of_nested) {
        approx(a.x, e.x)?;
        approx(a.y, e.y)?;
    }
    eq(&actual.nested_list, &expected.nested_list)?;
    eq(actual.annotated_int32, expected.annotated_int32)?;
    approx(
        f64::from(actual.annotated_float32),
        f64::from(expected.annotated_float32),
    )?;
    eq(&actual.dict_str_str, &expected.dict_str_str)
}

/// Calls `concatenate` / `with_defaults` leaving parameters out, through
/// the dynamic client, so the server's defaults fill them in.
pub(super) fn call_with<T: Transport>(
    ctx: &mut Ctx<'_, T>,
    method: &str,
    columns: Vec<(&str, ArrayRef)>,
) -> Result<String, Failure> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let params = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Failure::check(format!("cannot build parameters: {e}")))?;
    let result = ctx.client.dynamic().call(method, &params)?;
    text(&result.batch, "result", 0)
}

pub(super) fn strings(value: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![value]))
}

/// Deterministic bytes standing in for the reference's `os.urandom`.
pub(super) fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub(super) fn cancel_counters<T: Transport>(
    ctx: &mut Ctx<'_, T>,
) -> Result<(i64, i64, i64), Failure> {
    match ctx.client.cancel_probe_counters()?.as_slice() {
        [produce, exchange, cancel] => Ok((*produce, *exchange, *cancel)),
        other => Err(Failure::check(format!(
            "cancel_probe_counters returned {other:?}"
        ))),
    }
}
