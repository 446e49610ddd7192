//! Scalars, strings, `Option` and the std containers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields};

use super::{ArrowValue, list_of};
use crate::value::Value;
use crate::{Result, WireError};

impl ArrowValue for bool {
    fn arrow_type() -> DataType {
        DataType::Boolean
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(other.mismatch("bool")),
        }
    }
}

/// Integers accept either integer variant as long as the number fits, so a
/// `u64` column can be read into an `i64` field holding a small value and
/// vice versa, like Python's single `int`.
macro_rules! integer {
    ($($ty:ident => $dt:ident, $variant:ident;)*) => {$(
        impl ArrowValue for $ty {
            fn arrow_type() -> DataType {
                DataType::$dt
            }
            fn to_value(&self) -> Value {
                Value::$variant((*self).into())
            }
            fn from_value(value: Value) -> Result<Self> {
                match value {
                    Value::Int(i) => <$ty>::try_from(i).map_err(|_| {
                        WireError::OutOfRange(format!("{i} does not fit in {}", stringify!($ty)))
                    }),
                    Value::UInt(u) => <$ty>::try_from(u).map_err(|_| {
                        WireError::OutOfRange(format!("{u} does not fit in {}", stringify!($ty)))
                    }),
                    other => Err(other.mismatch(stringify!($ty))),
                }
            }
            integer!(@list $ty);
        }
    )*};
    (@list u8) => {
        // `Vec<u8>` is a byte string, as Python's `bytes` is.
        fn list_type() -> DataType {
            DataType::Binary
        }
        fn list_to_value(items: &[Self]) -> Value {
            Value::Bytes(items.to_vec())
        }
        fn list_try_to_value(items: &[Self]) -> Result<Value> {
            Ok(Self::list_to_value(items))
        }
        fn list_from_value(value: Value) -> Result<Vec<Self>> {
            match value {
                Value::Bytes(bytes) => Ok(bytes),
                other => Err(other.mismatch("binary")),
            }
        }
    };
    (@list $other:ident) => {};
}

integer! {
    i8 => Int8, Int;
    i16 => Int16, Int;
    i32 => Int32, Int;
    i64 => Int64, Int;
    u8 => UInt8, UInt;
    u16 => UInt16, UInt;
    u32 => UInt32, UInt;
    u64 => UInt64, UInt;
}

impl ArrowValue for f64 {
    fn arrow_type() -> DataType {
        DataType::Float64
    }
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Float(f) => Ok(f),
            other => Err(other.mismatch("f64")),
        }
    }
}

impl ArrowValue for f32 {
    fn arrow_type() -> DataType {
        DataType::Float32
    }
    fn to_value(&self) -> Value {
        Value::Float((*self).into())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            // Values read from a float32 column round-trip exactly; wider
            // values are rounded, as pyarrow does.
            Value::Float(f) => Ok(f as f32),
            other => Err(other.mismatch("f32")),
        }
    }
}

impl ArrowValue for String {
    fn arrow_type() -> DataType {
        DataType::Utf8
    }
    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Str(s) => Ok(s),
            other => Err(other.mismatch("utf8")),
        }
    }
}

impl<T: ArrowValue> ArrowValue for Option<T> {
    fn arrow_type() -> DataType {
        T::arrow_type()
    }
    fn nullable() -> bool {
        true
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_value)
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
    fn column_type() -> DataType {
        T::column_type()
    }
    fn to_column_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_column_value)
    }
    fn from_column_value(value: Value) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            other => T::from_column_value(other).map(Some),
        }
    }
    fn try_to_value(&self) -> Result<Value> {
        self.as_ref().map_or(Ok(Value::Null), T::try_to_value)
    }
    fn try_to_column_value(&self) -> Result<Value> {
        self.as_ref()
            .map_or(Ok(Value::Null), T::try_to_column_value)
    }
}

impl<T: ArrowValue> ArrowValue for Vec<T> {
    fn arrow_type() -> DataType {
        T::list_type()
    }
    fn to_value(&self) -> Value {
        T::list_to_value(self)
    }
    fn from_value(value: Value) -> Result<Self> {
        T::list_from_value(value)
    }
    fn try_to_value(&self) -> Result<Value> {
        T::list_try_to_value(self)
    }
}

fn list_items<T: ArrowValue>(value: Value) -> Result<impl Iterator<Item = Result<T>>> {
    match value {
        Value::List(items) => Ok(items.into_iter().map(T::from_value)),
        other => Err(other.mismatch(list_of(T::arrow_type()).to_string())),
    }
}

/// Sets travel as lists, like Python's `frozenset`; the order on the wire is
/// the set's iteration order.
impl<T: ArrowValue + Ord> ArrowValue for BTreeSet<T> {
    fn arrow_type() -> DataType {
        list_of(T::arrow_type())
    }
    fn to_value(&self) -> Value {
        Value::List(self.iter().map(T::to_value).collect())
    }
    fn from_value(value: Value) -> Result<Self> {
        list_items(value)?.collect()
    }
    fn try_to_value(&self) -> Result<Value> {
        Ok(Value::List(
            self.iter().map(T::try_to_value).collect::<Result<_>>()?,
        ))
    }
}

impl<T: ArrowValue + Eq + Hash, S: BuildHasher + Default> ArrowValue for HashSet<T, S> {
    fn arrow_type() -> DataType {
        list_of(T::arrow_type())
    }
    fn to_value(&self) -> Value {
        Value::List(self.iter().map(T::to_value).collect())
    }
    fn from_value(value: Value) -> Result<Self> {
        list_items(value)?.collect()
    }
    fn try_to_value(&self) -> Result<Value> {
        Ok(Value::List(
            self.iter().map(T::try_to_value).collect::<Result<_>>()?,
        ))
    }
}

/// pyarrow's `map_(K, V)`: a non-nullable `entries` struct of a non-nullable
/// `key` and an always-nullable `value`, keys not sorted.
pub(super) fn map_type(key: DataType, value: DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

fn map_pairs<K: ArrowValue, V: ArrowValue>(
    value: Value,
) -> Result<impl Iterator<Item = Result<(K, V)>>> {
    match value {
        Value::Map(pairs) => Ok(pairs
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))),
        other => Err(other.mismatch(map_type(K::arrow_type(), V::arrow_type()).to_string())),
    }
}

fn try_pairs<'a, K: ArrowValue + 'a, V: ArrowValue + 'a>(
    pairs: impl Iterator<Item = (&'a K, &'a V)>,
) -> Result<Value> {
    Ok(Value::Map(
        pairs
            .map(|(k, v)| Ok((k.try_to_value()?, v.try_to_value()?)))
            .collect::<Result<_>>()?,
    ))
}

impl<K: ArrowValue + Ord, V: ArrowValue> ArrowValue for BTreeMap<K, V> {
    fn arrow_type() -> DataType {
        map_type(K::arrow_type(), V::arrow_type())
    }
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(k, v)| (k.to_value(), v.to_value()))
                .collect(),
        )
    }
    fn from_value(value: Value) -> Result<Self> {
        map_pairs(value)?.collect()
    }
    fn try_to_value(&self) -> Result<Value> {
        try_pairs(self.iter())
    }
}

impl<K: ArrowValue + Eq + Hash, V: ArrowValue, S: BuildHasher + Default> ArrowValue
    for HashMap<K, V, S>
{
    fn arrow_type() -> DataType {
        map_type(K::arrow_type(), V::arrow_type())
    }
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(k, v)| (k.to_value(), v.to_value()))
                .collect(),
        )
    }
    fn from_value(value: Value) -> Result<Self> {
        map_pairs(value)?.collect()
    }
    fn try_to_value(&self) -> Result<Value> {
        try_pairs(self.iter())
    }
}
