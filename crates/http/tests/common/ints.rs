//! Reading a reply's data batches as integers.

use arrow_array::{Array, Int64Array};

use super::reply::Reply;

impl Reply {
    /// The first column of every data batch, as integers.
    pub(crate) fn ints(&self) -> Vec<i64> {
        self.batches()
            .iter()
            .filter(|b| b.batch.num_rows() > 0)
            .flat_map(|b| {
                let column = b
                    .batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                column.values().to_vec()
            })
            .collect()
    }
}
