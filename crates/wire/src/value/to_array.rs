//! Building Arrow arrays of a given type from [`Value`]s.

use std::sync::Arc;

use arrow_array::builder::{FixedSizeBinaryBuilder, GenericByteDictionaryBuilder};
use arrow_array::types::GenericStringType;
use arrow_array::types::{
    ArrowDictionaryKeyType, ArrowPrimitiveType, Date32Type, Decimal128Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{
    ArrayRef, BooleanArray, GenericBinaryArray, GenericListArray, GenericStringArray, MapArray,
    OffsetSizeTrait, PrimitiveArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, FieldRef, Fields, TimeUnit};

use super::Value;
use crate::{Result, WireError};

static NULL: Value = Value::Null;

/// Builds an Arrow array of `data_type` holding `values`, one slot each.
///
/// [`Value::Null`] produces a null slot. Integers are range-checked against
/// the target width, fixed-size binaries against their width and decimals
/// against their precision.
pub fn values_to_array(data_type: &DataType, values: &[Value]) -> Result<ArrayRef> {
    let refs: Vec<&Value> = values.iter().collect();
    build(data_type, &refs)
}

fn mismatch(data_type: &DataType, found: &Value) -> WireError {
    found.mismatch(data_type.to_string())
}

fn null_buffer(values: &[&Value]) -> Option<NullBuffer> {
    if values.iter().any(|v| v.is_null()) {
        Some(NullBuffer::from(
            values.iter().map(|v| !v.is_null()).collect::<Vec<bool>>(),
        ))
    } else {
        None
    }
}

fn build(data_type: &DataType, values: &[&Value]) -> Result<ArrayRef> {
    match data_type {
        DataType::Null => {
            if let Some(v) = values.iter().find(|v| !v.is_null()) {
                return Err(mismatch(data_type, v));
            }
            Ok(Arc::new(arrow_array::NullArray::new(values.len())))
        }
        DataType::Boolean => {
            let items = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bool(b) => Ok(Some(*b)),
                    other => Err(mismatch(data_type, other)),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(BooleanArray::from(items)))
        }
        DataType::Int8 => integers::<Int8Type>(data_type, values),
        DataType::Int16 => integers::<Int16Type>(data_type, values),
        DataType::Int32 => integers::<Int32Type>(data_type, values),
        DataType::Int64 => integers::<Int64Type>(data_type, values),
        DataType::UInt8 => integers::<UInt8Type>(data_type, values),
        DataType::UInt16 => integers::<UInt16Type>(data_type, values),
        DataType::UInt32 => integers::<UInt32Type>(data_type, values),
        DataType::UInt64 => integers::<UInt64Type>(data_type, values),
        // Narrowing to f32 rounds, as pyarrow does for Python floats.
        DataType::Float32 => primitive::<Float32Type>(data_type, values, |v| match v {
            Value::Float(f) => Some(*f as f32),
            _ => None,
        }),
        DataType::Float64 => primitive::<Float64Type>(data_type, values, |v| match v {
            Value::Float(f) => Some(*f),
            _ => None,
        }),
        DataType::Utf8 => strings::<i32>(data_type, values),
        DataType::LargeUtf8 => strings::<i64>(data_type, values),
        DataType::Binary => binaries::<i32>(data_type, values),
        DataType::LargeBinary => binaries::<i64>(data_type, values),
        DataType::FixedSizeBinary(width) => fixed_binaries(data_type, *width, values),
        DataType::Decimal128(precision, scale) => {
            let array = primitive_array::<Decimal128Type>(data_type, values, |v| match v {
                Value::Decimal(d) => Some(*d),
                _ => None,
            })?
            .with_precision_and_scale(*precision, *scale)?;
            array.validate_decimal_precision(*precision).map_err(|e| {
                WireError::OutOfRange(format!("decimal does not fit {data_type}: {e}"))
            })?;
            Ok(Arc::new(array))
        }
        DataType::Date32 => primitive::<Date32Type>(data_type, values, |v| match v {
            Value::Date32(d) => Some(*d),
            _ => None,
        }),
        DataType::Time32(unit) => {
            let narrow = |v: &Value| match v {
                Value::Time64(t) => i32::try_from(*t).ok(),
                _ => None,
            };
            match unit {
                TimeUnit::Second => primitive::<Time32SecondType>(data_type, values, narrow),
                TimeUnit::Millisecond => {
                    primitive::<Time32MillisecondType>(data_type, values, narrow)
                }
                _ => Err(WireError::UnsupportedType(data_type.clone())),
            }
        }
        DataType::Time64(unit) => {
            let get = |v: &Value| match v {
                Value::Time64(t) => Some(*t),
                _ => None,
            };
            match unit {
                TimeUnit::Microsecond => primitive::<Time64MicrosecondType>(data_type, values, get),
                TimeUnit::Nanosecond => primitive::<Time64NanosecondType>(data_type, values, get),
                _ => Err(WireError::UnsupportedType(data_type.clone())),
            }
        }
        DataType::Timestamp(unit, tz) => {
            let get = |v: &Value| match v {
                Value::Timestamp(t) => Some(*t),
                _ => None,
            };
            let tz = tz.clone();
            Ok(match unit {
                TimeUnit::Second => Arc::new(
                    primitive_array::<TimestampSecondType>(data_type, values, get)?
                        .with_timezone_opt(tz),
                ),
                TimeUnit::Millisecond => Arc::new(
                    primitive_array::<TimestampMillisecondType>(data_type, values, get)?
                        .with_timezone_opt(tz),
                ),
                TimeUnit::Microsecond => Arc::new(
                    primitive_array::<TimestampMicrosecondType>(data_type, values, get)?
                        .with_timezone_opt(tz),
                ),
                TimeUnit::Nanosecond => Arc::new(
                    primitive_array::<TimestampNanosecondType>(data_type, values, get)?
                        .with_timezone_opt(tz),
                ),
            })
        }
        DataType::Duration(unit) => {
            let get = |v: &Value| match v {
                Value::Duration(d) => Some(*d),
                _ => None,
            };
            match unit {
                TimeUnit::Second => primitive::<DurationSecondType>(data_type, values, get),
                TimeUnit::Millisecond => {
                    primitive::<DurationMillisecondType>(data_type, values, get)
                }
                TimeUnit::Microsecond => {
                    primitive::<DurationMicrosecondType>(data_type, values, get)
                }
                TimeUnit::Nanosecond => primitive::<DurationNanosecondType>(data_type, values, get),
            }
        }
        DataType::List(field) => lists::<i32>(data_type, field, values),
        DataType::LargeList(field) => lists::<i64>(data_type, field, values),
        DataType::Map(field, sorted) => maps(data_type, field, *sorted, values),
        DataType::Struct(fields) => structs(data_type, fields, values),
        DataType::Dictionary(key, value) => match (key.as_ref(), value.as_ref()) {
            (DataType::Int8, DataType::Utf8) => dictionary::<Int8Type>(data_type, values),
            (DataType::Int16, DataType::Utf8) => dictionary::<Int16Type>(data_type, values),
            (DataType::Int32, DataType::Utf8) => dictionary::<Int32Type>(data_type, values),
            (DataType::Int64, DataType::Utf8) => dictionary::<Int64Type>(data_type, values),
            (DataType::UInt8, DataType::Utf8) => dictionary::<UInt8Type>(data_type, values),
            (DataType::UInt16, DataType::Utf8) => dictionary::<UInt16Type>(data_type, values),
            (DataType::UInt32, DataType::Utf8) => dictionary::<UInt32Type>(data_type, values),
            (DataType::UInt64, DataType::Utf8) => dictionary::<UInt64Type>(data_type, values),
            _ => Err(WireError::UnsupportedType(data_type.clone())),
        },
        other => Err(WireError::UnsupportedType(other.clone())),
    }
}

fn primitive_array<T: ArrowPrimitiveType>(
    data_type: &DataType,
    values: &[&Value],
    get: impl Fn(&Value) -> Option<T::Native>,
) -> Result<PrimitiveArray<T>> {
    let items = values
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            other => get(other)
                .map(Some)
                .ok_or_else(|| mismatch(data_type, other)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(items.into_iter().collect::<PrimitiveArray<T>>())
}

fn primitive<T: ArrowPrimitiveType>(
    data_type: &DataType,
    values: &[&Value],
    get: impl Fn(&Value) -> Option<T::Native>,
) -> Result<ArrayRef> {
    Ok(Arc::new(primitive_array::<T>(data_type, values, get)?))
}

fn integers<T>(data_type: &DataType, values: &[&Value]) -> Result<ArrayRef>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i64> + TryFrom<u64>,
{
    let items = values
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Int(i) => T::Native::try_from(*i)
                .map(Some)
                .map_err(|_| WireError::OutOfRange(format!("{i} does not fit in {data_type}"))),
            Value::UInt(u) => T::Native::try_from(*u)
                .map(Some)
                .map_err(|_| WireError::OutOfRange(format!("{u} does not fit in {data_type}"))),
            other => Err(mismatch(data_type, other)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(items.into_iter().collect::<PrimitiveArray<T>>()))
}

fn strings<O: OffsetSizeTrait>(data_type: &DataType, values: &[&Value]) -> Result<ArrayRef> {
    let items = values
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Str(s) => Ok(Some(s.as_str())),
            other => Err(mismatch(data_type, other)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(
        items.into_iter().collect::<GenericStringArray<O>>(),
    ))
}

fn binaries<O: OffsetSizeTrait>(data_type: &DataType, values: &[&Value]) -> Result<ArrayRef> {
    let items = values
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.as_slice())),
            other => Err(mismatch(data_type, other)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(
        items.into_iter().collect::<GenericBinaryArray<O>>(),
    ))
}

fn fixed_binaries(data_type: &DataType, width: i32, values: &[&Value]) -> Result<ArrayRef> {
    let expected =
        usize::try_from(width).map_err(|_| WireError::UnsupportedType(data_type.clone()))?;
    let mut builder = FixedSizeBinaryBuilder::with_capacity(values.len(), width);
    for v in values {
        match v {
            Value::Null => builder.append_null(),
            Value::Bytes(b) if b.len() == expected => builder.append_value(b)?,
            Value::Bytes(b) => {
                return Err(WireError::OutOfRange(format!(
                    "{data_type} needs exactly {expected} bytes, got {}",
                    b.len()
                )));
            }
            other => return Err(mismatch(data_type, other)),
        }
    }
    Ok(Arc::new(builder.finish()))
}

fn dictionary<K: ArrowDictionaryKeyType>(
    data_type: &DataType,
    values: &[&Value],
) -> Result<ArrayRef> {
    let mut builder = GenericByteDictionaryBuilder::<K, GenericStringType<i32>>::new();
    for v in values {
        match v {
            Value::Null => builder.append_null(),
            Value::Str(s) => {
                builder.append(s).map_err(|_| {
                    WireError::OutOfRange(format!("too many distinct values for {data_type}"))
                })?;
            }
            other => return Err(mismatch(data_type, other)),
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// Offsets for child slices of the given lengths, refusing totals the offset
/// width cannot address.
fn offsets<O: OffsetSizeTrait>(
    data_type: &DataType,
    lengths: impl Iterator<Item = usize>,
) -> Result<OffsetBuffer<O>> {
    let mut total = 0usize;
    let mut out = vec![O::usize_as(0)];
    for len in lengths {
        total = total
            .checked_add(len)
            .ok_or_else(|| WireError::OutOfRange(format!("too many children for {data_type}")))?;
        out.push(
            O::from_usize(total).ok_or_else(|| {
                WireError::OutOfRange(format!("too many children for {data_type}"))
            })?,
        );
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(out)))
}

fn lists<O: OffsetSizeTrait>(
    data_type: &DataType,
    field: &FieldRef,
    values: &[&Value],
) -> Result<ArrayRef> {
    let mut children: Vec<&Value> = Vec::new();
    let mut lengths = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Value::Null => lengths.push(0),
            Value::List(items) => {
                lengths.push(items.len());
                children.extend(items.iter());
            }
            other => return Err(mismatch(data_type, other)),
        }
    }
    let offsets = offsets::<O>(data_type, lengths.into_iter())?;
    let child = build(field.data_type(), &children)?;
    let array = GenericListArray::<O>::try_new(field.clone(), offsets, child, null_buffer(values))?;
    Ok(Arc::new(array))
}

fn maps(
    data_type: &DataType,
    field: &FieldRef,
    sorted: bool,
    values: &[&Value],
) -> Result<ArrayRef> {
    let DataType::Struct(entry_fields) = field.data_type() else {
        return Err(WireError::UnsupportedType(data_type.clone()));
    };
    if entry_fields.len() != 2 {
        return Err(WireError::UnsupportedType(data_type.clone()));
    }
    let mut keys: Vec<&Value> = Vec::new();
    let mut items: Vec<&Value> = Vec::new();
    let mut lengths = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Value::Null => lengths.push(0),
            Value::Map(pairs) => {
                lengths.push(pairs.len());
                for (k, item) in pairs {
                    if k.is_null() {
                        return Err(WireError::UnexpectedNull(format!("map key of {data_type}")));
                    }
                    keys.push(k);
                    items.push(item);
                }
            }
            other => return Err(mismatch(data_type, other)),
        }
    }
    let offsets = offsets::<i32>(data_type, lengths.into_iter())?;
    let key_array = build(entry_fields[0].data_type(), &keys)?;
    let item_array = build(entry_fields[1].data_type(), &items)?;
    let entries = StructArray::try_new(entry_fields.clone(), vec![key_array, item_array], None)?;
    let array = MapArray::try_new(field.clone(), offsets, entries, null_buffer(values), sorted)?;
    Ok(Arc::new(array))
}

fn structs(data_type: &DataType, fields: &Fields, values: &[&Value]) -> Result<ArrayRef> {
    let mut rows: Vec<Option<&Vec<(String, Value)>>> = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Value::Null => rows.push(None),
            Value::Struct(children) => rows.push(Some(children)),
            other => return Err(mismatch(data_type, other)),
        }
    }
    let mut columns = Vec::with_capacity(fields.len());
    for field in fields {
        let mut column: Vec<&Value> = Vec::with_capacity(rows.len());
        for row in &rows {
            match row {
                None => column.push(&NULL),
                Some(children) => match children.iter().find(|(name, _)| name == field.name()) {
                    Some((_, v)) => column.push(v),
                    None if field.is_nullable() => column.push(&NULL),
                    None => return Err(WireError::MissingField(field.name().clone())),
                },
            }
        }
        columns.push(build(field.data_type(), &column)?);
    }
    let nulls = null_buffer(values);
    let array = if fields.is_empty() {
        StructArray::try_new_with_length(fields.clone(), columns, nulls, values.len())?
    } else {
        StructArray::try_new(fields.clone(), columns, nulls)?
    };
    Ok(Arc::new(array))
}
