//! The reading side: replays a spill from its first batch, from memory or the file, and
//! follows the writer live.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::ipc::check_stream_messages;
use arrowfeed_traits::{Error, Result};
use futures::Stream;

use crate::shared::{Disk, End, Shared, SharedError};

type Item = std::result::Result<RecordBatch, ArrowError>;

/// Where a reader is in the spill file.
struct Cursor {
    decoder: StreamDecoder,
    /// A memory map of the file's first `map.len()` bytes; remapped when the writer has
    /// committed more than it covers.
    map: Buffer,
    /// The index of the batch the decoder returns next.
    next_batch: usize,
}

/// Maps the first `len` bytes of the spill file. The file is private to this process:
/// created with O_EXCL, unlinked at once on Unix, and only ever appended to by its writer.
/// Bytes below the committed length never change and the file is never truncated, so the
/// map's contract ([`arrowfeed_traits::mmap`]) holds while it lives.
fn map_file(file: &std::fs::File, len: u64, path: &std::path::Path) -> Result<Buffer> {
    let file = file.try_clone().map_err(|e| Error::io(path, e))?;
    arrowfeed_traits::mmap::map_file(file, path, len, false).map(Buffer::from)
}

/// What a reader needs to read batch `k` from the file, copied out of the lock.
struct DiskJob {
    disk: Disk,
    k: usize,
    committed: u64,
}

impl DiskJob {
    /// Decodes batch `k` from a memory map of the file: zero-copy, one decode per batch.
    fn run(self, cursor: &mut Option<Cursor>) -> Result<RecordBatch> {
        let d = &self.disk;
        let path = d.path.as_path();
        let decode_err = |e: ArrowError| Error::arrow_at(path, e);
        let (start, end) = (d.start_of(self.k), d.ends[self.k]);
        if cursor.as_ref().is_none_or(|c| c.map.len() < end as usize) {
            let map = map_file(&d.file, self.committed, path)?;
            match cursor.as_mut() {
                Some(c) => c.map = map,
                None => {
                    *cursor = Some(Cursor {
                        decoder: StreamDecoder::new(),
                        map,
                        next_batch: usize::MAX,
                    })
                }
            }
        }
        let c = cursor.as_mut().expect("set above");
        if c.next_batch != self.k {
            // First read from the file, or a reader that moved from memory to disk mid-read:
            // the schema message, then (for dictionary columns) every earlier message.
            c.decoder = StreamDecoder::new();
            let upto = if d.has_dictionaries {
                start
            } else {
                d.schema_end
            };
            let mut head = c.map.slice_with_length(0, upto as usize);
            check_stream_messages(&head).map_err(|e| e.or_location(path))?;
            while !head.is_empty() {
                c.decoder.decode(&mut head).map_err(decode_err)?;
            }
            c.next_batch = self.k;
        }
        let mut body = c
            .map
            .slice_with_length(start as usize, (end - start) as usize);
        // The file is ours, but a damaged disk page could still declare a compressed buffer
        // of 2^60 bytes, and arrow-ipc allocating that aborts the process.
        check_stream_messages(&body).map_err(|e| e.or_location(path))?;
        while !body.is_empty() {
            if let Some(batch) = c.decoder.decode(&mut body).map_err(decode_err)? {
                c.next_batch += 1;
                return Ok(batch);
            }
        }
        Err(Error::corrupt(
            path,
            format!(
                "spill batch {} is incomplete in bytes {start}..{end}",
                self.k
            ),
        ))
    }
}

/// What the reader does next, decided under the lock.
enum Step {
    Ready(Item),
    Disk(DiskJob),
    End,
    Wait,
}

type Pending = Pin<Box<dyn Future<Output = (Option<Cursor>, Result<RecordBatch>)> + Send>>;

/// Replays a spill from its first batch: a blocking `Iterator`/`RecordBatchReader`, and
/// through [`into_stream`](Self::into_stream) an async `Stream`. Open one with
/// [`SpillHandle::reader`](crate::SpillHandle::reader).
///
/// Batches come in write order; the reader waits for batches not yet written and ends after
/// `finish()`. An error from the writer comes after the batches written before it (as
/// `ArrowError::ExternalError` wrapping a [`SharedError`]) and ends the reader.
pub struct SpillReader {
    shared: Arc<Shared>,
    next: usize,
    cursor: Option<Cursor>,
    pending: Option<Pending>,
    done: bool,
}

impl std::fmt::Debug for SpillReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillReader")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl SpillReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            next: 0,
            cursor: None,
            pending: None,
            done: false,
        }
    }

    /// The same batches as an async `Stream` that never blocks the executor it is polled on.
    pub fn into_stream(self) -> SpillStream {
        SpillStream { reader: self }
    }

    fn step(&mut self, st: &crate::shared::State) -> Step {
        if self.next < st.count {
            if self.next < st.mem.len() {
                // In memory (also while a move to disk is still writing it out).
                let b = st.mem[self.next].clone();
                self.next += 1;
                return Step::Ready(Ok(b));
            }
            let Some(disk) = st.disk.clone() else {
                unreachable!("batches past the memory copies are on disk")
            };
            let committed = disk.ends.last().copied().unwrap_or(disk.schema_end);
            return Step::Disk(DiskJob {
                disk,
                k: self.next,
                committed,
            });
        }
        match &st.end {
            End::Open => Step::Wait,
            End::Finished => Step::End,
            End::Failed(e) => Step::Ready(Err(ArrowError::ExternalError(Box::new(SharedError(
                e.clone(),
            ))))),
        }
    }

    fn finish_item(&mut self, item: Option<Item>) -> Option<Item> {
        match &item {
            None | Some(Err(_)) => self.done = true,
            Some(Ok(_)) => {}
        }
        item
    }
}

impl Iterator for SpillReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        let shared = self.shared.clone();
        let mut st = shared.lock();
        loop {
            match self.step(&st) {
                Step::Ready(item) => return self.finish_item(Some(item)),
                Step::End => return self.finish_item(None),
                Step::Wait => st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
                Step::Disk(job) => {
                    drop(st);
                    let r = job.run(&mut self.cursor);
                    if r.is_ok() {
                        self.next += 1;
                    }
                    return self.finish_item(Some(r.map_err(Error::into_arrow)));
                }
            }
        }
    }
}

impl RecordBatchReader for SpillReader {
    fn schema(&self) -> SchemaRef {
        self.shared.schema.clone()
    }
}

/// The async side of a [`SpillReader`]: a `Stream` of the same batches.
///
/// A separate type, so that importing `futures::StreamExt` does not make `next()` ambiguous on
/// the blocking reader.
#[derive(Debug)]
pub struct SpillStream {
    reader: SpillReader,
}

impl SpillStream {
    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.reader.shared.schema.clone()
    }
}

impl Stream for SpillStream {
    type Item = Item;

    /// Never blocks: batches in memory are returned at once, file reads run on tokio's
    /// blocking pool (inline outside a runtime), and waiting for the writer registers a waker.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut self.get_mut().reader;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(p) = this.pending.as_mut() {
                let (cursor, r) = futures::ready!(p.as_mut().poll(cx));
                this.pending = None;
                this.cursor = cursor;
                if r.is_ok() {
                    this.next += 1;
                }
                return Poll::Ready(this.finish_item(Some(r.map_err(Error::into_arrow))));
            }
            let shared = this.shared.clone();
            let mut st = shared.lock();
            match this.step(&st) {
                Step::Ready(item) => return Poll::Ready(this.finish_item(Some(item))),
                Step::End => return Poll::Ready(this.finish_item(None)),
                Step::Wait => {
                    st.wakers.push(cx.waker().clone());
                    return Poll::Pending;
                }
                Step::Disk(job) => {
                    drop(st);
                    let mut cursor = this.cursor.take();
                    match tokio::runtime::Handle::try_current() {
                        Ok(rt) => {
                            let h = rt.spawn_blocking(move || {
                                let r = job.run(&mut cursor);
                                (cursor, r)
                            });
                            this.pending = Some(Box::pin(async move {
                                h.await.unwrap_or_else(|e| {
                                    (
                                        None,
                                        Err(Error::external(
                                            arrowfeed_traits::Location::new("spill reader"),
                                            e,
                                        )),
                                    )
                                })
                            }));
                        }
                        Err(_) => {
                            let r = job.run(&mut cursor);
                            this.pending = Some(Box::pin(futures::future::ready((cursor, r))));
                        }
                    }
                }
            }
        }
    }
}
