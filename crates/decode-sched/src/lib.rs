//! The engine that runs a scan plan: prioritised, coalesced, budgeted I/O over any
//! [`ByteSource`], decoding in parallel on CPU threads, and output in the plan's order in
//! batches of exactly the requested size.
//!
//! Part of [arrowfeed](https://crates.io/crates/arrowfeed); depends only on `arrowfeed-traits`
//! among the arrowfeed crates. The Parquet and Arrow IPC plans live in `arrowfeed-core-source`
//! (`ParquetScanPlan`, `IpcScanPlan`); the facade's `arrowfeed::scan` puts the two together.
//!
//! A reader that fetches and then decodes, one after the other, leaves the CPU idle while it
//! waits for bytes and the storage idle while it decodes; over object storage, where a request
//! takes milliseconds, it crawls. [`Scan`] overlaps the two:
//!
//! - **I/O** runs on up to `io_parallelism` threads (one at first; more once reads prove
//!   slow). Requests are served lowest priority number
//!   first (plans use the row position, so rows complete in order); ranges closer than
//!   `coalesce_gap` become one request and ranges longer than `max_request_bytes` are split
//!   into parallel requests.
//! - **A memory budget** bounds what the scan holds: the decoded batches waiting for the
//!   consumer (each allocation counted once), the decoding in progress, and the fetched bytes
//!   of tasks not yet consumed (charged when the reads are issued, released when the consumer
//!   takes the task's last batches) unless the source's reads are views of a memory map.
//!   Reads and decode work start only while they fit. The work the consumer waits for — its
//!   task's reads, the decoding of its next piece — always starts, even past the budget; that
//!   rule is what keeps a budget smaller than one task or one piece from deadlocking. (For
//!   plans whose priorities follow row order, as the core-source plans' do, that task holds
//!   the lowest priority in flight.)
//! - **Decoding** runs on `decode_parallelism` threads; results are put back in plan order.
//!   When a decoder asks for more bytes (`Decoded::NeedMore`: offsets first, then values) the
//!   reads jump the queue, since the task already holds budget. A decoder may split its task
//!   into row parts (`Decoded::Parts`): the threads then work on the task the consumer waits
//!   for together, ahead of later tasks. A part may decode a piece at a time
//!   (`PartDecoded::More`); each piece is handed on as soon as the pieces before it are taken,
//!   so little decoded data waits and it is still warm in cache when taken. Decoding starts a
//!   new task or part only while fewer than two per decode thread are open; started parts and
//!   the task the consumer waits for always go on.
//! - **Exact batches**: output batches have `batch_size` rows whatever the row-group, page or
//!   IPC batch sizes (the last may be short). Left unset, the batch size is fitted to the
//!   budget before the first task: 8,192 rows, or fewer when the plan estimates they would
//!   take more than an eighth of it ([`Scan::batch_size`]). Inside a decoded batch they are
//!   zero-copy slices; only a batch that straddles two is copied.
//! - **Errors** (a read, a decoder, the plan; panics included) arrive after the batches before
//!   them and end the output. **Dropping** the reader or stream stops scheduling, frees the
//!   budget and joins the threads: no task outlives it.
//!
//! # Words
//! One word per concept, in this crate's code and docs:
//!
//! | word | meaning |
//! |---|---|
//! | *plan*, *task* | a [`ScanPlan`] yields [`ReadTask`](arrowfeed_traits::ReadTask)s, numbered in plan order |
//! | *range* | bytes a decoder asks for |
//! | *read* | one request to the source: ranges closer than `coalesce_gap` are one read, a range longer than `max_request_bytes` several |
//! | *fetch* | the reads of a task's ranges: its first, or a *follow-up* (`Decoded::NeedMore`) |
//! | *charge* | the bytes a task's fetches asked for, held against the budget until the consumer takes its last piece |
//! | *part* | a row range of a split task (`Decoded::Parts`), decoded on any thread |
//! | *piece* | what the consumer takes at once: an unsplit task's batches, or one step of a part (`PartDecoded`) |
//! | *output* | a task or a part: what the decode-ahead limit counts while it is started and not yet taken |
//! | *head* | the piece the consumer takes next, and its task |
//!
//! (*Chunk* is not one of them: in Parquet it names a column chunk.)
//!
//! # Example
//! A plan of two tasks over bytes in memory, each task's decoder turning its bytes into rows:
//! ```
//! use std::sync::Arc;
//! use arrow_array::{cast::AsArray, types::UInt8Type, RecordBatch, UInt8Array};
//! use arrow_schema::{DataType, Field, Schema, SchemaRef};
//! use arrowfeed_decode_sched::Scan;
//! use arrowfeed_traits::{Decoded, MemorySource, ReadTask, Result, ScanPlan};
//! use bytes::Bytes;
//!
//! struct Plan { schema: SchemaRef, tasks: std::vec::IntoIter<ReadTask> }
//! impl Iterator for Plan {
//!     type Item = Result<ReadTask>;
//!     fn next(&mut self) -> Option<Self::Item> { self.tasks.next().map(Ok) }
//! }
//! impl ScanPlan for Plan {
//!     fn schema(&self) -> SchemaRef { self.schema.clone() }
//! }
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("byte", DataType::UInt8, false)]));
//! let task = |start: u64, len: u64| {
//!     let schema = schema.clone();
//!     ReadTask {
//!         ranges: vec![start..start + len],
//!         priority: start,
//!         rows: start..start + len,
//!         decoder: Box::new(move |bytes: Vec<Bytes>| -> Result<Decoded> {
//!             let col = UInt8Array::from(bytes[0].to_vec());
//!             Ok(Decoded::Batches(vec![RecordBatch::try_new(schema, vec![Arc::new(col)])?]))
//!         }),
//!     }
//! };
//! let plan = Plan { schema: schema.clone(), tasks: vec![task(0, 6), task(6, 4)].into_iter() };
//! let source = MemorySource::new("memory", Bytes::from_static(b"abcdefghij"));
//!
//! let reader = Scan::new(source, plan).batch_size(4).decode_parallelism(2).reader()?;
//! let batches: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>()?;
//! let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
//! assert_eq!(sizes, [4, 4, 2]);
//! assert_eq!(batches[1].column(0).as_primitive::<UInt8Type>().values().to_vec(), b"efgh");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod latency;
mod reads;
mod rebatch;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{ByteSource, Error, Result, ScanPlan};
use futures::Stream;

pub use latency::LatencySource;

use engine::{Config, Shared};
use rebatch::Rebatch;

/// The default memory budget: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;
/// Rows per output batch when the caller sets none (then fitted to the budget: see
/// [`Scan::batch_size`]); the one the Parquet plans decode by default too.
pub use arrowfeed_traits::DEFAULT_BATCH_SIZE;
/// The share of the memory budget an output batch may take when the scan picks the batch
/// size, as a divisor: an eighth. The consumer's batch, the decoders' and the batches waiting
/// then make a few eighths, and the rest is room for what the budget's count does not see
/// (decompressed pages, memory the allocator keeps). On `ml.parquet` of 256,000 rows at a
/// 16 MiB budget, 8,192-row batches (15.8 MB) peaked at 94-126 MiB of anonymous memory, and
/// 1,024-row ones at 66-86 MiB, in the same time.
pub const BATCH_SHARE_OF_BUDGET: u64 = 8;
/// The share of the memory budget one task's fetched bytes may take, as a divisor, when the
/// source's reads are fresh memory: a quarter, which the plan is asked to keep to
/// ([`ScanPlan::fit_fetches`]: a Parquet row group larger than that is read a window at a
/// time, the windows of all such row groups adding up to about that much). What the plan's
/// decoders hold so is counted as held, and taken from the decoded batches' half of the
/// budget.
pub const FETCH_SHARE_OF_BUDGET: u64 = 4;
/// How long an allocator that keeps freed memory should wait before giving it back to the OS,
/// in milliseconds, for a process scanning within `budget`: 10 s at the default budget and
/// above (giving it back sooner made each batch fault in fresh, zeroed pages), and below it a
/// millisecond per 1.6 MiB of budget (10 ms at 16 MiB, 40 ms at 64 MiB), never 0. What the CLI
/// and the Python module set mimalloc's `purge_delay` to.
///
/// Scanning `ml.parquet` of 256,000 rows over S3 (SeaweedFS on loopback) at a 16 MiB budget,
/// 10 s of delay peaked at 109-131 MiB of anonymous memory, 100 ms at 92-101 and 10 ms at 78-87
/// (1.2-1.5 s against 1.4-1.6 s); at 64 MiB, 10 s peaked at 129-162 MiB, 100 ms at 117-126, 10
/// ms at 104-108. From the memory map at 16 MiB: 62-68 MiB with 10 s, 45-47 with 10 ms (0.29
/// against 0.35 s).
///
/// ```
/// use arrowfeed_decode_sched::{DEFAULT_MEMORY_BUDGET, freed_memory_delay_ms};
/// assert_eq!(freed_memory_delay_ms(DEFAULT_MEMORY_BUDGET), 10_000);
/// assert_eq!(freed_memory_delay_ms(16 << 20), 10);
/// assert_eq!(freed_memory_delay_ms(64 << 20), 40);
/// assert_eq!(freed_memory_delay_ms(1), 1); // 0 would make mimalloc purge at once
/// ```
pub fn freed_memory_delay_ms(budget: usize) -> u64 {
    if budget >= DEFAULT_MEMORY_BUDGET {
        return 10_000;
    }
    ((budget as u64).saturating_mul(10) / (16 << 20)).max(1)
}
/// The default gap below which two ranges are read as one request: 1 MiB.
pub const DEFAULT_COALESCE_GAP: u64 = 1 << 20;
/// The default largest request for sources that are not blocking (remote-like): 16 MiB.
pub const DEFAULT_MAX_REQUEST: u64 = 16 << 20;

/// Configures and starts a scan: a [`ByteSource`], a [`ScanPlan`] and how to run them.
///
/// | setting | default |
/// |---|---|
/// | [`batch_size`](Self::batch_size) | [`DEFAULT_BATCH_SIZE`] rows, fewer to fit the budget |
/// | [`io_parallelism`](Self::io_parallelism) | 8 requests in flight |
/// | [`decode_parallelism`](Self::decode_parallelism) | the number of CPUs |
/// | [`memory_budget`](Self::memory_budget) | [`DEFAULT_MEMORY_BUDGET`] |
/// | [`coalesce_gap`](Self::coalesce_gap) | [`DEFAULT_COALESCE_GAP`] |
/// | [`max_request_bytes`](Self::max_request_bytes) | unlimited for blocking (local) sources, [`DEFAULT_MAX_REQUEST`] otherwise |
/// | [`max_tasks_in_flight`](Self::max_tasks_in_flight) | 256 |
pub struct Scan {
    source: Arc<dyn ByteSource>,
    plan: Box<dyn ScanPlan>,
    /// Unset: [`DEFAULT_BATCH_SIZE`], fitted to the budget when the scan starts.
    batch_size: Option<usize>,
    /// Unset: chosen by the source's kind when the scan starts.
    max_request: Option<u64>,
    /// The engine's settings; `max_request` is filled in when the scan starts.
    config: Config,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("source", &self.source.name())
            .field("batch_size", &self.batch_size)
            .field("max_request", &self.max_request)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Scan {
    /// A scan of `plan` reading through `source`, with the default settings.
    pub fn new(source: impl ByteSource + 'static, plan: impl ScanPlan + 'static) -> Self {
        Self::from_parts(Arc::new(source), Box::new(plan))
    }

    /// As [`new`](Self::new), for a source and plan already behind pointers.
    pub fn from_parts(source: Arc<dyn ByteSource>, plan: Box<dyn ScanPlan>) -> Self {
        Self {
            source,
            plan,
            batch_size: None,
            max_request: None,
            config: Config {
                io_parallelism: 8,
                decode_parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
                budget: DEFAULT_MEMORY_BUDGET as u64,
                coalesce_gap: DEFAULT_COALESCE_GAP,
                max_request: u64::MAX,
                max_tasks: 256,
                fetch_counts: true,
                outside: None,
            },
        }
    }

    /// Rows per output batch (the last may be short). At least 1.
    ///
    /// Unset, batches have [`DEFAULT_BATCH_SIZE`] rows, or fewer when the plan estimates that
    /// so many would take more than [`BATCH_SHARE_OF_BUDGET`] of the memory budget
    /// ([`ScanPlan::fit_batch_rows`]; never fewer than
    /// [`MIN_FITTED_ROWS`](arrowfeed_traits::MIN_FITTED_ROWS)). Every batch but the last then
    /// has [`ScanReader::batch_rows`] rows. A batch size set here is kept whatever the budget.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = Some(rows);
        self
    }

    /// Requests in flight at once (one I/O thread each). At least 1.
    pub fn io_parallelism(mut self, n: usize) -> Self {
        self.config.io_parallelism = n;
        self
    }

    /// Decode threads. At least 1.
    pub fn decode_parallelism(mut self, n: usize) -> Self {
        self.config.decode_parallelism = n;
        self
    }

    /// Bytes the scan may hold: decoded batches waiting for the consumer, the decoding in
    /// progress and the consumer's batch (each reckoned as the largest decoded piece so far),
    /// and fetched bytes of tasks not yet consumed unless the source's reads are views of a
    /// map ([`ByteSource::reads_are_views`]). Exceeded only by the work the consumer waits for
    /// (see the crate docs), so a budget of 1 byte reads and decodes one piece at a time.
    ///
    /// What it does not see: the decoders' own working buffers (decompressed pages, the
    /// parquet crate's level and value buffers) and memory the allocator keeps after it is
    /// freed. Half the budget is left for those: decoding runs ahead of the consumer only
    /// while the decoded bytes fit in the other half. And when the batch size is left unset,
    /// a batch takes at most about an eighth of the budget.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.config.budget = bytes as u64;
        self
    }

    /// Ranges of one task closer than this are read as one request (the bytes between are read
    /// and dropped). 0 merges only touching ranges.
    pub fn coalesce_gap(mut self, bytes: u64) -> Self {
        self.config.coalesce_gap = bytes;
        self
    }

    /// Longer reads are split into parallel requests of at most this size. At least 1.
    pub fn max_request_bytes(mut self, bytes: u64) -> Self {
        self.max_request = Some(bytes);
        self
    }

    /// Tasks admitted and not yet consumed, at most (bounds the bookkeeping for plans of many
    /// tiny tasks). At least 1.
    pub fn max_tasks_in_flight(mut self, n: usize) -> Self {
        self.config.max_tasks = n;
        self
    }

    /// The schema of the output.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// Starts the threads and returns the blocking reader.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a setting that is zero (batch size, parallelism,
    /// memory budget, tasks in flight or request size);
    /// [`Error::Io`] if a thread cannot be started.
    pub fn reader(mut self) -> Result<ScanReader> {
        for (what, v) in [
            ("batch_size", self.batch_size.unwrap_or(1)),
            ("io_parallelism", self.config.io_parallelism),
            ("decode_parallelism", self.config.decode_parallelism),
            ("max_tasks_in_flight", self.config.max_tasks),
        ] {
            if v == 0 {
                return Err(Error::invalid_argument(format!(
                    "{what} must be at least 1"
                )));
            }
        }
        if self.config.budget == 0 {
            return Err(Error::invalid_argument("memory_budget must be at least 1"));
        }
        if self.max_request == Some(0) {
            return Err(Error::invalid_argument(
                "max_request_bytes must be at least 1",
            ));
        }
        self.config.fetch_counts = !self.source.reads_are_views();
        if self.config.fetch_counts {
            self.config.outside = self
                .plan
                .fit_fetches(self.config.budget / FETCH_SHARE_OF_BUDGET);
        }
        self.config.max_request = self.max_request.unwrap_or(if self.source.is_blocking() {
            u64::MAX
        } else {
            DEFAULT_MAX_REQUEST
        });
        let batch_rows = match self.batch_size {
            Some(rows) => rows,
            None => self.plan.fit_batch_rows(
                DEFAULT_BATCH_SIZE,
                self.config.budget / BATCH_SHARE_OF_BUDGET,
            ),
        };
        let shared = Shared::new(self.source, self.plan, self.config);
        let schema = shared.schema().clone();
        let reader = ScanReader {
            batch_rows,
            rebatch: Rebatch::new(schema, batch_rows),
            shared,
            error: None,
            input_done: false,
            finished: false,
        };
        reader.shared.start()?;
        Ok(reader)
    }

    /// Starts the threads and returns the async stream.
    ///
    /// # Errors
    /// As [`reader`](Self::reader).
    pub fn stream(self) -> Result<ScanStream> {
        Ok(ScanStream {
            reader: self.reader()?,
        })
    }
}

/// Counters of a scan so far, from [`ScanReader::metrics`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ScanMetrics {
    /// Tasks admitted.
    pub tasks: u64,
    /// Physical requests made (after coalescing and splitting).
    pub requests: u64,
    /// Follow-up reads decoders asked for.
    pub follow_ups: u64,
    /// Parts that decoders split tasks into (`Decoded::Parts`), decoded in parallel.
    pub parts: u64,
    /// Decoded outputs handed to the consumer: a task that is not split is one, a part one
    /// per piece it decoded in (`PartDecoded::More`).
    pub pieces: u64,
    /// I/O threads started: one, and up to `io_parallelism` once reads are slow enough for
    /// more threads to pay (a scan of memory-mapped data in the page cache stays on one).
    pub io_threads: u64,
    /// Bytes the decoders asked for.
    pub bytes_requested: u64,
    /// Bytes read from the source (coalescing reads gaps too).
    pub bytes_read: u64,
    /// Time spent in reads, summed over the I/O threads.
    pub io_time: Duration,
    /// Time spent decoding, summed over the decode threads.
    pub decode_time: Duration,
    /// Time the consumer waited for the next task's batches.
    pub consumer_wait: Duration,
    /// The most budget charged at once.
    pub peak_budget_bytes: u64,
    /// The most budget charged at once by tasks other than the one the consumer waited for:
    /// never above the budget.
    pub peak_budget_bytes_beyond_head: u64,
    /// The most memory held at once by the budget's count: decoded batches waiting for the
    /// consumer (each allocation once, `batch_memory_size`), and fetched bytes of tasks not
    /// yet consumed unless the source's reads are views of a map. At most the budget plus the
    /// task and the decoded piece the consumer waits for, plus what decode jobs started ahead
    /// decoded beyond the largest piece seen before them.
    pub peak_memory_bytes: u64,
}

/// The output of a [`Scan`] as a blocking iterator (and `RecordBatchReader`).
///
/// Dropping it stops the scan and joins its threads (each finishes the read or decode it is
/// in, then exits).
pub struct ScanReader {
    shared: Arc<Shared>,
    batch_rows: usize,
    rebatch: Rebatch,
    error: Option<Error>,
    input_done: bool,
    finished: bool,
}

impl std::fmt::Debug for ScanReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanReader")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ScanReader {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.shared.schema().clone()
    }

    /// Rows in every batch but the last: the scan's batch size, or the one it fitted to the
    /// memory budget (see [`Scan::batch_size`]).
    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// Counters so far.
    pub fn metrics(&self) -> ScanMetrics {
        self.shared.metrics()
    }

    /// The next batch, blocking until it is ready; `Ok(None)` at the end.
    ///
    /// # Errors
    /// The first error of the scan (after the batches before it); the output ends with it.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match self.poll_batch(None) {
            Poll::Ready(r) => r.transpose(),
            // Without a waker the engine blocks instead of returning Pending.
            Poll::Pending => Ok(None),
        }
    }

    fn poll_batch(&mut self, waker: Option<&Waker>) -> Poll<Option<Result<RecordBatch>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            let short = self.input_done || self.error.is_some();
            match self.rebatch.take(short) {
                Ok(Some(b)) => return Poll::Ready(Some(Ok(b))),
                Ok(None) => {}
                Err(e) => {
                    self.stop();
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if let Some(e) = self.error.take() {
                self.stop();
                return Poll::Ready(Some(Err(e)));
            }
            if self.input_done {
                self.stop();
                return Poll::Ready(None);
            }
            match self.shared.next_output(waker) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => self.input_done = true,
                Poll::Ready(Some(Ok(batches))) => {
                    batches.into_iter().for_each(|b| self.rebatch.push(b))
                }
                Poll::Ready(Some(Err(e))) => self.error = Some(e),
            }
        }
    }

    /// Ends the scan: no more scheduling, budget freed, threads joined.
    fn stop(&mut self) {
        self.finished = true;
        for t in self.shared.cancel() {
            // A thread's own panics are caught where user code runs; nothing to report here.
            let _ = t.join();
        }
    }

    /// The same scan as an async stream.
    pub fn into_stream(self) -> ScanStream {
        ScanStream { reader: self }
    }
}

impl Drop for ScanReader {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Iterator for ScanReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(Error::into_arrow).transpose()
    }
}

impl RecordBatchReader for ScanReader {
    fn schema(&self) -> SchemaRef {
        ScanReader::schema(self)
    }
}

/// The output of a [`Scan`] as a `Stream` that never blocks the executor: when the next batch
/// is not ready it registers the waker and returns `Pending`.
///
/// Dropping it stops the scan and joins its threads, as [`ScanReader`] does (which can block
/// the dropping thread for the length of one read or decode).
#[derive(Debug)]
pub struct ScanStream {
    reader: ScanReader,
}

impl ScanStream {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.reader.schema()
    }

    /// Counters so far.
    pub fn metrics(&self) -> ScanMetrics {
        self.reader.metrics()
    }
}

impl Stream for ScanStream {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.reader
            .poll_batch(Some(cx.waker()))
            .map(|r| r.map(|r| r.map_err(Error::into_arrow)))
    }
}
