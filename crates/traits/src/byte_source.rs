//! `ByteSource`: reads byte ranges of one object (a local file, a memory map, bytes in memory).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::{Error, Result};

/// Something that reads byte ranges of one object, asynchronously.
///
/// The decode scheduler reads through this trait, so a format's scan plan works the same over
/// a local file, a memory map or (later) an object store.
///
/// # Contract
/// - [`read`](Self::read) resolves to exactly `range.end - range.start` bytes, or an error. A
///   range that ends past [`size`](Self::size) is an [`Error::Corrupt`] naming the source (such
///   ranges come from lengths read off the data); an empty range gives empty bytes.
/// - Errors name the object ([`name`](Self::name)).
/// - Futures are `Send`; several reads may be in flight at once.
/// - A source whose futures do their work synchronously when first polled (local files with
///   positioned reads) says so with [`is_blocking`](Self::is_blocking), so callers drive it
///   from threads that may block rather than from an async executor's workers.
pub trait ByteSource: Send + Sync + fmt::Debug {
    /// A name for error messages: a path, a URL, `memory`.
    fn name(&self) -> &str;

    /// The size of the object in bytes.
    fn size(&self) -> BoxFuture<'_, Result<u64>>;

    /// Reads `range`.
    fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>>;

    /// Reads several ranges; the result has one entry per range, in order. The default reads
    /// them one after another; sources with cheaper batched reads override it.
    fn read_many(&self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(ranges.len());
            for r in ranges {
                out.push(self.read(r).await?);
            }
            Ok(out)
        })
    }

    /// True when the futures block the thread that polls them (see the contract).
    fn is_blocking(&self) -> bool {
        false
    }

    /// True when the bytes [`read`](Self::read) returns are views of memory the source holds
    /// anyway (a memory map of a file: page cache the kernel may reclaim), so that holding
    /// them costs no memory of the reader's own. Memory budgets then leave fetched bytes out.
    /// The default is false: each read's bytes are a fresh allocation.
    fn reads_are_views(&self) -> bool {
        false
    }
}

impl<T: ByteSource + ?Sized> ByteSource for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn size(&self) -> BoxFuture<'_, Result<u64>> {
        (**self).size()
    }
    fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        (**self).read(range)
    }
    fn read_many(&self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        (**self).read_many(ranges)
    }
    fn is_blocking(&self) -> bool {
        (**self).is_blocking()
    }
    fn reads_are_views(&self) -> bool {
        (**self).reads_are_views()
    }
}

/// Bytes held in memory, as a [`ByteSource`]. Useful in tests and for small objects.
#[derive(Debug, Clone)]
pub struct MemorySource {
    name: String,
    data: Bytes,
}

impl MemorySource {
    /// A source over `data`, called `name` in error messages.
    pub fn new(name: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            data: data.into(),
        }
    }
}

impl ByteSource for MemorySource {
    fn name(&self) -> &str {
        &self.name
    }
    fn size(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(futures::future::ready(Ok(self.data.len() as u64)))
    }
    fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        let r = check_range(&self.name, &range, self.data.len() as u64)
            .map(|r| self.data.slice(r.start as usize..r.end as usize));
        Box::pin(futures::future::ready(r))
    }
}

/// Checks that `range` is well formed and lies within an object of `size` bytes; the error
/// names the object. A helper for `ByteSource` implementations.
pub fn check_range(name: &str, range: &Range<u64>, size: u64) -> Result<Range<u64>> {
    if range.start > range.end || range.end > size {
        return Err(Error::corrupt(
            name,
            format!(
                "byte range {}..{} is outside the {size}-byte object",
                range.start, range.end
            ),
        ));
    }
    Ok(range.clone())
}
