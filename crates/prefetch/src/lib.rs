//! Read-ahead for Arrow record batch sources — producers on dedicated threads, bounded by
//! batches *and* bytes, consumed as a blocking iterator or an async `Stream` — and the
//! [`Loader`], which turns any `RandomAccess` dataset into shuffled, rank-partitioned,
//! resumable training batches on top of it.
//!
//! Part of [arrowfeed](https://crates.io/crates/arrowfeed); depends only on `arrowfeed-traits`
//! among the arrowfeed crates.
//!
//! Training loops stall when the next batch is not ready. [`Prefetch`] hides reading and
//! decoding behind the consumer's work, and avoids the usual mistakes:
//!
//! - **Blocking reads never run on an async executor.** Producers are plain threads; the
//!   [`PrefetchStream`] side registers a waker and returns `Pending`, so it is safe on a
//!   current-thread runtime.
//! - **Bounded by bytes as well as batches**, counted by allocation
//!   ([`arrowfeed_traits::MemoryLedger`]), so ten 1 GiB batches are not "ten". A batch larger
//!   than the whole budget still flows (see [`Prefetch`] for the exact rule).
//! - **Metrics say whether you are input-bound**: [`PrefetchMetrics`] has the time the
//!   consumer waited, the time producers waited for space, and peak bytes buffered.
//! - **Errors arrive in order** after the batches before them and end the output; a panic in a
//!   source becomes an error. Dropping the consumer stops the producers promptly.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use arrow_array::{cast::AsArray, types::Int64Type, Int64Array, RecordBatch, RecordBatchIterator, RecordBatchReader};
//! use arrowfeed_prefetch::{Order, Prefetch};
//!
//! let part = |lo: i64| {
//!     let b = RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from_iter_values(lo..lo + 10)) as _)])
//!         .expect("one non-empty column");
//!     Box::new(RecordBatchIterator::new(vec![Ok(b.clone())], b.schema())) as Box<dyn RecordBatchReader + Send>
//! };
//! // Two sources, two producer threads, deterministic round-robin output, 64 MiB at most.
//! let prefetch = Prefetch::builder().parallelism(2).memory_budget(64 << 20).order(Order::RoundRobin).build()?;
//! let reader = prefetch.spawn_many(vec![part(0), part(100)])?;
//! let firsts: Vec<i64> = reader
//!     .map(|b| b.map(|b| b.column(0).as_primitive::<Int64Type>().value(0)))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(firsts, [0, 100]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Async
//! [`PrefetchReader::into_stream`] gives a [`PrefetchStream`]: a
//! `Stream<Item = Result<RecordBatch, ArrowError>> + Send` with a `schema()`, the shape
//! DataFusion's `RecordBatchStream` has (arrow-array itself defines no stream trait).

mod epoch;
/// The fuzz targets' entry points; not part of the API, and not stable.
#[doc(hidden)]
pub mod fuzz;
mod loader;
mod metrics;
mod options;
mod reader;
mod sampler;
mod state;

pub use arrowfeed_traits::Permutation;
pub use loader::{
    Loader, LoaderBuilder, LoaderIter, LoaderMetrics, LoaderStream, PAD_COLUMN, Remainder,
};
pub use metrics::PrefetchMetrics;
pub use options::{Order, Prefetch, PrefetchBuilder};
pub use reader::{PrefetchReader, PrefetchStream, TryNext};
pub use sampler::Shuffle;
pub use state::LoaderState;
