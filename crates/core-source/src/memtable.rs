//! An in-memory table: batches held in memory, readable in order and by random access.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{Error, RandomAccess, Result, check_slice, project_schema};

/// Batches held in memory, as a [`RandomAccess`] dataset (any rows, any number of times) and,
/// through [`MemTable::reader`], as a [`RecordBatchReader`] (every batch in order).
///
/// Cloning is cheap: the batches are shared.
///
/// # Why is the reader a separate value?
/// A type that is both an `Iterator` and a `RandomAccess` makes `table.take(&rows, None)`
/// resolve to `Iterator::take` (by-value receivers are tried first), so the reader is its own
/// small type. It is a `RandomAccess` too, for code that wants both from one value.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use arrowfeed_core_source::MemTable;
/// use arrowfeed_traits::RandomAccess;
///
/// let b = |r: std::ops::Range<i64>| RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from_iter_values(r)) as _)]);
/// let table = MemTable::try_new(b(0..3)?.schema(), vec![b(0..3)?, b(3..5)?])?;
/// assert_eq!(table.num_rows(), 5);
/// let rows = table.take(&[4, 0, 4], None)?;
/// assert_eq!(rows.column(0).as_ref(), &Int64Array::from(vec![4, 0, 4]));
/// assert_eq!(table.partitions(), vec![0..3, 3..5]);
/// assert_eq!(table.reader().count(), 2); // read as a sequence of batches
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemTable {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// Global row where each non-empty batch starts, plus the total at the end.
    starts: Vec<u64>,
    /// Index into `batches` of each entry of `starts` (empty batches are skipped).
    batch_of: Vec<usize>,
}

impl MemTable {
    /// A table of `batches`, each of which must have exactly `schema`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first batch whose schema differs.
    pub fn try_new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let mut starts = Vec::with_capacity(batches.len() + 1);
        let mut batch_of = Vec::with_capacity(batches.len());
        let mut total = 0u64;
        for (i, b) in batches.iter().enumerate() {
            if b.schema().fields() != schema.fields() {
                return Err(Error::invalid_argument(format!(
                    "batch {i} has schema {:?}, the table's is {:?}",
                    b.schema(),
                    schema
                )));
            }
            if b.num_rows() > 0 {
                starts.push(total);
                batch_of.push(i);
                total += b.num_rows() as u64;
            }
        }
        starts.push(total);
        Ok(Self {
            inner: Arc::new(Inner {
                schema,
                batches,
                starts,
                batch_of,
            }),
        })
    }

    /// Reads every batch of `reader` into a table.
    ///
    /// # Errors
    /// The first error the reader returns.
    pub fn from_reader(reader: impl RecordBatchReader) -> Result<Self> {
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        Self::try_new(schema, batches)
    }

    /// The batches, as given.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.inner.batches
    }

    /// A reader of every batch, in order.
    pub fn reader(&self) -> MemTableReader {
        MemTableReader {
            table: self.clone(),
            next: 0,
        }
    }

    /// Position of `row` as (index into `starts`, row within that batch).
    fn locate(&self, row: u64) -> (usize, usize) {
        let s = &self.inner.starts;
        let k = s.partition_point(|&start| start <= row) - 1;
        (k, (row - s[k]) as usize)
    }

    fn project(&self, batch: RecordBatch, projection: Option<&[usize]>) -> Result<RecordBatch> {
        match projection {
            None => Ok(batch),
            Some(p) => Ok(batch.project(p)?),
        }
    }
}

impl RandomAccess for MemTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema.clone()
    }

    fn num_rows(&self) -> u64 {
        *self
            .inner
            .starts
            .last()
            .expect("starts always ends with the total")
    }

    fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
        let schema = project_schema(&self.inner.schema, projection)?;
        let n = self.num_rows();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::index_out_of_range(bad, n));
        }
        if indices.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        let sources: Vec<RecordBatch> = self
            .inner
            .batch_of
            .iter()
            .map(|&i| self.project(self.inner.batches[i].clone(), projection))
            .collect::<Result<_>>()?;
        let positions: Vec<(usize, usize)> = indices.iter().map(|&i| self.locate(i)).collect();
        gather(&schema, &sources, &positions)
    }

    fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
        let range = check_slice(offset, len, self.num_rows())?;
        let schema = project_schema(&self.inner.schema, projection)?;
        if range.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        let (first, _) = self.locate(range.start);
        let (last, _) = self.locate(range.end - 1);
        let mut pieces = Vec::with_capacity(last - first + 1);
        for k in first..=last {
            let start = self.inner.starts[k];
            let b = &self.inner.batches[self.inner.batch_of[k]];
            let lo = range.start.max(start) - start;
            let hi = range.end.min(start + b.num_rows() as u64) - start;
            pieces.push(self.project(b.slice(lo as usize, (hi - lo) as usize), projection)?);
        }
        if pieces.len() == 1 {
            return Ok(pieces.pop().expect("one piece"));
        }
        Ok(arrow_select::concat::concat_batches(&schema, &pieces)?)
    }

    fn partitions(&self) -> Vec<Range<u64>> {
        self.inner.starts.windows(2).map(|w| w[0]..w[1]).collect()
    }
}

/// Gathers `(batch, row)` positions from `sources` into one batch, in order.
pub(crate) fn gather(
    schema: &SchemaRef,
    sources: &[RecordBatch],
    positions: &[(usize, usize)],
) -> Result<RecordBatch> {
    let columns = (0..schema.fields().len())
        .map(|c| {
            let arrays: Vec<&dyn arrow_array::Array> =
                sources.iter().map(|b| b.column(c).as_ref()).collect();
            arrow_select::interleave::interleave(&arrays, positions)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(positions.len())),
    )?)
}

/// Reads a [`MemTable`]'s batches in order; see [`MemTable::reader`].
#[derive(Debug, Clone)]
pub struct MemTableReader {
    table: MemTable,
    next: usize,
}

impl MemTableReader {
    /// The table being read.
    pub fn table(&self) -> &MemTable {
        &self.table
    }
}

impl Iterator for MemTableReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.table.inner.batches.get(self.next)?.clone();
        self.next += 1;
        Some(Ok(b))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.table.inner.batches.len() - self.next;
        (left, Some(left))
    }
}

impl RecordBatchReader for MemTableReader {
    fn schema(&self) -> SchemaRef {
        self.table.inner.schema.clone()
    }
}

impl RandomAccess for MemTableReader {
    fn schema(&self) -> SchemaRef {
        self.table.inner.schema.clone()
    }
    fn num_rows(&self) -> u64 {
        self.table.num_rows()
    }
    fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
        self.table.take(indices, projection)
    }
    fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
        self.table.slice(offset, len, projection)
    }
    fn partitions(&self) -> Vec<Range<u64>> {
        self.table.partitions()
    }
}
