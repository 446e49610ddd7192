//! `__describe__`.

use std::collections::BTreeSet;

use arrow_schema::{DataType, Schema};
use vgirpc::client::Transport;
use vgirpc::wire::describe::{MethodType, ServiceDescription};

use crate::client_suite::case::{TestCase, t};
use crate::client_suite::checks::{Failure, eq};
use crate::client_suite::connection::Ctx;

const UNARY_METHODS: &[&str] = &[
    "add_floats",
    "cancel_probe_counters",
    "close_counter",
    "concatenate",
    "echo_all_types",
    "echo_bool",
    "echo_bounding_box",
    "echo_bytes",
    "echo_container_wide_types",
    "echo_date",
    "echo_decimal",
    "echo_deep_nested",
    "echo_dict",
    "echo_dict_encoded_string",
    "echo_duration",
    "echo_embedded_arrow",
    "echo_enum",
    "echo_fixed_binary",
    "echo_float",
    "echo_float32",
    "echo_int",
    "echo_int16",
    "echo_int32",
    "echo_int8",
    "echo_large_binary",
    "echo_large_string",
    "echo_list",
    "echo_nested_list",
    "echo_optional_int",
    "echo_optional_string",
    "echo_point",
    "echo_string",
    "echo_time",
    "echo_timestamp",
    "echo_timestamp_utc",
    "echo_uint16",
    "echo_uint32",
    "echo_uint64",
    "echo_uint8",
    "echo_wide_types",
    "echo_with_all_log_levels",
    "echo_with_info_log",
    "echo_with_log_extras",
    "echo_with_multi_logs",
    "increment_counter",
    "inspect_point",
    "open_counter",
    "oversized_unary",
    "raise_runtime_error",
    "raise_type_error",
    "raise_value_error",
    "reset_cancel_probe",
    "void_noop",
    "void_with_param",
    "with_defaults",
];

const STREAM_METHODS: &[&str] = &[
    "cancellable_exchange",
    "cancellable_producer",
    "exchange_accumulate",
    "exchange_cast_compatible",
    "exchange_error_on_init",
    "exchange_error_on_nth",
    "exchange_oversized",
    "exchange_scale",
    "exchange_session_counter",
    "exchange_with_header",
    "exchange_with_logs",
    "exchange_with_rich_header",
    "exchange_zero_columns",
    "produce_dynamic_schema",
    "produce_empty",
    "produce_error_mid_stream",
    "produce_error_on_init",
    "produce_large_batches",
    "produce_n",
    "produce_oversized_batch",
    "produce_single",
    "produce_with_header",
    "produce_with_header_and_logs",
    "produce_with_logs",
    "produce_with_rich_header",
    "stream_session_counter",
];

const VOID_METHODS: &[&str] = &["reset_cancel_probe", "void_noop", "void_with_param"];

const HEADER_METHODS: &[&str] = &[
    "exchange_with_header",
    "exchange_with_rich_header",
    "produce_dynamic_schema",
    "produce_with_header",
    "produce_with_header_and_logs",
    "produce_with_rich_header",
];

fn describe<T: Transport>(ctx: &mut Ctx<'_, T>) -> Result<ServiceDescription, Failure> {
    Ok(ctx.client.dynamic().describe()?)
}

fn method<'a>(
    desc: &'a ServiceDescription,
    name: &str,
) -> Result<&'a vgirpc::wire::describe::MethodDescription, Failure> {
    desc.method(name)
        .ok_or_else(|| Failure::check(format!("__describe__ lacks {name}")))
}

fn field_names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

#[rustfmt::skip]
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    vec![
        // __describe__ (_runner.py describe tests).
        t("describe", "service", |c| {
            let desc = describe(c)?;
            eq(desc.protocol_name.as_str(), "ConformanceService")?;
            eq(desc.request_version.as_str(), "1")?;
            eq(desc.describe_version.as_str(), "4")?;
            eq(desc.methods.len(), 81)?;
            Ok(format!("{} {} {} {}", desc.protocol_name, desc.request_version, desc.describe_version, desc.methods.len()))
        }),
        t("describe", "exact_method_set", |c| {
            let desc = describe(c)?;
            let actual: BTreeSet<&str> = desc.methods.iter().map(|m| m.name.as_str()).collect();
            let expected: BTreeSet<&str> = UNARY_METHODS.iter().chain(STREAM_METHODS).copied().collect();
            eq(actual, expected)?;
            Ok("81 methods".into())
        }),
        t("describe", "method_types_and_returns", |c| {
            let desc = describe(c)?;
            for name in UNARY_METHODS {
                let m = method(&desc, name)?;
                eq((*name, m.method_type), (*name, MethodType::Unary))?;
                eq((*name, m.has_return), (*name, !VOID_METHODS.contains(name)))?;
            }
            for name in STREAM_METHODS {
                let m = method(&desc, name)?;
                eq((*name, m.method_type, m.has_return), (*name, MethodType::Stream, false))?;
                eq((*name, m.is_exchange), (*name, None))?;
                eq((*name, m.header_schema.is_some()), (*name, HEADER_METHODS.contains(name)))?;
            }
            Ok("types, returns, headers".into())
        }),
        t("describe", "param_schemas", |c| {
            let desc = describe(c)?;
            let params = |name: &str| method(&desc, name).map(|m| m.params_schema.clone());
            let echo_string = params("echo_string")?;
            eq(field_names(&echo_string), vec!["value".to_owned()])?;
            eq(echo_string.field(0).data_type(), &DataType::Utf8)?;
            let add = params("add_floats")?;
            eq(field_names(&add), vec!["a".to_owned(), "b".to_owned()])?;
            check!(add.fields().iter().all(|f| f.data_type() == &DataType::Float64));
            eq(params("void_noop")?.fields().len(), 0)?;
            let point = params("echo_point")?;
            eq(field_names(&point), vec!["point".to_owned()])?;
            eq(point.field(0).data_type(), &DataType::Binary)?;
            let concatenate = params("concatenate")?;
            eq(field_names(&concatenate), ["prefix", "suffix", "separator"].map(String::from).to_vec())?;
            check!(concatenate.fields().iter().all(|f| f.data_type() == &DataType::Utf8));
            let produce = params("produce_n")?;
            eq(field_names(&produce), vec!["count".to_owned()])?;
            eq(produce.field(0).data_type(), &DataType::Int64)?;
            Ok("param schemas".into())
        }),
        t("describe", "header_schemas", |c| {
            let desc = describe(c)?;
            for name in ["produce_with_header", "produce_with_header_and_logs", "exchange_with_header"] {
                let header = method(&desc, name)?.header_schema.clone().ok_or_else(|| Failure::check(format!("{name} has no header")))?;
                eq(field_names(&header), vec!["total_expected".to_owned(), "description".to_owned()])?;
            }
            for name in ["produce_with_rich_header", "produce_dynamic_schema", "exchange_with_rich_header"] {
                let header = method(&desc, name)?.header_schema.clone().ok_or_else(|| Failure::check(format!("{name} has no header")))?;
                eq(header.fields().len(), 18)?;
                for field in ["str_field", "nested_point", "dict_str_str"] {
                    check!(header.field_with_name(field).is_ok(), "{name} header lacks {field}");
                }
            }
            Ok("header schemas".into())
        }),
        t("describe", "protocol_hash", |c| {
            let desc = describe(c)?;
            let hash = &desc.protocol_hash;
            eq(hash.len(), 64)?;
            check!(hash.chars().all(|ch| matches!(ch, '0'..='9' | 'a'..='f')), "hash {hash:?}");
            // Same protocol, same hash: the servers must agree on it.
            Ok(hash.clone())
        }),
    ]
}
