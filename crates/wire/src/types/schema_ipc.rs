//! Schemas as standalone IPC messages, byte-compatible with pyarrow.
//!
//! pyarrow's `pa.Schema.serialize()` writes one encapsulated IPC schema
//! message and no end-of-stream marker. vgi-rpc ships those bytes in
//! `__describe__` and in nested `Schema` values, and WIRE_PROTOCOL
//! Appendix C pins the empty schema to a fixed 56-byte blob.
//!
//! arrow-rs's own schema encoder produces a valid but differently laid out
//! flatbuffer (64 bytes for the empty schema), so this module builds the
//! flatbuffer itself, creating every table in the order Arrow C++ does. The
//! flatbuffers builder is deterministic, so the same order yields the same
//! bytes pyarrow produces. Types this encoder does not cover fall back to
//! arrow-rs's encoder, which is still a valid schema message.

use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_schema::{DataType, Field, IntervalUnit, Metadata, Schema, TimeUnit};
use flatbuffers::{FlatBufferBuilder, ForwardsUOffset, UnionWIPOffset, Vector, WIPOffset};

use crate::{Result, WireError};

const CONTINUATION: [u8; 4] = [0xff; 4];

/// Serializes `schema` as one encapsulated IPC schema message, exactly as
/// pyarrow's `pa.Schema.serialize()` does (continuation marker, metadata
/// length, flatbuffer padded to 8 bytes, no end-of-stream marker).
///
/// Metadata is written with keys in sorted order, since Arrow's Rust schema
/// does not remember insertion order.
pub fn serialize_schema(schema: &Schema) -> Vec<u8> {
    let flatbuffer = schema_flatbuffer(schema).unwrap_or_else(|| fallback_flatbuffer(schema));
    frame(&flatbuffer)
}

/// Parses bytes produced by [`serialize_schema`] or `pa.Schema.serialize()`.
///
/// A complete IPC stream is accepted too; only its first message is read.
pub fn deserialize_schema(bytes: &[u8]) -> Result<Schema> {
    let truncated = || WireError::Truncated {
        context: "serialized schema",
    };
    let (first, rest) = bytes.split_first_chunk::<4>().ok_or_else(truncated)?;
    // Pre-0.15 Arrow omitted the continuation marker; pyarrow still reads it.
    let (len, rest) = if *first == CONTINUATION {
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        (i32::from_le_bytes(*len), rest)
    } else {
        (i32::from_le_bytes(*first), rest)
    };
    let len = usize::try_from(len)
        .map_err(|_| WireError::Malformed(format!("negative schema message length {len}")))?;
    let flatbuffer = rest.get(..len).ok_or_else(truncated)?;
    let message = arrow_ipc::root_as_message(flatbuffer)
        .map_err(|e| WireError::Malformed(format!("invalid schema message: {e}")))?;
    let schema = message.header_as_schema().ok_or_else(|| {
        WireError::Malformed(format!(
            "expected a schema message, got {:?}",
            message.header_type()
        ))
    })?;
    Ok(arrow_ipc::convert::try_fb_to_schema(schema)?)
}

fn frame(flatbuffer: &[u8]) -> Vec<u8> {
    let padded = flatbuffer.len().div_ceil(8) * 8;
    let mut out = Vec::with_capacity(8 + padded);
    out.extend_from_slice(&CONTINUATION);
    // A schema flatbuffer never approaches 2 GiB; saturate rather than wrap.
    let len = i32::try_from(padded).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(flatbuffer);
    out.resize(8 + padded, 0);
    out
}

fn fallback_flatbuffer(schema: &Schema) -> Vec<u8> {
    let generator = IpcDataGenerator::default();
    let mut tracker = DictionaryTracker::new(false);
    let encoded = generator.schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut tracker,
        &IpcWriteOptions::default(),
    );
    encoded.ipc_message
}

type Fb<'a> = FlatBufferBuilder<'a>;
type KeyValues<'a> = WIPOffset<Vector<'a, ForwardsUOffset<arrow_ipc::KeyValue<'a>>>>;

fn schema_flatbuffer(schema: &Schema) -> Option<Vec<u8>> {
    let mut fbb = FlatBufferBuilder::new();
    let mut next_dictionary_id = 0;
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        fields.push(field_offset(&mut fbb, field, &mut next_dictionary_id)?);
    }
    let fields = fbb.create_vector(&fields);
    let metadata = key_values(&mut fbb, schema.metadata());
    let schema = arrow_ipc::Schema::create(
        &mut fbb,
        &arrow_ipc::SchemaArgs {
            endianness: arrow_ipc::Endianness::Little,
            fields: Some(fields),
            custom_metadata: metadata,
            features: None,
        },
    );
    let message = arrow_ipc::Message::create(
        &mut fbb,
        &arrow_ipc::MessageArgs {
            version: arrow_ipc::MetadataVersion::V5,
            header_type: arrow_ipc::MessageHeader::Schema,
            header: Some(schema.as_union_value()),
            bodyLength: 0,
            custom_metadata: None,
        },
    );
    fbb.finish(message, None);
    Some(fbb.finished_data().to_vec())
}

fn key_values<'a>(fbb: &mut Fb<'a>, metadata: &Metadata) -> Option<KeyValues<'a>> {
    if metadata.is_empty() {
        return None;
    }
    let offsets: Vec<_> = metadata
        .iter()
        .map(|(key, value)| {
            // Key string before value string, matching pyarrow's builds byte
            // for byte (the two are arguments of one call in Arrow C++).
            let key = fbb.create_string(key);
            let value = fbb.create_string(value);
            arrow_ipc::KeyValue::create(
                fbb,
                &arrow_ipc::KeyValueArgs {
                    key: Some(key),
                    value: Some(value),
                },
            )
        })
        .collect();
    Some(fbb.create_vector(&offsets))
}

/// A field's type table together with its union tag.
struct TypeTable {
    tag: arrow_ipc::Type,
    offset: WIPOffset<UnionWIPOffset>,
}

fn field_offset<'a>(
    fbb: &mut Fb<'a>,
    field: &Field,
    next_dictionary_id: &mut i64,
) -> Option<WIPOffset<arrow_ipc::Field<'a>>> {
    // Dictionary ids are handed out depth-first, parent before children, in
    // field order, as Arrow C++'s dictionary field mapper does.
    let (value_type, dictionary_key) = match field.data_type() {
        DataType::Dictionary(key, value) => {
            let id = *next_dictionary_id;
            *next_dictionary_id += 1;
            (value.as_ref(), Some((key.as_ref(), id)))
        }
        other => (other, None),
    };
    let mut children = Vec::new();
    let table = type_table(fbb, value_type, &mut children, next_dictionary_id)?;
    let dictionary = match dictionary_key {
        Some((key, id)) => {
            let (bit_width, is_signed) = int_layout(key)?;
            let index_type = arrow_ipc::Int::create(
                fbb,
                &arrow_ipc::IntArgs {
                    bitWidth: bit_width,
                    is_signed,
                },
            );
            Some(arrow_ipc::DictionaryEncoding::create(
                fbb,
                &arrow_ipc::DictionaryEncodingArgs {
                    id,
                    indexType: Some(index_type),
                    isOrdered: field.dict_is_ordered().unwrap_or(false),
                    dictionaryKind: arrow_ipc::DictionaryKind::DenseArray,
                },
            ))
        }
        None => None,
    };
    let metadata = key_values(fbb, field.metadata());
    let name = fbb.create_string(field.name());
    let children = fbb.create_vector(&children);
    Some(arrow_ipc::Field::create(
        fbb,
        &arrow_ipc::FieldArgs {
            name: Some(name),
            nullable: field.is_nullable(),
            type_type: table.tag,
            type_: Some(table.offset),
            dictionary,
            children: Some(children),
            custom_metadata: metadata,
        },
    ))
}

fn int_layout(data_type: &DataType) -> Option<(i32, bool)> {
    Some(match data_type {
        DataType::Int8 => (8, true),
        DataType::Int16 => (16, true),
        DataType::Int32 => (32, true),
        DataType::Int64 => (64, true),
        DataType::UInt8 => (8, false),
        DataType::UInt16 => (16, false),
        DataType::UInt32 => (32, false),
        DataType::UInt64 => (64, false),
        _ => return None,
    })
}

fn time_unit(unit: TimeUnit) -> arrow_ipc::TimeUnit {
    match unit {
        TimeUnit::Second => arrow_ipc::TimeUnit::SECOND,
        TimeUnit::Millisecond => arrow_ipc::TimeUnit::MILLISECOND,
        TimeUnit::Microsecond => arrow_ipc::TimeUnit::MICROSECOND,
        TimeUnit::Nanosecond => arrow_ipc::TimeUnit::NANOSECOND,
    }
}

/// Builds the type table of `data_type`, first encoding its child fields
/// into `children` (Arrow C++ writes children before the parent's table).
fn type_table<'a>(
    fbb: &mut Fb<'a>,
    data_type: &DataType,
    children: &mut Vec<WIPOffset<arrow_ipc::Field<'a>>>,
    next_dictionary_id: &mut i64,
) -> Option<TypeTable> {
    use arrow_ipc::Type;

    macro_rules! table {
        ($tag:ident, $table:ident, $args:expr) => {
            TypeTable {
                tag: Type::$tag,
                offset: arrow_ipc::$table::create(fbb, &$args).as_union_value(),
            }
        };
    }

    let mut child_fields = |fbb: &mut Fb<'a>, fields: &[&Field]| -> Option<()> {
        for child in fields {
            children.push(field_offset(fbb, child, next_dictionary_id)?);
        }
        Some(())
    };

    Some(match data_type {
        DataType::Null => table!(Null, Null, arrow_ipc::NullArgs {}),
        DataType::Boolean => table!(Bool, Bool, arrow_ipc::BoolArgs {}),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let (bit_width, is_signed) = int_layout(data_type)?;
            table!(
                Int,
                Int,
                arrow_ipc::IntArgs {
                    bitWidth: bit_width,
                    is_signed,
                }
            )
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let precision = match data_type {
                DataType::Float16 => arrow_ipc::Precision::HALF,
                DataType::Float32 => arrow_ipc::Precision::SINGLE,
                _ => arrow_ipc::Precision::DOUBLE,
            };
            table!(
                FloatingPoint,
                FloatingPoint,
                arrow_ipc::FloatingPointArgs { precision }
            )
        }
        DataType::Utf8 => table!(Utf8, Utf8, arrow_ipc::Utf8Args {}),
        DataType::LargeUtf8 => table!(LargeUtf8, LargeUtf8, arrow_ipc::LargeUtf8Args {}),
        DataType::Utf8View => table!(Utf8View, Utf8View, arrow_ipc::Utf8ViewArgs {}),
        DataType::Binary => table!(Binary, Binary, arrow_ipc::BinaryArgs {}),
        DataType::LargeBinary => table!(LargeBinary, LargeBinary, arrow_ipc::LargeBinaryArgs {}),
        DataType::BinaryView => table!(BinaryView, BinaryView, arrow_ipc::BinaryViewArgs {}),
        DataType::FixedSizeBinary(width) => table!(
            FixedSizeBinary,
            FixedSizeBinary,
            arrow_ipc::FixedSizeBinaryArgs { byteWidth: *width }
        ),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            let bit_width = match data_type {
                DataType::Decimal32(..) => 32,
                DataType::Decimal64(..) => 64,
                DataType::Decimal128(..) => 128,
                _ => 256,
            };
            table!(
                Decimal,
                Decimal,
                arrow_ipc::DecimalArgs {
                    precision: i32::from(*p),
                    scale: i32::from(*s),
                    bitWidth: bit_width,
                }
            )
        }
        DataType::Date32 | DataType::Date64 => {
            let unit = if matches!(data_type, DataType::Date32) {
                arrow_ipc::DateUnit::DAY
            } else {
                arrow_ipc::DateUnit::MILLISECOND
            };
            table!(Date, Date, arrow_ipc::DateArgs { unit })
        }
        DataType::Time32(unit) | DataType::Time64(unit) => {
            let bit_width = if matches!(data_type, DataType::Time32(_)) {
                32
            } else {
                64
            };
            table!(
                Time,
                Time,
                arrow_ipc::TimeArgs {
                    unit: time_unit(*unit),
                    bitWidth: bit_width,
                }
            )
        }
        DataType::Timestamp(unit, tz) => {
            let timezone = tz
                .as_deref()
                .filter(|tz| !tz.is_empty())
                .map(|tz| fbb.create_string(tz));
            table!(
                Timestamp,
                Timestamp,
                arrow_ipc::TimestampArgs {
                    unit: time_unit(*unit),
                    timezone,
                }
            )
        }
        DataType::Duration(unit) => table!(
            Duration,
            Duration,
            arrow_ipc::DurationArgs {
                unit: time_unit(*unit),
            }
        ),
        DataType::Interval(unit) => {
            let unit = match unit {
                IntervalUnit::YearMonth => arrow_ipc::IntervalUnit::YEAR_MONTH,
                IntervalUnit::DayTime => arrow_ipc::IntervalUnit::DAY_TIME,
                IntervalUnit::MonthDayNano => arrow_ipc::IntervalUnit::MONTH_DAY_NANO,
            };
            table!(Interval, Interval, arrow_ipc::IntervalArgs { unit })
        }
        DataType::List(child) => {
            child_fields(fbb, &[child.as_ref()])?;
            table!(List, List, arrow_ipc::ListArgs {})
        }
        DataType::LargeList(child) => {
            child_fields(fbb, &[child.as_ref()])?;
            table!(LargeList, LargeList, arrow_ipc::LargeListArgs {})
        }
        DataType::FixedSizeList(child, size) => {
            child_fields(fbb, &[child.as_ref()])?;
            table!(
                FixedSizeList,
                FixedSizeList,
                arrow_ipc::FixedSizeListArgs { listSize: *size }
            )
        }
        DataType::Map(entries, keys_sorted) => {
            child_fields(fbb, &[entries.as_ref()])?;
            table!(
                Map,
                Map,
                arrow_ipc::MapArgs {
                    keysSorted: *keys_sorted,
                }
            )
        }
        DataType::Struct(fields) => {
            let fields: Vec<&Field> = fields.iter().map(|f| f.as_ref()).collect();
            child_fields(fbb, &fields)?;
            table!(Struct_, Struct_, arrow_ipc::Struct_Args {})
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// WIRE_PROTOCOL.md Appendix C.
    const EMPTY_SCHEMA: [u8; 56] = [
        0xff, 0xff, 0xff, 0xff, 0x30, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,
        0x00, 0x0c, 0x00, 0x06, 0x00, 0x05, 0x00, 0x08, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x04, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x08,
        0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn empty_schema_matches_appendix_c() {
        assert_eq!(serialize_schema(&Schema::empty()), EMPTY_SCHEMA);
        assert_eq!(deserialize_schema(&EMPTY_SCHEMA).unwrap(), Schema::empty());
    }

    #[test]
    fn unsupported_types_fall_back_to_a_readable_encoding() {
        let fields = vec![Field::new(
            "u",
            DataType::RunEndEncoded(
                Arc::new(Field::new("run_ends", DataType::Int32, false)),
                Arc::new(Field::new("values", DataType::Utf8, true)),
            ),
            true,
        )];
        let schema = Schema::new(fields);
        let bytes = serialize_schema(&schema);
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(deserialize_schema(&bytes).unwrap(), schema);
    }

    #[test]
    fn truncated_or_garbage_bytes_are_errors() {
        let bytes = serialize_schema(&Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        for cut in 0..bytes.len() - 1 {
            assert!(deserialize_schema(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(deserialize_schema(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(deserialize_schema(&[0x08, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]).is_err());
    }
}
