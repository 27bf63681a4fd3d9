//! The epoch plan: everything that decides batch `k` of an epoch for a rank (the order, the
//! share of each rank, padding), shared by the Loader's workers, and the gather of one batch.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use arrowfeed_traits::{Error, RandomAccess, Result};

use crate::loader::Remainder;
use crate::sampler::{EpochOrder, Shuffle};
#[cfg(doc)]
use crate::state::LoaderState;

/// Everything that decides batch `k` of an epoch: shared by the workers.
pub(crate) struct Plan {
    pub(crate) dataset: Arc<dyn RandomAccess>,
    pub(crate) partitions: Vec<std::ops::Range<u64>>,
    /// Batches ahead of the one being gathered whose rows the dataset is told of.
    pub(crate) read_ahead: u64,
    pub(crate) schema: SchemaRef,
    pub(crate) n: u64,
    pub(crate) batch_size: u64,
    pub(crate) shuffle: Shuffle,
    pub(crate) seed: u64,
    pub(crate) rank: u64,
    pub(crate) world_size: u64,
    pub(crate) remainder: Remainder,
    pub(crate) drop_last: bool,
    pub(crate) projection: Option<Vec<usize>>,
    /// Batches of a whole epoch for each rank.
    pub(crate) batches: u64,
    /// [`LoaderState::dataset`].
    pub(crate) fingerprint: u64,
}

/// The part of an epoch's order one run of the ranks shares out: positions `start..n`, rank
/// `r` of `world` taking `start + r, start + r + world, ...`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub(crate) start: u64,
    pub(crate) rows_per_rank: u64,
    pub(crate) batches: u64,
}

impl Plan {
    /// The positions `start..n` of the order shared among `world` ranks under the remainder
    /// policy, in batches.
    pub(crate) fn segment(&self, start: u64, world: u64) -> Segment {
        let left = self.n.saturating_sub(start);
        let rows_per_rank = match self.remainder {
            Remainder::Drop => left / world,
            Remainder::Pad => left.div_ceil(world),
        };
        let batches = if self.drop_last {
            rows_per_rank / self.batch_size
        } else {
            rows_per_rank.div_ceil(self.batch_size)
        };
        Segment {
            start,
            rows_per_rank,
            batches,
        }
    }

    /// The dataset rows of batch `k` of this rank in `seg`, and which are padding.
    pub(crate) fn batch_rows(
        &self,
        order: &EpochOrder,
        seg: Segment,
        k: u64,
    ) -> (Vec<u64>, Vec<bool>) {
        let lo = k * self.batch_size;
        let hi = (lo + self.batch_size).min(seg.rows_per_rank);
        let mut rows = Vec::with_capacity((hi - lo) as usize);
        let mut pad = Vec::with_capacity((hi - lo) as usize);
        for i in lo..hi {
            let pos = seg.start + i * self.world_size + self.rank;
            if pos < self.n {
                rows.push(order.row(pos));
                pad.push(false);
            } else {
                rows.push(order.row(pos % self.n));
                pad.push(true);
            }
        }
        (rows, pad)
    }

    /// Tells the dataset the rows of batch `k` will be needed soon.
    pub(crate) fn hint(&self, order: &EpochOrder, seg: Segment, k: u64) {
        if k < seg.batches {
            self.dataset.will_need(&self.batch_rows(order, seg, k).0);
        }
    }

    pub(crate) fn gather(&self, order: &EpochOrder, seg: Segment, k: u64) -> Result<RecordBatch> {
        let (rows, pad) = self.batch_rows(order, seg, k);
        let batch = self.dataset.take(&rows, self.projection.as_deref())?;
        // The contract of `RandomAccess::take`: the batch has the projected schema's types.
        // A dataset that breaks it is named here rather than by arrow deep in a training loop.
        let want = self.schema.fields().len() - usize::from(self.remainder == Remainder::Pad);
        if batch.num_columns() != want {
            return Err(Error::invalid_argument(format!(
                "the dataset returned {} columns, but its schema projects to {want} (RandomAccess::take must return schema().project(p))",
                batch.num_columns()
            )));
        }
        if let Some((f, c)) = self
            .schema
            .fields()
            .iter()
            .zip(batch.columns())
            .find(|(f, c)| f.data_type() != c.data_type())
        {
            return Err(Error::invalid_argument(format!(
                "the dataset returned column {:?} as {}, but its schema says {} (RandomAccess::take must return schema().project(p))",
                f.name(),
                c.data_type(),
                f.data_type()
            )));
        }
        match self.remainder {
            Remainder::Drop => Ok(batch),
            Remainder::Pad => {
                let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
                cols.push(Arc::new(BooleanArray::from(pad)));
                Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
            }
        }
    }
}
