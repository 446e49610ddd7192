//! Support code for `#[vgirpc::service]` expansions; not a stable API.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
/// Registration of resumable stream states (`#[vgirpc::stream_state]`).
pub use inventory;
pub use vgirpc_wire::describe::{MethodDescription, MethodType};
use vgirpc_wire::types::{ArrowStruct, ArrowValue};
use vgirpc_wire::value::{array_value, values_to_array};

use crate::error::RpcError;
pub use crate::persist::{StateRegistration, save_state};
pub use crate::state::SavedState;
pub use crate::stream::NoHeader;
use crate::stream::Stream;

/// A method's error on its way to becoming an [`RpcError`].
///
/// The expansion calls `(&&MethodError::new(err)).to_rpc_error()`:
/// method lookup tries [`AnyhowIntoRpcError`] (implemented on
/// `&MethodError<anyhow::Error>`) before auto-dereferencing to
/// [`IntoRpcError`] (on `MethodError<E: Into<RpcError>>`), which picks the
/// right conversion for the concrete error type without the two impls
/// overlapping.
pub struct MethodError<E>(std::cell::Cell<Option<E>>);

impl<E> std::fmt::Debug for MethodError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MethodError")
    }
}

impl<E> MethodError<E> {
    /// Wraps the error a method returned.
    pub fn new(err: E) -> Self {
        Self(std::cell::Cell::new(Some(err)))
    }

    fn take(&self) -> E {
        self.0.take().expect("a method error converts once")
    }
}

/// Any error type that converts into [`RpcError`].
pub trait IntoRpcError {
    /// The converted error.
    fn to_rpc_error(&self) -> RpcError;
}

impl<E: Into<RpcError>> IntoRpcError for MethodError<E> {
    fn to_rpc_error(&self) -> RpcError {
        self.take().into()
    }
}

/// `anyhow::Error`, which is not a `std::error::Error` and so misses
/// [`RpcError`]'s blanket conversion.
pub trait AnyhowIntoRpcError {
    /// The converted error.
    fn to_rpc_error(&self) -> RpcError;
}

#[cfg(feature = "anyhow")]
impl AnyhowIntoRpcError for &MethodError<anyhow::Error> {
    fn to_rpc_error(&self) -> RpcError {
        RpcError::from_anyhow(self.take())
    }
}

/// Field of a parameter column.
pub fn param_field<T: ArrowValue>(name: &str) -> Field {
    Field::new(name, T::column_type(), T::nullable())
}

/// Schema of a unary result: one `result` column, or none for `()`.
///
/// Structs travel as IPC-in-binary and are marked nullable, as the
/// reference does, so schemas (and protocol hashes) agree across ports.
pub fn result_schema<T: ArrowValue>() -> SchemaRef {
    let nullable = T::nullable() || is_struct_in_binary::<T>();
    Arc::new(Schema::new(vec![Field::new(
        "result",
        T::column_type(),
        nullable,
    )]))
}

fn is_struct_in_binary<T: ArrowValue>() -> bool {
    embedded_schema::<T>().is_some()
}

/// Schema of the one-row IPC stream a struct parameter travels as, or
/// `None` for a parameter that is a column of its own.
pub fn embedded_schema<T: ArrowValue>() -> Option<SchemaRef> {
    match (T::column_type(), T::arrow_type()) {
        (DataType::Binary, DataType::Struct(fields)) => Some(Arc::new(Schema::new(fields))),
        _ => None,
    }
}

/// [`MethodDescription::embedded_params`] from every parameter's
/// [`embedded_schema`].
pub fn embedded_params(params: Vec<(&str, Option<SchemaRef>)>) -> BTreeMap<String, SchemaRef> {
    params
        .into_iter()
        .filter_map(|(name, schema)| Some((name.to_owned(), schema?)))
        .collect()
}

/// [`MethodDescription::doc`] from a method's `#[doc]` values, which
/// rustdoc would join one per line: the indentation all lines share (the
/// space after `///`) and the blank lines around the text are dropped.
/// `None` when the method has no documentation.
pub fn method_doc(parts: &[&str]) -> Option<String> {
    let text = parts.join("\n");
    // Spaces and tabs only, so stripping them never splits a character.
    let indent_of = |line: &str| line.len() - line.trim_start_matches([' ', '\t']).len();
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(indent_of)
        .min()?;
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line[indent.min(indent_of(line))..].trim_end())
        .collect();
    Some(lines.join("\n").trim_matches('\n').to_owned())
}

/// How a parameter's `#[default(expr)]` is described: the value `make`
/// gives when the server is built, as Arrow renders it (strings quoted,
/// null as `null`), so a reader sees the value a client would send rather
/// than the Rust that makes it; `expr`, the expression as written, for a
/// value Arrow cannot render.
pub fn default_text<T: ArrowValue>(make: fn() -> T, expr: &str) -> String {
    render_value(&make()).unwrap_or_else(|| expr.to_owned())
}

fn render_value<T: ArrowValue>(value: &T) -> Option<String> {
    let data_type = T::arrow_type();
    let array = values_to_array(&data_type, &[value.try_to_value().ok()?]).ok()?;
    let options = FormatOptions::new().with_null("null");
    let text = ArrayFormatter::try_new(array.as_ref(), &options)
        .ok()?
        .value(0)
        .try_to_string()
        .ok()?;
    let is_text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let quoted = match &data_type {
        DataType::Dictionary(_, values) => is_text(values),
        other => is_text(other),
    };
    Some(if quoted && !array.is_null(0) {
        serde_json::Value::String(text).to_string()
    } else {
        text
    })
}

/// [`MethodDescription::param_defaults`] from every defaulted parameter's
/// [`default_text`].
pub fn param_defaults(params: Vec<(&str, String)>) -> BTreeMap<String, String> {
    params
        .into_iter()
        .map(|(name, text)| (name.to_owned(), text))
        .collect()
}

/// Builds a params schema from its fields.
pub fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

/// The empty schema.
pub fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

/// Schema of a stream header struct.
pub fn header_schema<H: ArrowStruct>() -> SchemaRef {
    H::schema()
}

/// Decodes parameter `name` of `method` from the request's one-row batch.
pub fn param<T: ArrowValue>(
    params: &RecordBatch,
    method: &str,
    name: &str,
    default: Option<fn() -> T>,
) -> Result<T, RpcError> {
    let Some(column) = params.column_by_name(name) else {
        return match default {
            Some(make) => Ok(make()),
            None => Err(RpcError::type_error(format!(
                "{method}() missing required parameter '{name}'"
            ))),
        };
    };
    if column.is_null(0) && !T::nullable() {
        return Err(RpcError::type_error(format!(
            "{method}() parameter '{name}' is not optional but got None"
        )));
    }
    let expected = T::column_type();
    if holds_variable_width(column.data_type()) && !holds_variable_width(&expected) {
        // Refused before the value is copied out: it may be a gigabyte.
        return Err(RpcError::type_error(format!(
            "{method}() parameter '{name}': type mismatch: expected {expected}, found {}",
            column.data_type()
        )));
    }
    let value = array_value(column.as_ref(), 0)
        .map_err(|e| RpcError::type_error(format!("{method}() parameter '{name}': {e}")))?;
    T::from_column_value(value)
        .map_err(|e| RpcError::type_error(format!("{method}() parameter '{name}': {e}")))
}

/// Encodes a unary result as its one-row batch.
pub fn result_batch<T: ArrowValue>(value: &T) -> Result<RecordBatch, RpcError> {
    let schema = result_schema::<T>();
    let column = vgirpc_wire::types::to_column(value)
        .map_err(|e| RpcError::type_error(format!("cannot encode result: {e}")))?;
    RecordBatch::try_new(schema, vec![column])
        .map_err(|e| RpcError::type_error(format!("cannot encode result: {e}")))
}

/// The zero-row, zero-column batch of a method without a return value.
pub fn void_batch() -> RecordBatch {
    RecordBatch::new_empty(empty_schema())
}

/// Erases a headerless stream for dispatch.
pub fn erase_stream(stream: Stream<NoHeader>) -> Result<Stream<RecordBatch>, RpcError> {
    Ok(stream.into_erased(None))
}

/// Erases a stream with a typed header, encoding the header as a batch.
pub fn erase_stream_with_header<H: ArrowStruct>(
    stream: Stream<H>,
) -> Result<Stream<RecordBatch>, RpcError> {
    let header = match stream.header() {
        Some(header) => Some(
            header
                .to_record_batch()
                .map_err(|e| RpcError::type_error(format!("cannot encode stream header: {e}")))?,
        ),
        None => None,
    };
    Ok(stream.into_erased(header))
}

/// Whether values of `data_type` can be of any size (strings, binaries,
/// lists, and what nests them), as opposed to a fixed width per value.
fn holds_variable_width(data_type: &DataType) -> bool {
    !(data_type.is_primitive()
        || data_type.is_null()
        || matches!(
            data_type,
            DataType::Boolean | DataType::FixedSizeBinary(_) | DataType::Decimal128(..)
        ))
}
