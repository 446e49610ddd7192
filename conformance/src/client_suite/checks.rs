//! Checking helpers: why a test failed, the checks, and readers and
//! builders of batches and values.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{Field, Schema};
use chrono::NaiveDate;
use vgirpc::client::{ClientError, ServerLog};

use crate::types::*;

/// Why a test failed, and whether its connection is still usable.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) message: String,
    pub(super) connection_lost: bool,
}

impl Failure {
    pub(super) fn check(message: String) -> Self {
        Self {
            message,
            connection_lost: false,
        }
    }

    pub(super) fn lost(message: String) -> Self {
        Self {
            message,
            connection_lost: true,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        let mut message = format!("{}", err);
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Self {
            message,
            connection_lost: err.is_connection_error(),
        }
    }
}

pub(super) type Observed = Result<String, Failure>;

macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(Failure::check(format!("check failed: {}", stringify!($cond))));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failure::check(format!($($fmt)+)));
        }
    };
}

pub(super) fn eq<T: PartialEq + Debug>(actual: T, expected: T) -> Result<(), Failure> {
    if actual == expected {
        Ok(())
    } else {
        Err(Failure::check(format!(
            "expected {expected:?}, got {actual:?}"
        )))
    }
}

pub(super) fn approx(actual: f64, expected: f64) -> Result<(), Failure> {
    if (actual - expected).abs() < 1e-6 {
        Ok(())
    } else {
        Err(Failure::check(format!(
            "expected {expected} ± 1e-6, got {actual}"
        )))
    }
}

/// The float the reference suite echoes; a sample value, not π.
#[allow(clippy::approx_constant)]
pub(super) const SAMPLE_FLOAT: f64 = 3.14;

/// The round trip of an echo method: the value must come back unchanged.
pub(super) fn echo<T: PartialEq + Debug>(sent: T, got: Result<T, ClientError>) -> Observed {
    let got = got?;
    eq(&got, &sent)?;
    Ok(format!("{got:?}"))
}

/// The call must fail with a server error; returns `type: message`.
pub(super) fn remote<T: Debug>(
    result: Result<T, ClientError>,
) -> Result<(String, String), Failure> {
    match result {
        Err(ClientError::Remote {
            error_type,
            message,
            ..
        }) => Ok((error_type, message)),
        Err(other) => Err(other.into()),
        Ok(value) => Err(Failure::check(format!(
            "expected a server error, got {value:?}"
        ))),
    }
}

pub(super) fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, Failure> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Failure::check(format!("no column '{name}' in {}", batch.schema())))
}

pub(super) fn int(batch: &RecordBatch, name: &str, row: usize) -> Result<i64, Failure> {
    let column = column(batch, name)?;
    column
        .as_primitive_opt::<Int64Type>()
        .filter(|c| row < c.len() && c.is_valid(row))
        .map(|c| c.value(row))
        .ok_or_else(|| Failure::check(format!("'{name}'[{row}] is not an int64")))
}

pub(super) fn float(batch: &RecordBatch, name: &str, row: usize) -> Result<f64, Failure> {
    let column = column(batch, name)?;
    column
        .as_primitive_opt::<Float64Type>()
        .filter(|c| row < c.len() && c.is_valid(row))
        .map(|c| c.value(row))
        .ok_or_else(|| Failure::check(format!("'{name}'[{row}] is not a float64")))
}

pub(super) fn floats(batch: &RecordBatch, name: &str) -> Result<Vec<f64>, Failure> {
    (0..batch.num_rows())
        .map(|row| float(batch, name, row))
        .collect()
}

pub(super) fn text(batch: &RecordBatch, name: &str, row: usize) -> Result<String, Failure> {
    let column = column(batch, name)?;
    column
        .as_string_opt::<i32>()
        .filter(|c| row < c.len() && c.is_valid(row))
        .map(|c| c.value(row).to_owned())
        .ok_or_else(|| Failure::check(format!("'{name}'[{row}] is not a string")))
}

pub(super) fn names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// `{value: float64}` input, as `AnnotatedBatch.from_pydict` builds it.
pub(super) fn value_batch(values: &[f64]) -> RecordBatch {
    single_column("value", Arc::new(Float64Array::from(values.to_vec())))
}

pub(super) fn single_column(name: &str, array: ArrayRef) -> RecordBatch {
    let schema = Schema::new(vec![Field::new(name, array.data_type().clone(), true)]);
    // One column with a matching type cannot fail to assemble.
    RecordBatch::try_new(Arc::new(schema), vec![array]).expect("a one-column batch")
}

/// Drains a producer stream.
pub(super) fn collect(
    stream: impl Iterator<Item = Result<RecordBatch, ClientError>>,
) -> Result<Vec<RecordBatch>, ClientError> {
    stream.collect()
}

pub(super) fn dec(unscaled: i128) -> Dec {
    vgirpc::Decimal128(unscaled)
}

pub(super) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

pub(super) fn timestamp(
    y: i32,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    us: u32,
) -> chrono::NaiveDateTime {
    date(y, mo, d)
        .and_hms_micro_opt(h, mi, s, us)
        .expect("a valid time")
}

pub(super) fn point(x: f64, y: f64) -> Point {
    Point { x, y }
}

pub(super) fn logs_seen(logs: &[ServerLog]) -> String {
    logs.iter()
        .map(|l| format!("{}:{}", l.level, l.message))
        .collect::<Vec<_>>()
        .join("|")
}
