//! Arrow data nested as bytes: record batches as IPC streams and schemas as
//! serialized schema messages, plus the in-memory IPC stream codec they and
//! `ArrowStruct` share.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};

use super::{ArrowValue, deserialize_schema, serialize_schema};
use crate::value::Value;
use crate::{Result, WireError};

/// Writes a complete IPC stream (schema, `batch`, EOS) declaring `schema`.
///
/// `schema` may differ from `batch.schema()` in nullability only; this lets
/// a struct declare a field non-nullable yet carry a null in it, as the
/// Python reference does for `Annotated[T | None, ArrowType(...)]` fields.
pub fn write_ipc_stream(schema: &Schema, batch: &RecordBatch) -> Result<Vec<u8>> {
    let declared = schema.fields();
    let actual = batch.schema();
    let same_shape = declared.len() == actual.fields().len()
        && declared
            .iter()
            .zip(actual.fields())
            .all(|(d, a)| d.name() == a.name() && same_layout(d.data_type(), a.data_type()));
    if !same_shape {
        return Err(WireError::TypeMismatch {
            expected: format!("batch of schema {schema}"),
            found: format!("batch of schema {actual}"),
        });
    }
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Reads a complete in-memory IPC stream: its declared schema and batches.
///
/// Peers following the Python reference may put nulls in fields declared
/// non-nullable (see [`write_ipc_stream`]), which Arrow's Rust decoder
/// rejects. A batch that fails to decode against the declared schema is
/// therefore decoded again against the same schema with every field made
/// nullable; such a batch's schema differs from the returned declared one
/// only in nullability.
///
/// A missing end-of-stream marker at the very end of `bytes` is tolerated,
/// as pyarrow does.
pub fn read_ipc_stream(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut messages = Messages { bytes, pos: 0 };
    let (header, _) = messages.next()?.ok_or(WireError::Truncated {
        context: "schema message",
    })?;
    let message = parse(header)?;
    let fb_schema = message.header_as_schema().ok_or_else(|| {
        WireError::Malformed(format!(
            "expected a schema message first, got {:?}",
            message.header_type()
        ))
    })?;
    let schema = Arc::new(arrow_ipc::convert::try_fb_to_schema(fb_schema)?);
    let mut relaxed: Option<SchemaRef> = None;
    let mut dictionaries: HashMap<i64, ArrayRef> = HashMap::new();
    let mut batches = Vec::new();
    while let Some((header, body)) = messages.next()? {
        let message = parse(header)?;
        let version = message.version();
        let body = Buffer::from(body);
        match message.header_type() {
            arrow_ipc::MessageHeader::RecordBatch => {
                let fb = message.header_as_record_batch().ok_or_else(|| {
                    WireError::Malformed("record batch message without a header".into())
                })?;
                batches.push(decode_record_batch(
                    &schema,
                    &mut relaxed,
                    fb,
                    &body,
                    &dictionaries,
                    version,
                )?);
            }
            arrow_ipc::MessageHeader::DictionaryBatch => {
                let fb = message.header_as_dictionary_batch().ok_or_else(|| {
                    WireError::Malformed("dictionary message without a header".into())
                })?;
                decode_dictionary(&schema, fb, &body, &mut dictionaries, version)?;
            }
            other => {
                return Err(WireError::Malformed(format!(
                    "unexpected {other:?} message inside an ipc stream"
                )));
            }
        }
    }
    Ok((schema, batches))
}

/// Checks a batch's buffers against the body and the layout `fields` imply.
///
/// arrow-ipc slices body buffers without bounds checks, and arrow-data
/// reinterprets offset and index buffers as typed slices, asserting their
/// length is a whole number of elements; either panics on malformed input.
/// Both conditions, and array lengths arrow multiplies without room for
/// overflow, are verified here first so bad bytes become errors.
/// Longest array accepted in one message. arrow-data multiplies lengths by
/// fixed list sizes (up to 2^31) with an overflow check that panics, so
/// lengths past 2^32 are refused here; no real batch comes near it.
const MAX_ARRAY_LENGTH: i64 = u32::MAX as i64;

fn check_buffers(
    fields: &[&Field],
    batch: &arrow_ipc::RecordBatch<'_>,
    body_len: usize,
) -> Result<()> {
    let mut variadic: VecDeque<i64> = batch
        .variadicBufferCounts()
        .map(|counts| counts.iter().collect())
        .unwrap_or_default();
    let lengths = std::iter::once(batch.length()).chain(
        batch
            .nodes()
            .into_iter()
            .flatten()
            .map(|node| node.length()),
    );
    for length in lengths {
        if !(0..=MAX_ARRAY_LENGTH).contains(&length) {
            return Err(WireError::Malformed(format!(
                "ipc array length {length} is outside 0..={MAX_ARRAY_LENGTH}"
            )));
        }
    }
    let mut widths = Vec::new();
    for field in fields {
        buffer_widths(field.data_type(), &mut widths, &mut variadic)?;
    }
    for (i, buffer) in batch.buffers().into_iter().flatten().enumerate() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(length).ok())
            .filter(|(o, l)| o.checked_add(*l).is_some_and(|end| end <= body_len));
        let Some((_, length)) = range else {
            return Err(WireError::Malformed(format!(
                "ipc buffer at {offset} of {length} bytes exceeds the {body_len}-byte message body"
            )));
        };
        let width = widths.get(i).copied().unwrap_or(1);
        if length % width != 0 {
            return Err(WireError::Malformed(format!(
                "ipc buffer {i} of {length} bytes is not a whole number of {width}-byte elements"
            )));
        }
    }
    Ok(())
}

/// Appends, in IPC order, the element width each buffer of `data_type` must
/// be a multiple of (1 where any length is valid).
fn buffer_widths(
    data_type: &DataType,
    out: &mut Vec<usize>,
    variadic: &mut VecDeque<i64>,
) -> Result<()> {
    match data_type {
        DataType::Null => {}
        DataType::Utf8 | DataType::Binary => out.extend([1, 4, 1]),
        DataType::LargeUtf8 | DataType::LargeBinary => out.extend([1, 8, 1]),
        DataType::Utf8View | DataType::BinaryView => {
            let data_buffers = variadic
                .pop_front()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| WireError::Malformed("missing variadic buffer count".into()))?;
            out.extend([1, 16]);
            out.extend(std::iter::repeat_n(1, data_buffers));
        }
        DataType::List(child) | DataType::Map(child, _) => {
            out.extend([1, 4]);
            buffer_widths(child.data_type(), out, variadic)?;
        }
        DataType::LargeList(child) => {
            out.extend([1, 8]);
            buffer_widths(child.data_type(), out, variadic)?;
        }
        DataType::FixedSizeList(child, _) => {
            out.push(1);
            buffer_widths(child.data_type(), out, variadic)?;
        }
        DataType::Struct(children) => {
            out.push(1);
            for child in children {
                buffer_widths(child.data_type(), out, variadic)?;
            }
        }
        DataType::Dictionary(key, _) => {
            let width = key
                .primitive_width()
                .ok_or_else(|| WireError::UnsupportedType(data_type.clone()))?;
            out.extend([1, width]);
        }
        DataType::Boolean | DataType::FixedSizeBinary(_) => out.extend([1, 1]),
        other if other.is_primitive() => out.extend([1, 1]),
        // Unions, list views and run-end encoding are outside the vgi-rpc
        // type mapping, and their decoders slice buffers unchecked.
        other => return Err(WireError::UnsupportedType(other.clone())),
    }
    Ok(())
}

/// The value type of the dictionary with IPC id `id`, searched depth-first.
fn dictionary_value_field(fields: &Fields, id: i64) -> Option<Field> {
    for field in fields {
        // arrow-rs keeps IPC dictionary ids on fields only through this
        // deprecated accessor, and its decoder still relies on it.
        #[allow(deprecated)]
        let field_id = field.dict_id();
        if let (Some(field_id), DataType::Dictionary(_, value)) = (field_id, field.data_type())
            && field_id == id
        {
            return Some(Field::new("", value.as_ref().clone(), true));
        }
        let nested = match field.data_type() {
            DataType::List(child)
            | DataType::LargeList(child)
            | DataType::FixedSizeList(child, _)
            | DataType::Map(child, _) => Fields::from(vec![child.clone()]),
            DataType::Struct(children) => children.clone(),
            _ => continue,
        };
        if let Some(found) = dictionary_value_field(&nested, id) {
            return Some(found);
        }
    }
    None
}

/// Decodes one record batch message body against `schema`, refusing
/// malformed buffers up front (see [`check_buffers`]).
///
/// A batch that does not decode against `schema` is decoded against its
/// all-nullable variant, built once into `relaxed`, to accept peers that put
/// nulls in fields declared non-nullable (see [`read_ipc_stream`]). Shared
/// with the stream reader of [`crate::ipc`] so both accept the same input.
pub(crate) fn decode_record_batch(
    schema: &SchemaRef,
    relaxed: &mut Option<SchemaRef>,
    batch: arrow_ipc::RecordBatch<'_>,
    body: &Buffer,
    dictionaries: &HashMap<i64, ArrayRef>,
    version: arrow_ipc::MetadataVersion,
) -> Result<RecordBatch> {
    let fields: Vec<&Field> = schema.fields().iter().map(|f| f.as_ref()).collect();
    check_buffers(&fields, &batch, body.len())?;
    let decode = |schema: &SchemaRef| {
        arrow_ipc::reader::read_record_batch(
            body,
            batch,
            schema.clone(),
            dictionaries,
            None,
            &version,
        )
    };
    match decode(schema) {
        Ok(batch) => Ok(batch),
        Err(strict_error) => {
            let relaxed = relaxed.get_or_insert_with(|| relax_schema(schema));
            decode(relaxed).map_err(|_| strict_error.into())
        }
    }
}

/// Decodes one dictionary message body into `dictionaries`, refusing
/// malformed buffers up front (see [`check_buffers`]).
pub(crate) fn decode_dictionary(
    schema: &Schema,
    dictionary: arrow_ipc::DictionaryBatch<'_>,
    body: &Buffer,
    dictionaries: &mut HashMap<i64, ArrayRef>,
    version: arrow_ipc::MetadataVersion,
) -> Result<()> {
    let data = dictionary
        .data()
        .ok_or_else(|| WireError::Malformed("dictionary message without data".into()))?;
    let id = dictionary.id();
    let value_field = dictionary_value_field(schema.fields(), id)
        .ok_or_else(|| WireError::Malformed(format!("dictionary id {id} is not in the schema")))?;
    check_buffers(&[&value_field], &data, body.len())?;
    arrow_ipc::reader::read_dictionary(body, dictionary, schema, dictionaries, &version)?;
    Ok(())
}

fn parse(header: &[u8]) -> Result<arrow_ipc::Message<'_>> {
    arrow_ipc::root_as_message(header)
        .map_err(|e| WireError::Malformed(format!("invalid ipc message: {e}")))
}

/// Iterates the encapsulated messages of an in-memory IPC stream.
struct Messages<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Messages<'a> {
    fn take(&mut self, len: usize, context: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(WireError::Truncated { context })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn word(&mut self, context: &'static str) -> Result<[u8; 4]> {
        let slice = self.take(4, context)?;
        let mut word = [0; 4];
        word.copy_from_slice(slice);
        Ok(word)
    }

    /// Next message as (flatbuffer header, body); `None` at the EOS marker
    /// or at the end of the bytes.
    fn next(&mut self) -> Result<Option<(&'a [u8], &'a [u8])>> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let mut word = self.word("message length")?;
        if word == [0xff; 4] {
            word = self.word("message length")?;
        }
        let len = i32::from_le_bytes(word);
        if len == 0 {
            return Ok(None);
        }
        let len = usize::try_from(len)
            .map_err(|_| WireError::Malformed(format!("negative message length {len}")))?;
        let header = self.take(len, "message header")?;
        let body_len = parse(header)?.bodyLength();
        let body_len = usize::try_from(body_len)
            .map_err(|_| WireError::Malformed(format!("bad message body length {body_len}")))?;
        let body = self.take(body_len, "message body")?;
        Ok(Some((header, body)))
    }
}

fn relax_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| relax_field(f)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `field`, nullable at every level. Cloning keeps the field's dictionary id,
/// which the decoder needs to find dictionaries.
fn relax_field(field: &Field) -> Field {
    field
        .clone()
        .with_nullable(true)
        .with_data_type(relax_type(field.data_type()))
}

fn relax_ref(field: &FieldRef) -> FieldRef {
    Arc::new(relax_field(field))
}

fn relax_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::List(f) => DataType::List(relax_ref(f)),
        DataType::LargeList(f) => DataType::LargeList(relax_ref(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(relax_ref(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(relax_ref).collect()),
        DataType::Map(entries, sorted) => {
            // Map entries and keys can never be null; only values are relaxed.
            let DataType::Struct(kv) = entries.data_type() else {
                return data_type.clone();
            };
            let kv: Fields = kv
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    if i == 0 {
                        Arc::new(f.as_ref().clone().with_data_type(relax_type(f.data_type())))
                    } else {
                        relax_ref(f)
                    }
                })
                .collect();
            let entries = entries
                .as_ref()
                .clone()
                .with_data_type(DataType::Struct(kv));
            DataType::Map(Arc::new(entries), *sorted)
        }
        DataType::Dictionary(key, value) => {
            DataType::Dictionary(key.clone(), Box::new(relax_type(value)))
        }
        other => other.clone(),
    }
}

/// Whether two types have the same physical layout, ignoring nullability.
fn same_layout(a: &DataType, b: &DataType) -> bool {
    let same_field = |x: &FieldRef, y: &FieldRef| {
        x.name() == y.name() && same_layout(x.data_type(), y.data_type())
    };
    match (a, b) {
        (DataType::List(x), DataType::List(y))
        | (DataType::LargeList(x), DataType::LargeList(y))
        | (DataType::Map(x, _), DataType::Map(y, _)) => same_field(x, y),
        (DataType::FixedSizeList(x, n), DataType::FixedSizeList(y, m)) => {
            n == m && same_field(x, y)
        }
        (DataType::Struct(xs), DataType::Struct(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys.iter()).all(|(x, y)| same_field(x, y))
        }
        (DataType::Dictionary(xk, xv), DataType::Dictionary(yk, yv)) => {
            xk == yk && same_layout(xv, yv)
        }
        _ => a == b,
    }
}

fn first_batch(bytes: &[u8]) -> Result<RecordBatch> {
    let (_, batches) = read_ipc_stream(bytes)?;
    batches
        .into_iter()
        .next()
        .ok_or_else(|| WireError::Protocol("no record batch in ipc bytes".into()))
}

/// A batch travels as a complete IPC stream in a `binary` value. Reading
/// takes the stream's first batch, as the Python reference does.
impl ArrowValue for RecordBatch {
    fn arrow_type() -> DataType {
        DataType::Binary
    }
    fn to_value(&self) -> Value {
        self.try_to_value().unwrap_or(Value::Null)
    }
    fn try_to_value(&self) -> Result<Value> {
        write_ipc_stream(&self.schema(), self).map(Value::Bytes)
    }
    fn try_to_column_value(&self) -> Result<Value> {
        self.try_to_value()
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Bytes(bytes) => first_batch(&bytes),
            other => Err(other.mismatch("binary (ipc stream)")),
        }
    }
}

/// A schema travels as pyarrow's `Schema.serialize()` bytes in a `binary`
/// value.
impl ArrowValue for Schema {
    fn arrow_type() -> DataType {
        DataType::Binary
    }
    fn to_value(&self) -> Value {
        Value::Bytes(serialize_schema(self))
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Bytes(bytes) => deserialize_schema(&bytes),
            other => Err(other.mismatch("binary (serialized schema)")),
        }
    }
}

/// Same as [`Schema`].
impl ArrowValue for SchemaRef {
    fn arrow_type() -> DataType {
        DataType::Binary
    }
    fn to_value(&self) -> Value {
        Value::Bytes(serialize_schema(self))
    }
    fn from_value(value: Value) -> Result<Self> {
        Schema::from_value(value).map(Arc::new)
    }
}
