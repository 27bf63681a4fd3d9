//! Cutting decoded batches into batches of exactly `batch_size` rows: zero-copy slices inside a
//! decoded batch, one concatenation where an output batch straddles two.

use std::collections::VecDeque;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrowfeed_traits::Result;

#[derive(Debug)]
pub(crate) struct Rebatch {
    schema: SchemaRef,
    batch_size: usize,
    queue: VecDeque<RecordBatch>,
    rows: usize,
}

impl Rebatch {
    pub(crate) fn new(schema: SchemaRef, batch_size: usize) -> Self {
        Self {
            schema,
            batch_size,
            queue: VecDeque::new(),
            rows: 0,
        }
    }

    pub(crate) fn push(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.rows += batch.num_rows();
            self.queue.push_back(batch);
        }
    }

    #[cfg(test)]
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The next batch of exactly `batch_size` rows, or, with `short`, of whatever is left when
    /// fewer remain. `None` when there is not enough.
    pub(crate) fn take(&mut self, short: bool) -> Result<Option<RecordBatch>> {
        if self.rows == 0 || (self.rows < self.batch_size && !short) {
            return Ok(None);
        }
        let want = self.batch_size.min(self.rows);
        let mut parts = Vec::new();
        let mut got = 0;
        while got < want {
            let Some(front) = self.queue.pop_front() else {
                break;
            };
            let need = want - got;
            if front.num_rows() > need {
                parts.push(front.slice(0, need));
                self.queue
                    .push_front(front.slice(need, front.num_rows() - need));
                got += need;
            } else {
                got += front.num_rows();
                parts.push(front);
            }
        }
        self.rows -= got;
        let out = if parts.len() == 1 {
            parts.pop()
        } else {
            Some(arrow_select::concat::concat_batches(&self.schema, &parts)?)
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any split of 0..n into input batches comes out as batches of exactly `bs` rows (the
        /// last may be short) holding 0..n in order.
        #[test]
        fn exact_sizes_in_order(sizes in proptest::collection::vec(0usize..50, 0..20), bs in 1usize..40) {
            let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new("x", arrow_schema::DataType::Int64, false)]));
            let mut rb = Rebatch::new(schema.clone(), bs);
            let mut next = 0i64;
            let mut out = Vec::new();
            for s in &sizes {
                let col = Int64Array::from_iter_values(next..next + *s as i64);
                next += *s as i64;
                rb.push(RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).expect("valid"));
                while let Some(b) = rb.take(false).expect("same schema") {
                    prop_assert_eq!(b.num_rows(), bs);
                    out.push(b);
                }
            }
            if let Some(b) = rb.take(true).expect("same schema") {
                prop_assert!(b.num_rows() < bs);
                out.push(b);
            }
            prop_assert_eq!(rb.rows(), 0);
            let values: Vec<i64> = out.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
            prop_assert_eq!(values, (0..next).collect::<Vec<_>>());
        }
    }
}
