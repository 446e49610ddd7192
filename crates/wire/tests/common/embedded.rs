//! The Arrow batch and schema the embedded-Arrow fixtures hold.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

pub(crate) fn embedded_batch() -> RecordBatch {
    RecordBatch::try_from_iter_with_nullable(vec![
        (
            "a",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as Arc<dyn Array>,
            true,
        ),
        ("b", Arc::new(StringArray::from(vec!["x", "y", "z"])), true),
    ])
    .unwrap()
}

pub(crate) fn embedded_schema() -> Schema {
    Schema::new(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("y", DataType::Utf8, true),
    ])
}
