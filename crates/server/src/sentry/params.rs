//! A call's parameters as Sentry sees them: read back from the request,
//! filtered to what Sentry accepts, and the hashed ids tagged on every call.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use sentry_core::protocol::Value;
use sha2::{Digest, Sha256};

use crate::observe::CallRecord;

/// Longest tag value Sentry keeps, in characters.
const TAG_VALUE_MAX_CHARS: usize = 200;

/// A stable 12-character hex prefix of SHA-256, for tagging opaque,
/// high-cardinality ids. Bytes hash as their lowercase hex text, so an id
/// held as bytes and the same id held as hex get the same tag.
pub fn short_hash<'a>(value: impl Into<Hashable<'a>>) -> String {
    short_hash_of_length(value, 12)
}

/// [`short_hash`] with a prefix of `length` hex characters (at most 64).
pub fn short_hash_of_length<'a>(value: impl Into<Hashable<'a>>, length: usize) -> String {
    let digest = match value.into() {
        Hashable::Text(text) => Sha256::digest(text.as_bytes()),
        Hashable::Bytes(bytes) => Sha256::digest(hex(bytes).as_bytes()),
    };
    let mut out = hex(&digest);
    out.truncate(length);
    out
}

/// What [`short_hash`] takes: text, or bytes standing for their hex form.
#[derive(Debug, Clone, Copy)]
pub enum Hashable<'a> {
    /// Hashed as its UTF-8 bytes.
    Text(&'a str),
    /// Hashed as its lowercase hex text.
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Hashable<'a> {
    fn from(text: &'a str) -> Self {
        Hashable::Text(text)
    }
}

impl<'a> From<&'a String> for Hashable<'a> {
    fn from(text: &'a String) -> Self {
        Hashable::Text(text)
    }
}

impl<'a> From<&'a [u8]> for Hashable<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Hashable::Bytes(bytes)
    }
}

impl<'a> From<&'a Vec<u8>> for Hashable<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        Hashable::Bytes(bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One parameter of a call, as read back from its request.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A string.
    Text(String),
    /// A binary value.
    Bytes(Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A list.
    List(Vec<ParamValue>),
    /// A struct's fields.
    Struct(Vec<(String, ParamValue)>),
    /// Null, or a type recorded nowhere (maps, dates...).
    Other,
}

/// A call's parameters, in declaration order.
pub type Params = Vec<(String, ParamValue)>;

pub(super) fn default_redactor(params: Params) -> Params {
    const CREDENTIALS: [&str; 5] = ["password", "token", "secret", "key", "authorization"];
    params
        .into_iter()
        .filter(|(key, _)| {
            let key = key.to_lowercase();
            !CREDENTIALS.iter().any(|word| key.contains(word))
        })
        .collect()
}

pub(super) fn primitive_json(value: &ParamValue) -> Option<Value> {
    match value {
        ParamValue::Text(text) => Some(Value::from(text.as_str())),
        ParamValue::Bool(b) => Some(Value::from(*b)),
        ParamValue::Int(i) => Some(Value::from(*i)),
        ParamValue::Float(x) => Some(Value::from(*x)),
        _ => None,
    }
}

/// A non-empty list whose items are all of one primitive type.
pub(super) fn homogeneous(items: &[ParamValue]) -> Option<Value> {
    let first = items.first()?;
    let same = items
        .iter()
        .all(|item| std::mem::discriminant(item) == std::mem::discriminant(first));
    if !same {
        return None;
    }
    items
        .iter()
        .map(primitive_json)
        .collect::<Option<Vec<_>>>()
        .map(Value::from)
}

/// A primitive as a tag value: Python's `str()` of it, at most 200 characters.
pub(super) fn tag_text(value: &ParamValue) -> Option<String> {
    let text = match value {
        ParamValue::Text(text) => text.clone(),
        ParamValue::Bool(true) => "True".to_owned(),
        ParamValue::Bool(false) => "False".to_owned(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(x) => format!("{x:?}"),
        _ => return None,
    };
    Some(text.chars().take(TAG_VALUE_MAX_CHARS).collect())
}

/// The first string or bytes value named `name`: a parameter, a field of a
/// struct parameter, or a field of that struct's `bind_call`.
pub(super) fn well_known(params: &Params, name: &str) -> Option<String> {
    let hash = |value: &ParamValue| match value {
        ParamValue::Text(text) => Some(short_hash(text)),
        ParamValue::Bytes(bytes) => Some(short_hash(bytes)),
        _ => None,
    };
    let field = |fields: &[(String, ParamValue)], wanted: &str| {
        fields
            .iter()
            .find(|(n, _)| n == wanted)
            .map(|(_, v)| v.clone())
    };
    if let Some(found) = field(params, name).as_ref().and_then(hash) {
        return Some(found);
    }
    params.iter().find_map(|(_, value)| {
        let ParamValue::Struct(fields) = value else {
            return None;
        };
        field(fields, name)
            .as_ref()
            .and_then(hash)
            .or_else(|| match field(fields, "bind_call")? {
                ParamValue::Struct(inner) => field(&inner, name).as_ref().and_then(hash),
                _ => None,
            })
    })
}

/// The parameters of a record's request.
pub(super) fn decode_params(record: &CallRecord) -> Params {
    record.params.as_ref().map(row_params).unwrap_or_default()
}

fn row_params(batch: &RecordBatch) -> Params {
    if batch.num_rows() == 0 {
        return Vec::new();
    }
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| (field.name().clone(), value_at(column, 0)))
        .collect()
}

fn value_at(column: &ArrayRef, row: usize) -> ParamValue {
    if column.is_null(row) {
        return ParamValue::Other;
    }
    match column.data_type() {
        DataType::Utf8 => ParamValue::Text(column.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => ParamValue::Text(column.as_string::<i64>().value(row).to_owned()),
        DataType::Binary => ParamValue::Bytes(column.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => ParamValue::Bytes(column.as_binary::<i64>().value(row).to_vec()),
        DataType::Boolean => ParamValue::Bool(column.as_boolean().value(row)),
        DataType::Int8 => ParamValue::Int(column.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => ParamValue::Int(column.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => ParamValue::Int(column.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => ParamValue::Int(column.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => ParamValue::Int(column.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => ParamValue::Int(column.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => ParamValue::Int(column.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => i64::try_from(column.as_primitive::<UInt64Type>().value(row))
            .map_or(ParamValue::Other, ParamValue::Int),
        DataType::Float32 => {
            ParamValue::Float(column.as_primitive::<Float32Type>().value(row).into())
        }
        DataType::Float64 => ParamValue::Float(column.as_primitive::<Float64Type>().value(row)),
        DataType::List(_) => {
            let items = column.as_list::<i32>().value(row);
            ParamValue::List((0..items.len()).map(|i| value_at(&items, i)).collect())
        }
        DataType::Struct(fields) => {
            let array = column.as_struct();
            ParamValue::Struct(
                fields
                    .iter()
                    .zip(array.columns())
                    .map(|(field, child)| (field.name().clone(), value_at(child, row)))
                    .collect(),
            )
        }
        _ => ParamValue::Other,
    }
}
