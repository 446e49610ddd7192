//! Checking one Rust type against a single-column fixture written by
//! pyarrow:
//! - the declared Arrow type equals the one pyarrow wrote;
//! - decoding pyarrow's row yields the expected Rust value;
//! - encoding the Rust value gives a batch equal to pyarrow's, also after a
//!   trip through IPC bytes;
//! - our schema serialization is byte-identical to pyarrow's schema message.

use std::fmt::Debug;
use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_schema::SchemaRef;
use vgirpc_wire::types::{
    ArrowValue, column_field, from_column, serialize_schema, to_column, write_ipc_stream,
};

use super::fixtures::{fixture, schema_message};

/// Reads an IPC stream with arrow-rs's own reader: one schema, one batch.
pub(crate) fn read_strict(bytes: &[u8]) -> (SchemaRef, RecordBatch) {
    let reader = StreamReader::try_new(Cursor::new(bytes), None).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 1);
    (schema, batches.into_iter().next().unwrap())
}

/// A single `value` column of type `T`, compared through IPC as well.
pub(crate) fn check_column<T: ArrowValue + PartialEq + Debug>(stem: &str, expected: T) {
    check_column_with(stem, expected, true);
}

pub(crate) fn check_column_with<T: ArrowValue + PartialEq + Debug>(
    stem: &str,
    expected: T,
    byte_equal_values: bool,
) {
    let bytes = fixture(&format!("col_{stem}.arrows"));
    let (schema, batch) = read_strict(&bytes);
    assert_eq!(batch.num_rows(), 1, "{stem}");
    assert_eq!(schema.fields().len(), 1, "{stem}");

    // Declared type.
    assert_eq!(
        *schema.field(0),
        column_field::<T>("value"),
        "{stem}: field"
    );

    // pyarrow → Rust.
    let decoded: T = from_column(batch.column(0).as_ref(), 0).unwrap();
    assert_eq!(decoded, expected, "{stem}: decoded value");

    // Rust → Arrow → Rust.
    let column = to_column(&expected).unwrap();
    assert_eq!(
        from_column::<T>(column.as_ref(), 0).unwrap(),
        expected,
        "{stem}: round trip"
    );
    let ours = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
    let (our_schema, reread) = read_strict(&write_ipc_stream(&schema, &ours).unwrap());
    assert_eq!(our_schema, schema, "{stem}: schema after ipc");
    assert_eq!(
        from_column::<T>(reread.column(0).as_ref(), 0).unwrap(),
        expected,
        "{stem}"
    );
    if byte_equal_values {
        // Values that embed IPC bytes can differ in layout from pyarrow's
        // while meaning the same; everything else must be equal as arrays.
        assert_eq!(ours, batch, "{stem}: encoded batch");
        assert_eq!(reread, batch, "{stem}: encoded batch after ipc");
    }

    // Schema serialization, byte for byte.
    assert_eq!(
        serialize_schema(&schema),
        schema_message(&bytes),
        "{stem}: schema bytes"
    );
}
