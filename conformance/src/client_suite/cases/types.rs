//! Boundary values, wide Arrow types and large data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::{NaiveTime, TimeDelta};
use vgirpc::client::Transport;
use vgirpc::{DictString, FixedBinary, LargeBinary, LargeString};

use crate::client_suite::case::{TestCase, t};
use crate::client_suite::checks::{
    Failure, approx, collect, date, dec, echo, eq, float, timestamp, value_batch,
};
use crate::client_suite::values::{noise, utc_timestamp, wide_types};
use crate::types::*;

#[rustfmt::skip]
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    vec![
        // Boundary values.
        t("boundary_values", "empty_string", |c| echo(String::new(), c.client.echo_string(String::new()))),
        t("boundary_values", "unicode_emoji", |c| echo("\u{1f600}\u{1f680}".to_owned(), c.client.echo_string("\u{1f600}\u{1f680}".into()))),
        t("boundary_values", "unicode_cjk", |c| echo("\u{4f60}\u{597d}\u{4e16}\u{754c}".to_owned(), c.client.echo_string("\u{4f60}\u{597d}\u{4e16}\u{754c}".into()))),
        t("boundary_values", "unicode_rtl", |c| echo("\u{645}\u{631}\u{62d}\u{628}\u{627}".to_owned(), c.client.echo_string("\u{645}\u{631}\u{62d}\u{628}\u{627}".into()))),
        t("boundary_values", "string_null_byte", |c| echo("a\0b".to_owned(), c.client.echo_string("a\0b".into()))),
        t("boundary_values", "string_escapes", |c| echo("\n\t\\".to_owned(), c.client.echo_string("\n\t\\".into()))),
        t("boundary_values", "empty_bytes", |c| echo(Vec::new(), c.client.echo_bytes(Vec::new()))),
        t("boundary_values", "null_bytes", |c| echo(vec![0; 1000], c.client.echo_bytes(vec![0; 1000]))),
        t("boundary_values", "high_bytes", |c| echo(vec![0xff; 1000], c.client.echo_bytes(vec![0xff; 1000]))),
        t("boundary_values", "int_zero", |c| echo(0, c.client.echo_int(0))),
        t("boundary_values", "int_negative", |c| echo(-1, c.client.echo_int(-1))),
        t("boundary_values", "int_max_int64", |c| echo(i64::MAX, c.client.echo_int(i64::MAX))),
        t("boundary_values", "int_min_int64", |c| echo(i64::MIN, c.client.echo_int(i64::MIN))),
        t("boundary_values", "float_zero", |c| echo(0.0, c.client.echo_float(0.0))),
        t("boundary_values", "float_negative_zero", |c| {
            let got = c.client.echo_float(-0.0)?;
            check!(got == 0.0 && got.is_sign_negative(), "expected -0.0, got {got:?}");
            Ok(format!("{got:?}"))
        }),
        t("boundary_values", "float_inf", |c| echo(f64::INFINITY, c.client.echo_float(f64::INFINITY))),
        t("boundary_values", "float_neg_inf", |c| echo(f64::NEG_INFINITY, c.client.echo_float(f64::NEG_INFINITY))),
        t("boundary_values", "float_nan", |c| {
            let got = c.client.echo_float(f64::NAN)?;
            check!(got.is_nan(), "expected NaN, got {got:?}");
            Ok("NaN".into())
        }),
        t("boundary_values", "float_small", |c| echo(5e-324, c.client.echo_float(5e-324))),
        t("boundary_values", "empty_list", |c| echo(Vec::<String>::new(), c.client.echo_list(Vec::new()))),
        t("boundary_values", "empty_dict", |c| echo(BTreeMap::new(), c.client.echo_dict(BTreeMap::new()))),
        t("boundary_values", "empty_nested_list", |c| echo(vec![Vec::<i64>::new()], c.client.echo_nested_list(vec![Vec::new()]))),
        // Wide Arrow types (_pytest_suite.py TestUnaryWideTypes).
        t("wide_types", "echo_int8", |c| {
            eq(c.client.echo_int8(-128)?, -128)?;
            echo(127, c.client.echo_int8(127))
        }),
        t("wide_types", "echo_int16", |c| {
            eq(c.client.echo_int16(-32768)?, -32768)?;
            echo(32767, c.client.echo_int16(32767))
        }),
        t("wide_types", "echo_uint8", |c| {
            eq(c.client.echo_uint8(0)?, 0)?;
            echo(255, c.client.echo_uint8(255))
        }),
        t("wide_types", "echo_uint16", |c| echo(65535, c.client.echo_uint16(65535))),
        t("wide_types", "echo_uint32", |c| echo(4_294_967_295, c.client.echo_uint32(4_294_967_295))),
        t("wide_types", "echo_uint64_above_int64_max", |c| {
            echo(18_000_000_000_000_000_000, c.client.echo_uint64(18_000_000_000_000_000_000))
        }),
        t("wide_types", "echo_date", |c| echo(date(2026, 4, 25), c.client.echo_date(date(2026, 4, 25)))),
        t("wide_types", "echo_timestamp", |c| {
            let sent = timestamp(2026, 4, 25, 12, 0, 0, 123_456);
            echo(sent, c.client.echo_timestamp(sent))
        }),
        t("wide_types", "echo_timestamp_utc", |c| echo(utc_timestamp(), c.client.echo_timestamp_utc(utc_timestamp()))),
        t("wide_types", "echo_time", |c| {
            let sent = NaiveTime::from_hms_micro_opt(12, 30, 45, 123_456).expect("a valid time");
            echo(sent, c.client.echo_time(sent))
        }),
        t("wide_types", "echo_duration", |c| {
            let sent = TimeDelta::seconds(10) + TimeDelta::microseconds(500);
            echo(sent, c.client.echo_duration(sent))
        }),
        t("wide_types", "echo_decimal", |c| echo(dec(123_456_789), c.client.echo_decimal(dec(123_456_789)))),
        t("wide_types", "echo_decimal_negative", |c| {
            echo(dec(-999_999_999_999_999_999), c.client.echo_decimal(dec(-999_999_999_999_999_999)))
        }),
        t("wide_types", "echo_large_string", |c| {
            let sent = LargeString("wide".repeat(1000));
            echo(sent.clone(), c.client.echo_large_string(sent)).map(|o| o.len().to_string())
        }),
        t("wide_types", "echo_large_binary", |c| {
            let sent = LargeBinary([0u8, 1, 2, 3].repeat(1000));
            echo(sent.clone(), c.client.echo_large_binary(sent)).map(|o| o.len().to_string())
        }),
        t("wide_types", "echo_fixed_binary", |c| echo(FixedBinary(*b"12345678"), c.client.echo_fixed_binary(FixedBinary(*b"12345678")))),
        t("wide_types", "echo_container_wide_types", |c| {
            let sent = ContainerWideTypes {
                list_decimal: vec![dec(10_000), dec(25_000), dec(-37_500)],
                list_date: vec![date(2026, 1, 1), date(2026, 4, 25)],
                list_timestamp: vec![timestamp(2026, 1, 1, 0, 0, 0, 0), timestamp(2026, 4, 25, 12, 0, 0, 123_456)],
                optional_date: None,
                optional_decimal: Some(dec(990_000)),
                optional_timestamp: None,
                dict_str_decimal: BTreeMap::from([("a".into(), dec(15_000)), ("b".into(), dec(25_000))]),
                frozenset_int: BTreeSet::from([1, 2, 3]),
                list_optional_int: vec![Some(1), None, Some(3), None, Some(5)],
            };
            echo(sent.clone(), c.client.echo_container_wide_types(sent))
        }),
        t("wide_types", "echo_container_wide_types_all_present", |c| {
            let sent = ContainerWideTypes {
                list_decimal: vec![dec(1)],
                list_date: vec![date(1970, 1, 1)],
                list_timestamp: vec![timestamp(1970, 1, 1, 0, 0, 0, 0)],
                optional_date: Some(date(2026, 4, 25)),
                optional_decimal: Some(dec(-123_456_789)),
                optional_timestamp: Some(timestamp(2026, 4, 25, 12, 0, 0, 123_456)),
                dict_str_decimal: BTreeMap::new(),
                frozenset_int: BTreeSet::new(),
                list_optional_int: Vec::new(),
            };
            echo(sent.clone(), c.client.echo_container_wide_types(sent))
        }),
        t("wide_types", "echo_deep_nested", |c| {
            let sent = DeepNested {
                list_of_lists_decimal: vec![vec![dec(10_000), dec(20_000)], vec![dec(35_000)], Vec::new()],
                optional_list_date: Some(vec![date(2026, 1, 1), date(2026, 4, 25)]),
                dict_encoded_string: DictString("hello".into()),
                list_of_dict_encoded: ["a", "b", "a", "c", "a"].map(|s| DictString(s.into())).to_vec(),
            };
            echo(sent.clone(), c.client.echo_deep_nested(sent))
        }),
        t("wide_types", "echo_deep_nested_empty_and_none", |c| {
            let sent = DeepNested {
                list_of_lists_decimal: Vec::new(),
                optional_list_date: None,
                dict_encoded_string: DictString(String::new()),
                list_of_dict_encoded: Vec::new(),
            };
            echo(sent.clone(), c.client.echo_deep_nested(sent))
        }),
        t("wide_types", "echo_dict_encoded_string", |c| {
            eq(c.client.echo_dict_encoded_string(DictString("hello".into()))?, DictString("hello".into()))?;
            eq(c.client.echo_dict_encoded_string(DictString(String::new()))?, DictString(String::new()))?;
            let globes = DictString("\u{1f30d}".repeat(100));
            echo(globes.clone(), c.client.echo_dict_encoded_string(globes)).map(|o| o.len().to_string())
        }),
        t("wide_types", "echo_large_string_empty", |c| echo(LargeString(String::new()), c.client.echo_large_string(LargeString(String::new())))),
        t("wide_types", "echo_large_binary_empty", |c| echo(LargeBinary(Vec::new()), c.client.echo_large_binary(LargeBinary(Vec::new())))),
        t("wide_types", "echo_fixed_binary_zero_bytes", |c| echo(FixedBinary([0; 8]), c.client.echo_fixed_binary(FixedBinary([0; 8])))),
        t("wide_types", "echo_embedded_arrow", |c| {
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)])),
                vec![Arc::new(Int64Array::from(vec![1, 2, 3])), Arc::new(StringArray::from(vec!["x", "y", "z"]))],
            ).map_err(|e| Failure::check(e.to_string()))?;
            let schema = Schema::new(vec![Field::new("x", DataType::Int32, true), Field::new("y", DataType::Utf8, true)]);
            let got = c.client.echo_embedded_arrow(EmbeddedArrow { batch: batch.clone(), schema: schema.clone() })?;
            eq(&got.batch, &batch)?;
            eq(&got.schema, &schema)?;
            Ok(format!("{:?} {}", got.batch.num_rows(), got.schema))
        }),
        t("wide_types", "echo_wide_types_dataclass", |c| echo(wide_types(), c.client.echo_wide_types(wide_types()))),
        // Large data (_pytest_suite.py TestLargeData).
        t("large_data", "large_string", |c| {
            let big = "x".repeat(10_000);
            echo(big.clone(), c.client.echo_string(big)).map(|o| o.len().to_string())
        }),
        t("large_data", "large_bytes", |c| {
            let big = noise(100_000);
            echo(big.clone(), c.client.echo_bytes(big)).map(|o| o.len().to_string())
        }),
        t("large_data", "large_list", |c| {
            let big: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
            echo(big.clone(), c.client.echo_list(big)).map(|o| o.len().to_string())
        }),
        t("large_data", "large_dict", |c| {
            let big: BTreeMap<String, i64> = (0..1_000).map(|i| (format!("key_{i}"), i)).collect();
            echo(big.clone(), c.client.echo_dict(big)).map(|o| o.len().to_string())
        }),
        t("large_data", "large_batch_producer", |c| {
            let batches = collect(c.client.produce_large_batches(10_000, 5)?)?;
            eq(batches.len(), 5)?;
            for batch in &batches {
                eq(batch.num_rows(), 10_000)?;
            }
            Ok("5x10000".into())
        }),
        t("large_data", "large_exchange", |c| {
            let mut session = c.client.exchange_scale(2.0)?;
            let values: Vec<f64> = (0..5_000).map(f64::from).collect();
            for _ in 0..10 {
                let out = session.exchange(&value_batch(&values))?;
                eq(out.num_rows(), 5_000)?;
                approx(float(&out, "value", 4_999)?, 9_998.0)?;
            }
            session.close()?;
            Ok("10x5000".into())
        }),
        t("large_data", "many_small_batches", |c| {
            let batches = collect(c.client.produce_n(100)?)?;
            eq(batches.len(), 100)?;
            Ok("100".into())
        }),
    ]
}
