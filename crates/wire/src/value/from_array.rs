//! Reading single slots of Arrow arrays and rows of record batches back as [`Value`]s.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowDictionaryKeyType, ArrowPrimitiveType, Date32Type, Decimal128Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, OffsetSizeTrait, RecordBatch};
use arrow_buffer::ArrowNativeType;
use arrow_schema::{DataType, TimeUnit};

use super::Value;
use crate::{Result, WireError};

/// Reads slot `row` of `array` as a [`Value`].
///
/// Dictionary-encoded arrays decode to their dictionary value (a
/// [`Value::Str`] for string dictionaries).
pub fn array_value(array: &dyn Array, row: usize) -> Result<Value> {
    if row >= array.len() {
        return Err(WireError::OutOfRange(format!(
            "row {row} of an array with {} rows",
            array.len()
        )));
    }
    if matches!(array.data_type(), DataType::Null) || array.is_null(row) {
        return Ok(Value::Null);
    }
    read(array, row)
}

/// Reads row `row` of `batch` as a [`Value::Struct`] keyed by column name.
pub fn batch_row_values(batch: &RecordBatch, row: usize) -> Result<Value> {
    if row >= batch.num_rows() {
        return Err(WireError::OutOfRange(format!(
            "row {row} of a batch with {} rows",
            batch.num_rows()
        )));
    }
    let schema = batch.schema();
    let fields = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| Ok((field.name().clone(), array_value(column.as_ref(), row)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Struct(fields))
}

fn downcast_failed(array: &dyn Array) -> WireError {
    WireError::Malformed(format!(
        "array does not match its declared type {}",
        array.data_type()
    ))
}

fn prim<T: ArrowPrimitiveType>(array: &dyn Array, row: usize) -> Result<T::Native> {
    array
        .as_primitive_opt::<T>()
        .map(|a| a.value(row))
        .ok_or_else(|| downcast_failed(array))
}

fn read(array: &dyn Array, row: usize) -> Result<Value> {
    let value = match array.data_type() {
        DataType::Boolean => Value::Bool(
            array
                .as_boolean_opt()
                .ok_or_else(|| downcast_failed(array))?
                .value(row),
        ),
        DataType::Int8 => Value::Int(prim::<Int8Type>(array, row)?.into()),
        DataType::Int16 => Value::Int(prim::<Int16Type>(array, row)?.into()),
        DataType::Int32 => Value::Int(prim::<Int32Type>(array, row)?.into()),
        DataType::Int64 => Value::Int(prim::<Int64Type>(array, row)?),
        DataType::UInt8 => Value::UInt(prim::<UInt8Type>(array, row)?.into()),
        DataType::UInt16 => Value::UInt(prim::<UInt16Type>(array, row)?.into()),
        DataType::UInt32 => Value::UInt(prim::<UInt32Type>(array, row)?.into()),
        DataType::UInt64 => Value::UInt(prim::<UInt64Type>(array, row)?),
        DataType::Float32 => Value::Float(prim::<Float32Type>(array, row)?.into()),
        DataType::Float64 => Value::Float(prim::<Float64Type>(array, row)?),
        DataType::Utf8 => Value::Str(
            array
                .as_string_opt::<i32>()
                .ok_or_else(|| downcast_failed(array))?
                .value(row)
                .to_owned(),
        ),
        DataType::LargeUtf8 => Value::Str(
            array
                .as_string_opt::<i64>()
                .ok_or_else(|| downcast_failed(array))?
                .value(row)
                .to_owned(),
        ),
        DataType::Utf8View => Value::Str(
            array
                .as_string_view_opt()
                .ok_or_else(|| downcast_failed(array))?
                .value(row)
                .to_owned(),
        ),
        DataType::Binary => Value::Bytes(
            array
                .as_binary_opt::<i32>()
                .ok_or_else(|| downcast_failed(array))?
                .value(row)
                .to_vec(),
        ),
        DataType::LargeBinary => Value::Bytes(
            array
                .as_binary_opt::<i64>()
                .ok_or_else(|| downcast_failed(array))?
                .value(row)
                .to_vec(),
        ),
        DataType::BinaryView => Value::Bytes(
            array
                .as_binary_view_opt()
                .ok_or_else(|| downcast_failed(array))?
                .value(row)
                .to_vec(),
        ),
        DataType::FixedSizeBinary(_) => Value::Bytes(
            array
                .as_fixed_size_binary_opt()
                .ok_or_else(|| downcast_failed(array))?
                .value(row)
                .to_vec(),
        ),
        DataType::Decimal128(_, _) => Value::Decimal(prim::<Decimal128Type>(array, row)?),
        DataType::Date32 => Value::Date32(prim::<Date32Type>(array, row)?),
        DataType::Time32(TimeUnit::Second) => {
            Value::Time64(prim::<Time32SecondType>(array, row)?.into())
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            Value::Time64(prim::<Time32MillisecondType>(array, row)?.into())
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            Value::Time64(prim::<Time64MicrosecondType>(array, row)?)
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            Value::Time64(prim::<Time64NanosecondType>(array, row)?)
        }
        DataType::Timestamp(unit, _) => Value::Timestamp(match unit {
            TimeUnit::Second => prim::<TimestampSecondType>(array, row)?,
            TimeUnit::Millisecond => prim::<TimestampMillisecondType>(array, row)?,
            TimeUnit::Microsecond => prim::<TimestampMicrosecondType>(array, row)?,
            TimeUnit::Nanosecond => prim::<TimestampNanosecondType>(array, row)?,
        }),
        DataType::Duration(unit) => Value::Duration(match unit {
            TimeUnit::Second => prim::<DurationSecondType>(array, row)?,
            TimeUnit::Millisecond => prim::<DurationMillisecondType>(array, row)?,
            TimeUnit::Microsecond => prim::<DurationMicrosecondType>(array, row)?,
            TimeUnit::Nanosecond => prim::<DurationNanosecondType>(array, row)?,
        }),
        DataType::List(_) => {
            let list = array
                .as_list_opt::<i32>()
                .ok_or_else(|| downcast_failed(array))?;
            read_children(list.values().as_ref(), list.value_offsets(), row)?
        }
        DataType::LargeList(_) => {
            let list = array
                .as_list_opt::<i64>()
                .ok_or_else(|| downcast_failed(array))?;
            read_children(list.values().as_ref(), list.value_offsets(), row)?
        }
        DataType::Map(_, _) => {
            let map = array.as_map_opt().ok_or_else(|| downcast_failed(array))?;
            let (start, end) = slot_range(map.value_offsets(), row)?;
            let keys = map.keys();
            let items = map.values();
            let pairs = (start..end)
                .map(|i| {
                    Ok((
                        array_value(keys.as_ref(), i)?,
                        array_value(items.as_ref(), i)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Value::Map(pairs)
        }
        DataType::Struct(fields) => {
            let structs = array
                .as_struct_opt()
                .ok_or_else(|| downcast_failed(array))?;
            let children = fields
                .iter()
                .zip(structs.columns())
                .map(|(field, column)| {
                    Ok((field.name().clone(), array_value(column.as_ref(), row)?))
                })
                .collect::<Result<Vec<_>>>()?;
            Value::Struct(children)
        }
        DataType::Dictionary(key, _) => match key.as_ref() {
            DataType::Int8 => read_dictionary::<Int8Type>(array, row)?,
            DataType::Int16 => read_dictionary::<Int16Type>(array, row)?,
            DataType::Int32 => read_dictionary::<Int32Type>(array, row)?,
            DataType::Int64 => read_dictionary::<Int64Type>(array, row)?,
            DataType::UInt8 => read_dictionary::<UInt8Type>(array, row)?,
            DataType::UInt16 => read_dictionary::<UInt16Type>(array, row)?,
            DataType::UInt32 => read_dictionary::<UInt32Type>(array, row)?,
            DataType::UInt64 => read_dictionary::<UInt64Type>(array, row)?,
            _ => return Err(WireError::UnsupportedType(array.data_type().clone())),
        },
        other => return Err(WireError::UnsupportedType(other.clone())),
    };
    Ok(value)
}

fn slot_range<O: OffsetSizeTrait>(offsets: &[O], row: usize) -> Result<(usize, usize)> {
    match (offsets.get(row), offsets.get(row + 1)) {
        (Some(start), Some(end)) if start <= end => Ok((start.as_usize(), end.as_usize())),
        _ => Err(WireError::Malformed(format!("bad offsets for row {row}"))),
    }
}

fn read_children<O: OffsetSizeTrait>(
    values: &dyn Array,
    offsets: &[O],
    row: usize,
) -> Result<Value> {
    let (start, end) = slot_range(offsets, row)?;
    let items = (start..end)
        .map(|i| array_value(values, i))
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::List(items))
}

fn read_dictionary<K: ArrowDictionaryKeyType>(array: &dyn Array, row: usize) -> Result<Value> {
    let dict = array
        .as_dictionary_opt::<K>()
        .ok_or_else(|| downcast_failed(array))?;
    let key = dict.keys().value(row);
    let index = key
        .to_usize()
        .filter(|i| *i < dict.values().len())
        .ok_or_else(|| WireError::Malformed(format!("dictionary key {key:?} out of range")))?;
    array_value(dict.values().as_ref(), index)
}
