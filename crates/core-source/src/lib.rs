//! Sources of Arrow record batches: in-memory tables, Parquet, Arrow IPC file and stream.
//!
//! Part of [arrowfeed](https://crates.io/crates/arrowfeed); depends only on
//! `arrowfeed-traits` among the arrowfeed crates.
//!
//! | item | what it reads |
//! |---|---|
//! | [`open`], [`open_with`], [`open_many`] | any supported file (or many as one), format detected from its bytes |
//! | [`ParquetReader`] | Parquet: projection by name, row-group selection, batch size, every codec |
//! | [`IpcFileReader`], [`IpcStreamReader`] | Arrow IPC file and stream, LZ4/ZSTD-compressed too |
//! | [`MemTable`] | batches in memory, as a `RandomAccess` dataset and a reader |
//! | [`LocalFile`] | a local file as a `ByteSource`, with positioned reads |
//! | [`info`] | what a file holds, without decoding it |
//! | [`ParquetScanPlan`], [`IpcScanPlan`] | scan plans (`arrowfeed_traits::ScanPlan`) for an engine to run |
//!
//! Every reader is an `arrow_array::RecordBatchReader + Send`, so it plugs into anything that
//! takes arrow-rs readers.
//!
//! # Untrusted input
//! Files may be truncated, damaged or crafted. Every such input gives an `Err` naming the file
//! and what is wrong — never a panic, and never an allocation sized by a length read off the
//! disk before that length is checked against the file size. Arrow's own validation stays on.
//!
//! # Example
//! ```
//! # use std::sync::Arc;
//! # use arrow_array::{Int32Array, StringArray, RecordBatch};
//! use arrowfeed_core_source::{open_with, ReadOptions};
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.arrows");
//! # let batch = RecordBatch::try_from_iter([
//! #     ("id", Arc::new(Int32Array::from(vec![1, 2, 3])) as _),
//! #     ("name", Arc::new(StringArray::from(vec!["a", "b", "c"])) as _)])?;
//! # let mut w = arrow_ipc::writer::StreamWriter::try_new(std::fs::File::create(&path)?, &batch.schema())?;
//! # w.write(&batch)?; w.finish()?;
//! // The format comes from the bytes; the extension does not matter.
//! let source = open_with(&path, &ReadOptions::default().columns(["name"]))?;
//! for batch in source {
//!     let batch = batch?;
//!     assert_eq!(batch.schema().field(0).name(), "name");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod detect;
mod flat;
mod input;
mod ipc;
mod ipc_plan;
mod levels;
mod local;
mod memtable;
mod open;
mod page_cache;
mod page_header;
mod pages;
mod parquet;
mod parquet_plan;
mod plan_reader;
mod snappy;
mod stream;
mod varwidth;
mod write;

pub use detect::{Format, detect_format, detect_format_of};
pub use ipc::{
    IpcBatchInfo, IpcFileReader, IpcStreamReader, stream_batch_infos, stream_batch_infos_of,
};
pub use ipc_plan::IpcScanPlan;
pub use local::{LocalFile, MmapFile};
pub use memtable::{MemTable, MemTableReader};
pub use open::{
    Input, ReadOptions, Source, SourceInfo, SourceUnit, info, info_source, open, open_inputs,
    open_many, open_source, open_with,
};
pub use parquet::ParquetReader;
pub use parquet_plan::{DEFAULT_PIECE_BYTES, PART_BYTES, ParquetScanPlan, SPLIT_ROW_GROUPS_FROM};
pub use plan_reader::PlanReader;
pub use write::{BatchWriter, WriteCompression};

/// The fuzz targets' entry points; not part of the API, and not stable.
#[doc(hidden)]
pub mod fuzz;

/// Internals this crate's benchmarks time on their own; not part of the API, and not stable.
#[doc(hidden)]
pub mod bench {
    /// Each snappy-compressed page of a Parquet file: its compressed block and decompressed
    /// length (values only for a v2 page, whose levels are not compressed).
    pub fn snappy_blocks(path: &std::path::Path) -> crate::Result<Vec<(bytes::Bytes, usize)>> {
        crate::pages::snappy_blocks(path)
    }

    /// Appends the decompressed `block` to `out`; false if it is malformed.
    pub fn snappy_decompress(block: &[u8], len: usize, out: &mut Vec<u8>) -> bool {
        crate::snappy::decompress_into(block, len, out).is_ok()
    }

    /// As [`snappy_decompress`] for two blocks decoded together.
    pub fn snappy_decompress_two(
        a: (&[u8], usize, &mut Vec<u8>),
        b: (&[u8], usize, &mut Vec<u8>),
    ) -> bool {
        crate::snappy::decompress_two_into(a, b).is_ok()
    }
}

use arrow_schema::{Schema, SchemaRef};
use arrowfeed_traits::{Error, Result};

/// One step of a reader that ends at the end of its input or at its first error: records
/// `finished` and converts the error for arrow's `RecordBatchReader` interface.
pub(crate) fn end_on_none_or_error(
    finished: &mut bool,
    r: Result<Option<arrow_array::RecordBatch>>,
) -> Option<std::result::Result<arrow_array::RecordBatch, arrow_schema::ArrowError>> {
    match r {
        Ok(Some(b)) => Some(Ok(b)),
        Ok(None) => {
            *finished = true;
            None
        }
        Err(e) => {
            *finished = true;
            Some(Err(e.into_arrow()))
        }
    }
}

/// Indices of the columns `names` in `schema`, in the order given.
pub(crate) fn column_indices(schema: &SchemaRef, names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            schema.index_of(n).map_err(|_| {
                let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::invalid_argument(format!(
                    "no column named {n:?}; the columns are {}",
                    have.join(", ")
                ))
            })
        })
        .collect()
}

/// `schema.project(p)` with an error that names the bad index.
pub(crate) fn project_schema_by_index(schema: &SchemaRef, p: &[usize]) -> Result<Schema> {
    if let Some(bad) = p.iter().find(|&&i| i >= schema.fields().len()) {
        return Err(Error::invalid_argument(format!(
            "projection names column {bad}, but the schema has {} columns",
            schema.fields().len()
        )));
    }
    Ok(schema.project(p)?)
}
