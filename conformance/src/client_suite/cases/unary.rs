//! Unary calls: scalar echo, void, complex types, optional values,
//! dataclasses, annotated widths, several parameters, errors and
//! client-directed logging.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::Int64Array;
use vgirpc::Level;
use vgirpc::client::{Transport, no_params};

use crate::client_suite::case::{TestCase, t};
use crate::client_suite::checks::{
    Failure, SAMPLE_FLOAT, approx, echo, eq, logs_seen, point, remote,
};
use crate::client_suite::values::{all_types, call_with, strings};
use crate::types::*;

#[rustfmt::skip]
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    vec![
        // Scalar echo (_runner.py).
        t("scalar_echo", "echo_string", |c| echo("hello".to_owned(), c.client.echo_string("hello".into()))),
        t("scalar_echo", "echo_bytes", |c| echo(b"hello".to_vec(), c.client.echo_bytes(b"hello".to_vec()))),
        t("scalar_echo", "echo_int", |c| echo(42, c.client.echo_int(42))),
        t("scalar_echo", "echo_float", |c| {
            let got = c.client.echo_float(SAMPLE_FLOAT)?;
            approx(got, SAMPLE_FLOAT)?;
            Ok(format!("{got:?}"))
        }),
        t("scalar_echo", "echo_bool", |c| {
            eq(c.client.echo_bool(true)?, true)?;
            eq(c.client.echo_bool(false)?, false)?;
            Ok("true false".into())
        }),
        // Void.
        t("void", "void_noop", |c| echo((), c.client.void_noop())),
        t("void", "void_with_param", |c| echo((), c.client.void_with_param(99))),
        // Complex types.
        t("complex_types", "echo_enum_pending", |c| echo(Status::Pending, c.client.echo_enum(Status::Pending))),
        t("complex_types", "echo_enum_active", |c| echo(Status::Active, c.client.echo_enum(Status::Active))),
        t("complex_types", "echo_enum_closed", |c| echo(Status::Closed, c.client.echo_enum(Status::Closed))),
        t("complex_types", "echo_list", |c| {
            let values: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
            echo(values.clone(), c.client.echo_list(values))
        }),
        t("complex_types", "echo_dict", |c| {
            let mapping = BTreeMap::from([("z".to_owned(), 1), ("a".to_owned(), 2), ("m".to_owned(), 3)]);
            echo(mapping.clone(), c.client.echo_dict(mapping))
        }),
        t("complex_types", "echo_nested_list", |c| {
            let matrix = vec![vec![1, 2], vec![3, 4, 5], vec![6]];
            echo(matrix.clone(), c.client.echo_nested_list(matrix))
        }),
        // Optional / nullable.
        t("optional", "optional_string_none", |c| echo(None, c.client.echo_optional_string(None))),
        t("optional", "optional_string_non_none", |c| {
            echo(Some("hello".to_owned()), c.client.echo_optional_string(Some("hello".into())))
        }),
        t("optional", "optional_int_none", |c| echo(None, c.client.echo_optional_int(None))),
        t("optional", "optional_int_non_none", |c| echo(Some(7), c.client.echo_optional_int(Some(7)))),
        t("optional", "empty_string_vs_null", |c| {
            eq(c.client.echo_optional_string(Some(String::new()))?, Some(String::new()))?;
            eq(c.client.echo_optional_string(None)?, None)?;
            Ok("Some(\"\") None".into())
        }),
        // Dataclasses (ArrowStruct).
        t("dataclass", "echo_point", |c| {
            let got = c.client.echo_point(point(1.5, 2.5))?;
            approx(got.x, 1.5)?;
            approx(got.y, 2.5)?;
            Ok(format!("{got:?}"))
        }),
        t("dataclass", "echo_bounding_box", |c| {
            let sent = BoundingBox { top_left: point(0.0, 10.0), bottom_right: point(10.0, 0.0), label: "test".into() };
            let got = c.client.echo_bounding_box(sent)?;
            approx(got.top_left.x, 0.0)?;
            approx(got.top_left.y, 10.0)?;
            approx(got.bottom_right.x, 10.0)?;
            eq(got.label.as_str(), "test")?;
            Ok(format!("{got:?}"))
        }),
        t("dataclass", "echo_all_types", |c| {
            let got = c.client.echo_all_types(all_types(true))?;
            approx(got.float_field, SAMPLE_FLOAT)?;
            let mut expected = all_types(true);
            expected.float_field = got.float_field;
            eq(&got, &expected)?;
            Ok(format!("{got:?}"))
        }),
        t("dataclass", "echo_all_types_with_nulls", |c| echo(all_types(false), c.client.echo_all_types(all_types(false)))),
        t("dataclass", "inspect_point", |c| echo("Point(1.5, 2.5)".to_owned(), c.client.inspect_point(point(1.5, 2.5)))),
        // Annotated widths.
        t("annotated", "echo_int32", |c| echo(42, c.client.echo_int32(42))),
        t("annotated", "echo_float32", |c| {
            let got = c.client.echo_float32(1.5)?;
            approx(f64::from(got), 1.5)?;
            Ok(format!("{got:?}"))
        }),
        // Several parameters and server-side defaults (dynamic client: the
        // typed one always sends every parameter).
        t("multi_param", "add_floats", |c| {
            let got = c.client.add_floats(1.5, 2.5)?;
            approx(got, 4.0)?;
            Ok(format!("{got:?}"))
        }),
        t("multi_param", "concatenate_default", |c| {
            let got = call_with(c, "concatenate", vec![("prefix", strings("hello")), ("suffix", strings("world"))])?;
            eq(got.as_str(), "hello-world")?;
            Ok(got)
        }),
        t("multi_param", "concatenate_custom", |c| {
            echo("hello_world".to_owned(), c.client.concatenate("hello".into(), "world".into(), "_".into()))
        }),
        t("multi_param", "with_defaults_all", |c| {
            let got = call_with(c, "with_defaults", vec![("required", Arc::new(Int64Array::from(vec![1])))])?;
            eq(got.as_str(), "required=1, optional_str=default, optional_int=42")?;
            Ok(got)
        }),
        t("multi_param", "with_defaults_override", |c| {
            echo(
                "required=2, optional_str=custom, optional_int=99".to_owned(),
                c.client.with_defaults(2, "custom".into(), 99),
            )
        }),
        // Errors.
        t("errors", "value_error", |c| {
            let (kind, message) = remote(c.client.raise_value_error("test error".into()))?;
            eq(kind.as_str(), "ValueError")?;
            check!(message.contains("test error"), "message {message:?}");
            Ok(format!("{kind}: {message}"))
        }),
        t("errors", "runtime_error", |c| {
            let (kind, message) = remote(c.client.raise_runtime_error("runtime error".into()))?;
            eq(kind.as_str(), "RuntimeError")?;
            Ok(format!("{kind}: {message}"))
        }),
        t("errors", "type_error", |c| {
            let (kind, message) = remote(c.client.raise_type_error("type error".into()))?;
            eq(kind.as_str(), "TypeError")?;
            Ok(format!("{kind}: {message}"))
        }),
        t("errors", "unknown_method", |c| {
            let err = c.client.dynamic().call("definitely_not_a_method", &no_params());
            let (kind, message) = remote(err.map(|r| r.batch))?;
            check!(message.contains("definitely_not_a_method"), "message {message:?}");
            // The connection is still in step after the rejection.
            eq(c.client.echo_int(5)?, 5)?;
            Ok(kind)
        }),
        // Client-directed logging.
        t("logging", "info_log", |c| {
            c.clear_logs();
            eq(c.client.echo_with_info_log("test".into())?.as_str(), "test")?;
            let logs = c.logs();
            eq(logs.len(), 1)?;
            eq(logs[0].level, Level::Info)?;
            check!(logs[0].message.contains("test"), "log {:?}", logs[0].message);
            Ok(logs_seen(&logs))
        }),
        t("logging", "multi_level", |c| {
            c.clear_logs();
            eq(c.client.echo_with_multi_logs("multi".into())?.as_str(), "multi")?;
            let logs = c.logs();
            let levels: Vec<Level> = logs.iter().map(|l| l.level).collect();
            eq(levels, vec![Level::Debug, Level::Info, Level::Warn])?;
            Ok(logs_seen(&logs))
        }),
        t("logging", "log_extras", |c| {
            c.clear_logs();
            eq(c.client.echo_with_log_extras("extra".into())?.as_str(), "extra")?;
            let logs = c.logs();
            eq(logs.len(), 1)?;
            eq(logs[0].level, Level::Info)?;
            eq(logs[0].extra.get("source").and_then(|v| v.as_str()), Some("conformance"))?;
            eq(logs[0].extra.get("detail").and_then(|v| v.as_str()), Some("extra"))?;
            Ok(format!("{} {:?}", logs_seen(&logs), logs[0].extra))
        }),
        // _pytest_suite.py TestUnaryLogging.
        t("logging", "all_log_levels", |c| {
            c.clear_logs();
            eq(c.client.echo_with_all_log_levels("lvl".into())?.as_str(), "lvl")?;
            let logs = c.logs();
            let expected = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error];
            eq(logs.iter().map(|l| l.level).collect::<Vec<_>>(), expected.to_vec())?;
            for (log, level) in logs.iter().zip(expected) {
                eq(log.message.clone(), format!("{}: lvl", level.as_str().to_lowercase()))?;
            }
            Ok(logs_seen(&logs))
        }),
    ]
}
