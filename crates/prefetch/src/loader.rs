//! The Loader: batches for a training loop from any `RandomAccess` dataset — shuffled,
//! partitioned across ranks, gathered by worker threads, resumable.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use arrowfeed_traits::{Error, RandomAccess, Result, project_schema};

use crate::epoch::{Plan, Segment};
use crate::options::{Order, Prefetch};
use crate::reader::{PrefetchReader, PrefetchStream};
use crate::sampler::{EpochOrder, Shuffle};
use crate::state::{LoaderState, fingerprint};

/// The name of the mask column [`Remainder::Pad`] adds: `true` on padding rows.
pub const PAD_COLUMN: &str = "__arrowfeed_padding";

/// What happens to the rows left over when the epoch does not divide evenly among the ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Remainder {
    /// Every rank gets `floor(n / world_size)` rows; up to `world_size - 1` rows of the epoch
    /// are skipped (different ones each epoch when shuffling).
    #[default]
    Drop,
    /// Every rank gets `ceil(n / world_size)` rows; ranks short of rows repeat rows from the
    /// start of the epoch's order, marked `true` in an added boolean column
    /// [`PAD_COLUMN`] (which is `false` on every real row).
    Pad,
}

/// Counters of one epoch so far; see [`LoaderIter::metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct LoaderMetrics {
    /// Batches delivered by this iterator (after a resume: since the resume).
    pub batches: u64,
    /// Rows delivered.
    pub rows: u64,
    /// Time the consumer waited for a batch: large means input-bound.
    pub consumer_wait: Duration,
    /// Time workers spent gathering (summed over workers).
    pub gather: Duration,
    /// Bytes gathered (allocation-aware).
    pub bytes: u64,
    /// The most bytes buffered at once.
    pub peak_bytes: usize,
    /// Wall time since the epoch's iterator was made.
    pub elapsed: Duration,
}

impl LoaderMetrics {
    /// Rows per second over the elapsed time.
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for LoaderMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} batches, {} rows in {:.2} s ({:.0} rows/s); consumer waited {:.3} s, workers gathered {:.3} s, {:.1} MB, peak {:.1} MB buffered",
            self.batches,
            self.rows,
            self.elapsed.as_secs_f64(),
            self.rows_per_s(),
            self.consumer_wait.as_secs_f64(),
            self.gather.as_secs_f64(),
            self.bytes as f64 / 1e6,
            self.peak_bytes as f64 / 1e6
        )
    }
}

/// Builds a [`Loader`]; [`build`](Self::build) checks the settings.
#[derive(Clone)]
pub struct LoaderBuilder {
    dataset: Arc<dyn RandomAccess>,
    batch_size: usize,
    drop_last: bool,
    shuffle: Shuffle,
    seed: u64,
    rank: u64,
    world_size: u64,
    remainder: Remainder,
    projection: Option<Vec<usize>>,
    workers: usize,
    memory_budget: usize,
    read_ahead_rows: Option<u64>,
}

impl fmt::Debug for LoaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoaderBuilder")
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl LoaderBuilder {
    /// Rows per batch (default 256).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Drop the last, short batch of each epoch (default false).
    pub fn drop_last(mut self, yes: bool) -> Self {
        self.drop_last = yes;
        self
    }
    /// The epoch order (default [`Shuffle::Global`]).
    pub fn shuffle(mut self, s: Shuffle) -> Self {
        self.shuffle = s;
        self
    }
    /// The shuffle seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// This process's rank and the number of ranks (default 0 of 1).
    pub fn rank(mut self, rank: u64, world_size: u64) -> Self {
        self.rank = rank;
        self.world_size = world_size;
        self
    }
    /// What to do with rows that do not divide among the ranks (default [`Remainder::Drop`]).
    pub fn remainder(mut self, r: Remainder) -> Self {
        self.remainder = r;
        self
    }
    /// Only these columns (indices into the dataset's schema, in this order).
    pub fn projection(mut self, columns: Vec<usize>) -> Self {
        self.projection = Some(columns);
        self
    }
    /// Worker threads gathering batches in parallel (default 2). The output order does not
    /// depend on it.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }
    /// Bytes of gathered batches buffered at most (default 256 MiB; one batch per worker may
    /// exceed it, as in [`Prefetch`]).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// How far ahead of the batch being gathered the Loader tells the dataset which rows come
    /// next ([`RandomAccess::will_need`]), in rows of the epoch's order: a remote shard store
    /// downloads their shards meanwhile. Default: two partitions' worth, or with
    /// [`Shuffle::Local`] one more than a window's; 0 gives no hints.
    pub fn read_ahead_rows(mut self, rows: u64) -> Self {
        self.read_ahead_rows = Some(rows);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting that is wrong.
    pub fn build(self) -> Result<Loader> {
        let bad = |m: String| Err(Error::invalid_argument(m));
        if self.batch_size == 0 {
            return bad("loader batch_size must be at least 1".into());
        }
        if self.workers == 0 {
            return bad("loader workers must be at least 1".into());
        }
        if self.memory_budget == 0 {
            return bad("loader memory_budget must be at least 1 byte".into());
        }
        if self.world_size == 0 || self.rank >= self.world_size {
            return bad(format!(
                "loader rank {} is not below world_size {}",
                self.rank, self.world_size
            ));
        }
        if let Shuffle::Local { window: 0 } = self.shuffle {
            return bad("loader local shuffle window must be at least 1 partition".into());
        }
        let projected = project_schema(&self.dataset.schema(), self.projection.as_deref())?;
        let schema = match self.remainder {
            Remainder::Drop => projected,
            Remainder::Pad => {
                let mut fields: Vec<Arc<Field>> = projected.fields().iter().cloned().collect();
                fields.push(Arc::new(Field::new(PAD_COLUMN, DataType::Boolean, false)));
                Arc::new(Schema::new_with_metadata(
                    fields,
                    projected.metadata().clone(),
                ))
            }
        };
        let n = self.dataset.num_rows();
        let w = self.world_size;
        let bs = self.batch_size as u64;
        let partitions = self.dataset.partitions();
        let read_ahead_rows = self.read_ahead_rows.unwrap_or_else(|| {
            let largest = partitions
                .iter()
                .map(|p| p.end - p.start)
                .max()
                .unwrap_or(0);
            let span = match self.shuffle {
                Shuffle::Local { window } => window as u64 + 1,
                _ => 2,
            };
            largest.saturating_mul(span)
        });
        // Batches of this rank ahead: each covers `batch_size * world_size` rows of the order.
        let read_ahead = read_ahead_rows.div_ceil(bs.saturating_mul(w).max(1));
        let mut plan = Plan {
            fingerprint: fingerprint(n, &partitions),
            partitions,
            read_ahead,
            dataset: self.dataset,
            schema,
            n,
            batch_size: bs,
            shuffle: self.shuffle,
            seed: self.seed,
            rank: self.rank,
            world_size: w,
            remainder: self.remainder,
            drop_last: self.drop_last,
            projection: self.projection,
            batches: 0,
        };
        plan.batches = plan.segment(0, w).batches;
        Ok(Loader {
            inner: Arc::new(plan),
            workers: self.workers,
            memory_budget: self.memory_budget,
        })
    }
}

/// Feeds a training loop from a [`RandomAccess`] dataset. See [`Loader::builder`].
///
/// Per epoch, the rows are put in an order ([`Shuffle`]): sequential, an exact global shuffle
/// that is a seeded permutation (O(1) memory), or a locality-aware shuffle. Rank `r` of `w`
/// takes positions `r, r + w, r + 2w, ...` of that order, so ranks see disjoint rows that
/// together cover the epoch, and every rank gets the same number of batches ([`Remainder`]).
/// Worker threads gather batches in parallel into a bounded buffer; batch `k` is the same
/// whatever the number of workers, so the output order is deterministic and a
/// [`LoaderState`] resumes exactly, also with another worker count, in O(1).
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use arrowfeed_core_source::MemTable; // any RandomAccess: a shard store, a table in memory
/// use arrowfeed_prefetch::{Loader, Shuffle};
///
/// let ids = RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from_iter_values(0..1000)) as _)])?;
/// let dataset = Arc::new(MemTable::try_new(ids.schema(), vec![ids])?);
/// let loader = Loader::builder(dataset).batch_size(100).shuffle(Shuffle::Global).seed(7).workers(2).build()?;
/// let mut epoch = loader.epoch(0)?;
/// let mut saved = String::new();
/// while let Some(batch) = epoch.next() {    // `while let`: the body reads epoch.state()
///     assert_eq!(batch?.num_rows(), 100);   // train on it
///     saved = epoch.state().to_string();    // checkpoint: a short string
///     if epoch.state().position == 3 {
///         break;                            // (the job dies here)
///     }
/// }
/// let resumed: Vec<_> = loader.resume(saved.parse()?)?.collect::<Result<_, _>>()?;
/// assert_eq!(resumed.len(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Loader {
    inner: Arc<Plan>,
    workers: usize,
    memory_budget: usize,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("batches_per_epoch", &self.inner.batches)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Loader {
    /// A builder over `dataset` with the defaults: batches of 256, global shuffle with seed 0,
    /// rank 0 of 1, remainder dropped, 2 workers, 256 MiB.
    pub fn builder(dataset: Arc<dyn RandomAccess>) -> LoaderBuilder {
        LoaderBuilder {
            dataset,
            batch_size: 256,
            drop_last: false,
            shuffle: Shuffle::Global,
            seed: 0,
            rank: 0,
            world_size: 1,
            remainder: Remainder::Drop,
            projection: None,
            workers: 2,
            memory_budget: 256 << 20,
            read_ahead_rows: None,
        }
    }

    /// Batches each rank gets per epoch.
    pub fn batches_per_epoch(&self) -> u64 {
        self.inner.batches
    }

    /// The schema of every batch (with [`PAD_COLUMN`] last under [`Remainder::Pad`]).
    pub fn schema(&self) -> SchemaRef {
        self.inner.schema.clone()
    }

    /// The batches of `epoch`, from the first.
    ///
    /// # Errors
    /// [`Error::External`] if a worker thread cannot be started.
    pub fn epoch(&self, epoch: u64) -> Result<LoaderIter> {
        self.resume(self.state(epoch, 0))
    }

    /// This loader's state after it delivered `position` batches of `epoch` (from the start
    /// of the epoch): what [`LoaderIter::state`] would say then.
    pub fn state(&self, epoch: u64, position: u64) -> LoaderState {
        let plan = &self.inner;
        LoaderState {
            seed: plan.seed,
            epoch,
            position,
            start: 0,
            batch_size: plan.batch_size,
            drop_last: plan.drop_last,
            shuffle: plan.shuffle,
            remainder: plan.remainder,
            rank: plan.rank,
            world_size: plan.world_size,
            dataset: plan.fingerprint,
        }
    }

    /// The batches from `state` on: exactly those not yet delivered when it was taken. Costs
    /// O(1), whatever the position.
    ///
    /// **Elastic resume.** A state taken on another number of ranks resumes too, for
    /// synchronous data-parallel training, where every rank has delivered the same number of
    /// batches when the checkpoint is taken: what the old ranks delivered is a prefix of the
    /// epoch's order (one permutation), and the new ranks share out the rest of it, so no row
    /// is repeated and none is skipped beyond what the remainder policy drops at the end of
    /// the epoch. Any old rank's state serves; with the same world size, a state resumes on
    /// any rank as well.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting if the state was taken with another seed,
    /// batch size, `drop_last`, shuffle, remainder policy or dataset, or if its position is past
    /// its epoch.
    pub fn resume(&self, state: LoaderState) -> Result<LoaderIter> {
        self.resume_share(state, 0, 1)
    }

    /// `state` as this loader's own: the same point of the same epoch, with this loader's rank
    /// and world size, and (after a change of world size) the new ranks' `start` and a
    /// position of 0. What [`resume`](Self::resume) starts from, for callers that keep the
    /// position themselves.
    ///
    /// # Errors
    /// As [`resume`](Self::resume).
    pub fn rebase(&self, state: LoaderState) -> Result<LoaderState> {
        let (seg, position) = self.locate(&state)?;
        Ok(LoaderState {
            start: seg.start,
            position,
            rank: self.inner.rank,
            world_size: self.inner.world_size,
            ..state
        })
    }

    /// Where `state` leaves this loader: the segment of the epoch its ranks share out and the
    /// batches of it already delivered.
    fn locate(&self, state: &LoaderState) -> Result<(Segment, u64)> {
        let plan = &self.inner;
        let differs = |what: &str, then: String, now: String| {
            Err(Error::invalid_argument(format!(
                "the state was taken with {what} {then}, this loader has {now}"
            )))
        };
        if state.seed != plan.seed {
            return differs("seed", state.seed.to_string(), plan.seed.to_string());
        }
        if state.batch_size != plan.batch_size {
            return differs(
                "batch_size",
                state.batch_size.to_string(),
                plan.batch_size.to_string(),
            );
        }
        if state.drop_last != plan.drop_last {
            return differs(
                "drop_last",
                state.drop_last.to_string(),
                plan.drop_last.to_string(),
            );
        }
        if state.shuffle != plan.shuffle {
            return differs(
                "shuffle",
                format!("{:?}", state.shuffle),
                format!("{:?}", plan.shuffle),
            );
        }
        if state.remainder != plan.remainder {
            return differs(
                "remainder",
                format!("{:?}", state.remainder),
                format!("{:?}", plan.remainder),
            );
        }
        if state.dataset != plan.fingerprint {
            return Err(Error::invalid_argument(format!(
                "the state was taken on another dataset (fingerprint {:016x}, this one's is \
                 {:016x}: the row count or the partitions differ)",
                state.dataset, plan.fingerprint
            )));
        }
        if state.world_size == 0 || state.rank >= state.world_size {
            return Err(Error::invalid_argument(format!(
                "the state's rank {} is not below its world_size {}",
                state.rank, state.world_size
            )));
        }
        if state.start > plan.n {
            return Err(Error::invalid_argument(format!(
                "the state starts at position {} of an epoch of {} rows",
                state.start, plan.n
            )));
        }
        let then = plan.segment(state.start, state.world_size);
        if state.position > then.batches {
            return Err(Error::invalid_argument(format!(
                "position {} is past the epoch's {} batches",
                state.position, then.batches
            )));
        }
        if state.world_size == plan.world_size {
            return Ok((then, state.position));
        }
        // The old ranks consumed `position` batches each: a prefix of the order. A finished
        // run leaves nothing (what its remainder policy dropped stays dropped).
        let consumed = if state.position == then.batches {
            plan.n
        } else {
            state.start + state.position * plan.batch_size * state.world_size
        };
        Ok((plan.segment(consumed, plan.world_size), 0))
    }

    /// One share of the batches from `state` on: of the batches `state.position`,
    /// `state.position + 1`, ..., those `offset, offset + shares, offset + 2 * shares, ...`
    /// places on — what one of `shares` consumers (a PyTorch DataLoader's worker processes,
    /// say) iterates so that together they deliver each batch exactly once. Only this share's
    /// batches are gathered. [`LoaderIter::state`] then counts this share's batches.
    ///
    /// # Errors
    /// As [`resume`](Self::resume), and [`Error::InvalidArgument`] for `shares == 0` or
    /// `offset >= shares`.
    pub fn resume_share(&self, state: LoaderState, offset: u64, shares: u64) -> Result<LoaderIter> {
        let plan = &self.inner;
        let state = self.rebase(state)?;
        let seg = plan.segment(state.start, plan.world_size);
        if shares == 0 || offset >= shares {
            return Err(Error::invalid_argument(format!(
                "share {offset} of {shares}: the share must be below the number of shares"
            )));
        }
        let order = Arc::new(EpochOrder::new(
            plan.shuffle,
            plan.n,
            &plan.partitions,
            plan.seed,
            state.epoch,
        ));
        let gather_nanos = Arc::new(AtomicU64::new(0));
        let first = state.position + offset;
        let left = seg.batches.saturating_sub(first).div_ceil(shares);
        let workers = (self.workers as u64).min(left.max(1)) as usize;
        let stride = shares * workers as u64;
        // Each worker hints its own batch `ahead` batches on before gathering one, so a hint
        // always precedes its gather on the same thread; this share's first `ahead` batches
        // are hinted here, at once, so their shards arrive together. (Bounded, for huge
        // read-aheads.)
        let ahead = plan.read_ahead.div_ceil(stride) * stride;
        if ahead > 0 {
            let cap = (1u64 << 20).div_ceil(plan.batch_size).max(1);
            let end = (first + ahead.min(cap * shares)).min(seg.batches);
            let rows: Vec<u64> = (first..end)
                .step_by(shares as usize)
                .flat_map(|k| plan.batch_rows(&order, seg, k).0)
                .collect();
            plan.dataset.will_need(&rows);
        }
        let sources: Vec<Box<dyn RecordBatchReader + Send>> = (0..workers as u64)
            .map(|w| {
                Box::new(WorkerSource {
                    plan: plan.clone(),
                    order: order.clone(),
                    seg,
                    next: first + w * shares,
                    stride,
                    ahead,
                    gather_nanos: gather_nanos.clone(),
                }) as Box<dyn RecordBatchReader + Send>
            })
            .collect();
        let reader = Prefetch::builder()
            .parallelism(workers)
            .depth(2 * workers)
            .memory_budget(self.memory_budget)
            .order(Order::RoundRobin)
            .build()?
            .spawn_many(sources)?;
        Ok(LoaderIter {
            reader,
            progress: Progress {
                state,
                gather_nanos,
                rows: 0,
                delivered: 0,
                started: Instant::now(),
            },
        })
    }
}

/// One worker's share: batches `next, next + stride, ...` of the epoch.
struct WorkerSource {
    plan: Arc<Plan>,
    order: Arc<EpochOrder>,
    seg: Segment,
    next: u64,
    stride: u64,
    /// Batches ahead of `next` to hint: a multiple of `stride`, so one of this worker's own.
    ahead: u64,
    gather_nanos: Arc<AtomicU64>,
}

impl Iterator for WorkerSource {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.seg.batches {
            return None;
        }
        if self.ahead > 0 {
            self.plan
                .hint(&self.order, self.seg, self.next + self.ahead);
        }
        let t = Instant::now();
        let r = self.plan.gather(&self.order, self.seg, self.next);
        self.gather_nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.next += self.stride;
        Some(r.map_err(Error::into_arrow))
    }
}

impl RecordBatchReader for WorkerSource {
    fn schema(&self) -> SchemaRef {
        self.plan.schema.clone()
    }
}

/// What an epoch's consumer side has delivered: shared by the blocking iterator and the stream.
#[derive(Debug)]
struct Progress {
    state: LoaderState,
    gather_nanos: Arc<AtomicU64>,
    rows: u64,
    delivered: u64,
    started: Instant,
}

impl Progress {
    /// Counts a delivered item; errors do not advance the resume position.
    fn record(&mut self, item: &std::result::Result<RecordBatch, ArrowError>) {
        if let Ok(b) = item {
            self.state.position += 1;
            self.delivered += 1;
            self.rows += b.num_rows() as u64;
        }
    }

    fn metrics(&self, m: crate::PrefetchMetrics) -> LoaderMetrics {
        LoaderMetrics {
            batches: self.delivered,
            rows: self.rows,
            consumer_wait: m.consumer_wait,
            gather: Duration::from_nanos(self.gather_nanos.load(Ordering::Relaxed)),
            bytes: m.bytes_produced,
            peak_bytes: m.peak_bytes,
            elapsed: self.started.elapsed(),
        }
    }
}

/// The batches of one epoch for one rank, in order; a blocking iterator (and
/// [`into_stream`](Self::into_stream) for async code).
pub struct LoaderIter {
    reader: PrefetchReader,
    progress: Progress,
}

impl fmt::Debug for LoaderIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoaderIter")
            .field("state", &self.progress.state)
            .finish_non_exhaustive()
    }
}

impl LoaderIter {
    /// Where the epoch stands: save it to resume after a crash.
    pub fn state(&self) -> LoaderState {
        self.progress.state
    }

    /// The counters so far.
    pub fn metrics(&self) -> LoaderMetrics {
        self.progress.metrics(self.reader.metrics())
    }

    /// The same batches as an async `Stream` that never blocks the executor, keeping
    /// [`state`](LoaderStream::state) and [`metrics`](LoaderStream::metrics).
    pub fn into_stream(self) -> LoaderStream {
        LoaderStream {
            stream: self.reader.into_stream(),
            progress: self.progress,
        }
    }
}

/// The async side of a [`LoaderIter`]: a `Stream` of the epoch's batches, with the resume
/// state and the counters.
pub struct LoaderStream {
    stream: PrefetchStream,
    progress: Progress,
}

impl fmt::Debug for LoaderStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoaderStream")
            .field("state", &self.progress.state)
            .finish_non_exhaustive()
    }
}

impl LoaderStream {
    /// Where the epoch stands: save it to resume after a crash.
    pub fn state(&self) -> LoaderState {
        self.progress.state
    }

    /// The counters so far.
    pub fn metrics(&self) -> LoaderMetrics {
        self.progress.metrics(self.stream.metrics())
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.stream.schema()
    }
}

impl futures::Stream for LoaderStream {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = futures::ready!(std::pin::Pin::new(&mut this.stream).poll_next(cx));
        if let Some(item) = &item {
            this.progress.record(item);
        }
        std::task::Poll::Ready(item)
    }
}

impl Iterator for LoaderIter {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.reader.next()?;
        self.progress.record(&item);
        Some(item)
    }
}

impl RecordBatchReader for LoaderIter {
    fn schema(&self) -> SchemaRef {
        self.reader.schema()
    }
}
