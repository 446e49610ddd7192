//! A dynamically typed value that can live in any Arrow array of the
//! vgi-rpc type mapping, plus conversions between such values and arrays.
//!
//! [`Value`] is the meeting point between typed Rust data and Arrow columns:
//! [`crate::types::ArrowValue`] turns Rust values into [`Value`]s and back,
//! [`values_to_array`] builds an Arrow array of a given [`DataType`] from
//! values, and [`array_value`] reads one slot of an array back.
//!
//! Every read is bounds- and type-checked, so malformed data from a peer
//! surfaces as a [`WireError`] instead of a panic.

#[cfg(doc)]
use arrow_schema::DataType;

use crate::WireError;

mod from_array;
mod to_array;

pub use from_array::{array_value, batch_row_values};
pub use to_array::values_to_array;

/// One value of any Arrow type in the vgi-rpc type mapping.
///
/// Temporal variants carry the raw Arrow storage value; its unit (and for
/// timestamps, the time zone) comes from the [`DataType`] the value is
/// written to or read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A null slot.
    Null,
    /// `bool`.
    Bool(bool),
    /// Any signed integer (`int8` … `int64`).
    Int(i64),
    /// Any unsigned integer (`uint8` … `uint64`).
    UInt(u64),
    /// `float32` or `float64`.
    Float(f64),
    /// `utf8`, `large_utf8`, or a dictionary-encoded string.
    Str(String),
    /// `binary`, `large_binary` or `fixed_size_binary`.
    Bytes(Vec<u8>),
    /// `decimal128`: the unscaled integer; precision and scale come from the type.
    Decimal(i128),
    /// `date32`: days since 1970-01-01.
    Date32(i32),
    /// `time32`/`time64`: time since midnight in the type's unit.
    Time64(i64),
    /// `timestamp`: time since the Unix epoch (UTC) in the type's unit.
    Timestamp(i64),
    /// `duration` in the type's unit.
    Duration(i64),
    /// `list` or `large_list`.
    List(Vec<Value>),
    /// `map`: key/value pairs in wire order.
    Map(Vec<(Value, Value)>),
    /// `struct`: named children in field order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// Short name of the variant, used in error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "signed integer",
            Value::UInt(_) => "unsigned integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Decimal(_) => "decimal",
            Value::Date32(_) => "date32",
            Value::Time64(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::Duration(_) => "duration",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Error describing that this value was found where `expected` was wanted.
    pub fn mismatch(&self, expected: impl Into<String>) -> WireError {
        WireError::TypeMismatch {
            expected: expected.into(),
            found: self.kind().to_owned(),
        }
    }
}
