//! arrowfeed keeps Arrow data flowing to whoever consumes it: a training loop that wants
//! batches every few milliseconds, or a query engine that wants to stream, spill and replay.
//!
//! This facade re-exports the arrowfeed crates as modules, each behind a default-on feature,
//! and offers the entry points most programs start from. Depend on the individual crates
//! instead when you want a smaller build.
//!
//! | module | crate | feature | what it holds |
//! |---|---|---|---|
//! | [`traits`] | `arrowfeed-traits` | always | errors, `RandomAccess`, `ByteSource`, scan plans, memory accounting |
//! | [`source`] | `arrowfeed-core-source` | `core-source` | Parquet, Arrow IPC, in-memory tables, format detection |
//! | [`prefetch`] | `arrowfeed-prefetch` | `prefetch` | read-ahead on dedicated threads, bounded by batches and bytes |
//! | [`spill`] | `arrowfeed-spill` | `spill` | replayable memory-then-disk spill with live readers |
//! | [`shard_store`] | `arrowfeed-shard-store` | `shard-store` | sharded, memory-mapped IPC datasets with random access |
//! | [`decode_sched`] | `arrowfeed-decode-sched` | `decode-sched` | the scan engine: prioritised, coalesced, budgeted I/O and parallel decode |
//!
//! # Example
//! ```
//! # #[cfg(feature = "core-source")] {
//! # use std::sync::Arc;
//! # use arrow_array::{Int32Array, RecordBatch};
//! use arrowfeed::prelude::*;
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.arrow");
//! # let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1, 2, 3])) as _)])?;
//! // Write a file, then open it by its bytes, whatever its extension.
//! let mut w = BatchWriter::create(&path, Format::ArrowFile, batch.schema(), Default::default())?;
//! w.write(&batch)?;
//! w.finish()?;
//! let rows: usize = arrowfeed::open(&path)?.map(|b| b.map(|b| b.num_rows())).sum::<Result<_, _>>()?;
//! assert_eq!(rows, 3);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use arrowfeed_traits as traits;
pub use arrowfeed_traits::{Error, Result};

#[cfg(feature = "core-source")]
pub use arrowfeed_core_source as source;

#[cfg(feature = "prefetch")]
pub use arrowfeed_prefetch as prefetch;

#[cfg(feature = "spill")]
pub use arrowfeed_spill as spill;

#[cfg(feature = "shard-store")]
pub use arrowfeed_shard_store as shard_store;

#[cfg(feature = "decode-sched")]
pub use arrowfeed_decode_sched as decode_sched;

#[cfg(feature = "core-source")]
pub use arrowfeed_core_source::{
    ReadOptions, Source, SourceInfo, info, open, open_many, open_with,
};

/// A [`Loader`](arrowfeed_prefetch::Loader) over the shard store (or Hugging Face
/// `save_to_disk` directory) at `dir`: the main job in one call.
///
/// ```no_run
/// let loader = arrowfeed::loader("data/train")?.batch_size(256).seed(42).workers(2).build()?;
/// for batch in loader.epoch(0)? {
///     let batch = batch?; // train on it
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`ShardStore::open`](arrowfeed_shard_store::ShardStore::open).
#[cfg(all(feature = "prefetch", feature = "shard-store"))]
pub fn loader(dir: impl AsRef<std::path::Path>) -> Result<arrowfeed_prefetch::LoaderBuilder> {
    let store = arrowfeed_shard_store::ShardStore::open(dir)?;
    Ok(arrowfeed_prefetch::Loader::builder(std::sync::Arc::new(
        store,
    )))
}

/// A scan of the Parquet or Arrow IPC file at `path` on the engine ([`decode_sched::Scan`]):
/// only `options.columns` are read (Parquet: only their column chunks' bytes), only
/// `options.row_groups` for Parquet, and the output has batches of exactly
/// `options.batch_size` rows (default 8,192). Tune the returned [`decode_sched::Scan`]
/// (parallelism, budget) before starting it.
///
/// The file is read through a memory map ([`source::MmapFile`]): zero-copy, and the fastest
/// way to scan a local file, with the hazard of memory maps (another process truncating the
/// file while it is mapped raises `SIGBUS`).
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_array::{Int32Array, RecordBatch};
/// use arrowfeed::prelude::*;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.parquet");
/// # let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from_iter_values(0..1000)) as _)])?;
/// # let mut w = BatchWriter::create(&path, Format::Parquet, batch.schema(), Default::default())?;
/// # w.write(&batch)?;
/// # w.finish()?;
/// let options = ReadOptions::default().with_batch_size(300);
/// let reader = arrowfeed::scan(&path, &options)?.decode_parallelism(2).reader()?;
/// let sizes: Vec<usize> = reader.map(|b| b.map(|b| b.num_rows())).collect::<Result<_, _>>()?;
/// assert_eq!(sizes, [300, 300, 300, 100]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for a file that is neither Parquet nor an Arrow IPC file (IPC
/// streams have no footer to plan from: read them with [`open`]); otherwise as
/// [`source::ParquetScanPlan::try_new`] and [`source::IpcScanPlan::try_new`].
#[cfg(all(feature = "core-source", feature = "decode-sched"))]
pub fn scan(
    path: impl AsRef<std::path::Path>,
    options: &ReadOptions,
) -> Result<decode_sched::Scan> {
    use arrowfeed_core_source::{IpcScanPlan, MmapFile, ParquetScanPlan};
    let path = path.as_ref();
    let batch_size = options.batch_size.unwrap_or(8192).max(1);
    let plan: Box<dyn traits::ScanPlan> = match source::detect_format(path)? {
        // The plan decodes batches of the options' batch size too, so they break where output
        // batches do and the engine hands them on as they are (no copy where row groups meet).
        source::Format::Parquet => Box::new(ParquetScanPlan::try_new(path, options)?),
        source::Format::ArrowFile => {
            Box::new(IpcScanPlan::try_new(path, options.columns.as_deref())?)
        }
        other => {
            return Err(Error::invalid_argument(format!(
                "{}: scans run on Parquet and Arrow IPC files; this is {}",
                path.display(),
                other.name()
            )));
        }
    };
    let source = std::sync::Arc::new(MmapFile::open(path)?);
    Ok(decode_sched::Scan::from_parts(source, plan).batch_size(batch_size))
}

/// The names most programs use, in one import.
pub mod prelude {
    pub use arrowfeed_traits::{ByteSource, Error, RandomAccess, Result, batch_memory_size};

    #[cfg(feature = "core-source")]
    pub use arrowfeed_core_source::{
        BatchWriter, Format, LocalFile, MemTable, ReadOptions, Source, WriteCompression, open,
        open_many, open_with,
    };

    #[cfg(feature = "prefetch")]
    pub use arrowfeed_prefetch::{
        Loader, LoaderState, Order, Prefetch, PrefetchMetrics, PrefetchReader, Remainder, Shuffle,
    };

    #[cfg(feature = "spill")]
    pub use arrowfeed_spill::{Spill, SpillCompression, SpillHandle, SpillReader, SpillWriter};

    #[cfg(feature = "shard-store")]
    pub use arrowfeed_shard_store::{ShardStore, StoreWriter};

    #[cfg(feature = "decode-sched")]
    pub use arrowfeed_decode_sched::{Scan, ScanReader, ScanStream};
}
