//! A replayable memory-then-disk spill of Arrow record batches, with live readers.
//!
//! Part of [arrowfeed](https://crates.io/crates/arrowfeed); depends only on `arrowfeed-traits`
//! among the arrowfeed crates.
//!
//! One [`SpillWriter`] and any number of [`SpillReader`]s share a spill. Batches stay in memory
//! while their total size (counted by allocation, `arrowfeed_traits::MemoryLedger`) stays
//! within the memory budget; when a write would exceed it, everything buffered so far and every
//! later batch goes to an Arrow IPC stream file in the spill directory. Readers:
//!
//! - open before, during or after writing, each replaying from the first batch, as often as
//!   wanted ([`SpillHandle::reader`]);
//! - follow the writer live, waiting (on a condition variable or a waker, never polling) for
//!   batches not yet written, and end after [`SpillWriter::finish`];
//! - carry on across the move from memory to disk, even mid-read;
//! - receive an error sent with [`SpillWriter::abort`] (or a disk failure) after the batches
//!   written before it — every reader, current and future, with its message and source chain.
//!
//! The spill file is unlinked as soon as it is created (on Unix; elsewhere it is deleted when
//! the last handle drops), so nothing is ever left in the directory: not after a panic, not
//! even after a crash. Each write costs O(1) in the number of batches already held.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Int64Array, RecordBatch};
//! use arrowfeed_spill::Spill;
//!
//! let dir = tempfile::tempdir()?;
//! let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from_iter_values(0..1000)) as _)])?;
//! // 10 KB in memory, then disk.
//! let (mut writer, handle) = Spill::builder(dir.path(), batch.schema()).memory_budget(10_000).build()?;
//! let early = handle.reader(); // starts before any batch is written
//! for _ in 0..5 {
//!     writer.write(&batch)?;
//! }
//! writer.finish()?;
//! assert!(handle.is_spilled());
//! assert_eq!(early.count(), 5);
//! assert_eq!(handle.reader().count(), 5); // replay
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sync and async
//! [`SpillWriter::write`] and iterating a [`SpillReader`] block (on file I/O, and a reader on
//! batches not yet written); [`SpillWriter::write_async`] and [`SpillStream`] run file I/O on tokio's blocking pool and wait with wakers, so they never
//! block an executor thread.

mod options;
mod reader;
mod shared;
mod writer;

pub use options::{Spill, SpillBuilder, SpillCompression};
pub use reader::{SpillReader, SpillStream};
pub use shared::{SharedError, SpillHandle};
pub use writer::SpillWriter;
