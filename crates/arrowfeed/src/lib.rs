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
}
