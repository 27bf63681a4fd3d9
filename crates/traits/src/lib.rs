//! The shared vocabulary of arrowfeed.
//!
//! Every other arrowfeed crate speaks these types, and only these, to the others:
//!
//! | item | what it is |
//! |---|---|
//! | [`enum@Error`], [`Result`] | the one error type at every crate boundary, lossless to and from `ArrowError` |
//! | [`RandomAccess`] | a dataset of known length that can `take` arbitrary rows and `slice` ranges |
//! | [`ByteSource`] | reads byte ranges of one object (local file, memory map, memory, object store) |
//! | [`ObjectDir`] | named objects under one prefix (a directory, an object-store prefix) |
//! | [`ScanPlan`], [`ReadTask`], [`TaskDecoder`] | a format's plan of what to read and how to decode it |
//! | [`batch_memory_size`], [`MemoryLedger`] | memory accounting by underlying allocation, for every budget |
//!
//! It sits at the top of the dependency graph: it depends on no other arrowfeed crate and pulls
//! in no async runtime (futures are plain `futures` types).
//!
//! Sync producers elsewhere in arrowfeed are `arrow_array::RecordBatchReader + Send`; async
//! producers are `Stream<Item = Result<RecordBatch, ArrowError>> + Send` with a schema. Those
//! are arrow's own traits, so they are not repeated here.
//!
//! # Example
//!
//! A `RandomAccess` over one in-memory batch, and the conformance kit that checks it:
//!
//! ```
//! use arrow_array::{cast::AsArray, types::Int64Type, Int64Array, RecordBatch};
//! use arrow_schema::SchemaRef;
//! use arrowfeed_traits::{check_slice, project_schema, Error, RandomAccess, Result};
//! use std::sync::Arc;
//!
//! struct OneBatch(RecordBatch);
//!
//! impl RandomAccess for OneBatch {
//!     fn schema(&self) -> SchemaRef { self.0.schema() }
//!     fn num_rows(&self) -> u64 { self.0.num_rows() as u64 }
//!     fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
//!         let n = self.num_rows();
//!         if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
//!             return Err(Error::index_out_of_range(bad, n));
//!         }
//!         let schema = project_schema(&self.schema(), projection)?;
//!         let idx = arrow_array::UInt64Array::from(indices.to_vec());
//!         let cols = schema.fields().iter().map(|f| {
//!             let col = self.0.column_by_name(f.name()).expect("projected from our schema");
//!             // A real implementation would use arrow_select::take.
//!             let rows: Vec<i64> = idx.values().iter()
//!                 .map(|&i| col.as_primitive::<Int64Type>().value(i as usize))
//!                 .collect();
//!             Arc::new(Int64Array::from(rows)) as _
//!         }).collect();
//!         Ok(RecordBatch::try_new_with_options(schema, cols,
//!             &arrow_array::RecordBatchOptions::new().with_row_count(Some(indices.len())))?)
//!     }
//!     fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
//!         let r = check_slice(offset, len, self.num_rows())?;
//!         let b = self.0.slice(r.start as usize, len as usize);
//!         project_schema(&self.schema(), projection)?; // validates the projection
//!         Ok(match projection { Some(p) => b.project(p)?, None => b })
//!     }
//! }
//!
//! let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from_iter_values(0..10)) as _)])?;
//! let ra = OneBatch(batch.clone());
//! assert_eq!(ra.take(&[3, 3, 0], None)?.num_rows(), 3);
//! # #[cfg(feature = "testkit")]
//! arrowfeed_traits::testkit::check_random_access(&ra, &batch);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `testkit` | no | [`testkit`]: conformance checks for `RandomAccess` and `ByteSource` implementations |
//! | `ipc` | no | `ipc`: the one reader of IPC framing (footers, stream messages) and the checks on each message's buffers before arrow-ipc slices or allocates for them |
//! | `mmap` | no | `mmap`: the one memory-map helper, and what a map can and cannot promise |
//!
//! # Why not `object_store`'s traits?
//! `object_store::ObjectStore` addresses many objects by path and carries an HTTP stack. A scan
//! reads one object; [`ByteSource`] is that one object, small enough to implement over a file,
//! a memory map or a buffer in a few lines; `arrowfeed-object-store` implements it (and
//! [`ObjectDir`]) over `object_store`, so only that crate carries the HTTP stack.

mod byte_source;
mod error;
#[cfg(feature = "ipc")]
pub mod ipc;
mod memory;
#[cfg(feature = "mmap")]
pub mod mmap;
mod object_dir;
mod panic;
pub mod permutation;
mod random_access;
mod scan;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use byte_source::{ByteSource, MemorySource, check_range};
pub use error::{BoxError, Error, Location, Result, panic_message};
pub use memory::{MemoryLedger, array_memory_size, batch_memory_size};
pub use object_dir::{MemoryDir, ObjectDir, not_found};
pub use panic::{
    catch_panic, no_panic, panic_is_guarded, panics_caught_on_this_thread, quiet_guarded_panics,
    spawn_thread,
};
pub use permutation::Permutation;
pub use random_access::{RandomAccess, check_slice, project_schema};
pub use scan::{
    DEFAULT_BATCH_SIZE, DecodePart, Decoded, InOrder, MIN_FITTED_ROWS, OwnReads, PartDecoded,
    PartDecoder, ReadTask, ScanPlan, TaskDecoder, fitted_rows, run_plan_in_order,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    /// The vocabulary crosses threads and is used as trait objects.
    #[test]
    fn traits_are_object_safe_and_thread_safe() {
        assert_send_sync::<Error>();
        assert_send_sync::<Box<dyn RandomAccess>>();
        assert_send_sync::<Box<dyn ByteSource>>();
        assert_send_sync::<Box<dyn ObjectDir>>();
        assert_send::<Box<dyn TaskDecoder>>();
        assert_send::<ReadTask>();
        assert_send::<futures::future::BoxFuture<'static, Result<bytes::Bytes>>>();
    }

    #[cfg(feature = "testkit")]
    #[test]
    fn memory_source_conforms() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        testkit::check_byte_source(&MemorySource::new("memory", data.clone()), &data);
        testkit::check_byte_source(&MemorySource::new("empty", Vec::new()), &[]);
    }
}
