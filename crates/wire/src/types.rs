//! The Rust ↔ Arrow type mapping (WIRE_PROTOCOL §4).
//!
//! [`ArrowValue`] says which Arrow type a Rust type travels as and converts
//! values through the dynamic [`Value`]. The mapping matches what the Python
//! reference (pyarrow) produces, so Rust and Python peers agree on schemas:
//!
//! | Rust | Arrow |
//! |------|-------|
//! | `bool` | `bool` |
//! | `i8` … `i64`, `u8` … `u64` | `int8` … `int64`, `uint8` … `uint64` |
//! | `f32`, `f64` | `float32`, `float64` |
//! | `String` | `utf8` |
//! | `Vec<u8>` | `binary` |
//! | `Vec<T>`, `BTreeSet<T>`, `HashSet<T>` | `list<item: T>` (item nullable) |
//! | `BTreeMap<K, V>`, `HashMap<K, V>` | `map<K, V>` (pyarrow layout) |
//! | `Option<T>` | `T`, nullable |
//! | [`LargeString`], [`LargeBinary`] | `large_utf8`, `large_binary` |
//! | [`FixedBinary<N>`] | `fixed_size_binary(N)` |
//! | [`DictString`] | `dictionary<int16, utf8>` |
//! | [`Decimal128<P, S>`] | `decimal128(P, S)` |
//! | `chrono::NaiveDate` | `date32` |
//! | `chrono::NaiveTime` | `time64[us]` |
//! | `chrono::NaiveDateTime` | `timestamp[us]` |
//! | `chrono::DateTime<Utc>` | `timestamp[us, tz=UTC]` |
//! | `chrono::TimeDelta` | `duration[us]` |
//! | `RecordBatch` | `binary` holding an IPC stream |
//! | `Schema`, `SchemaRef` | `binary` holding a serialized schema |
//! | `#[derive(ArrowStruct)]` structs | `struct` nested, `binary` (IPC stream) as a column |
//! | `#[derive(ArrowEnum)]` enums | `dictionary<int16, utf8>` holding the variant name |

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::value::{Value, array_value, batch_row_values, values_to_array};
use crate::{Result, WireError};

pub(crate) mod embedded;
mod primitive;
mod schema_ipc;
mod temporal;
mod wrappers;

pub use embedded::{read_ipc_stream, write_ipc_stream};
pub use schema_ipc::{deserialize_schema, serialize_schema};
pub use wrappers::{Decimal128, DictString, FixedBinary, LargeBinary, LargeString};

/// A Rust type with a fixed Arrow representation.
///
/// Implemented for the primitive, container and chrono types listed in the
/// [module documentation](self), and by `#[derive(ArrowStruct)]` /
/// `#[derive(ArrowEnum)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no Arrow type: it cannot be a vgi-rpc parameter, result or field",
    label = "not an Arrow value",
    note = "supported: bool, i8..i64, u8..u64, f32, f64, String, Vec<u8>, Vec<T>, Option<T>, \
            BTreeMap/HashMap, BTreeSet/HashSet, chrono dates and times, RecordBatch, and the \
            wrappers in vgirpc::wire::types",
    note = "for a struct of your own, add `#[derive(vgirpc::ArrowStruct)]`; for an enum of unit \
            variants, `#[derive(vgirpc::ArrowEnum)]`"
)]
pub trait ArrowValue: Sized {
    /// Arrow type when nested (struct field, list element, map key/value) and
    /// for plain columns.
    fn arrow_type() -> DataType;

    /// Whether null is a legal value (true only for `Option<T>`).
    fn nullable() -> bool {
        false
    }

    /// Converts to the dynamic form of [`arrow_type`](Self::arrow_type).
    ///
    /// Conversion cannot fail for any type of this crate except those that
    /// embed IPC bytes ([`RecordBatch`]); if encoding those fails the result
    /// is [`Value::Null`], which then fails when written to a non-nullable
    /// slot. [`to_column`] reports the underlying error instead.
    fn to_value(&self) -> Value;

    /// Converts back from the dynamic form of [`arrow_type`](Self::arrow_type).
    fn from_value(value: Value) -> Result<Self>;

    /// Type used for a top-level parameter / result column.
    ///
    /// Structs derived with `ArrowStruct` override this to
    /// [`DataType::Binary`] holding an IPC stream (WIRE_PROTOCOL §4 note);
    /// everything else uses [`arrow_type`](Self::arrow_type).
    fn column_type() -> DataType {
        Self::arrow_type()
    }

    /// Converts to the dynamic form of [`column_type`](Self::column_type).
    fn to_column_value(&self) -> Value {
        self.to_value()
    }

    /// Converts back from the dynamic form of [`column_type`](Self::column_type).
    fn from_column_value(value: Value) -> Result<Self> {
        Self::from_value(value)
    }

    /// Fallible [`to_value`](Self::to_value): reports IPC encoding errors
    /// instead of producing [`Value::Null`].
    #[doc(hidden)]
    fn try_to_value(&self) -> Result<Value> {
        Ok(self.to_value())
    }

    /// Fallible [`to_column_value`](Self::to_column_value).
    #[doc(hidden)]
    fn try_to_column_value(&self) -> Result<Value> {
        Ok(self.to_column_value())
    }

    // The list hooks let `Vec<u8>` be `binary` while every other `Vec<T>` is
    // `list<T>`, without specialization: `Vec<T>` asks its element type.

    /// Arrow type of `Vec<Self>`.
    #[doc(hidden)]
    fn list_type() -> DataType {
        list_of(Self::arrow_type())
    }

    /// Dynamic form of `Vec<Self>`.
    #[doc(hidden)]
    fn list_to_value(items: &[Self]) -> Value {
        Value::List(items.iter().map(Self::to_value).collect())
    }

    /// Fallible dynamic form of `Vec<Self>`.
    #[doc(hidden)]
    fn list_try_to_value(items: &[Self]) -> Result<Value> {
        Ok(Value::List(
            items
                .iter()
                .map(Self::try_to_value)
                .collect::<Result<_>>()?,
        ))
    }

    /// `Vec<Self>` from its dynamic form.
    #[doc(hidden)]
    fn list_from_value(value: Value) -> Result<Vec<Self>> {
        match value {
            Value::List(items) => items.into_iter().map(Self::from_value).collect(),
            other => Err(other.mismatch(Self::list_type().to_string())),
        }
    }
}

/// A struct carried as a one-row record batch (`#[derive(ArrowStruct)]`).
///
/// As a parameter or result column the struct is a `binary` value holding a
/// complete IPC stream of that batch, like Python's
/// `ArrowSerializableDataclass.serialize_to_bytes()`. Nested inside another
/// struct, list or map it is an Arrow `struct`.
pub trait ArrowStruct: ArrowValue {
    /// Schema of the one-row batch: one field per struct field, in
    /// declaration order.
    fn schema() -> SchemaRef {
        match Self::arrow_type() {
            DataType::Struct(fields) => Arc::new(Schema::new(fields)),
            _ => Arc::new(Schema::empty()),
        }
    }

    /// Encodes the value as a one-row batch of [`schema`](Self::schema).
    ///
    /// A field declared non-nullable that holds a null (possible with
    /// `#[arrow(nullable = false)]` on an `Option`, mirroring the Python
    /// reference) is marked nullable in the returned batch's schema, because
    /// Arrow refuses nulls in non-nullable columns.
    fn to_record_batch(&self) -> Result<RecordBatch> {
        Self::rows_to_record_batch(std::slice::from_ref(self))
    }

    /// Encodes `rows` as one batch of [`schema`](Self::schema), a row per
    /// value: columns named by the struct's fields, not by position. Stream
    /// states emit typed rows this way (`OutputCollector::emit_rows`).
    ///
    /// Each value goes through the dynamic [`Value`]; for the largest
    /// batches, building the Arrow arrays directly avoids that step.
    fn rows_to_record_batch(rows: &[Self]) -> Result<RecordBatch> {
        let schema = Self::schema();
        let rows = rows
            .iter()
            .map(ArrowValue::try_to_value)
            .collect::<Result<Vec<_>>>()?;
        let count = rows.len();
        let columns = struct_columns(&schema, rows)?;
        relaxed_batch(&schema, columns, count)
    }

    /// Decodes every row of `batch` (an exchange's input, a producer's
    /// output on the client), matching columns to fields by name.
    fn rows_from_record_batch(batch: &RecordBatch) -> Result<Vec<Self>> {
        (0..batch.num_rows())
            .map(|row| Self::from_record_batch(batch, row))
            .collect()
    }

    /// Decodes row `row` of `batch`, matching columns to fields by name.
    ///
    /// A missing column is an error unless the field is nullable.
    fn from_record_batch(batch: &RecordBatch, row: usize) -> Result<Self> {
        Self::from_value(batch_row_values(batch, row)?)
    }

    /// Complete IPC stream (schema, one-row batch, EOS) of this value.
    fn to_ipc_bytes(&self) -> Result<Vec<u8>> {
        let schema = Self::schema();
        let batch = self.to_record_batch()?;
        write_ipc_stream(&schema, &batch)
    }

    /// Decodes an IPC stream produced by [`to_ipc_bytes`](Self::to_ipc_bytes)
    /// or by the Python reference.
    ///
    /// The first batch must have exactly one row (a batch without columns is
    /// accepted as an empty struct, as the reference does).
    fn from_ipc_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, batches) = read_ipc_stream(bytes)?;
        let batch = batches
            .into_iter()
            .next()
            .ok_or_else(|| WireError::Protocol("no record batch in ipc bytes".into()))?;
        if batch.num_columns() == 0 {
            return Self::from_value(Value::Struct(Vec::new()));
        }
        if batch.num_rows() != 1 {
            return Err(WireError::Protocol(format!(
                "expected a single-row batch, got {} rows",
                batch.num_rows()
            )));
        }
        Self::from_record_batch(&batch, 0)
    }
}

/// `list<item: element>` with pyarrow's always-nullable `item` field.
pub fn list_of(element: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", element, true)))
}

/// Field for a parameter or result column of type `T`.
pub fn column_field<T: ArrowValue>(name: &str) -> Field {
    Field::new(name, T::column_type(), T::nullable())
}

/// One-row array of `T::column_type()` holding `value`.
pub fn to_column<T: ArrowValue>(value: &T) -> Result<ArrayRef> {
    values_to_array(&T::column_type(), &[value.try_to_column_value()?])
}

/// Reads row `row` of a column of `T::column_type()`.
pub fn from_column<T: ArrowValue>(array: &dyn Array, row: usize) -> Result<T> {
    T::from_column_value(array_value(array, row)?)
}

/// Splits rows of [`Value::Struct`] into one array per schema field.
fn struct_columns(schema: &Schema, rows: Vec<Value>) -> Result<Vec<ArrayRef>> {
    let mut columns: Vec<Vec<Value>> = schema
        .fields()
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for row in rows {
        let Value::Struct(mut children) = row else {
            return Err(row.mismatch("struct"));
        };
        for (field, column) in schema.fields().iter().zip(&mut columns) {
            let value = match children.iter().position(|(name, _)| name == field.name()) {
                Some(i) => children.swap_remove(i).1,
                None if field.is_nullable() => Value::Null,
                None => return Err(WireError::MissingField(field.name().clone())),
            };
            column.push(value);
        }
    }
    schema
        .fields()
        .iter()
        .zip(columns)
        .map(|(field, values)| values_to_array(field.data_type(), &values))
        .collect()
}

/// A batch of `schema` whose non-nullable fields are relaxed where the column
/// nevertheless holds nulls (see [`ArrowStruct::to_record_batch`]).
fn relaxed_batch(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let needs_relaxing = schema
        .fields()
        .iter()
        .zip(&columns)
        .any(|(field, column)| !field.is_nullable() && column.null_count() > 0);
    let schema = if needs_relaxing {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(field, column)| {
                let nullable = field.is_nullable() || column.null_count() > 0;
                field.as_ref().clone().with_nullable(nullable)
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
    } else {
        schema.clone()
    };
    // An explicit row count keeps a struct without fields a batch of `rows`.
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema, columns, &options,
    )?)
}

/// Support for code generated by `#[derive(ArrowStruct)]` and
/// `#[derive(ArrowEnum)]`; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use std::sync::Arc;

    pub use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

    use super::ArrowValue;
    use crate::value::Value;
    use crate::{Result, WireError};

    /// Children of a [`Value::Struct`] being taken apart field by field.
    #[derive(Debug)]
    pub struct StructValue {
        type_name: &'static str,
        children: Vec<(String, Value)>,
    }

    impl StructValue {
        /// Accepts only [`Value::Struct`].
        pub fn new(value: Value, type_name: &'static str) -> Result<Self> {
            match value {
                Value::Struct(children) => Ok(Self {
                    type_name,
                    children,
                }),
                other => Err(other.mismatch(format!("struct {type_name}"))),
            }
        }

        /// Removes and converts the child named `name`; a missing child reads
        /// as null, so it is only accepted for nullable types.
        pub fn take<T: ArrowValue>(&mut self, name: &str) -> Result<T> {
            match self.children.iter().position(|(n, _)| n == name) {
                Some(i) => {
                    let (_, value) = self.children.swap_remove(i);
                    if value.is_null() && !T::nullable() {
                        return Err(WireError::UnexpectedNull(format!(
                            "{}.{name}",
                            self.type_name
                        )));
                    }
                    T::from_value(value)
                }
                None if T::nullable() => T::from_value(Value::Null),
                None => Err(WireError::MissingField(format!(
                    "{}.{name}",
                    self.type_name
                ))),
            }
        }
    }

    /// The Arrow type of every `#[derive(ArrowEnum)]` enum.
    pub fn enum_type() -> DataType {
        DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
    }

    /// Extracts the variant name of an enum value.
    pub fn enum_name(value: Value, enum_name: &'static str) -> Result<String> {
        match value {
            Value::Str(s) => Ok(s),
            Value::Null => Err(WireError::UnexpectedNull(enum_name.to_owned())),
            other => Err(other.mismatch(format!("enum {enum_name} (variant name)"))),
        }
    }

    /// Error for a variant name the enum does not have.
    pub fn unknown_variant(enum_name: &'static str, name: String) -> WireError {
        WireError::UnknownVariant { enum_name, name }
    }

    /// Column value of a struct: its IPC bytes.
    pub fn struct_column_value<T: super::ArrowStruct>(value: &T) -> Result<Value> {
        value.to_ipc_bytes().map(Value::Bytes)
    }

    /// Struct from its column value (IPC bytes).
    pub fn struct_from_column_value<T: super::ArrowStruct>(
        value: Value,
        type_name: &'static str,
    ) -> Result<T> {
        match value {
            Value::Bytes(bytes) => T::from_ipc_bytes(&bytes),
            Value::Null => Err(WireError::UnexpectedNull(type_name.to_owned())),
            other => Err(other.mismatch(format!("binary (ipc stream of {type_name})"))),
        }
    }
}
