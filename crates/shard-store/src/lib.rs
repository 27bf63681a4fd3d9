//! Sharded, memory-mapped Arrow IPC datasets with fast random access.
//!
//! Part of [arrowfeed](https://crates.io/crates/arrowfeed); depends only on `arrowfeed-traits`
//! among the arrowfeed crates. This is the storage under the Loader: a dataset larger than RAM,
//! split into Arrow IPC file shards, opened in milliseconds and gathered by arbitrary row
//! indices at memory speed.
//!
//! | item | what it is |
//! |---|---|
//! | [`StoreWriter`] | writes a store from any `RecordBatchReader`: shards cut by size, checksums, atomic publish |
//! | [`ShardStore`] | opens a store (or a Hugging Face `save_to_disk` directory) and implements `RandomAccess` |
//! | [`ShardStore::verify`] | recomputes every checksum, naming each bad shard |
//! | [`ShardStore::iter_shards`] | every batch, shard by shard, in natural or seeded-shuffled shard order |
//!
//! The on-disk format is documented in `docs/shard-store.md` of the repository.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use arrow_array::{cast::AsArray, RecordBatch, RecordBatchIterator, StringArray};
//! use arrowfeed_shard_store::{ShardStore, StoreWriter};
//! use arrowfeed_traits::RandomAccess;
//!
//! let dir = tempfile::tempdir()?;
//! let text = Arc::new(StringArray::from_iter_values((0..10_000).map(|i| format!("row {i}"))));
//! let batch = RecordBatch::try_from_iter([("text", text as _)])?;
//! StoreWriter::new().shard_bytes(64 << 10).write(dir.path().join("store"), RecordBatchIterator::new([Ok(batch.clone())], batch.schema()))?;
//!
//! let store = ShardStore::open(dir.path().join("store"))?;
//! assert!(store.num_shards() > 1);
//! assert!(store.verify()?.is_ok());
//! let rows = store.take(&[9_999, 42, 42], None)?;
//! assert_eq!(rows.column(0).as_string::<i32>().value(0), "row 9999");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Wide columns
//! A string, binary or list column that holds more than `i32::MAX` bytes (or list elements)
//! across the store is reported in its large type (`LargeUtf8`, `LargeBinary`, `LargeList`)
//! by `schema()` and returned so in every batch; the writer records each column's total in the
//! manifest, so this is decided at open. See `docs/shard-store.md`.
//!
//! # Memory maps
//! Shards are memory-mapped by default. If another process truncates a mapped file, the next
//! read of a lost page raises `SIGBUS`; use [`LoadMode::Read`] (via [`OpenOptions`]) for files
//! others may change.

mod cache;
/// The fuzz targets' entry points; not part of the API, and not stable.
#[doc(hidden)]
pub mod fuzz;
mod gather;
mod hf;
mod interleave;
mod manifest;
mod open_shards;
mod route;
mod shard;
mod store;
mod verify;
mod wide;
mod writer;

pub use cache::{CacheMetrics, CacheOptions, DEFAULT_CACHE_LIMIT, parse_size};
pub use manifest::{
    FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE, Manifest, ShardCompression, ShardEntry,
};
pub use shard::LoadMode;
pub use store::{OpenOptions, ShardIter, ShardStore, StoreFormat};
pub use verify::{BadShard, ShardProblem, VerifyReport};
pub use writer::{StoreWriter, write_batches};
