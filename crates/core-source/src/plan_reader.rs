//! The reader over a `ByteSource` that `open_source` hands out: a scan plan run in order on
//! the caller's thread (`arrowfeed_traits::InOrder`, the reference semantics of `ScanPlan`),
//! one task's ranges at a time in one batched read.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{ByteSource, Error, InOrder, Result, ScanPlan};
use bytes::Bytes;

/// Reads a task's ranges: all of them, in order.
type ReadRanges = Box<dyn FnMut(Vec<Range<u64>>) -> Result<Vec<Bytes>> + Send>;

/// A [`ScanPlan`] run in order on the calling thread, as a `RecordBatchReader`: each task's
/// ranges are read with one [`ByteSource::read_many`] (which a remote source turns into
/// merged, parallel requests), decoded, and its batches handed out before the next task is
/// read. At most one task's bytes and decoded batches are held at a time.
///
/// The scan engine (`arrowfeed-decode-sched`) runs the same plans with I/O and decoding
/// overlapped on several threads; this is the simple way without one.
pub struct PlanReader {
    runner: InOrder<Box<dyn ScanPlan>, ReadRanges>,
    schema: SchemaRef,
    /// Set by [`PlanReader::exact_batches`]: rows per output batch.
    exact: Option<usize>,
    /// Rows decoded and not yet handed out, when batches are made exact.
    held: Vec<RecordBatch>,
    finished: bool,
}

impl std::fmt::Debug for PlanReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanReader")
            .field("schema", &self.schema)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl PlanReader {
    /// Runs `plan`, reading through `source`.
    pub fn new(plan: Box<dyn ScanPlan>, source: Arc<dyn ByteSource>) -> Self {
        let read: ReadRanges =
            Box::new(move |ranges| futures::executor::block_on(source.read_many(ranges)));
        Self {
            schema: plan.schema(),
            runner: InOrder::new(plan, read),
            exact: None,
            held: Vec::new(),
            finished: false,
        }
    }

    /// Hands out batches of exactly `rows` rows (the last may be short), whatever the plan's
    /// tasks hold: rows of two tasks that meet inside a batch are copied into one, every other
    /// batch is passed on (or sliced) as decoded. At least 1: with 0 the first batch is an
    /// [`Error::InvalidArgument`] naming the setting.
    pub fn exact_batches(mut self, rows: usize) -> Self {
        self.exact = Some(rows);
        self
    }

    /// The next batch; `Ok(None)` at the end.
    ///
    /// # Errors
    /// The first error of the plan, a read or a decoder.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let Some(size) = self.exact else {
            return self.runner.next_batch();
        };
        if size == 0 {
            return Err(Error::invalid_argument(
                "exact_batches must be at least 1 row, got 0",
            ));
        }
        loop {
            let held: usize = self.held.iter().map(RecordBatch::num_rows).sum();
            if held >= size {
                break;
            }
            match self.runner.next_batch()? {
                Some(b) if held == 0 && b.num_rows() == size => return Ok(Some(b)),
                Some(b) => self.held.push(b),
                None if held == 0 => return Ok(None),
                None => break,
            }
        }
        // Take `size` rows (or all that is left) from the front of what is held.
        let mut out = Vec::new();
        let mut want = size;
        while want > 0 && !self.held.is_empty() {
            let b = self.held.remove(0);
            if b.num_rows() <= want {
                want -= b.num_rows();
                out.push(b);
            } else {
                out.push(b.slice(0, want));
                self.held.insert(0, b.slice(want, b.num_rows() - want));
                want = 0;
            }
        }
        if out.len() == 1 {
            return Ok(out.pop());
        }
        Ok(Some(arrow_select::concat::concat_batches(
            &self.schema,
            &out,
        )?))
    }
}

impl Iterator for PlanReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let r = self.next_batch();
        crate::end_on_none_or_error(&mut self.finished, r)
    }
}

impl RecordBatchReader for PlanReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
