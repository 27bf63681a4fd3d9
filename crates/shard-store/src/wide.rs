//! One rule for wide columns: the store decides at open which string, binary and list columns
//! can need 64-bit offsets, and every batch it returns has those columns in their large type.
//!
//! A top-level `Utf8`, `Binary` or `List` column whose *offset span* (the sum over the store's
//! batches of last offset minus first offset: value bytes for strings and binary, child
//! elements for lists) can pass `i32::MAX` is reported as `LargeUtf8`, `LargeBinary` or
//! `LargeList` by [`RandomAccess::schema`](arrowfeed_traits::RandomAccess::schema), and every
//! `take`, `slice` and shard iteration casts it so: the schema of a batch never depends on
//! which rows were asked for. The span comes from the manifest (the writer records it); when a
//! manifest or a Hugging Face directory does not record it, the shard files' total size bounds
//! it for uncompressed shards, and a compressed store without spans reports every such column
//! large.
//!
//! A column reported in its 32-bit type can still be asked for more than 32-bit offsets hold,
//! by a `take` that repeats rows; that `take` is an error naming the column, not a change of
//! type.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::ArrowNativeType;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use arrowfeed_traits::{Error, Result};
use std::path::Path;

/// The most a 32-bit offset addresses.
pub(crate) const OFFSET_LIMIT: u64 = i32::MAX as u64;

/// The 64-bit type of a column type with 32-bit top-level offsets.
pub(crate) fn large_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Utf8 => Some(DataType::LargeUtf8),
        DataType::Binary => Some(DataType::LargeBinary),
        DataType::List(f) => Some(DataType::LargeList(f.clone())),
        _ => None,
    }
}

/// Last offset minus first offset of `a`, for the types [`large_type`] widens; 0 for others.
pub(crate) fn offset_span(a: &dyn Array) -> u64 {
    fn span<O: ArrowNativeType>(o: &[O]) -> u64 {
        match (o.first(), o.last()) {
            (Some(a), Some(b)) => (b.as_usize() - a.as_usize()) as u64,
            _ => 0,
        }
    }
    match a.data_type() {
        DataType::Utf8 => span(a.as_string::<i32>().value_offsets()),
        DataType::Binary => span(a.as_binary::<i32>().value_offsets()),
        DataType::List(_) => span(a.as_list::<i32>().value_offsets()),
        _ => 0,
    }
}

/// The schema a store reports: `stored` with each column whose `bound(column)` passes `limit`
/// in its large type.
pub(crate) fn widen(stored: &SchemaRef, bound: impl Fn(usize) -> u64, limit: u64) -> SchemaRef {
    let mut changed = false;
    let fields: Vec<Field> = stored
        .fields()
        .iter()
        .enumerate()
        .map(|(c, f)| match large_type(f.data_type()) {
            Some(large) if bound(c) > limit => {
                changed = true;
                f.as_ref().clone().with_data_type(large)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    if !changed {
        return stored.clone();
    }
    std::sync::Arc::new(Schema::new_with_metadata(fields, stored.metadata().clone()))
}

/// How a store builds output columns: its directory (for errors) and the offset limit
/// ([`OFFSET_LIMIT`] but in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) limit: u64,
}

impl Columns<'_> {
    /// Gathers `positions` (array, row) from `arrays` into a column of `field`'s type.
    ///
    /// At the real limit, arrow's interleave finds an overflow itself (an error, checked as it
    /// builds the offsets), so the common case costs one pass; a lowered limit (tests) is
    /// checked by summing the lengths first.
    pub(crate) fn gather(
        self,
        field: &Field,
        arrays: Vec<&dyn Array>,
        positions: &[(usize, usize)],
    ) -> Result<ArrayRef> {
        let Some(first) = arrays.first() else {
            return Ok(arrow_array::new_empty_array(field.data_type()));
        };
        let gathered = if self.limit < OFFSET_LIMIT && gathered_len(&arrays, positions) > self.limit
        {
            Err(ArrowError::OffsetOverflowError(0))
        } else {
            crate::interleave::interleave(&arrays, positions)
                .unwrap_or_else(|| arrow_select::interleave::interleave(&arrays, positions))
        };
        match gathered {
            Ok(a) => conform_array(a, field),
            Err(ArrowError::OffsetOverflowError(_)) if large_type(first.data_type()).is_some() => {
                if first.data_type() == field.data_type() {
                    return Err(self.too_wide(field, gathered_len(&arrays, positions)));
                }
                let cast = cast_all(&arrays, field.data_type())?;
                let refs: Vec<&dyn Array> = cast.iter().map(|a| a.as_ref()).collect();
                Ok(arrow_select::interleave::interleave(&refs, positions)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gathers `positions` (batch, row) from `sources` into a batch of `schema`, column by
    /// column: column `c` of the output from column `projection[c]` of the sources (column
    /// `c` without a projection).
    pub(crate) fn gather_batch(
        self,
        schema: &SchemaRef,
        sources: &[&RecordBatch],
        projection: Option<&[usize]>,
        positions: &[(usize, usize)],
    ) -> Result<RecordBatch> {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(c, f)| {
                let c = projection.map_or(c, |p| p[c]);
                self.gather(
                    f,
                    sources.iter().map(|b| b.column(c).as_ref()).collect(),
                    positions,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        batch_of(schema, columns, positions.len())
    }

    /// Concatenates whole `arrays` into a column of `field`'s type.
    pub(crate) fn concat(self, field: &Field, arrays: Vec<&dyn Array>) -> Result<ArrayRef> {
        let Some(first) = arrays.first() else {
            return Ok(arrow_array::new_empty_array(field.data_type()));
        };
        let len: u64 = arrays.iter().map(|a| offset_span(*a)).sum();
        if len > self.limit {
            if first.data_type() == field.data_type() {
                return Err(self.too_wide(field, len));
            }
            let cast = cast_all(&arrays, field.data_type())?;
            let refs: Vec<&dyn Array> = cast.iter().map(|a| a.as_ref()).collect();
            return Ok(arrow_select::concat::concat(&refs)?);
        }
        conform_array(arrow_select::concat::concat(&arrays)?, field)
    }

    fn too_wide(self, field: &Field, len: u64) -> Error {
        Error::invalid_argument(format!(
            "{}: column {:?}: the rows asked for hold {len} offset units (bytes, or list elements), \
         more than the {} that its type {} addresses; the store reports it in that type \
         because the column as stored holds less (were rows repeated?): ask for fewer rows per call",
            self.dir.display(),
            field.name(),
            self.limit,
            field.data_type(),
        ))
    }
}

/// `batch` (a piece of a shard, projected like `schema`) with its columns in `schema`'s types.
pub(crate) fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let same = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .all(|(c, f)| c.data_type() == f.data_type());
    if same {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| conform_array(c.clone(), f))
        .collect::<Result<Vec<_>>>()?;
    batch_of(schema, columns, rows)
}

/// A batch of `schema` from columns already in its types.
pub(crate) fn batch_of(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

fn conform_array(a: ArrayRef, field: &Field) -> Result<ArrayRef> {
    if a.data_type() == field.data_type() {
        return Ok(a);
    }
    Ok(arrow_cast::cast(&a, field.data_type())?)
}

fn cast_all(arrays: &[&dyn Array], to: &DataType) -> Result<Vec<ArrayRef>> {
    Ok(arrays
        .iter()
        .map(|a| arrow_cast::cast(*a, to))
        .collect::<std::result::Result<_, _>>()?)
}

/// Total offset span a gather of `positions` from `arrays` produces.
fn gathered_len(arrays: &[&dyn Array], positions: &[(usize, usize)]) -> u64 {
    let Some(first) = arrays.first() else {
        return 0;
    };
    match first.data_type() {
        DataType::Utf8 => positions
            .iter()
            .map(|&(a, r)| arrays[a].as_string::<i32>().value_length(r) as u64)
            .sum(),
        DataType::Binary => positions
            .iter()
            .map(|&(a, r)| arrays[a].as_binary::<i32>().value_length(r) as u64)
            .sum(),
        DataType::List(_) => positions
            .iter()
            .map(|&(a, r)| arrays[a].as_list::<i32>().value_length(r) as u64)
            .sum(),
        _ => 0,
    }
}
