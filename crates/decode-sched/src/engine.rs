//! The scheduler: one mutex-guarded state shared by the I/O threads, the decode threads and the
//! consumer.
//!
//! A task moves through: *staged* (pulled from the plan, waiting for budget) → *fetching*
//! (charged; its physical reads are in the I/O queue or in flight) → *ready* (all bytes in; in
//! the decode queue) → *decoding* → either *done* (batches waiting for the consumer) or back to
//! *fetching* for the ranges a decoder asked for (`Decoded::NeedMore`, served ahead of new
//! tasks) or *split* into parts (`Decoded::Parts`) that decode on several threads and reach
//! the consumer one by one, in order. The budget a task was charged is released when the
//! consumer takes its last batches.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrowfeed_traits::{
    ByteSource, DecodePart, Decoded, Error, MemoryLedger, PartDecoded, PartDecoder, ReadTask,
    Result, ScanPlan, TaskDecoder, catch_panic,
};
use bytes::Bytes;

use crate::ScanMetrics;
use crate::reads::{assemble, plan_reads};

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
}

/// A physical read in the I/O queue. Ordered so that the smallest key is served first:
/// follow-up reads (class 0) before new tasks' reads (class 1), then by priority, then by plan
/// order.
type IoKey = Reverse<(u8, u64, u64, usize)>;

/// When reads wait, no I/O thread is idle and none has started a read for this long, more
/// I/O threads start (up to `io_parallelism`). Reads from memory (a mapped file in the page
/// cache) never keep the threads busy this long, so such scans run on one I/O thread; a slow
/// source reaches `io_parallelism` this long after its first read starts. Idle decode threads
/// check while reads wait (they wake this often then), as do I/O threads after each read.
const SLOW_READ: Duration = Duration::from_micros(250);

/// Outputs (tasks or parts) started and not yet taken by the consumer, at most, per decode
/// thread, before the threads only continue started parts and the head task's work. The
/// output the consumer waits for starts even past this cap, so when its read finishes last,
/// one more than the cap is open. Bounding
/// how far decoding runs ahead keeps the decoded data in a few outputs' worth of memory that
/// the allocator reuses, rather than fresh pages for the whole file: a scan whose budget admits
/// the whole file otherwise decodes far ahead of the consumer, and zeroing new pages cost up
/// to half of the CPU time (tpch.parquet from the CLI).
const DECODE_AHEAD_PER_THREAD: usize = 2;

struct Fetch {
    /// The ranges the decoder asked for, in its order.
    ranges: Vec<Range<u64>>,
    /// The physical reads, sorted by start, with their bytes once read.
    pieces: Vec<(Range<u64>, Option<Bytes>)>,
    remaining: usize,
}

/// A part of a split task.
struct Part {
    rows: Range<u64>,
    /// Taken by the decode thread that runs it; back between its pieces.
    decoder: Option<Box<dyn PartDecoder>>,
    /// Pieces decoded so far (each an output for the consumer), and their rows.
    chunks: usize,
    rows_out: u64,
    done: bool,
}

/// Decoded batches (or the error) waiting for the consumer: one piece of a part, or a whole
/// task that is not split.
struct Output {
    batches: Result<Vec<RecordBatch>>,
    /// The part's (or the task's) last piece.
    last: bool,
}

/// Decode work: the slot of a task in the decode queue. Slot 0 is the task's decoder, slot
/// `i + 1` its part `i`, so that a task's parts are served in order and ahead of later tasks.
type DecodeKey = Reverse<(u64, u64, usize)>;

/// Work a decode thread took from a task.
enum Job {
    /// The task's decoder, with its fetched bytes.
    Task {
        rows: Range<u64>,
        decoder: Box<dyn TaskDecoder>,
        bytes: Vec<Bytes>,
    },
    /// The next piece of one part of a split task.
    Part {
        index: usize,
        chunk: usize,
        rows: Range<u64>,
        rows_before: u64,
        decoder: Box<dyn PartDecoder>,
    },
}

/// What a decode thread brings back.
enum Outcome {
    Task(Result<Decoded>),
    /// Piece `chunk` of part `index`.
    Chunk {
        index: usize,
        chunk: usize,
        result: Result<Piece>,
    },
}

/// A decoded piece of a part.
struct Piece {
    batches: Vec<RecordBatch>,
    /// The part's rows so far.
    rows_out: u64,
    /// The decoder that continues the part, if it does.
    next: Option<Box<dyn PartDecoder>>,
}

impl Job {
    /// Takes the work at decode-queue `slot` from `task`, if it is still there.
    fn take(task: &mut Task, slot: usize) -> Option<Self> {
        match slot.checked_sub(1) {
            None => Some(Self::Task {
                rows: task.rows.clone(),
                decoder: task.decoder.take()?,
                bytes: task.ready.take()?,
            }),
            Some(index) => {
                let part = task.parts.get_mut(index)?;
                Some(Self::Part {
                    index,
                    chunk: part.chunks,
                    rows: part.rows.clone(),
                    rows_before: part.rows_out,
                    decoder: part.decoder.take()?,
                })
            }
        }
    }

    /// True for work whose output the consumer will take: a task's decoder, or a part's first
    /// piece (a part's later pieces continue an output already counted).
    fn starts_output(&self) -> bool {
        match self {
            Self::Task { .. } => true,
            Self::Part { chunk, .. } => *chunk == 0,
        }
    }
}

struct Task {
    priority: u64,
    rows: Range<u64>,
    /// Budget held until the consumer takes the task's batches.
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
    /// True once every output the consumer will take (batches or the error) is in `done`.
    finished: bool,
}

impl Task {
    /// The number of outputs the consumer takes from this task.
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
    /// The task whose batches the consumer takes next, which of its parts (0 for a task that
    /// is not split) and which piece of that part.
    head: u64,
    head_part: usize,
    head_chunk: usize,
    tasks: HashMap<u64, Task>,
    followups: BinaryHeap<Reverse<(u64, u64)>>,
    io_queue: BinaryHeap<IoKey>,
    decode_queue: BinaryHeap<DecodeKey>,
    /// Outputs waiting for the consumer, by task, part and piece.
    done: HashMap<(u64, usize, usize), Output>,
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
    /// finished taking: what [`DECODE_AHEAD_PER_THREAD`] bounds.
    open: usize,
    /// The decoded batches in `done`, each allocation counted once.
    decoded: MemoryLedger,
    /// Decode jobs running.
    running: usize,
    /// The largest decoded output seen: what a job started ahead of the consumer is assumed to
    /// add.
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

fn cost(ranges: &[Range<u64>]) -> u64 {
    ranges
        .iter()
        .map(|r| r.end.saturating_sub(r.start))
        .fold(0u64, u64::saturating_add)
}

impl State {
    /// Memory the scan holds by the budget's count: decoded batches waiting for the consumer,
    /// and the fetched bytes of tasks not yet consumed when they are the scan's own.
    fn held(&self, config: &Config) -> u64 {
        let fetched = if config.fetch_counts { self.charged } else { 0 };
        (self.decoded.bytes() as u64).saturating_add(fetched)
    }

    /// True when reads costing `cost` fit in the budget beside what the scan holds. Reads of
    /// views of a map cost no memory; only the task limit holds them back.
    fn fits(&self, config: &Config, cost: u64) -> bool {
        !config.fetch_counts || self.held(config).saturating_add(cost) <= config.budget
    }

    /// True when one more decode job started ahead of the consumer still fits in the budget
    /// beside what the scan holds, what the jobs running will add and the batch the consumer
    /// holds, each of those last taken as a [`piece_estimate`](Self::piece_estimate).
    fn decode_room(&self, config: &Config) -> bool {
        let pieces = self.running as u64 + 2;
        let room = self.piece_estimate.saturating_mul(pieces);
        self.held(config).saturating_add(room) <= config.budget
    }

    /// The decode-queue key of the job whose output the consumer waits for, if that output is
    /// not decoded yet.
    fn head_job(&self) -> Option<(u64, usize)> {
        if self
            .done
            .contains_key(&(self.head, self.head_part, self.head_chunk))
        {
            return None;
        }
        let whole = self.tasks.get(&self.head)?.parts.is_empty();
        Some((self.head, if whole { 0 } else { self.head_part + 1 }))
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

    /// Admits as much work as the budget allows: follow-up reads first, then new tasks from
    /// the plan, in plan order. A request of the task the consumer is waiting for (the head)
    /// is always admitted; that is what keeps a budget smaller than one task from deadlocking.
    fn schedule(&mut self, shared: &Shared) {
        if self.cancelled {
            return;
        }
        loop {
            // The head's follow-up first: the consumer is waiting for it, whatever its priority.
            // (Its entry in `followups` goes stale and is dropped below.)
            let head = self.head;
            if let Some(ranges) = self.tasks.get_mut(&head).and_then(|t| t.wanted.take()) {
                self.start_fetch(shared, head, ranges, 0);
                continue;
            }
            if let Some(&Reverse((_, seq))) = self.followups.peek() {
                let Some(wanted) = self.tasks.get(&seq).and_then(|t| t.wanted.as_deref()) else {
                    // Served already, or the task failed since it asked.
                    self.followups.pop();
                    continue;
                };
                if !self.fits(&shared.config, cost(wanted)) {
                    break;
                }
                self.followups.pop();
                let ranges = self
                    .tasks
                    .get_mut(&seq)
                    .and_then(|t| t.wanted.take())
                    .unwrap_or_default();
                self.start_fetch(shared, seq, ranges, 0);
                continue;
            }
            if self.end_seq.is_some() {
                break;
            }
            if self.staged.is_none() {
                let Some(plan) = self.plan.as_mut() else {
                    break;
                };
                let next = catch_panic(|| plan.next());
                match next {
                    Ok(Some(Ok(task))) => self.staged = Some(task),
                    Ok(None) => {
                        self.end_seq = Some(self.next_seq);
                        self.plan = None;
                        self.wake_consumer(&shared.signals);
                        break;
                    }
                    Ok(Some(Err(e))) => {
                        self.plan_failed(shared, e);
                        break;
                    }
                    Err(message) => {
                        let e = Error::corrupt(
                            shared.source.name(),
                            format!("the scan plan panicked: {message}"),
                        );
                        self.plan_failed(shared, e);
                        break;
                    }
                }
            }
            let seq = self.next_seq;
            let Some(task_cost) = self.staged.as_ref().map(|t| cost(&t.ranges)) else {
                break;
            };
            let room =
                self.fits(&shared.config, task_cost) && self.tasks.len() < shared.config.max_tasks;
            if !(seq == self.head || room) {
                break;
            }
            let Some(task) = self.staged.take() else {
                break;
            };
            self.next_seq += 1;
            self.metrics.tasks += 1;
            self.tasks.insert(
                seq,
                Task {
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
                },
            );
            self.start_fetch(shared, seq, task.ranges, 1);
        }
    }

    /// The plan failed while producing task number `next_seq`: that error is the last item.
    fn plan_failed(&mut self, shared: &Shared, e: Error) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.end_seq = Some(seq + 1);
        self.plan = None;
        self.done.insert(
            (seq, 0, 0),
            Output {
                batches: Err(e),
                last: true,
            },
        );
        self.wake_consumer(&shared.signals);
    }

    /// Charges `ranges` to task `seq` and queues their physical reads.
    fn start_fetch(&mut self, shared: &Shared, seq: u64, ranges: Vec<Range<u64>>, class: u8) {
        let c = cost(&ranges);
        self.charged = self.charged.saturating_add(c);
        let Some(task) = self.tasks.get_mut(&seq) else {
            return;
        };
        task.charge = task.charge.saturating_add(c);
        let priority = task.priority;
        let reads = plan_reads(
            &ranges,
            shared.config.coalesce_gap,
            shared.config.max_request,
        );
        self.metrics.bytes_requested += c;
        self.metrics.requests += reads.len() as u64;
        let n = reads.len();
        task.fetch = Some(Fetch {
            ranges,
            pieces: reads.into_iter().map(|r| (r, None)).collect(),
            remaining: n,
        });
        let head_charge = self.tasks.get(&self.head).map_or(0, |t| t.charge);
        self.metrics.peak_budget_bytes = self.metrics.peak_budget_bytes.max(self.charged);
        self.note_memory(&shared.config);
        self.metrics.peak_budget_bytes_beyond_head = self
            .metrics
            .peak_budget_bytes_beyond_head
            .max(self.charged - head_charge.min(self.charged));
        if n == 0 {
            self.fetch_complete(shared, seq);
            return;
        }
        for i in 0..n {
            self.io_queue.push(Reverse((class, priority, seq, i)));
        }
        if n == 1 {
            shared.signals.io.notify_one();
        } else {
            shared.signals.io.notify_all();
        }
    }

    /// All pieces of task `seq`'s fetch are in: hand its bytes to a decode thread.
    fn fetch_complete(&mut self, shared: &Shared, seq: u64) {
        let Some(task) = self.tasks.get_mut(&seq) else {
            return;
        };
        let Some(fetch) = task.fetch.take() else {
            return;
        };
        let pieces: Vec<(Range<u64>, Bytes)> = fetch
            .pieces
            .into_iter()
            .map(|(r, b)| (r, b.unwrap_or_default()))
            .collect();
        let mut bytes = Vec::with_capacity(fetch.ranges.len());
        for r in &fetch.ranges {
            match assemble(r, &pieces) {
                Some(b) => bytes.push(b),
                None => {
                    let e = Error::corrupt(
                        shared.source.name(),
                        format!(
                            "internal error: the reads did not cover {}..{}",
                            r.start, r.end
                        ),
                    );
                    self.fail(shared, seq, 0, e);
                    return;
                }
            }
        }
        task.ready = Some(bytes);
        self.decode_queue.push(Reverse((task.priority, seq, 0)));
        shared.signals.decode.notify_one();
    }

    /// Part `part` of task `seq` failed (part 0 for a task that is not split): its error is
    /// the last item of the output, and nothing after it is worth doing. Earlier parts of the
    /// task still decode; the consumer takes them first.
    fn fail(&mut self, shared: &Shared, seq: u64, part: usize, e: Error) {
        if self.end_seq.is_some_and(|end| seq >= end) {
            return;
        }
        if self.tasks.get(&seq).is_some_and(|t| part >= t.end_part) {
            return;
        }
        self.end_seq = Some(seq + 1);
        self.plan = None;
        self.staged = None;
        let later: Vec<u64> = self.tasks.keys().copied().filter(|&s| s > seq).collect();
        for s in later {
            if let Some(t) = self.tasks.remove(&s) {
                self.charged -= t.charge.min(self.charged);
            }
        }
        // The pieces of the failed part decoded before it still go out.
        let chunk = self
            .tasks
            .get(&seq)
            .and_then(|t| t.parts.get(part))
            .map_or(0, |p| p.chunks);
        self.done.retain(|&k, _| k < (seq, part, chunk));
        self.decoded = MemoryLedger::default();
        for out in self.done.values() {
            for b in out.batches.iter().flatten() {
                self.decoded.add(b);
            }
        }
        if let Some(t) = self.tasks.get_mut(&seq) {
            t.end_part = part;
            t.decoder = None;
            t.fetch = None;
            t.ready = None;
            t.wanted = None;
            for p in t.parts.iter_mut().skip(part) {
                p.decoder = None;
            }
            t.update_finished();
        }
        self.done.insert(
            (seq, part, chunk),
            Output {
                batches: Err(e),
                last: true,
            },
        );
        self.wake_consumer(&shared.signals);
        // Threads waiting for work that will never come must see the end.
        shared.signals.io.notify_all();
        shared.signals.decode.notify_all();
    }

    /// The next decode job to run.
    ///
    /// The first in the decode queue while the budget has room for one more job ahead
    /// ([`decode_room`](Self::decode_room)) and decoding is less far ahead of the consumer than
    /// [`DECODE_AHEAD_PER_THREAD`] allows; past that limit, the first that continues a started
    /// part or belongs to the task the consumer waits for. Without room in the budget, only the
    /// job the consumer waits for. That job always runs, which keeps the consumer moving, so
    /// neither limit can deadlock.
    fn next_decode(&mut self, config: &Config) -> Option<DecodeKey> {
        let head_job = self.head_job();
        let ahead = |k: &DecodeKey| {
            let Reverse((_, seq, slot)) = *k;
            head_job != Some((seq, slot))
        };
        let room = self.decode_room(config);
        let limit = config
            .decode_parallelism
            .saturating_mul(DECODE_AHEAD_PER_THREAD);
        if room && self.open < limit {
            return self.decode_queue.pop();
        }
        let (head, tasks) = (self.head, &self.tasks);
        let started = |seq: u64, slot: usize| {
            slot.checked_sub(1)
                .and_then(|i| tasks.get(&seq)?.parts.get(i))
                .is_some_and(|p| p.chunks > 0)
        };
        // The greatest `Reverse` key is the first in queue order.
        let first = self
            .decode_queue
            .iter()
            .filter(|k| {
                let Reverse((_, seq, slot)) = **k;
                !ahead(k) || (room && (seq == head || started(seq, slot)))
            })
            .max()
            .copied()?;
        self.decode_queue.retain(|k| *k != first);
        Some(first)
    }

    /// A piece of task `seq`'s output is decoded (its part, if split, already updated).
    fn finish_piece(
        &mut self,
        shared: &Shared,
        seq: u64,
        part: usize,
        chunk: usize,
        batches: Vec<RecordBatch>,
    ) {
        let Some(t) = self.tasks.get_mut(&seq) else {
            return;
        };
        if part >= t.end_part {
            return;
        }
        let last = t.parts.get(part).is_none_or(|p| p.done);
        t.update_finished();
        self.metrics.pieces += 1;
        let bytes: usize = batches.iter().map(|b| self.decoded.add(b)).sum();
        self.piece_estimate = self.piece_estimate.max(bytes as u64);
        self.note_memory(&shared.config);
        self.done.insert(
            (seq, part, chunk),
            Output {
                batches: Ok(batches),
                last,
            },
        );
        if seq == self.head {
            self.wake_consumer(&shared.signals);
        }
        if self.work_over() {
            shared.signals.io.notify_all();
            shared.signals.decode.notify_all();
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
                head: 0,
                head_part: 0,
                head_chunk: 0,
                tasks: HashMap::new(),
                followups: BinaryHeap::new(),
                io_queue: BinaryHeap::new(),
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
        // A panic while holding the lock can only come from a bug in this module (user code
        // runs outside it, under catch_unwind); the state stays usable either way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the decode threads and one I/O thread, and admits the first work. More I/O
    /// threads start when reads turn out slow (see [`SLOW_READ`]).
    ///
    /// On an error, the threads already started stay until [`cancel`](Self::cancel).
    pub(crate) fn start(self: &Arc<Self>) -> Result<()> {
        let spawn_error = |e| Error::io("<thread spawn>", e);
        let mut st = self.lock();
        for i in 0..self.config.decode_parallelism {
            let s = self.clone();
            let handle = std::thread::Builder::new()
                .name(format!("arrowfeed-decode-{i}"))
                .spawn(move || s.decode_loop())
                .map_err(spawn_error)?;
            st.threads.push(handle);
        }
        self.spawn_io(&mut st).map_err(spawn_error)?;
        st.schedule(self);
        Ok(())
    }

    /// Starts one more I/O thread (the caller holds the state lock).
    fn spawn_io(self: &Arc<Self>, st: &mut State) -> std::io::Result<()> {
        let s = self.clone();
        let handle = std::thread::Builder::new()
            .name(format!("arrowfeed-io-{}", st.io_threads))
            .spawn(move || s.io_loop())?;
        st.io_threads += 1;
        st.metrics.io_threads += 1;
        st.threads.push(handle);
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
        st.io_queue.clear();
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

    fn io_loop(self: &Arc<Self>) {
        let mut st = self.lock();
        loop {
            let job = loop {
                if st.work_over() {
                    return;
                }
                if let Some(Reverse((_, _, seq, piece))) = st.io_queue.pop() {
                    let range = st
                        .tasks
                        .get(&seq)
                        .and_then(|t| t.fetch.as_ref())
                        .and_then(|f| f.pieces.get(piece))
                        .map(|(r, _)| r.clone());
                    if let Some(r) = range {
                        st.read_started = Instant::now();
                        break (seq, piece, r);
                    }
                    continue;
                }
                st.io_idle += 1;
                st = self.signals.io.wait(st).unwrap_or_else(|p| p.into_inner());
                st.io_idle -= 1;
            };
            drop(st);
            let (seq, piece, range) = job;
            let started = Instant::now();
            let read = catch_panic(|| futures::executor::block_on(self.source.read(range.clone())));
            let elapsed = started.elapsed();
            let result = match read {
                Ok(Ok(b)) if b.len() as u64 == range.end - range.start => Ok(b),
                Ok(Ok(b)) => Err(Error::corrupt(
                    self.source.name(),
                    format!(
                        "the byte source returned {} bytes for the {}-byte range {}..{}",
                        b.len(),
                        range.end - range.start,
                        range.start,
                        range.end
                    ),
                )),
                Ok(Err(e)) => Err(e),
                Err(message) => Err(Error::corrupt(
                    self.source.name(),
                    format!("the byte source panicked: {message}"),
                )),
            };
            st = self.lock();
            st.metrics.io_time += elapsed;
            self.grow_io(&mut st);
            match result {
                Ok(bytes) => {
                    st.metrics.bytes_read += bytes.len() as u64;
                    let complete = st
                        .tasks
                        .get_mut(&seq)
                        .and_then(|t| t.fetch.as_mut())
                        .and_then(|f| {
                            let slot = f.pieces.get_mut(piece)?;
                            slot.1 = Some(bytes);
                            f.remaining -= 1;
                            Some(f.remaining == 0)
                        })
                        .unwrap_or(false);
                    if complete {
                        st.fetch_complete(self, seq);
                    }
                }
                Err(e) => {
                    if st.tasks.contains_key(&seq) {
                        st.fail(self, seq, 0, e);
                    }
                }
            }
        }
    }

    /// True when reads wait for an I/O thread and more may start.
    fn io_wanted(&self, st: &State) -> bool {
        !st.cancelled
            && st.io_idle == 0
            && !st.io_queue.is_empty()
            && st.io_threads < self.config.io_parallelism
    }

    /// Starts I/O threads for the waiting reads if the busy ones have been at it for
    /// [`SLOW_READ`].
    fn grow_io(self: &Arc<Self>, st: &mut State) {
        if !self.io_wanted(st) || st.read_started.elapsed() < SLOW_READ {
            return;
        }
        let room = self.config.io_parallelism - st.io_threads;
        for _ in 0..st.io_queue.len().min(room) {
            // Without another thread the scan still runs on the ones it has.
            if self.spawn_io(st).is_err() {
                break;
            }
        }
    }

    fn decode_loop(self: &Arc<Self>) {
        let mut st = self.lock();
        loop {
            let (seq, job) = loop {
                if st.work_over() {
                    return;
                }
                if let Some(Reverse((_, seq, slot))) = st.next_decode(&self.config) {
                    if let Some(job) = st.tasks.get_mut(&seq).and_then(|t| Job::take(t, slot)) {
                        if job.starts_output() {
                            st.open += 1;
                        }
                        st.running += 1;
                        break (seq, job);
                    }
                    continue;
                }
                if self.io_wanted(&st) {
                    st = self
                        .signals
                        .decode
                        .wait_timeout(st, SLOW_READ)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    self.grow_io(&mut st);
                } else {
                    st = self
                        .signals
                        .decode
                        .wait(st)
                        .unwrap_or_else(|p| p.into_inner());
                }
            };
            drop(st);
            let started = Instant::now();
            // Row counts and schemas are checked here, off the consumer's thread.
            let outcome = match job {
                Job::Task {
                    rows,
                    decoder,
                    bytes,
                } => Outcome::Task(match self.guard(|| decoder.decode(bytes)) {
                    Ok(Decoded::Batches(b)) => self
                        .check_batches(seq, &rows, 0, b, true)
                        .map(|(b, _)| Decoded::Batches(b)),
                    Ok(Decoded::Parts(p)) if p.is_empty() => self
                        .check_batches(seq, &rows, 0, Vec::new(), true)
                        .map(|(b, _)| Decoded::Batches(b)),
                    Ok(Decoded::Parts(p)) => self.check_parts(rows, p).map(Decoded::Parts),
                    other => other,
                }),
                Job::Part {
                    index,
                    chunk,
                    rows,
                    rows_before,
                    decoder,
                } => Outcome::Chunk {
                    index,
                    chunk,
                    result: self.guard(|| decoder.decode()).and_then(|d| {
                        let (batches, next) = match d {
                            PartDecoded::Done(b) => (b, None),
                            PartDecoded::More(b, next) => (b, Some(next)),
                        };
                        let (batches, rows_out) =
                            self.check_batches(seq, &rows, rows_before, batches, next.is_none())?;
                        Ok(Piece {
                            batches,
                            rows_out,
                            next,
                        })
                    }),
                },
            };
            let elapsed = started.elapsed();
            st = self.lock();
            st.metrics.decode_time += elapsed;
            st.running -= 1;
            if !st.tasks.contains_key(&seq) {
                continue;
            }
            match outcome {
                Outcome::Task(Ok(Decoded::Batches(batches))) => {
                    st.finish_piece(self, seq, 0, 0, batches);
                }
                Outcome::Chunk {
                    index,
                    chunk,
                    result:
                        Ok(Piece {
                            batches,
                            rows_out,
                            next,
                        }),
                } => {
                    let st = &mut *st;
                    let Some(t) = st.tasks.get_mut(&seq) else {
                        continue;
                    };
                    let priority = t.priority;
                    let Some(p) = t.parts.get_mut(index).filter(|_| index < t.end_part) else {
                        continue;
                    };
                    p.chunks = chunk + 1;
                    p.rows_out = rows_out;
                    match next {
                        Some(decoder) => {
                            p.decoder = Some(decoder);
                            st.decode_queue.push(Reverse((priority, seq, index + 1)));
                            self.signals.decode.notify_one();
                        }
                        None => p.done = true,
                    }
                    st.finish_piece(self, seq, index, chunk, batches);
                }
                Outcome::Task(Ok(Decoded::Parts(parts))) => {
                    // The parts are the outputs, counted as they start.
                    st.open = st.open.saturating_sub(1);
                    let Some(t) = st.tasks.get_mut(&seq) else {
                        continue;
                    };
                    let n = parts.len();
                    let priority = t.priority;
                    t.parts = parts
                        .into_iter()
                        .map(|p| Part {
                            rows: p.rows,
                            decoder: Some(p.decoder),
                            chunks: 0,
                            rows_out: 0,
                            done: false,
                        })
                        .collect();
                    t.update_finished();
                    st.metrics.parts += n as u64;
                    for i in 0..n {
                        st.decode_queue.push(Reverse((priority, seq, i + 1)));
                    }
                    self.signals.decode.notify_all();
                }
                Outcome::Task(Ok(Decoded::NeedMore { ranges, decoder })) => {
                    // Counted again when its decoder runs with the new bytes.
                    st.open = st.open.saturating_sub(1);
                    st.metrics.follow_ups += 1;
                    if let Some(t) = st.tasks.get_mut(&seq) {
                        t.decoder = Some(decoder);
                        t.wanted = Some(ranges);
                        let p = t.priority;
                        st.followups.push(Reverse((p, seq)));
                    }
                    st.schedule(self);
                }
                Outcome::Task(Err(e)) => st.fail(self, seq, 0, e),
                Outcome::Chunk {
                    index,
                    result: Err(e),
                    ..
                } => st.fail(self, seq, index, e),
            }
        }
    }

    /// Runs user code (a decoder), turning a panic into an error.
    fn guard<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match catch_panic(f) {
            Ok(r) => r,
            Err(message) => Err(Error::corrupt(
                self.source.name(),
                format!("a decoder panicked: {message}"),
            )),
        }
    }

    /// Checks that `parts` follow one another and cover `rows` exactly.
    fn check_parts(&self, rows: Range<u64>, parts: Vec<DecodePart>) -> Result<Vec<DecodePart>> {
        let mut at = Some(rows.start);
        for p in &parts {
            at = at
                .filter(|&a| p.rows.start == a && p.rows.end >= a)
                .map(|_| p.rows.end);
        }
        if at != Some(rows.end) {
            let got: Vec<Range<u64>> = parts.iter().map(|p| p.rows.clone()).collect();
            return Err(Error::corrupt(
                self.source.name(),
                format!(
                    "the task for rows {}..{} split into parts that do not cover them: {got:?}",
                    rows.start, rows.end
                ),
            ));
        }
        Ok(parts)
    }

    /// Checks a piece of decoded output for `rows` (a task's, or a part's after `before` rows
    /// of earlier pieces): the rows so far may not pass the end, a last piece must reach it and
    /// a piece with more to come must hold rows. Gives the batches the plan's schema object
    /// (they may carry an equal copy), rejecting batches whose columns do not match it. Returns
    /// the batches and the rows so far.
    fn check_batches(
        &self,
        seq: u64,
        rows: &Range<u64>,
        before: u64,
        batches: Vec<RecordBatch>,
        last: bool,
    ) -> Result<(Vec<RecordBatch>, u64)> {
        let got: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let len = rows.end.saturating_sub(rows.start);
        let after = before.saturating_add(got);
        if after > len || (last && after != len) || (!last && got == 0) {
            let what = if last { "in all" } else { "so far" };
            return Err(Error::corrupt(
                self.source.name(),
                format!(
                    "the task for rows {}..{} decoded {after} rows {what}",
                    rows.start, rows.end
                ),
            ));
        }
        let batches = batches
            .into_iter()
            .map(|b| {
                if Arc::ptr_eq(&b.schema(), &self.schema) {
                    return Ok(b);
                }
                let rows = b.num_rows();
                let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
                RecordBatch::try_new_with_options(self.schema.clone(), b.columns().to_vec(), &opts)
                    .map_err(|e| {
                        Error::corrupt(
                            self.source.name(),
                            format!("task {seq} decoded a batch that does not match the plan's schema: {e}"),
                        )
                    })
            })
            .collect::<Result<_>>()?;
        Ok((batches, after))
    }

    /// The next task's output, in plan order, once it is ready. `Ok(None)` at the end. With a
    /// waker, registers it and returns `Err(())` instead of blocking.
    pub(crate) fn next_output(
        &self,
        waker: Option<&Waker>,
    ) -> std::result::Result<Option<Result<Vec<RecordBatch>>>, ()> {
        let mut st = self.lock();
        let mut waited: Option<Instant> = None;
        let out = loop {
            let key = (st.head, st.head_part, st.head_chunk);
            let (head, head_part, _) = key;
            if let Some(out) = st.done.remove(&key) {
                for b in out.batches.iter().flatten() {
                    st.decoded.remove(b);
                }
                // Decoding may wait for room in the budget, for the consumer to catch up, or
                // for a new head.
                self.signals.decode.notify_all();
                if !(out.last || out.batches.is_err()) {
                    st.head_chunk += 1;
                    break Ok(Some(out.batches));
                }
                st.open = st.open.saturating_sub(1);
                st.head_chunk = 0;
                let task_done = out.batches.is_err()
                    || st
                        .tasks
                        .get(&head)
                        .is_none_or(|t| head_part + 1 >= t.outputs());
                if task_done {
                    if let Some(t) = st.tasks.remove(&head) {
                        st.charged -= t.charge.min(st.charged);
                    }
                    st.head += 1;
                    st.head_part = 0;
                    st.schedule(self);
                } else {
                    st.head_part += 1;
                }
                break Ok(Some(out.batches));
            }
            if st.cancelled || st.end_seq == Some(head) {
                break Ok(None);
            }
            match waker {
                Some(w) => {
                    st.waker = Some(w.clone());
                    break Err(());
                }
                None => {
                    waited.get_or_insert_with(Instant::now);
                    st = self.signals.out.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            }
        };
        if let Some(t) = waited {
            st.metrics.consumer_wait += t.elapsed();
        }
        out
    }

    pub(crate) fn metrics(&self) -> ScanMetrics {
        self.lock().metrics.clone()
    }
}
