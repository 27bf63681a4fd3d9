//! The engine: producer threads, the bounded queues they fill, and the consumer that drains
//! them as an iterator or a stream.
//!
//! One mutex guards all state; producers wait on `space`, a blocking consumer on `data`, an
//! async consumer registers its waker. A producer never holds the lock while it reads.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{MemoryLedger, Result, batch_memory_size, no_panic, spawn_thread};
use futures::Stream;

use crate::metrics::PrefetchMetrics;
use crate::options::{Order, Prefetch};

type Item = std::result::Result<RecordBatch, ArrowError>;
type Source = Box<dyn RecordBatchReader + Send>;

/// One queue of read-ahead batches, fed by `producers` threads.
#[derive(Default)]
struct Slot {
    queue: VecDeque<Item>,
    /// Producers still feeding this slot; when 0 and the queue is empty, the slot is finished.
    producers: usize,
}

struct State {
    slots: Vec<Slot>,
    /// Slots the consumer still visits, in round-robin order.
    live: Vec<usize>,
    cursor: usize,
    queued: usize,
    ledger: MemoryLedger,
    /// Set when the consumer is gone or has taken an error: producers stop.
    cancelled: bool,
    waker: Option<Waker>,
    consumer_wait: Duration,
    producer_wait: Duration,
    batches_produced: u64,
    bytes_produced: u64,
    peak_bytes: usize,
}

struct Shared {
    state: Mutex<State>,
    data: Condvar,
    space: Condvar,
    depth: usize,
    budget: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can only come from this module's own code (sources run
        // outside it, under catch_unwind); the state stays consistent, so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake_consumer(&self, st: &mut State) {
        self.data.notify_one();
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

/// The consuming end of a read-ahead: a blocking iterator and [`RecordBatchReader`]; for async
/// code, [`into_stream`](Self::into_stream) gives a [`PrefetchStream`].
///
/// Batches come in the producers' order (see [`Order`]); an error comes after the batches
/// before it and ends the output. Dropping the reader stops the producers: each finishes at
/// most the read it is in, then exits; the threads are detached, never blocking the drop.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int32Array, RecordBatch, RecordBatchIterator};
/// use arrowfeed_prefetch::Prefetch;
///
/// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1, 2, 3])) as _)])?;
/// let source = RecordBatchIterator::new(vec![Ok(batch.clone()), Ok(batch.clone())], batch.schema());
/// let mut reader = Prefetch::builder().depth(2).build()?.spawn(source)?;
/// let rows: usize = reader.by_ref().map(|b| b.map(|b| b.num_rows())).sum::<Result<_, _>>()?;
/// assert_eq!(rows, 6);
/// println!("{}", reader.metrics()); // consumer waited 0.000 s, ...
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PrefetchReader {
    shared: Arc<Shared>,
    schema: SchemaRef,
    finished: bool,
    /// When an async consumer started waiting, for the wait metric.
    waiting_since: Option<Instant>,
}

impl std::fmt::Debug for PrefetchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefetchReader")
            .field("schema", &self.schema)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// The result of [`PrefetchReader::try_next`].
#[derive(Debug)]
pub enum TryNext {
    /// A batch, or the error that ends the output.
    Ready(Item),
    /// Nothing buffered yet; the producers are still reading.
    Pending,
    /// The output has ended.
    Ended,
}

impl PrefetchReader {
    pub(crate) fn start(
        opts: &Prefetch,
        schema: SchemaRef,
        sources: Vec<Source>,
        producers: usize,
    ) -> Result<Self> {
        let per_producer: Vec<Vec<Source>> = {
            let mut v: Vec<Vec<Source>> = (0..producers).map(|_| Vec::new()).collect();
            for (i, s) in sources.into_iter().enumerate() {
                v[i % producers].push(s);
            }
            v
        };
        let nslots = if opts.order == Order::AsReady {
            1
        } else {
            producers
        };
        let mut slots: Vec<Slot> = (0..nslots).map(|_| Slot::default()).collect();
        for p in 0..producers {
            slots[p % nslots].producers += 1;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots,
                live: (0..nslots).collect(),
                cursor: 0,
                queued: 0,
                ledger: MemoryLedger::default(),
                cancelled: false,
                waker: None,
                consumer_wait: Duration::ZERO,
                producer_wait: Duration::ZERO,
                batches_produced: 0,
                bytes_produced: 0,
                peak_bytes: 0,
            }),
            data: Condvar::new(),
            space: Condvar::new(),
            depth: opts.depth,
            budget: opts.memory_budget,
        });
        let reader = Self {
            shared: shared.clone(),
            schema,
            finished: false,
            waiting_since: None,
        };
        for (p, mine) in per_producer.into_iter().enumerate() {
            let shared = shared.clone();
            let slot = p % nslots;
            spawn_thread(format!("arrowfeed-prefetch-{p}"), move || {
                produce(&shared, slot, mine)
            })?;
        }
        Ok(reader)
    }

    /// Takes the next item if one is ready: never blocks.
    pub fn try_next(&mut self) -> TryNext {
        if self.finished {
            return TryNext::Ended;
        }
        let shared = self.shared.clone();
        let mut st = shared.lock();
        match self.pop(&mut st) {
            Some(Some(item)) => TryNext::Ready(item),
            Some(None) => TryNext::Ended,
            None => TryNext::Pending,
        }
    }

    /// The same output as an async `Stream` that never blocks the executor it is polled on.
    pub fn into_stream(self) -> PrefetchStream {
        PrefetchStream { reader: self }
    }

    /// Batches and bytes buffered now.
    pub fn queued(&self) -> (usize, usize) {
        let st = self.shared.lock();
        (st.queued, st.ledger.bytes())
    }

    /// The counters so far.
    pub fn metrics(&self) -> PrefetchMetrics {
        let st = self.shared.lock();
        PrefetchMetrics {
            consumer_wait: st.consumer_wait,
            producer_wait: st.producer_wait,
            batches_produced: st.batches_produced,
            bytes_produced: st.bytes_produced,
            peak_bytes: st.peak_bytes,
            buffered_batches: st.queued,
            buffered_bytes: st.ledger.bytes(),
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// `Some(Some(item))`: an item; `Some(None)`: the end; `None`: nothing ready yet.
    fn pop(&mut self, st: &mut State) -> Option<Option<Item>> {
        loop {
            if st.live.is_empty() {
                self.finished = true;
                return Some(None);
            }
            let s = st.live[st.cursor];
            if let Some(item) = st.slots[s].queue.pop_front() {
                st.queued -= 1;
                match &item {
                    Ok(b) => {
                        st.ledger.remove(b);
                    }
                    Err(_) => {
                        // An error ends the output: stop every producer.
                        self.finished = true;
                        st.cancelled = true;
                        self.shared.space.notify_all();
                        return Some(Some(item));
                    }
                }
                st.cursor = (st.cursor + 1) % st.live.len();
                self.shared.space.notify_all();
                return Some(Some(item));
            }
            if st.slots[s].producers == 0 {
                st.live.remove(st.cursor);
                if st.cursor >= st.live.len() {
                    st.cursor = 0;
                }
                continue;
            }
            return None;
        }
    }

    fn next_blocking(&mut self) -> Option<Item> {
        if self.finished {
            return None;
        }
        let shared = self.shared.clone();
        let mut st = shared.lock();
        let mut waited: Option<Instant> = None;
        loop {
            if let Some(r) = self.pop(&mut st) {
                if let Some(t) = waited {
                    st.consumer_wait += t.elapsed();
                }
                return r;
            }
            waited.get_or_insert_with(Instant::now);
            st = shared.data.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for PrefetchReader {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.cancelled = true;
        // Release what is buffered now rather than when the last producer exits.
        for slot in &mut st.slots {
            slot.queue.clear();
        }
        st.ledger = MemoryLedger::default();
        st.queued = 0;
        self.shared.space.notify_all();
    }
}

impl Iterator for PrefetchReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        self.next_blocking()
    }
}

impl RecordBatchReader for PrefetchReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// The async side of a [`PrefetchReader`]: a `Stream` of batches with a schema.
///
/// A separate type, so that importing `futures::StreamExt` does not make `next()` ambiguous on
/// the blocking reader.
#[derive(Debug)]
pub struct PrefetchStream {
    reader: PrefetchReader,
}

impl PrefetchStream {
    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.reader.schema.clone()
    }

    /// The counters so far.
    pub fn metrics(&self) -> PrefetchMetrics {
        self.reader.metrics()
    }

    /// Batches and bytes buffered now.
    pub fn queued(&self) -> (usize, usize) {
        self.reader.queued()
    }
}

impl Stream for PrefetchStream {
    type Item = Item;

    /// Never blocks: when nothing is buffered it registers the waker and returns `Pending`;
    /// a producer wakes it when it adds a batch or finishes.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut self.get_mut().reader;
        if this.finished {
            return Poll::Ready(None);
        }
        let shared = this.shared.clone();
        let mut st = shared.lock();
        match this.pop(&mut st) {
            Some(r) => {
                if let Some(t) = this.waiting_since.take() {
                    st.consumer_wait += t.elapsed();
                }
                Poll::Ready(r)
            }
            None => {
                this.waiting_since.get_or_insert_with(Instant::now);
                match &st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

/// A producer thread: reads its sources one after another into `slot`.
fn produce(shared: &Shared, slot: usize, sources: Vec<Source>) {
    'sources: for mut source in sources {
        loop {
            {
                let mut st = shared.lock();
                let started = Instant::now();
                let mut waited = false;
                // Space: below both bounds, or this producer's queue is empty (so one batch
                // always flows, however large; see `Prefetch`).
                while !st.cancelled
                    && !st.slots[slot].queue.is_empty()
                    && (st.queued >= shared.depth || st.ledger.bytes() >= shared.budget)
                {
                    waited = true;
                    st = shared.space.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if waited {
                    st.producer_wait += started.elapsed();
                }
                if st.cancelled {
                    break 'sources;
                }
            }
            let item = match no_panic("prefetch source", "the source", || Ok(source.next())) {
                Ok(None) => continue 'sources,
                Ok(Some(item)) => item,
                Err(e) => Err(e.into_arrow()),
            };
            let is_err = item.is_err();
            let mut st = shared.lock();
            if st.cancelled {
                break 'sources;
            }
            if let Ok(b) = &item {
                st.ledger.add(b);
                st.batches_produced += 1;
                st.bytes_produced += batch_memory_size(b) as u64;
                st.peak_bytes = st.peak_bytes.max(st.ledger.bytes());
            }
            st.queued += 1;
            st.slots[slot].queue.push_back(item);
            shared.wake_consumer(&mut st);
            if is_err {
                break 'sources;
            }
        }
    }
    let mut st = shared.lock();
    st.slots[slot].producers -= 1;
    shared.wake_consumer(&mut st);
}
