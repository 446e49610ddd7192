//! The integer parameter most calls under test take.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array};

/// A one-row integer parameter.
pub(crate) fn int(v: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![v]))
}
