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
//! | [`object_store`] | `arrowfeed-object-store` | `object-store` (off by default) | S3, GCS, Azure and HTTP(S) objects as byte sources and directories |
//!
//! # Paths and URLs
//! Every entry point here — [`open`], [`open_with`], [`open_many`], [`info`], [`scan`],
//! [`store`], [`loader`], [`write_store`] — takes a local path or, with the `object-store`
//! feature, a URL: `s3://bucket/key`, `gs://…`, `az://…`, `abfs://…`, `https://…`,
//! `file://…`. Credentials and endpoints come from the standard environment (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`; see [`object_store`]). A remote file is read by ranges, never
//! downloaded first; a remote shard store streams its shards through a bounded local cache.
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

#[cfg(feature = "object-store")]
pub use arrowfeed_object_store as object_store;

mod inputs;

#[cfg(all(feature = "core-source", feature = "shard-store"))]
#[doc(hidden)]
pub mod readme;

/// The workspace README's Rust examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "core-source")]
pub use arrowfeed_core_source::{Input, ReadOptions, Source, SourceInfo};
#[cfg(feature = "core-source")]
pub use inputs::{info, input, open, open_many, open_with};
pub use inputs::{is_store, is_url, objects, upload};
#[cfg(feature = "shard-store")]
pub use inputs::{store, store_with, write_store};

/// A [`Loader`](arrowfeed_prefetch::Loader) over the shard store (or Hugging Face
/// `save_to_disk` directory) at `path_or_url`: the main job in one call. Over a remote store
/// the Loader's read-ahead downloads the shards of coming batches into the shard cache while
/// the current ones are consumed.
///
/// ```no_run
/// let loader = arrowfeed::loader("s3://bucket/train")?.batch_size(256).seed(42).workers(2).build()?;
/// for batch in loader.epoch(0)? {
///     let batch = batch?; // train on it
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`store`].
#[cfg(all(feature = "prefetch", feature = "shard-store"))]
pub fn loader(
    path_or_url: impl AsRef<std::path::Path>,
) -> Result<arrowfeed_prefetch::LoaderBuilder> {
    let store = store(path_or_url)?;
    Ok(arrowfeed_prefetch::Loader::builder(std::sync::Arc::new(
        store,
    )))
}

/// A scan of the Parquet or Arrow IPC file at `path_or_url` on the engine
/// ([`decode_sched::Scan`]): only `options.columns` are read (Parquet: only their column
/// chunks' bytes), only `options.row_groups` for Parquet, and the output has batches of
/// exactly `options.batch_size` rows (default 8,192). Tune the returned [`decode_sched::Scan`]
/// (parallelism, budget) before starting it.
///
/// The file is opened once, as one [`ByteSource`](traits::ByteSource) that format detection,
/// the plan's footer and every data read go through. A local file is read through a memory map
/// ([`source::MmapFile`]): zero-copy, and the fastest way to scan it, with the hazard of
/// memory maps (another process truncating the file while it is mapped raises `SIGBUS`). A
/// remote file is read by range requests, several in flight.
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
/// let options = ReadOptions::default().batch_size(300);
/// let reader = arrowfeed::scan(&path, &options)?.decode_parallelism(2).reader()?;
/// let sizes: Vec<usize> = reader.map(|b| b.map(|b| b.num_rows())).collect::<Result<_, _>>()?;
/// assert_eq!(sizes, [300, 300, 300, 100]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for a file that is neither Parquet nor an Arrow IPC file (IPC
/// streams have no footer to plan from: read them with [`open`]); otherwise as
/// [`source::ParquetScanPlan::from_source`] and [`source::IpcScanPlan::from_source`].
#[cfg(all(feature = "core-source", feature = "decode-sched"))]
pub fn scan(
    path_or_url: impl AsRef<std::path::Path>,
    options: &ReadOptions,
) -> Result<decode_sched::Scan> {
    use arrowfeed_core_source::MmapFile;
    let source: std::sync::Arc<dyn traits::ByteSource> =
        match inputs::classify(path_or_url.as_ref()) {
            inputs::Where::Local(p) => std::sync::Arc::new(MmapFile::open(p)?),
            inputs::Where::Remote(url) => inputs::remote_file(&url)?,
        };
    scan_source(source, options)
}

/// [`scan`] of any [`ByteSource`](traits::ByteSource): the source is the one every read of
/// the scan goes through.
///
/// # Errors
/// As [`scan`].
#[cfg(all(feature = "core-source", feature = "decode-sched"))]
pub fn scan_source(
    source: std::sync::Arc<dyn traits::ByteSource>,
    options: &ReadOptions,
) -> Result<decode_sched::Scan> {
    use arrowfeed_core_source::{IpcScanPlan, ParquetScanPlan};
    let plan: Box<dyn traits::ScanPlan> = match source::detect_format_of(source.as_ref())? {
        // The plan decodes batches of the options' batch size too, so they break where output
        // batches do and the engine hands them on as they are (no copy where row groups meet).
        source::Format::Parquet => Box::new(ParquetScanPlan::from_source(&source, options)?),
        source::Format::ArrowFile => Box::new(IpcScanPlan::from_source(
            &source,
            options.columns.as_deref(),
        )?),
        other => {
            return Err(Error::invalid_argument(format!(
                "{}: scans run on Parquet and Arrow IPC files; this is {}",
                source.name(),
                other.name()
            )));
        }
    };
    let scan = decode_sched::Scan::from_parts(source, plan);
    // An unset batch size is the scan's to fit to its memory budget.
    Ok(match options.batch_size {
        Some(rows) => scan.batch_size(rows.max(1)),
        None => scan,
    })
}

/// The names most programs use, in one import.
pub mod prelude {
    pub use arrowfeed_traits::{ByteSource, Error, RandomAccess, Result, batch_memory_size};

    #[cfg(feature = "core-source")]
    pub use arrowfeed_core_source::{
        BatchWriter, Format, LocalFile, MemTable, ReadOptions, Source, WriteCompression,
    };

    #[cfg(feature = "core-source")]
    pub use crate::{open, open_many, open_with};

    #[cfg(feature = "prefetch")]
    pub use arrowfeed_prefetch::{
        Loader, LoaderState, Order, Prefetch, PrefetchMetrics, PrefetchReader, Remainder, Shuffle,
    };

    #[cfg(feature = "spill")]
    pub use arrowfeed_spill::{Spill, SpillCompression, SpillHandle, SpillReader, SpillWriter};

    #[cfg(feature = "shard-store")]
    pub use arrowfeed_shard_store::{CacheOptions, ShardStore, StoreWriter};

    #[cfg(feature = "decode-sched")]
    pub use arrowfeed_decode_sched::{Scan, ScanReader, ScanStream};
}
