//! Arrow types and schemas spelled as pyarrow prints them (`int64`,
//! `string`, `list<item: double>`, `value: double not null`): the spelling
//! the reference uses in its error messages and pages, and the one users
//! of other vgi-rpc implementations know.
//!
//! ```
//! use arrow_schema::{DataType, Field, Schema};
//! use vgirpc_wire::pyarrow;
//!
//! let schema = Schema::new(vec![
//!     Field::new("x", DataType::Float64, false),
//!     Field::new("label", DataType::Utf8, true),
//! ]);
//! assert_eq!(pyarrow::schema_text(&schema), "x: double not null\nlabel: string");
//! assert_eq!(pyarrow::struct_name(&schema), "struct<x: double not null, label: string>");
//! ```

use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// The pyarrow spelling of `data_type`.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "null".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "halffloat".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::LargeUtf8 => "large_string".into(),
        DataType::Utf8View => "string_view".into(),
        DataType::Binary => "binary".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::BinaryView => "binary_view".into(),
        DataType::Date32 => "date32[day]".into(),
        DataType::Date64 => "date64[ms]".into(),
        DataType::FixedSizeBinary(width) => format!("fixed_size_binary[{width}]"),
        DataType::Time32(unit) => format!("time32[{}]", unit_name(unit)),
        DataType::Time64(unit) => format!("time64[{}]", unit_name(unit)),
        DataType::Timestamp(unit, None) => format!("timestamp[{}]", unit_name(unit)),
        DataType::Timestamp(unit, Some(zone)) => {
            format!("timestamp[{}, tz={zone}]", unit_name(unit))
        }
        DataType::Duration(unit) => format!("duration[{}]", unit_name(unit)),
        DataType::Decimal128(precision, scale) => format!("decimal128({precision}, {scale})"),
        DataType::Decimal256(precision, scale) => format!("decimal256({precision}, {scale})"),
        DataType::List(item) => format!("list<{}>", field_text(item)),
        DataType::LargeList(item) => format!("large_list<{}>", field_text(item)),
        DataType::FixedSizeList(item, size) => {
            format!("fixed_size_list<{}>[{size}]", field_text(item))
        }
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields.iter().map(|f| field_text(f)).collect();
            format!("struct<{}>", inner.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(pair) if pair.len() == 2 => format!(
                "map<{}, {}>",
                type_name(pair[0].data_type()),
                type_name(pair[1].data_type())
            ),
            other => format!("map<{}>", type_name(other)),
        },
        DataType::Dictionary(keys, values) => format!(
            "dictionary<values={}, indices={}, ordered=0>",
            type_name(values),
            type_name(keys)
        ),
        // Types vgi-rpc services rarely carry; arrow-rs's own spelling is
        // clear enough for them.
        other => other.to_string(),
    }
}

/// `name: type`, with pyarrow's ` not null` for non-nullable fields.
pub fn field_text(field: &Field) -> String {
    let not_null = if field.is_nullable() { "" } else { " not null" };
    format!(
        "{}: {}{not_null}",
        field.name(),
        type_name(field.data_type())
    )
}

/// A schema as pyarrow prints it: one field per line.
pub fn schema_text(schema: &Schema) -> String {
    let fields: Vec<String> = schema.fields().iter().map(|f| field_text(f)).collect();
    fields.join("\n")
}

/// The fields of `schema` as one struct type: how a parameter that
/// travels as an embedded IPC stream looks to the caller.
pub fn struct_name(schema: &Schema) -> String {
    type_name(&DataType::Struct(schema.fields().clone()))
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn types_read_as_in_pyarrow() {
        assert_eq!(type_name(&DataType::Float64), "double");
        assert_eq!(type_name(&DataType::Utf8), "string");
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert_eq!(type_name(&list), "list<item: int64>");
        let stamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(type_name(&stamp), "timestamp[us, tz=UTC]");
        let keys = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(
            type_name(&keys),
            "dictionary<values=string, indices=int32, ordered=0>"
        );
    }
}
