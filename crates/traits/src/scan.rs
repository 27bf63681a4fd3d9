//! Scan-plan traits: a format says *what* to read and *how* to decode it; the engine in
//! `arrowfeed-decode-sched` decides *when*.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;

use crate::Result;

/// A plan for scanning one object: the read tasks, in row order.
///
/// # Contract
/// - Tasks come in the order of the rows they cover: task *k+1*'s `rows` start where task
///   *k*'s end, the first starting at 0.
/// - Every batch decoded from any task has the schema [`schema`](Self::schema).
/// - An `Err` item ends the plan (the engine reports it after the batches of earlier tasks).
///
/// Its reference semantics are [`run_plan_in_order`]: one task at a time, each decoder run to
/// the end (follow-ups, parts and pieces in order) before the next task is read. An engine's
/// output must equal it, batch boundaries aside.
pub trait ScanPlan: Iterator<Item = Result<ReadTask>> + Send {
    /// The schema of the decoded batches.
    fn schema(&self) -> SchemaRef;

    /// The number of rows the whole plan yields, when known up front.
    fn total_rows(&self) -> Option<u64> {
        None
    }

    /// Asks the plan to decode batches of at most `rows` rows that, by its own estimate of a
    /// row's decoded size, take at most `bytes`, but never fewer than [`MIN_FITTED_ROWS`]
    /// rows (or `rows`, if fewer); returns the rows per batch it will decode. An engine calls
    /// it once, before the first task, when its caller left the batch size to it, and cuts
    /// its output batches to the rows returned.
    ///
    /// The default keeps the plan's batches as they are and returns `rows`: a plan that
    /// cannot estimate a row's size fits nothing.
    fn fit_batch_rows(&mut self, rows: usize, bytes: u64) -> usize {
        let _ = bytes;
        rows
    }

    /// Asks the plan to keep what one task holds of fetched bytes to about `bytes` where it
    /// can: by smaller tasks, or by reading a large one's bytes a window at a time as it
    /// decodes. An engine calls it once, before the first task, when the source's reads are
    /// fresh memory rather than views of a map (`ByteSource::reads_are_views`), so that
    /// fetched bytes count against its budget.
    ///
    /// Returns, when the plan's decoders will then read bytes themselves (beyond any task's
    /// ranges), what they read so ([`OwnReads`]), for the engine to count as held and report.
    ///
    /// The default does nothing and returns `None`: tasks fetch what they fetch.
    fn fit_fetches(&mut self, bytes: u64) -> Option<Arc<OwnReads>> {
        let _ = bytes;
        None
    }
}

/// What a plan's decoders read themselves, beyond its tasks' ranges (see
/// [`ScanPlan::fit_fetches`]), kept up to date by them: an engine counts `held` against its
/// budget and adds the requests and bytes to its own.
#[derive(Debug, Default)]
pub struct OwnReads {
    /// Bytes fetched or in flight that the decoders hold now.
    pub held: AtomicU64,
    /// Requests made so far.
    pub requests: AtomicU64,
    /// Bytes read so far.
    pub bytes: AtomicU64,
}

/// Rows per batch when the caller sets none: what the Parquet plans decode and what the scan
/// engine starts from before fitting it to its budget ([`ScanPlan::fit_batch_rows`]).
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// The fewest rows per batch that [`ScanPlan::fit_batch_rows`] shrinks batches to: below it,
/// per-batch costs (a hand-over, a slice per column) outweigh the memory saved.
pub const MIN_FITTED_ROWS: usize = 64;

/// The rows per batch that fit `bytes` at `row_bytes` decoded bytes a row: at most `rows`,
/// at least [`MIN_FITTED_ROWS`] (or `rows`, if fewer). The rule behind
/// [`ScanPlan::fit_batch_rows`], for plans to share.
///
/// ```
/// use arrowfeed_traits::{MIN_FITTED_ROWS, fitted_rows};
/// assert_eq!(fitted_rows(8192, 2 << 20, 2048), 1024);
/// assert_eq!(fitted_rows(8192, 1, 2048), MIN_FITTED_ROWS);
/// assert_eq!(fitted_rows(8192, 1 << 30, 2048), 8192);
/// assert_eq!(fitted_rows(10, 1, 2048), 10);
/// assert_eq!(fitted_rows(8192, 1 << 20, 0), 8192);
/// ```
pub fn fitted_rows(rows: usize, bytes: u64, row_bytes: u64) -> usize {
    let fit = bytes.checked_div(row_bytes).unwrap_or(u64::MAX);
    let fit = usize::try_from(fit).unwrap_or(usize::MAX);
    fit.max(MIN_FITTED_ROWS).min(rows)
}

/// One unit of I/O and decode: the byte ranges it needs and the decoder that turns them into
/// Arrow data.
pub struct ReadTask {
    /// The byte ranges to fetch, in the order the decoder expects them.
    pub ranges: Vec<Range<u64>>,
    /// Lower numbers are served first. Plans use the row position, so that rows complete in
    /// order.
    pub priority: u64,
    /// The rows of the plan's output this task produces.
    pub rows: Range<u64>,
    /// Turns the fetched bytes into batches, on a CPU thread.
    pub decoder: Box<dyn TaskDecoder>,
}

impl fmt::Debug for ReadTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadTask")
            .field("ranges", &self.ranges)
            .field("priority", &self.priority)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// Decodes the bytes of one [`ReadTask`].
///
/// # Contract
/// `decode` receives one `Bytes` per requested range, in the order requested. It either
/// finishes, returning batches whose row counts add up to the task's `rows`, or asks for more
/// bytes (indirect I/O: offsets first, then values) with a decoder to continue. The engine
/// serves such follow-up requests ahead of new tasks, since the task is already holding budget.
pub trait TaskDecoder: Send {
    /// Decodes `bytes`. Runs on a CPU thread; may take milliseconds.
    ///
    /// # Errors
    /// Malformed data, naming the object and what is wrong.
    fn decode(self: Box<Self>, bytes: Vec<Bytes>) -> Result<Decoded>;
}

/// What a [`TaskDecoder`] produced.
pub enum Decoded {
    /// The task's rows, as one or more batches in row order.
    Batches(Vec<RecordBatch>),
    /// The decoder needs more bytes before it can finish.
    NeedMore {
        /// The further ranges to fetch.
        ranges: Vec<Range<u64>>,
        /// The decoder to call with them.
        decoder: Box<dyn TaskDecoder>,
    },
    /// The task's rows split into consecutive parts that decode independently, so that
    /// several CPU threads can work on one task and its first rows reach the consumer before
    /// its last are decoded. The parts' `rows` must follow one another and cover the task's
    /// rows exactly; their batches come out in part order.
    Parts(Vec<DecodePart>),
}

/// One independently decodable part of a task (see [`Decoded::Parts`]).
pub struct DecodePart {
    /// The rows of the plan's output this part produces.
    pub rows: Range<u64>,
    /// Produces the part's batches, on a CPU thread. It holds the bytes it needs.
    pub decoder: Box<dyn PartDecoder>,
}

impl fmt::Debug for DecodePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodePart")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// Decodes one [`DecodePart`], all at once or a piece at a time.
///
/// # Contract
/// Each call returns the part's next batches in row order ([`PartDecoded::More`] with the
/// decoder to call next, holding at least one row, or [`PartDecoded::Done`] with the last);
/// the row counts of all calls add up to the part's `rows`.
pub trait PartDecoder: Send {
    /// Decodes the part, or its next rows. Runs on a CPU thread; may take milliseconds.
    ///
    /// # Errors
    /// Malformed data, naming the object and what is wrong.
    fn decode(self: Box<Self>) -> Result<PartDecoded>;
}

/// What one call of a [`PartDecoder`] produced.
pub enum PartDecoded {
    /// The part's last batches (all of them for a decoder that works in one go).
    Done(Vec<RecordBatch>),
    /// The part's next batches and the decoder that continues it. The engine hands these to
    /// the consumer while the rest decodes, so they can be used while still in the CPU's
    /// cache and their memory is reused, rather than a whole part waiting in fresh memory.
    More(Vec<RecordBatch>, Box<dyn PartDecoder>),
}

impl fmt::Debug for PartDecoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done(b) => f.debug_tuple("Done").field(&b.len()).finish(),
            Self::More(b, _) => f
                .debug_tuple("More")
                .field(&b.len())
                .finish_non_exhaustive(),
        }
    }
}

/// A closure decodes its part in one go.
impl<F> PartDecoder for F
where
    F: FnOnce() -> Result<Vec<RecordBatch>> + Send,
{
    fn decode(self: Box<Self>) -> Result<PartDecoded> {
        (*self)().map(PartDecoded::Done)
    }
}

impl fmt::Debug for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Batches(b) => f.debug_tuple("Batches").field(&b.len()).finish(),
            Self::NeedMore { ranges, .. } => f
                .debug_struct("NeedMore")
                .field("ranges", ranges)
                .finish_non_exhaustive(),
            Self::Parts(p) => f.debug_tuple("Parts").field(p).finish(),
        }
    }
}

impl<F> TaskDecoder for F
where
    F: FnOnce(Vec<Bytes>) -> Result<Decoded> + Send,
{
    fn decode(self: Box<Self>, bytes: Vec<Bytes>) -> Result<Decoded> {
        (*self)(bytes)
    }
}

/// A plan run in order on the calling thread, as an iterator of its decoded batches: each
/// task's ranges are read with `read` (all of them, in the decoder's order), decoded, and its
/// batches handed out before the next task is read, so at most one task's bytes and batches
/// are held at a time. [`run_plan_in_order`] collects it.
pub struct InOrder<P, F> {
    plan: P,
    read: F,
    ready: VecDeque<RecordBatch>,
    parts: VecDeque<Box<dyn PartDecoder>>,
}

impl<P, F> fmt::Debug for InOrder<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InOrder")
            .field("ready", &self.ready.len())
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl<P, F> InOrder<P, F>
where
    P: Iterator<Item = Result<ReadTask>>,
    F: FnMut(Vec<Range<u64>>) -> Result<Vec<Bytes>>,
{
    /// Runs `plan`, reading each fetch's ranges with `read`.
    pub fn new(plan: P, read: F) -> Self {
        Self {
            plan,
            read,
            ready: VecDeque::new(),
            parts: VecDeque::new(),
        }
    }

    /// The next batch; `Ok(None)` at the end.
    ///
    /// # Errors
    /// The first error of the plan, a read, or a decoder.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Ok(Some(b));
            }
            if let Some(part) = self.parts.pop_front() {
                match part.decode()? {
                    PartDecoded::Done(b) => self.ready.extend(b),
                    PartDecoded::More(b, next) => {
                        self.ready.extend(b);
                        self.parts.push_front(next);
                    }
                }
                continue;
            }
            let Some(task) = self.plan.next() else {
                return Ok(None);
            };
            let task = task?;
            let (mut ranges, mut decoder) = (task.ranges, task.decoder);
            loop {
                let bytes = (self.read)(ranges)?;
                match decoder.decode(bytes)? {
                    Decoded::Batches(b) => {
                        self.ready.extend(b);
                        break;
                    }
                    Decoded::Parts(parts) => {
                        self.parts.extend(parts.into_iter().map(|p| p.decoder));
                        break;
                    }
                    Decoded::NeedMore {
                        ranges: more,
                        decoder: next,
                    } => {
                        ranges = more;
                        decoder = next;
                    }
                }
            }
        }
    }
}

/// Runs `plan` in order on this thread, reading through `read(range)`: the reference an
/// engine's output must equal, and a simple way to use a plan without one.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{RecordBatch, UInt8Array};
/// use arrow_schema::{DataType, Field, Schema};
/// use arrowfeed_traits::{Decoded, ReadTask, Result, run_plan_in_order};
/// use bytes::Bytes;
///
/// struct OneTask(Option<ReadTask>, arrow_schema::SchemaRef);
/// impl Iterator for OneTask {
///     type Item = Result<ReadTask>;
///     fn next(&mut self) -> Option<Self::Item> { self.0.take().map(Ok) }
/// }
/// impl arrowfeed_traits::ScanPlan for OneTask {
///     fn schema(&self) -> arrow_schema::SchemaRef { self.1.clone() }
/// }
///
/// let schema = Arc::new(Schema::new(vec![Field::new("b", DataType::UInt8, false)]));
/// let s = schema.clone();
/// let task = ReadTask {
///     ranges: vec![1..3],
///     priority: 0,
///     rows: 0..2,
///     decoder: Box::new(move |bytes: Vec<Bytes>| -> Result<Decoded> {
///         let col = Arc::new(UInt8Array::from(bytes[0].to_vec()));
///         Ok(Decoded::Batches(vec![RecordBatch::try_new(s, vec![col])?]))
///     }),
/// };
/// let data = Bytes::from_static(b"xyz");
/// let batches = run_plan_in_order(OneTask(Some(task), schema), |r| {
///     Ok(data.slice(r.start as usize..r.end as usize))
/// })?;
/// assert_eq!(batches[0].num_rows(), 2);
/// # Ok::<(), arrowfeed_traits::Error>(())
/// ```
///
/// # Errors
/// The first error of the plan, a read, or a decoder.
pub fn run_plan_in_order(
    plan: impl ScanPlan,
    mut read: impl FnMut(Range<u64>) -> Result<Bytes>,
) -> Result<Vec<RecordBatch>> {
    let mut runner = InOrder::new(plan, |ranges: Vec<Range<u64>>| {
        ranges.into_iter().map(&mut read).collect()
    });
    let mut out = Vec::new();
    while let Some(b) = runner.next_batch()? {
        out.push(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{MIN_FITTED_ROWS, fitted_rows};

    proptest! {
        /// As many rows as fit, within `[min(rows, MIN_FITTED_ROWS), rows]`.
        #[test]
        fn fitted_rows_are_as_many_as_fit_within_the_bounds(
            rows in 1usize..100_000,
            bytes in 0u64..1 << 32,
            row_bytes in 0u64..1 << 20,
        ) {
            let r = fitted_rows(rows, bytes, row_bytes);
            prop_assert!(r <= rows);
            prop_assert!(r >= MIN_FITTED_ROWS.min(rows));
            if r > MIN_FITTED_ROWS {
                prop_assert!(r as u64 * row_bytes <= bytes, "{r} rows do not fit");
            }
            if r < rows {
                prop_assert!((r as u64 + 1) * row_bytes > bytes, "{} rows would fit", r + 1);
            }
        }
    }
}
