//! The inputs the workloads send and the checks their answers pass: a
//! figure counts only for calls answered correctly.

use std::sync::Arc;

use anyhow::{Context as _, Result, bail, ensure};
use arrow_array::{
    Array, ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};

use super::{Expect, FACTOR};

/// Bytes of the values in `batch`'s buffers (what the wire must carry,
/// framing aside).
pub(crate) fn payload_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .buffers()
                .iter()
                .map(|buffer| buffer.len())
                .sum::<usize>()
        })
        .sum()
}

pub(super) fn one_row(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

pub(super) fn int_params(values: &[(&str, i64)]) -> Result<RecordBatch> {
    one_row(
        values
            .iter()
            .map(|(name, v)| (*name, Arc::new(Int64Array::from(vec![*v])) as ArrayRef))
            .collect(),
    )
}

pub(super) fn factor_params() -> Result<RecordBatch> {
    one_row(vec![(
        "factor",
        Arc::new(Float64Array::from(vec![FACTOR])) as ArrayRef,
    )])
}

/// The `{value: float64}` input of `exchange_scale` (nullable, as declared).
pub(crate) fn float_batch(values: Vec<f64>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        true,
    )]));
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(Float64Array::from(values))],
    )?)
}

pub(super) fn column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .with_context(|| format!("no column {name:?} in {:?}", batch.schema()))?
        .as_any()
        .downcast_ref::<T>()
        .with_context(|| format!("column {name:?} has an unexpected type"))
}

pub(super) fn check_unary(method: &str, result: &RecordBatch, expect: &Expect) -> Result<()> {
    let single = |batch: &RecordBatch| -> Result<()> {
        ensure!(
            batch.num_rows() == 1,
            "{method}() returned {} rows",
            batch.num_rows()
        );
        Ok(())
    };
    match expect {
        Expect::Void => ensure!(
            result.num_columns() == 0,
            "{method}() returned columns: {:?}",
            result.schema()
        ),
        Expect::Utf8(want) => {
            single(result)?;
            let got = column::<StringArray>(result, "result")?.value(0);
            ensure!(got == want, "{method}() returned {got:?}, not {want:?}");
        }
        Expect::Float64(want) => {
            single(result)?;
            let got = column::<Float64Array>(result, "result")?.value(0);
            ensure!(got == *want, "{method}() returned {got}, not {want}");
        }
        Expect::Binary(want) => {
            single(result)?;
            let got = column::<BinaryArray>(result, "result")?.value(0);
            ensure!(
                got == want.as_slice(),
                "{method}() returned different bytes"
            );
        }
    }
    Ok(())
}

/// Fails unless `batch` is batch number `index` of a counter stream of
/// `rows`-row batches: an `index` column counting on from `index * rows`,
/// a `value` column ten times it.
pub(crate) fn check_counter_batch(batch: &RecordBatch, index: usize, rows: usize) -> Result<()> {
    ensure!(
        batch.num_rows() == rows,
        "{} rows, not {rows}",
        batch.num_rows()
    );
    let first = (index * rows) as i64;
    let indices = column::<Int64Array>(batch, "index")?;
    let values = column::<Int64Array>(batch, "value")?;
    ensure!(
        indices.null_count() == 0 && values.null_count() == 0,
        "unexpected nulls"
    );
    // The bits in which any row differs, gathered without stopping at the
    // first miss nor comparing, so that the loop vectorizes on any x86-64:
    // the check then costs the client little of what it spends on a large
    // stream, for ours and for Flight alike.
    let differing = indices
        .values()
        .iter()
        .zip(values.values().iter())
        .enumerate()
        .fold(0i64, |differing, (k, (&i, &v))| {
            let want = first.wrapping_add(k as i64);
            differing | (i ^ want) | (v ^ want.wrapping_mul(10))
        });
    if differing != 0 {
        bail!("rows differ from index = {first}.., value = index * 10");
    }
    Ok(())
}

/// The values of an `exchange_scale` input or answer.
pub(crate) fn float_values(batch: &RecordBatch) -> Result<&[f64]> {
    Ok(column::<Float64Array>(batch, "value")?.values())
}

/// Fails unless `output` is `input` times the exchange factor.
pub(crate) fn check_scaled(input: &[f64], output: &RecordBatch) -> Result<()> {
    let got = column::<Float64Array>(output, "value")?;
    ensure!(
        got.len() == input.len() && got.null_count() == 0,
        "{} values back for {} sent",
        got.len(),
        input.len()
    );
    // Counted, not stopped at the first miss: see `check_counter_batch`.
    let wrong = got
        .values()
        .iter()
        .zip(input)
        .filter(|&(&out, &inp)| out != inp * FACTOR)
        .count();
    ensure!(wrong == 0, "values were not scaled by {FACTOR}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let float = one_row(vec![(
            "result",
            Arc::new(Float64Array::from(vec![3.75])) as ArrayRef,
        )])
        .unwrap();
        assert!(check_unary("add_floats", &float, &Expect::Float64(3.75)).is_ok());
        assert!(check_unary("add_floats", &float, &Expect::Float64(4.0)).is_err());
        assert!(check_unary("add_floats", &float, &Expect::Void).is_err());

        let counter = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("index", DataType::Int64, true),
                Field::new("value", DataType::Int64, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![4, 5])),
                Arc::new(Int64Array::from(vec![40, 50])),
            ],
        )
        .unwrap();
        assert!(check_counter_batch(&counter, 2, 2).is_ok());
        assert!(check_counter_batch(&counter, 1, 2).is_err());

        let input = float_batch(vec![1.0, -2.5]).unwrap();
        let doubled = float_batch(vec![2.0, -5.0]).unwrap();
        let values = float_values(&input).unwrap();
        assert!(check_scaled(values, &doubled).is_ok());
        assert!(check_scaled(values, &input).is_err());
    }
}
