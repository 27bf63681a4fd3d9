//! A column chunk read from its source in order as it decodes, for the row groups too large to
//! fetch whole within a memory budget (a remote object's reads are fresh memory).
//!
//! [`ChunkStream`] serves `ChunkPages` the bytes of one column chunk in order. It keeps
//! requests going a little way past the reader's position ([`Reach`]: the column's share of the
//! allowance, and at least [`PAGES_AHEAD`] of the largest page seen), several at once so that
//! their latencies overlap, and drops what lies behind the reader. Held at once: the bytes
//! fetched or in flight ahead of the reader, and the pages the decoder still holds (slices of
//! the windows they came in). A page that straddles two requests is copied out of them; every
//! other page is a slice, no copy.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrowfeed_traits::{ByteSource, Error, OwnReads};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use parquet::errors::{ParquetError, Result as ParquetResult};

/// The fewest bytes one request asks for: below it, a request's fixed cost (about 2 ms of the
/// 4.6 ms a 1 MiB range took from SeaweedFS on loopback) outweighs the memory saved.
pub(crate) const MIN_REQUEST: usize = 256 << 10;
/// The most bytes one request asks for.
pub(crate) const MAX_REQUEST: usize = 8 << 20;
/// Requests a column keeps in flight ahead of its reader, when its share allows that many of
/// [`MIN_REQUEST`]: reads overlap each other's latency.
pub(crate) const REQUESTS_AHEAD: usize = 2;
/// Pages of the largest size seen so far that a column's requests reach ahead of its reader,
/// whatever its share: a reader waiting for each page would wait a round trip per page.
pub(crate) const PAGES_AHEAD: usize = 2;

/// Where streamed chunks read from, and the first error a read met, kept as the source gave it
/// (the parquet crate's readers would wrap it) for the decoder to report instead of what the
/// reader made of it.
#[derive(Debug)]
pub(crate) struct StreamSource {
    pub(crate) source: Arc<dyn ByteSource>,
    pub(crate) error: Mutex<Option<Error>>,
    /// What the streams of this source read and hold (fetched and not yet passed, or in
    /// flight), shared by all the plan's streamed row groups: what the engine counts as held
    /// and reports.
    pub(crate) reads: Arc<OwnReads>,
    /// Streams read ahead of their readers only while `held` is below this; what a reader
    /// needs now is read whatever it is.
    pub(crate) limit: u64,
}

impl StreamSource {
    pub(crate) fn new(source: Arc<dyn ByteSource>, reads: Arc<OwnReads>, limit: u64) -> Self {
        Self {
            source,
            error: Mutex::new(None),
            reads,
            limit,
        }
    }

    /// The error a read met, if any (taken: reported once).
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn fail(&self, e: Error) -> ParquetError {
        let message = e.to_string();
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
        ParquetError::General(message)
    }
}

/// How a row group's column chunks are read when they are streamed: from where, and each
/// leaf column's [`Reach`] (`None` for columns not projected).
#[derive(Debug, Clone)]
pub(crate) struct Streamed {
    pub(crate) from: Arc<StreamSource>,
    pub(crate) reaches: Arc<[Option<Reach>]>,
}

/// A read in flight: its range (relative to the chunk) and its future, already polled once so
/// that a source that starts its request when polled has started it.
struct Ahead {
    range: Range<usize>,
    read: BoxFuture<'static, arrowfeed_traits::Result<Bytes>>,
    /// Set when the first poll already finished it.
    done: Option<arrowfeed_traits::Result<Bytes>>,
}

/// The bytes of one column chunk, `base..base + len` of the source, read in order (see the
/// module docs).
pub(crate) struct ChunkStream {
    from: Arc<StreamSource>,
    base: u64,
    len: usize,
    /// Bytes per request, and how far past the reader's position requests are kept going.
    window: usize,
    reach: usize,
    /// Windows fetched and not yet passed: (start relative to the chunk, bytes), in order and
    /// contiguous.
    windows: VecDeque<(usize, Bytes)>,
    /// Where the fetched windows end, and where the requests in flight end (relative to the
    /// chunk).
    fetched: usize,
    requested: usize,
    /// Requests in flight, in order, from `fetched` to `requested`.
    ahead: VecDeque<Ahead>,
}

impl std::fmt::Debug for ChunkStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStream")
            .field("base", &self.base)
            .field("len", &self.len)
            .field("window", &self.window)
            .field("reach", &self.reach)
            .field("fetched", &self.fetched)
            .field("requested", &self.requested)
            .finish_non_exhaustive()
    }
}

impl ChunkStream {
    /// The chunk `base..base + len` of `from`'s source, holding about `bytes` fetched or in
    /// flight ahead of its reader (see [`Reach`]). Nothing is read until the first
    /// [`get`](Self::get).
    pub(crate) fn new(from: Arc<StreamSource>, base: u64, len: usize, reach: Reach) -> Self {
        Self {
            from,
            base,
            len,
            window: reach.request,
            reach: reach.ahead,
            windows: VecDeque::new(),
            fetched: 0,
            requested: 0,
            ahead: VecDeque::new(),
        }
    }

    /// The chunk's length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Starts reading `range` (relative to the chunk).
    fn start(&self, range: Range<usize>) -> Ahead {
        let source = self.from.source.clone();
        let abs = self.base + range.start as u64..self.base + range.end as u64;
        let mut read: BoxFuture<'static, _> = Box::pin(async move { source.read(abs).await });
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let done = match read.as_mut().poll(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        };
        Ahead { range, read, done }
    }

    /// Waits for `ahead` and appends its bytes.
    fn finish(&mut self, ahead: Ahead) -> ParquetResult<()> {
        let Ahead { range, read, done } = ahead;
        let got = match done {
            Some(r) => r,
            None => futures::executor::block_on(read),
        }
        .map_err(|e| self.from.fail(e))?;
        if got.len() != range.len() {
            return Err(self.from.fail(Error::corrupt(
                self.from.source.name(),
                format!(
                    "asked for bytes {}..{}, got {} bytes",
                    self.base + range.start as u64,
                    self.base + range.end as u64,
                    got.len()
                ),
            )));
        }
        (self.from.reads.bytes).fetch_add(got.len() as u64, Ordering::Relaxed);
        self.windows.push_back((range.start, got));
        self.fetched = range.end;
        Ok(())
    }

    /// Bytes `at..at + n` of the chunk (`n` cut to its end): a slice of one window, or a copy
    /// when the range straddles two. Reads must not go backwards past an earlier read's start:
    /// the windows before `at` are dropped.
    pub(crate) fn get(&mut self, at: usize, n: usize) -> ParquetResult<Bytes> {
        let end = at.saturating_add(n).min(self.len);
        self.pass(at);
        if at >= end {
            return Ok(Bytes::new());
        }
        if self.windows.front().is_some_and(|(s, _)| *s > at) {
            return Err(ParquetError::General(format!(
                "bytes {} of a streamed column chunk were read already",
                self.base + at as u64
            )));
        }
        if self.windows.is_empty() && self.requested < at {
            // Nothing held or asked for reaches `at` (the reader skipped ahead): restart there.
            self.ahead.clear();
            self.release(self.requested - self.fetched);
            (self.fetched, self.requested) = (at, at);
        }
        while self.fetched < end {
            if self.ahead.is_empty() {
                let to = (self.requested + self.window).max(end).min(self.len);
                self.request(to);
            }
            let Some(next) = self.ahead.pop_front() else {
                break;
            };
            self.finish(next)?;
        }
        self.pass(at);
        while self.requested < self.len
            && self.requested < at.saturating_add(self.reach)
            && self.from.reads.held.load(Ordering::Relaxed) < self.from.limit
        {
            self.request((self.requested + self.window).min(self.len));
        }
        let (s, b) = &self.windows[0];
        if end <= s + b.len() {
            return Ok(b.slice(at - s..end - s));
        }
        let mut out = BytesMut::with_capacity(end - at);
        for (s, b) in &self.windows {
            let from = at.max(*s);
            let to = end.min(s + b.len());
            if from < to {
                out.extend_from_slice(&b[from - s..to - s]);
            }
        }
        Ok(out.freeze())
    }

    /// Learns that the chunk holds pages of `bytes`: requests then go at least two such pages
    /// ahead, so that the next page is in when the reader reaches it.
    pub(crate) fn saw_page(&mut self, bytes: usize) {
        self.reach = self.reach.max(bytes.saturating_mul(PAGES_AHEAD));
        self.window = self
            .window
            .max((self.reach / REQUESTS_AHEAD).min(MAX_REQUEST));
    }

    /// Drops the windows that end at or before `at`.
    fn pass(&mut self, at: usize) {
        while self.windows.front().is_some_and(|(s, b)| s + b.len() <= at) {
            if let Some((_, b)) = self.windows.pop_front() {
                self.release(b.len());
            }
        }
    }

    /// `n` bytes this stream held are no longer held.
    fn release(&self, n: usize) {
        self.from.reads.held.fetch_sub(n as u64, Ordering::Relaxed);
    }

    /// Starts the request for the bytes from `requested` to `to`.
    fn request(&mut self, to: usize) {
        (self.from.reads.held).fetch_add((to - self.requested) as u64, Ordering::Relaxed);
        self.from.reads.requests.fetch_add(1, Ordering::Relaxed);
        let ahead = self.start(self.requested..to);
        self.ahead.push_back(ahead);
        self.requested = to;
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        let windows: usize = self.windows.iter().map(|(_, b)| b.len()).sum();
        self.release(windows + (self.requested - self.fetched));
    }
}

/// How many streamed row groups a scan is taken to read at once when their columns' reaches
/// are sized: two decode threads, each with one more part started ahead of the consumer
/// (the engine's limit).
pub(crate) const STREAMS_AT_ONCE: u64 = 4;

/// How one streamed column chunk reads: requests of `request` bytes, kept going to `ahead`
/// bytes past its reader's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reach {
    pub(crate) request: usize,
    pub(crate) ahead: usize,
}

/// The reach of each projected column of a row group whose chunks are `chunks` bytes, for
/// `streams` such row groups (at most [`STREAMS_AT_ONCE`]) to hold about `bytes` ahead of
/// their readers in all:
/// shared by the columns in proportion to their chunks' sizes, each reading in requests of a
/// [`REQUESTS_AHEAD`]th of its share, but at least `min_request` (for scans,
/// [`MIN_REQUEST`]), and at most [`MAX_REQUEST`], going at least two requests ahead.
pub(crate) fn reaches(chunks: &[u64], bytes: u64, streams: u64, min_request: usize) -> Vec<Reach> {
    let total = chunks
        .iter()
        .copied()
        .fold(0u64, u64::saturating_add)
        .max(1);
    let per_stream = bytes / streams.max(1);
    chunks
        .iter()
        .map(|&c| {
            let share = per_stream as u128 * c as u128 / total as u128;
            let share = usize::try_from(share).unwrap_or(usize::MAX);
            let request = (share / REQUESTS_AHEAD).clamp(min_request.min(MAX_REQUEST), MAX_REQUEST);
            Reach {
                request,
                ahead: share.max(2 * request),
            }
        })
        .collect()
}

/// Fault injection for the tests of streamed reads.
#[cfg(test)]
pub(crate) mod testing {
    use std::ops::Range;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrowfeed_traits::{ByteSource, Error, MemorySource, Result};
    use bytes::Bytes;
    use futures::future::BoxFuture;

    /// A memory source whose reads after the first `ok` fail (connection reset).
    #[derive(Debug)]
    pub(crate) struct FailsAfter {
        inner: MemorySource,
        ok: usize,
        reads: AtomicUsize,
    }

    impl FailsAfter {
        pub(crate) fn new(inner: MemorySource, ok: usize) -> Self {
            Self {
                inner,
                ok,
                reads: AtomicUsize::new(0),
            }
        }
    }

    impl ByteSource for FailsAfter {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn size(&self) -> BoxFuture<'_, Result<u64>> {
            self.inner.size()
        }
        fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
            if self.reads.fetch_add(1, Ordering::Relaxed) < self.ok {
                return self.inner.read(range);
            }
            let e = Error::io(
                self.name(),
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected"),
            );
            Box::pin(futures::future::ready(Err(e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrowfeed_traits::MemorySource;
    use proptest::prelude::*;
    use std::sync::atomic::Ordering;

    fn data(n: usize) -> Bytes {
        (0..n)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>()
            .into()
    }

    proptest! {
        /// Reads in order, of any lengths, give the chunk's bytes exactly, whatever the window.
        #[test]
        fn reads_in_order_give_the_chunks_bytes(
            base in 0usize..500,
            len in 0usize..5000,
            window in 1usize..3000,
            steps in proptest::collection::vec((0usize..400, 1usize..900), 1..40),
        ) {
            let file = data(base + len + 100);
            let source = Arc::new(MemorySource::new("mem", file.clone()));
            let from = Arc::new(StreamSource::new(source, Arc::default(), u64::MAX));
            // Below MIN_REQUEST, to exercise many windows.
            let reach = Reach { request: window, ahead: 2 * window };
            let mut s = ChunkStream::new(from.clone(), base as u64, len, reach);
            let (mut at, mut reached) = (0, 0);
            for (skip, n) in steps {
                at = (at + skip).min(len);
                let got = s.get(at, n).expect("read");
                let end = (at + n).min(len);
                reached = reached.max(end);
                prop_assert_eq!(&got[..], &file[base + at..base + end]);
                // What is held: the windows the reads span, and those fetched while reaching
                // them; what is asked for goes at most a window past both.
                prop_assert!(s.windows.len() <= 3 + (reached - at) / window);
                prop_assert!(s.requested <= (at + 3 * window).max(reached + window).min(len));
                // The gauge says what is held: the windows and the reads in flight.
                let windows: usize = s.windows.iter().map(|(_, b)| b.len()).sum();
                let held = from.reads.held.load(Ordering::Relaxed);
                prop_assert_eq!(held, (windows + s.requested - s.fetched) as u64);
            }
            drop(s);
            prop_assert_eq!(from.reads.held.load(Ordering::Relaxed), 0, "a dropped stream holds nothing");
        }
    }

    #[test]
    fn a_failed_read_is_kept_as_the_source_gave_it() {
        let source = Arc::new(testing::FailsAfter::new(
            MemorySource::new("mem://x", data(10_000)),
            1,
        ));
        let from = Arc::new(StreamSource::new(source, Arc::default(), u64::MAX));
        let reach = Reach {
            request: 1000,
            ahead: 2000,
        };
        let mut s = ChunkStream::new(from.clone(), 0, 10_000, reach);
        assert!(s.get(0, 10).is_ok(), "the first read succeeds");
        let e = (0..10).find_map(|i| s.get(i * 1000, 1000).err());
        assert!(e.is_some(), "a later read fails");
        drop(s);
        assert_eq!(
            from.reads.held.load(Ordering::Relaxed),
            0,
            "nothing held after a failure"
        );
        let kept = from.take_error().expect("the source's error is kept");
        assert!(
            matches!(&kept, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::ConnectionReset),
            "{kept:?}"
        );
        assert!(kept.to_string().contains("mem://x"), "{kept}");
    }

    /// Past the source's limit a stream reads what its reader needs and nothing ahead.
    #[test]
    fn past_the_limit_nothing_is_read_ahead() {
        let source = Arc::new(MemorySource::new("mem", data(10_000)));
        let reach = Reach {
            request: 100,
            ahead: 1000,
        };
        let reads = Arc::new(OwnReads::default());
        let open = Arc::new(StreamSource::new(source.clone(), reads.clone(), u64::MAX));
        let mut s = ChunkStream::new(open, 0, 10_000, reach);
        s.get(0, 10).expect("read");
        assert_eq!(s.requested, 1000, "within the limit: a reach ahead");
        drop(s);
        let shut = Arc::new(StreamSource::new(source, reads.clone(), 0));
        let mut s = ChunkStream::new(shut, 0, 10_000, reach);
        let got = s.get(0, 250).expect("read");
        assert_eq!(got.len(), 250);
        assert_eq!(s.requested, 250, "past it: only what the reader asked for");
        assert_eq!(reads.held.load(Ordering::Relaxed), 250);
        assert_eq!(
            reads.bytes.load(Ordering::Relaxed),
            100 + 250,
            "the bytes that came in, both streams"
        );
        assert_eq!(reads.requests.load(Ordering::Relaxed), 10 + 1);
    }

    #[test]
    fn reaches_share_the_bytes_by_chunk_size() {
        let r = reaches(&[100, 300, 0], 256 << 20, STREAMS_AT_ONCE, MIN_REQUEST);
        let mib = 1 << 20;
        assert_eq!(
            r[0],
            Reach {
                request: 8 * mib,
                ahead: 16 * mib
            }
        );
        assert_eq!(
            r[1],
            Reach {
                request: MAX_REQUEST,
                ahead: 48 * mib
            }
        );
        let least = Reach {
            request: MIN_REQUEST,
            ahead: 2 * MIN_REQUEST,
        };
        assert_eq!(r[2], least);
        assert_eq!(reaches(&[1], 1, STREAMS_AT_ONCE, MIN_REQUEST), vec![least]);
    }
}
