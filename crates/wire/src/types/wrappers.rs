//! Newtypes selecting Arrow types that have no natural Rust counterpart.

use std::fmt;
use std::ops::{Deref, DerefMut};

use arrow_schema::DataType;

use super::ArrowValue;
use crate::value::Value;
use crate::{Result, WireError};

/// A string carried as `large_utf8` (64-bit offsets).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeString(pub String);

/// Bytes carried as `large_binary` (64-bit offsets).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeBinary(pub Vec<u8>);

/// A string carried dictionary-encoded as `dictionary<int16, utf8>`, the
/// encoding Python uses for enums and for explicitly dictionary-typed fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DictString(pub String);

/// Exactly `N` bytes, carried as `fixed_size_binary(N)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FixedBinary<const N: usize>(pub [u8; N]);

impl<const N: usize> Default for FixedBinary<N> {
    fn default() -> Self {
        Self([0; N])
    }
}

/// A `decimal128(P, S)` value: the unscaled integer, worth
/// `unscaled × 10^-S`.
///
/// `Display` renders the scaled number, e.g. `Decimal128::<20, 4>(123456789)`
/// shows as `12345.6789`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal128<const P: u8, const S: i8>(pub i128);

macro_rules! string_like {
    ($($name:ident($inner:ty);)*) => {$(
        impl Deref for $name {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }
        impl DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.0
            }
        }
        impl From<$inner> for $name {
            fn from(inner: $inner) -> Self {
                Self(inner)
            }
        }
        impl From<$name> for $inner {
            fn from(outer: $name) -> Self {
                outer.0
            }
        }
    )*};
}

string_like! {
    LargeString(String);
    LargeBinary(Vec<u8>);
    DictString(String);
}

impl From<&str> for LargeString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<&str> for DictString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<&[u8]> for LargeBinary {
    fn from(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl<const N: usize> Deref for FixedBinary<N> {
    type Target = [u8; N];
    fn deref(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> DerefMut for FixedBinary<N> {
    fn deref_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> From<[u8; N]> for FixedBinary<N> {
    fn from(bytes: [u8; N]) -> Self {
        Self(bytes)
    }
}

impl<const N: usize> TryFrom<&[u8]> for FixedBinary<N> {
    type Error = WireError;
    fn try_from(bytes: &[u8]) -> Result<Self> {
        <[u8; N]>::try_from(bytes).map(Self).map_err(|_| {
            WireError::OutOfRange(format!(
                "fixed_size_binary({N}) needs exactly {N} bytes, got {}",
                bytes.len()
            ))
        })
    }
}

impl<const P: u8, const S: i8> From<i128> for Decimal128<P, S> {
    fn from(unscaled: i128) -> Self {
        Self(unscaled)
    }
}

impl<const P: u8, const S: i8> fmt::Display for Decimal128<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = S.unsigned_abs() as usize;
        let digits = self.0.unsigned_abs().to_string();
        let sign = if self.0 < 0 { "-" } else { "" };
        if S <= 0 {
            // A negative scale means trailing zeros: 12 at scale -2 is 1200.
            return if self.0 == 0 {
                f.write_str("0")
            } else {
                write!(f, "{sign}{digits}{}", "0".repeat(scale))
            };
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

impl ArrowValue for LargeString {
    fn arrow_type() -> DataType {
        DataType::LargeUtf8
    }
    fn to_value(&self) -> Value {
        Value::Str(self.0.clone())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Str(s) => Ok(Self(s)),
            other => Err(other.mismatch("large_utf8")),
        }
    }
}

impl ArrowValue for DictString {
    fn arrow_type() -> DataType {
        DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
    }
    fn to_value(&self) -> Value {
        Value::Str(self.0.clone())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Str(s) => Ok(Self(s)),
            other => Err(other.mismatch("dictionary<int16, utf8>")),
        }
    }
}

impl ArrowValue for LargeBinary {
    fn arrow_type() -> DataType {
        DataType::LargeBinary
    }
    fn to_value(&self) -> Value {
        Value::Bytes(self.0.clone())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Bytes(b) => Ok(Self(b)),
            other => Err(other.mismatch("large_binary")),
        }
    }
}

impl<const N: usize> ArrowValue for FixedBinary<N> {
    fn arrow_type() -> DataType {
        // Arrow widths are i32; a wider array type cannot exist on the wire.
        DataType::FixedSizeBinary(i32::try_from(N).unwrap_or(i32::MAX))
    }
    fn to_value(&self) -> Value {
        Value::Bytes(self.0.to_vec())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Bytes(b) => Self::try_from(b.as_slice()),
            other => Err(other.mismatch(format!("fixed_size_binary({N})"))),
        }
    }
}

impl<const P: u8, const S: i8> ArrowValue for Decimal128<P, S> {
    fn arrow_type() -> DataType {
        DataType::Decimal128(P, S)
    }
    fn to_value(&self) -> Value {
        Value::Decimal(self.0)
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Decimal(d) => {
                let fits = u32::from(P) <= 38
                    && 10u128
                        .checked_pow(u32::from(P))
                        .is_none_or(|limit| d.unsigned_abs() < limit);
                if fits {
                    Ok(Self(d))
                } else {
                    Err(WireError::OutOfRange(format!(
                        "{d} has more than {P} digits for decimal128({P}, {S})"
                    )))
                }
            }
            other => Err(other.mismatch(format!("decimal128({P}, {S})"))),
        }
    }
}
