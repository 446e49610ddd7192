//! Reconciling batches with the schema a stream declared: what a method
//! emits and what a client sends are projected by name and cast, but only
//! where no value is lost.

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_cast::CastOptions;
use arrow_schema::{ArrowError, DataType, SchemaRef};
use vgirpc_wire::pyarrow;

use crate::error::RpcError;

/// Reconciles `batch` with `schema`: identical passes through, a superset
/// or reordering is projected by name, compatible types are cast.
pub(crate) fn conform_to(schema: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch, RpcError> {
    if batch.schema_ref().fields() == schema.fields() {
        if batch.schema_ref().metadata() == schema.metadata() {
            return Ok(batch);
        }
        return RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| RpcError::value_error(e.to_string()));
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch.column_by_name(field.name()).ok_or_else(|| {
            RpcError::value_error(format!(
                "emitted batch is missing column '{}' required by the output schema {schema}",
                field.name()
            ))
        })?;
        let column = if column.data_type() == field.data_type() {
            column.clone()
        } else {
            strict_cast(column, field.data_type()).map_err(|e| {
                RpcError::type_error(format!("cannot cast column '{}': {e}", field.name()))
            })?
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| RpcError::value_error(e.to_string()))
}

/// Casts `column` to `to` only where every value survives, as the
/// reference's (pyarrow's) safe cast does: a string that does not parse, a
/// number out of range or a fraction cast to an integer is an error,
/// where arrow's default cast would put a null in its place.
fn strict_cast(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let cast = arrow_cast::cast_with_options(
        column,
        to,
        &CastOptions {
            safe: false,
            ..CastOptions::default()
        },
    )?;
    if column.data_type().is_floating() && to.is_integer() {
        let as_floats = arrow_cast::cast(column, &DataType::Float64)?;
        let fraction = as_floats
            .as_primitive::<Float64Type>()
            .iter()
            .flatten()
            .find(|value| value.fract() != 0.0);
        if let Some(value) = fraction {
            return Err(ArrowError::CastError(format!(
                "Float value {value} was truncated converting to {to}"
            )));
        }
    }
    Ok(cast)
}

/// Reconciles a client's input batch with the declared input schema: the
/// field set must match exactly; order and compatible types may differ.
pub(crate) fn coerce_input(
    schema: &SchemaRef,
    batch: RecordBatch,
) -> Result<RecordBatch, RpcError> {
    if batch.schema_ref().fields() == schema.fields() {
        return Ok(batch);
    }
    let mismatch = || {
        let got = if batch.num_columns() == 0 {
            // An empty schema displays as nothing at all.
            "a batch with no columns".to_owned()
        } else {
            pyarrow::schema_text(batch.schema_ref())
        };
        // The reference's message, with the schemas spelled as pyarrow
        // prints them (`value: double`).
        RpcError::type_error(format!(
            "Input schema mismatch: expected {}, got {got}",
            pyarrow::schema_text(schema)
        ))
    };
    let mut expected: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut got: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    expected.sort_unstable();
    got.sort_unstable();
    if expected != got {
        return Err(mismatch());
    }
    conform_to(schema, batch.clone()).map_err(|_| mismatch())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn strict_cast_refuses_what_would_lose_a_value() {
        let fraction: ArrayRef = Arc::new(Float64Array::from(vec![Some(3.0), None, Some(3.5)]));
        let err = strict_cast(&fraction, &DataType::Int64).unwrap_err();
        assert!(err.to_string().contains("3.5 was truncated"), "{err}");
        let huge: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX]));
        assert!(strict_cast(&huge, &DataType::Int32).is_err());
        let word: ArrayRef = Arc::new(StringArray::from(vec!["zz"]));
        assert!(strict_cast(&word, &DataType::Float64).is_err());
    }

    #[test]
    fn strict_cast_converts_what_survives() {
        let whole: ArrayRef = Arc::new(Float64Array::from(vec![Some(3.0), None]));
        let cast = strict_cast(&whole, &DataType::Int64).unwrap();
        assert_eq!(
            cast.as_primitive::<arrow_array::types::Int64Type>(),
            &Int64Array::from(vec![Some(3), None])
        );
        let number: ArrayRef = Arc::new(StringArray::from(vec!["3.5"]));
        let cast = strict_cast(&number, &DataType::Float64).unwrap();
        assert_eq!(cast.as_primitive::<Float64Type>().value(0), 3.5);
    }
}
