//! `RandomAccess`: a dataset with a known row count that can gather arbitrary rows.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::{Error, Result};

/// A dataset of known length that can return arbitrary rows as one [`RecordBatch`].
///
/// Implemented by shard stores and in-memory tables; consumed by the Loader, which builds
/// shuffled training batches from it without knowing how rows are stored.
///
/// # Contract
/// - [`take`](Self::take) returns exactly `indices.len()` rows, row *j* being row
///   `indices[j]` of the dataset: in the order given, duplicates allowed, an empty list giving an
///   empty batch. Any index `>= num_rows()` is an [`Error::IndexOutOfRange`] and no partial
///   result is returned.
/// - [`slice`](Self::slice) returns rows `offset..offset + len`; a range that ends past
///   `num_rows()` is an [`Error::IndexOutOfRange`].
/// - With `projection: Some(p)`, the output has the columns `p` (indices into
///   [`schema`](Self::schema), in that order), and its schema is `schema().project(p)`; an
///   index outside the schema is an [`Error::InvalidArgument`]. With `None`, every column.
///   The schema never depends on which rows were asked for.
/// - **Wide columns.** A request whose string, binary or list column would need more than
///   `i32::MAX` bytes (or list elements) in a column the schema gives 32-bit offsets is an
///   error, never a batch of another type. A dataset that can hold that much in a column
///   says so up front instead: the shard store reports such a column in its large type
///   (`LargeUtf8`, `LargeBinary`, `LargeList`) in [`schema`](Self::schema), decided when it
///   is opened, and returns it so in every batch; a table in memory keeps the types it was
///   given.
/// - The output is one contiguous batch (each column one array), owned or sharing memory with
///   the storage; it stays valid as long as the caller holds it.
/// - [`partitions`](Self::partitions) are contiguous, non-empty, ascending ranges that cover
///   `0..num_rows()` exactly (none when the dataset is empty). Reads within one partition are
///   cheaper than reads across partitions; samplers use this for locality.
/// - Implementations are `Send + Sync`; several threads may call `take` at once.
pub trait RandomAccess: Send + Sync {
    /// The schema of every batch returned without projection.
    fn schema(&self) -> SchemaRef;

    /// The number of rows.
    fn num_rows(&self) -> u64;

    /// Gathers `indices`, in order, into one batch.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for an index past the end, [`Error::InvalidArgument`] for a bad
    /// projection, or an error from the storage.
    fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch>;

    /// Returns rows `offset..offset + len` as one batch.
    ///
    /// # Errors
    /// As [`take`](Self::take).
    fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch>;

    /// The dataset's natural partitions (shards, files, row groups). The default is a single
    /// partition covering every row.
    #[allow(
        clippy::single_range_in_vec_init,
        reason = "one partition, the range of all rows"
    )]
    fn partitions(&self) -> Vec<Range<u64>> {
        match self.num_rows() {
            0 => Vec::new(),
            n => vec![0..n],
        }
    }

    /// A hint that `rows` will be read soon, roughly in this order. A dataset whose rows live
    /// in remote storage starts fetching them; one in memory or on a local disk may ignore it
    /// (the default does). It never fails and never blocks for long: problems surface when the
    /// rows are read.
    fn will_need(&self, rows: &[u64]) {
        let _ = rows;
    }
}

impl<T: RandomAccess + ?Sized> RandomAccess for Arc<T> {
    fn schema(&self) -> SchemaRef {
        (**self).schema()
    }
    fn num_rows(&self) -> u64 {
        (**self).num_rows()
    }
    fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
        (**self).take(indices, projection)
    }
    fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
        (**self).slice(offset, len, projection)
    }
    fn will_need(&self, rows: &[u64]) {
        (**self).will_need(rows)
    }
    fn partitions(&self) -> Vec<Range<u64>> {
        (**self).partitions()
    }
}

impl<T: RandomAccess + ?Sized> RandomAccess for Box<T> {
    fn schema(&self) -> SchemaRef {
        (**self).schema()
    }
    fn num_rows(&self) -> u64 {
        (**self).num_rows()
    }
    fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
        (**self).take(indices, projection)
    }
    fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
        (**self).slice(offset, len, projection)
    }
    fn will_need(&self, rows: &[u64]) {
        (**self).will_need(rows)
    }
    fn partitions(&self) -> Vec<Range<u64>> {
        (**self).partitions()
    }
}

/// The schema of a projection of `schema`, or an [`Error::InvalidArgument`] naming the bad
/// column index. A helper for `RandomAccess` implementations.
pub fn project_schema(schema: &SchemaRef, projection: Option<&[usize]>) -> Result<SchemaRef> {
    match projection {
        None => Ok(schema.clone()),
        Some(p) => {
            if let Some(bad) = p.iter().find(|&&i| i >= schema.fields().len()) {
                return Err(Error::invalid_argument(format!(
                    "projection names column {bad}, but the schema has {} columns",
                    schema.fields().len()
                )));
            }
            Ok(Arc::new(schema.project(p).map_err(Error::from)?))
        }
    }
}

/// Checks that `offset..offset + len` lies within `num_rows`, without overflow. A helper for
/// `RandomAccess` implementations.
pub fn check_slice(offset: u64, len: u64, num_rows: u64) -> Result<Range<u64>> {
    match offset.checked_add(len) {
        Some(end) if end <= num_rows => Ok(offset..end),
        Some(end) => Err(Error::index_out_of_range(end - 1, num_rows)),
        None => Err(Error::index_out_of_range(u64::MAX, num_rows)),
    }
}
