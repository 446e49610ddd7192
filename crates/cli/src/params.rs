//! Parameters from the command line, typed by the method's params schema.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value as Json;
use vgirpc_client::no_params;
use vgirpc_wire::describe::MethodDescription;
use vgirpc_wire::types::write_ipc_stream;
use vgirpc_wire::value::{Value, values_to_array};

use crate::error::CliError;
use vgirpc_wire::pyarrow::type_name;

/// Builds the one-row parameter batch of `method` from `KEY=VALUE` words or
/// a JSON object. Only the given parameters are sent; the server fills in
/// its defaults for the others (and rejects missing required ones).
pub(crate) fn build(
    method: &MethodDescription,
    assignments: &[String],
    json: Option<&str>,
) -> Result<RecordBatch, CliError> {
    let name_of_method = method.name.as_str();
    let schema = &method.params_schema;
    let mut given: Vec<(&Field, Value)> = Vec::new();
    let mut add = |name: &str, raw: Given<'_>| {
        let field = find(name_of_method, schema, name)?;
        if given.iter().any(|(f, _)| f.name() == name) {
            return Err(CliError::Usage(format!(
                "parameter '{name}' of {name_of_method} is given twice"
            )));
        }
        let embedded = method.embedded_params.get(name);
        let value = parse(raw, field.data_type(), embedded).map_err(|reason| {
            let shape = match embedded {
                Some(schema) => format!("a JSON object of {}", struct_shape(schema)),
                None => type_name(field.data_type()),
            };
            CliError::Usage(format!(
                "parameter '{name}' of {name_of_method} ({shape}): {reason}"
            ))
        })?;
        if value.is_null() && !field.is_nullable() {
            return Err(CliError::Usage(format!(
                "parameter '{name}' of {name_of_method} is not optional"
            )));
        }
        given.push((field, value));
        Ok(())
    };
    if let Some(json) = json {
        let object: serde_json::Map<String, Json> = serde_json::from_str(json)
            .map_err(|e| CliError::Usage(format!("--json is not a JSON object: {e}")))?;
        for (name, value) in &object {
            add(name, Given::Json(value))?;
        }
    }
    for assignment in assignments {
        let (name, text) = assignment
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("expected KEY=VALUE, got {assignment:?}")))?;
        add(name, Given::Text(text))?;
    }
    if given.is_empty() {
        return Ok(no_params());
    }
    // Columns keep the schema's order, which is how the reference sends them.
    given.sort_by_key(|(field, _)| schema.index_of(field.name()).unwrap_or(usize::MAX));
    let mut fields = Vec::with_capacity(given.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(given.len());
    for (field, value) in given {
        let array = values_to_array(field.data_type(), &[value]).map_err(|e| {
            CliError::Usage(format!(
                "parameter '{}' of {name_of_method}: {e}",
                field.name()
            ))
        })?;
        fields.push(field.clone());
        columns.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(CliError::arrow(format!(
        "cannot build the parameters of {name_of_method}"
    )))
}

/// A parameter's value as the command line gave it.
#[derive(Clone, Copy)]
enum Given<'a> {
    /// `KEY=TEXT`.
    Text(&'a str),
    /// A member of `--json`.
    Json(&'a Json),
}

/// Reads one parameter. `embedded` is the schema the server published for
/// a struct parameter that travels as IPC bytes in a binary column.
fn parse(raw: Given<'_>, dt: &DataType, embedded: Option<&SchemaRef>) -> Result<Value, String> {
    let is_bytes = matches!(dt, DataType::Binary | DataType::LargeBinary);
    match (raw, embedded) {
        (Given::Json(json), Some(schema)) if is_bytes => embedded_struct(json, schema),
        (Given::Text(text), Some(schema)) if is_bytes => {
            let json: Json = serde_json::from_str(text)
                .map_err(|e| format!("{text:?} is not valid JSON: {e}"))?;
            embedded_struct(&json, schema)
        }
        (Given::Json(json), None) if is_bytes && json.is_object() => Err(NO_SCHEMA.into()),
        (Given::Text(text), None)
            if is_bytes && serde_json::from_str::<Json>(text).is_ok_and(|j| j.is_object()) =>
        {
            Err(NO_SCHEMA.into())
        }
        (Given::Json(json), _) => from_json(json, dt),
        (Given::Text(text), _) => from_text(text, dt),
    }
}

/// Why a JSON object cannot fill a binary parameter without a schema.
const NO_SCHEMA: &str = "the service's description carries no schema for this parameter (a \
     struct the server reads from IPC bytes), so it cannot be built from JSON; its value is \
     taken as raw bytes, given as text";

/// A struct parameter as the one-row IPC stream its server reads.
fn embedded_struct(json: &Json, schema: &SchemaRef) -> Result<Value, String> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let Value::Struct(members) = struct_from_json(json, schema.fields())? else {
        unreachable!("struct_from_json builds structs");
    };
    let columns = schema
        .fields()
        .iter()
        .zip(members)
        .map(|(field, (_, value))| {
            if value.is_null() && !field.is_nullable() {
                return Err(format!("struct field '{}' is required", field.name()));
            }
            values_to_array(field.data_type(), &[value])
                .map_err(|e| format!("struct field '{}': {e}", field.name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let batch = RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())?;
    write_ipc_stream(schema, &batch)
        .map(Value::Bytes)
        .map_err(|e| e.to_string())
}

/// `{x: double, y: double}`: the fields a struct parameter expects.
fn struct_shape(schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn find<'a>(method: &str, schema: &'a Schema, name: &str) -> Result<&'a Field, CliError> {
    schema.field_with_name(name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let expected = if names.is_empty() {
            "it takes none".to_owned()
        } else {
            format!("expected one of: {}", names.join(", "))
        };
        CliError::Usage(format!(
            "unknown parameter '{name}' for {method}; {expected}"
        ))
    })
}

/// A value typed on the command line as `KEY=TEXT`.
fn from_text(text: &str, dt: &DataType) -> Result<Value, String> {
    Ok(match dt {
        DataType::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => return Err(format!("{text:?} is not true or false")),
        },
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Value::Int(
            text.parse()
                .map_err(|_| format!("{text:?} is not an integer"))?,
        ),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Value::UInt(
            text.parse()
                .map_err(|_| format!("{text:?} is not a non-negative integer"))?,
        ),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Value::Float(
            text.parse()
                .map_err(|_| format!("{text:?} is not a number"))?,
        ),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Value::Str(text.to_owned()),
        DataType::Dictionary(_, values) if is_text(values) => Value::Str(text.to_owned()),
        DataType::Binary | DataType::LargeBinary | DataType::FixedSizeBinary(_) => {
            Value::Bytes(text.as_bytes().to_vec())
        }
        DataType::Date32 => {
            let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|e| format!("{text:?} is not a date like 2026-04-25: {e}"))?;
            Value::Date32((date - NaiveDate::default()).num_days() as i32)
        }
        DataType::Timestamp(unit, _) => Value::Timestamp(parse_timestamp(text, *unit)?),
        DataType::Time32(unit) | DataType::Time64(unit) => {
            let time = NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
                .map_err(|e| format!("{text:?} is not a time like 12:30:45: {e}"))?;
            let nanos = i64::from(time.num_seconds_from_midnight()) * 1_000_000_000
                + i64::from(time.nanosecond());
            Value::Time64(nanos / nanos_per(*unit))
        }
        DataType::Duration(_) => Value::Duration(
            text.parse()
                .map_err(|_| format!("{text:?} is not an integer count of the duration's unit"))?,
        ),
        DataType::Decimal128(_, scale) => Value::Decimal(parse_decimal(text, *scale)?),
        // Containers and anything else: JSON.
        _ => {
            let json: Json = serde_json::from_str(text)
                .map_err(|e| format!("{text:?} is not valid JSON: {e}"))?;
            from_json(&json, dt)?
        }
    })
}

/// A value given as JSON (in `--json`, or for container types).
fn from_json(json: &Json, dt: &DataType) -> Result<Value, String> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    Ok(match dt {
        DataType::Boolean => Value::Bool(json.as_bool().ok_or("expected true or false")?),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            Value::Int(json.as_i64().ok_or("expected an integer")?)
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Value::UInt(json.as_u64().ok_or("expected a non-negative integer")?)
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            Value::Float(json.as_f64().ok_or("expected a number")?)
        }
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            let items = json.as_array().ok_or("expected a JSON array")?;
            Value::List(
                items
                    .iter()
                    .map(|v| from_json(v, item.data_type()))
                    .collect::<Result<_, _>>()?,
            )
        }
        DataType::Struct(fields) => struct_from_json(json, fields)?,
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err("malformed map type".into());
            };
            let (key_type, value_type) = match kv.iter().collect::<Vec<_>>()[..] {
                [k, v] => (k.data_type(), v.data_type()),
                _ => return Err("malformed map type".into()),
            };
            let pairs: Vec<(Value, Value)> = match json {
                Json::Object(object) => object
                    .iter()
                    .map(|(k, v)| Ok((from_text(k, key_type)?, from_json(v, value_type)?)))
                    .collect::<Result<_, String>>()?,
                Json::Array(pairs) => pairs
                    .iter()
                    .map(|pair| match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => Ok((from_json(k, key_type)?, from_json(v, value_type)?)),
                        _ => Err("expected [key, value] pairs".to_owned()),
                    })
                    .collect::<Result<_, String>>()?,
                _ => return Err("expected a JSON object or an array of [key, value]".into()),
            };
            Value::Map(pairs)
        }
        // Scalars given as JSON strings are read like KEY=TEXT values.
        _ => match json {
            Json::String(text) => from_text(text, dt)?,
            Json::Number(n) => from_text(&n.to_string(), dt)?,
            other => return Err(format!("unexpected JSON {other}")),
        },
    })
}

fn struct_from_json(json: &Json, fields: &Fields) -> Result<Value, String> {
    let object = json.as_object().ok_or("expected a JSON object")?;
    if let Some(unknown) = object.keys().find(|k| fields.find(k).is_none()) {
        return Err(format!("unknown struct field '{unknown}'"));
    }
    fields
        .iter()
        .map(|field| {
            let value = match object.get(field.name()) {
                Some(v) => from_json(v, field.data_type())?,
                None => Value::Null,
            };
            Ok((field.name().clone(), value))
        })
        .collect::<Result<_, String>>()
        .map(Value::Struct)
}

fn is_text(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// RFC 3339 (with an offset) or a naive `YYYY-MM-DD[T ]HH:MM:SS[.f]`,
/// taken as UTC, in `unit`s since the epoch.
fn parse_timestamp(text: &str, unit: TimeUnit) -> Result<i64, String> {
    let utc = DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
        })
        .map_err(|_| format!("{text:?} is not a timestamp like 2026-04-25T12:00:00"))?
        .and_utc();
    let seconds = utc.timestamp();
    let nanos = i64::from(utc.timestamp_subsec_nanos());
    let per = nanos_per(unit);
    seconds
        .checked_mul(1_000_000_000 / per)
        .and_then(|s| s.checked_add(nanos / per))
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// A decimal string as an unscaled integer of `scale` digits.
fn parse_decimal(text: &str, scale: i8) -> Result<i128, String> {
    let invalid = || format!("{text:?} is not a decimal number");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let scale = usize::try_from(scale).map_err(|_| "negative decimal scales are not supported")?;
    if fraction.len() > scale {
        return Err(format!("{text:?} has more than {scale} decimal places"));
    }
    let padded = format!("{whole}{fraction:0<scale$}");
    let unscaled: i128 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| invalid())?
    };
    Ok(if negative { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use vgirpc_wire::describe::MethodType;
    use vgirpc_wire::types::read_ipc_stream;

    fn method(params: Schema) -> MethodDescription {
        MethodDescription {
            name: "m".into(),
            method_type: MethodType::Unary,
            has_return: true,
            params_schema: Arc::new(params),
            result_schema: Arc::new(Schema::empty()),
            header_schema: None,
            is_exchange: None,
            embedded_params: BTreeMap::new(),
            doc: None,
            param_defaults: BTreeMap::new(),
        }
    }

    fn point_method(published: bool) -> MethodDescription {
        let mut m = method(Schema::new(vec![Field::new(
            "point",
            DataType::Binary,
            false,
        )]));
        if published {
            let point = Schema::new(vec![
                Field::new("x", DataType::Float64, false),
                Field::new("y", DataType::Float64, false),
            ]);
            m.embedded_params.insert("point".into(), Arc::new(point));
        }
        m
    }

    fn schema() -> MethodDescription {
        method(Schema::new(vec![
            Field::new("count", DataType::Int64, false),
            Field::new("label", DataType::Utf8, true),
            Field::new(
                "values",
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                false,
            ),
        ]))
    }

    #[test]
    fn assignments_are_typed_by_the_schema() {
        let batch = build(&schema(), &["values=[1,2]".into(), "count=3".into()], None).unwrap();
        assert_eq!(batch.num_rows(), 1);
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["count", "values"]);
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 3);
    }

    #[test]
    fn json_parameters_and_nulls() {
        let batch = build(&schema(), &[], Some(r#"{"label": null, "count": 1}"#)).unwrap();
        assert!(batch.column_by_name("label").unwrap().is_null(0));
        let err = build(&schema(), &[], Some(r#"{"count": null}"#)).unwrap_err();
        assert!(err.to_string().contains("not optional"), "{err}");
    }

    #[test]
    fn wrong_names_and_values_are_usage_errors() {
        let err = build(&schema(), &["nope=1".into()], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown parameter 'nope' for m; expected one of: count, label, values"
        );
        assert_eq!(err.exit_code(), 2);
        let err = build(&schema(), &["count=x".into()], None).unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
        let err = build(&schema(), &["count".into()], None).unwrap_err();
        assert!(err.to_string().contains("KEY=VALUE"), "{err}");
    }

    #[test]
    fn a_struct_parameter_with_a_published_schema_is_built_from_json() {
        for (assignments, json) in [
            (vec![r#"point={"x": 1.5, "y": -2}"#.to_owned()], None),
            (vec![], Some(r#"{"point": {"x": 1.5, "y": -2}}"#)),
        ] {
            let batch = build(&point_method(true), &assignments, json).unwrap();
            let bytes = batch.column(0).as_binary::<i32>().value(0);
            let (schema, rows) = read_ipc_stream(bytes).unwrap();
            assert_eq!(schema.fields().len(), 2);
            assert_eq!(rows[0].num_rows(), 1);
            assert_eq!(
                rows[0].column(0).as_primitive::<Float64Type>().value(0),
                1.5
            );
            assert_eq!(
                rows[0].column(1).as_primitive::<Float64Type>().value(0),
                -2.0
            );
        }
        let err = build(&point_method(true), &[r#"point={"x": 1}"#.into()], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter 'point' of m (a JSON object of {x: double, y: double}): \
             struct field 'y' is required"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_struct_parameter_without_a_schema_says_json_cannot_fill_it() {
        for (assignments, json) in [
            (vec![r#"point={"x": 1}"#.to_owned()], None),
            (vec![], Some(r#"{"point": {"x": 1}}"#)),
        ] {
            let err = build(&point_method(false), &assignments, json).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(
                    "parameter 'point' of m (binary): the service's description carries no schema"
                ),
                "{text}"
            );
            assert!(!text.contains('\n'), "{text}");
            assert_eq!(err.exit_code(), 2);
        }
        let raw = build(&point_method(false), &["point=abc".into()], None).unwrap();
        assert_eq!(raw.column(0).as_binary::<i32>().value(0), b"abc");
    }

    #[test]
    fn scalars_from_text() {
        assert_eq!(
            from_text("12.5", &DataType::Decimal128(20, 4)),
            Ok(Value::Decimal(125_000))
        );
        assert_eq!(
            from_text("-0.0001", &DataType::Decimal128(20, 4)),
            Ok(Value::Decimal(-1))
        );
        assert!(from_text("1.00001", &DataType::Decimal128(20, 4)).is_err());
        assert_eq!(
            from_text("1970-01-02", &DataType::Date32),
            Ok(Value::Date32(1))
        );
        assert_eq!(
            from_text(
                "1970-01-01T00:00:01.5",
                &DataType::Timestamp(TimeUnit::Microsecond, None)
            ),
            Ok(Value::Timestamp(1_500_000))
        );
        assert_eq!(
            from_text("00:00:02", &DataType::Time64(TimeUnit::Microsecond)),
            Ok(Value::Time64(2_000_000))
        );
        assert_eq!(from_text("yes", &DataType::Boolean), Ok(Value::Bool(true)));
        assert_eq!(
            from_text(
                r#"{"a": 1}"#,
                &DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(Fields::from(vec![
                            Field::new("key", DataType::Utf8, false),
                            Field::new("value", DataType::Int64, true),
                        ])),
                        false,
                    )),
                    false,
                )
            ),
            Ok(Value::Map(vec![(Value::Str("a".into()), Value::Int(1))]))
        );
    }
}
