//! The scheduler: one mutex-guarded [`State`] shared by the I/O threads, the decode threads and
//! the consumer, in four rooms by concern:
//!
//! - [`admission`]: what may start — new tasks from the plan and follow-up reads, against the
//!   budget and the task limit;
//! - [`io`]: the I/O threads, serving the read queue and handing a finished fetch to decoding;
//! - [`decode`]: the decode threads, choosing the next job and checking what it decoded;
//! - [`output`]: the pieces waiting for the consumer, handed out in plan order, and the error
//!   that ends them.
//!
//! A task moves through: *staged* (pulled from the plan, waiting for admission) → *fetching*
//! (charged; its reads are in the read queue or in flight) → *ready* (all bytes in; in the
//! decode queue) → *decoding* → either *finished* (its pieces wait for the consumer) or back to
//! *fetching* for the ranges a decoder asked for (`Decoded::NeedMore`, served ahead of new
//! tasks) or *split* into parts (`Decoded::Parts`) that decode on several threads and reach
//! the consumer piece by piece, in order. The budget a task was charged is released when the
//! consumer takes its last piece. The words are the crate's glossary (see the crate docs).

mod admission;
mod decode;
mod io;
mod output;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::Instant;

use arrow_schema::SchemaRef;
use arrowfeed_traits::{
    ByteSource, MemoryLedger, PartDecoder, ReadTask, Result, ScanPlan, TaskDecoder, spawn_thread,
};
use bytes::Bytes;

use crate::ScanMetrics;
use admission::FollowUp;
use decode::DecodeKey;
use io::ReadKey;
use output::{Output, OutputKey};

/// Settings the engine runs with (validated by the builder).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) io_parallelism: usize,
    pub(crate) decode_parallelism: usize,
    pub(crate) budget: u64,
    pub(crate) coalesce_gap: u64,
    pub(crate) max_request: u64,
    pub(crate) max_tasks: usize,
    /// Fetched bytes count against the budget: the source's reads are fresh allocations, not
    /// views of a map (see `ByteSource::reads_are_views`). Filled in when the scan starts.
    pub(crate) fetch_counts: bool,
    /// The bytes the plan's decoders hold beyond the engine's fetches, if they read any
    /// themselves (`ScanPlan::fit_fetches`): counted as held. Filled in when the scan starts.
    pub(crate) outside: Option<Arc<arrowfeed_traits::OwnReads>>,
}

impl Config {
    /// What the plan's decoders hold of bytes they read themselves, now.
    pub(crate) fn outside_bytes(&self) -> u64 {
        (self.outside.as_ref()).map_or(0, |g| g.held.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// The reads of one fetch: a task's first, or a follow-up.
struct Fetch {
    /// The ranges the decoder asked for, in its order.
    ranges: Vec<Range<u64>>,
    /// The reads (after coalescing and splitting), sorted by start, with their bytes once in.
    reads: Vec<(Range<u64>, Option<Bytes>)>,
    /// Reads not in yet.
    remaining: usize,
}

/// A part of a split task.
struct Part {
    rows: Range<u64>,
    /// Taken by the decode thread that runs it; back between its pieces.
    decoder: Option<Box<dyn PartDecoder>>,
    /// Pieces decoded so far, and their rows.
    pieces: usize,
    rows_out: u64,
    done: bool,
}

/// A task admitted from the plan, known by its number in plan order (`seq`).
struct Task {
    priority: u64,
    rows: Range<u64>,
    /// Budget held until the consumer takes the task's last piece.
    charge: u64,
    decoder: Option<Box<dyn TaskDecoder>>,
    fetch: Option<Fetch>,
    /// Ranges a decoder asked for, waiting for admission.
    wanted: Option<Vec<Range<u64>>>,
    /// The bytes of a finished fetch, waiting for a decode thread.
    ready: Option<Vec<Bytes>>,
    /// The parts the decoder split the task into; empty while it is not split.
    parts: Vec<Part>,
    /// Outputs at or after this part are dropped: the part there failed.
    end_part: usize,
    /// True once every piece the consumer will take (batches or the error) is in `done`.
    finished: bool,
}

impl Task {
    fn admitted(task: ReadTask) -> (Self, Vec<Range<u64>>) {
        let t = Self {
            priority: task.priority,
            rows: task.rows,
            charge: 0,
            decoder: Some(task.decoder),
            fetch: None,
            wanted: None,
            ready: None,
            parts: Vec::new(),
            end_part: usize::MAX,
            finished: false,
        };
        (t, task.ranges)
    }

    /// The number of outputs (a part's pieces, or the whole task's) the consumer takes from
    /// this task, counting each part once.
    fn outputs(&self) -> usize {
        self.parts.len().clamp(1, self.end_part.saturating_add(1))
    }

    fn update_finished(&mut self) {
        let until = self.end_part.min(self.parts.len());
        self.finished = self.parts[..until].iter().all(|p| p.done);
    }
}

pub(crate) struct State {
    plan: Option<Box<dyn ScanPlan>>,
    staged: Option<ReadTask>,
    next_seq: u64,
    /// Set once the plan has ended (or failed): the number of tasks there are.
    end_seq: Option<u64>,
    /// The task whose pieces the consumer takes next, which of its parts (0 for a task that
    /// is not split) and which piece of that part.
    head: OutputKey,
    tasks: HashMap<u64, Task>,
    followups: BinaryHeap<Reverse<FollowUp>>,
    read_queue: BinaryHeap<Reverse<ReadKey>>,
    decode_queue: BinaryHeap<Reverse<DecodeKey>>,
    /// Pieces waiting for the consumer.
    done: HashMap<OutputKey, Output>,
    charged: u64,
    /// Stop everything: the consumer has gone.
    cancelled: bool,
    waker: Option<Waker>,
    metrics: ScanMetrics,
    /// I/O threads started, how many of them wait for work, and when one last started a read.
    io_threads: usize,
    io_idle: usize,
    read_started: Instant,
    /// Every thread started, joined by whoever cancels the scan.
    threads: Vec<JoinHandle<()>>,
    /// Outputs (unsplit tasks and parts) that decoding has started and the consumer has not
    /// finished taking: what [`decode::DECODE_AHEAD_PER_THREAD`] bounds.
    open: usize,
    /// The decoded batches in `done`, each allocation counted once.
    decoded: MemoryLedger,
    /// Decode jobs running.
    running: usize,
    /// The largest piece decoded so far: what a job started ahead of the consumer is assumed
    /// to add.
    piece_estimate: u64,
}

/// Condition variables, kept outside the state so they can be signalled while it is locked.
struct Signals {
    io: Condvar,
    decode: Condvar,
    out: Condvar,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    signals: Signals,
    source: Arc<dyn ByteSource>,
    schema: SchemaRef,
    config: Config,
}

impl State {
    /// Memory the scan holds by the budget's count: decoded batches waiting for the consumer,
    /// the fetched bytes of tasks not yet consumed when they are the scan's own, and what the
    /// plan's decoders read themselves.
    fn held(&self, config: &Config) -> u64 {
        let fetched = if config.fetch_counts { self.charged } else { 0 };
        (self.decoded.bytes() as u64)
            .saturating_add(fetched)
            .saturating_add(config.outside_bytes())
    }

    /// Records the memory held after a change, for [`ScanMetrics::peak_memory_bytes`].
    fn note_memory(&mut self, config: &Config) {
        let held = self.held(config);
        self.metrics.peak_memory_bytes = self.metrics.peak_memory_bytes.max(held);
    }

    fn wake_consumer(&mut self, signals: &Signals) {
        signals.out.notify_all();
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// True once no thread will be given anything more to do.
    fn work_over(&self) -> bool {
        self.cancelled || (self.end_seq.is_some() && self.tasks.values().all(|t| t.finished))
    }
}

impl Shared {
    pub(crate) fn new(
        source: Arc<dyn ByteSource>,
        plan: Box<dyn ScanPlan>,
        config: Config,
    ) -> Arc<Self> {
        let schema = plan.schema();
        Arc::new(Self {
            state: Mutex::new(State {
                plan: Some(plan),
                staged: None,
                next_seq: 0,
                end_seq: None,
                head: OutputKey::default(),
                tasks: HashMap::new(),
                followups: BinaryHeap::new(),
                read_queue: BinaryHeap::new(),
                decode_queue: BinaryHeap::new(),
                done: HashMap::new(),
                charged: 0,
                cancelled: false,
                waker: None,
                metrics: ScanMetrics::default(),
                io_threads: 0,
                io_idle: 0,
                read_started: Instant::now(),
                threads: Vec::new(),
                open: 0,
                decoded: MemoryLedger::default(),
                running: 0,
                piece_estimate: 0,
            }),
            signals: Signals {
                io: Condvar::new(),
                decode: Condvar::new(),
                out: Condvar::new(),
            },
            source,
            schema,
            config,
        })
    }

    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // User code runs under `catch_panic`: the decoders and the source outside the lock, the
        // plan's `next` inside it (admission pulls tasks while it holds the state). A panic that
        // escapes while the lock is held can only come from a bug in this module; the state
        // stays usable either way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the decode threads and one I/O thread, and admits the first work. More I/O
    /// threads start when reads turn out slow (see [`io::SLOW_READ`]).
    ///
    /// On an error, the threads already started stay until [`cancel`](Self::cancel).
    pub(crate) fn start(self: &Arc<Self>) -> Result<()> {
        let mut st = self.lock();
        for i in 0..self.config.decode_parallelism {
            let s = self.clone();
            let handle = spawn_thread(format!("arrowfeed-decode-{i}"), move || s.decode_loop())?;
            st.threads.push(handle);
        }
        self.spawn_io(&mut st)?;
        st.schedule(self);
        Ok(())
    }

    /// Stops scheduling, drops queued work and releases the budget; threads finish what they
    /// hold and exit. Returns the threads for the caller to join (no thread starts after
    /// this).
    pub(crate) fn cancel(&self) -> Vec<JoinHandle<()>> {
        let mut st = self.lock();
        st.cancelled = true;
        st.plan = None;
        st.staged = None;
        st.read_queue.clear();
        st.decode_queue.clear();
        st.followups.clear();
        st.tasks.clear();
        st.done.clear();
        st.decoded = MemoryLedger::default();
        st.charged = 0;
        let threads = std::mem::take(&mut st.threads);
        drop(st);
        self.signals.io.notify_all();
        self.signals.decode.notify_all();
        self.signals.out.notify_all();
        threads
    }

    /// The counters so far, with the reads the plan's decoders made themselves.
    pub(crate) fn metrics(&self) -> ScanMetrics {
        let mut m = self.lock().metrics.clone();
        if let Some(own) = &self.config.outside {
            let load =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            m.requests += load(&own.requests);
            m.bytes_read += load(&own.bytes);
        }
        m
    }
}
