//! Decoding: the threads that run decode jobs, which job runs next (the consumer's first; others
//! while the budget and the decode-ahead limit allow), and the checks on what a job decoded.

use std::cmp::Reverse;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrowfeed_traits::{
    DecodePart, Decoded, Error, PartDecoded, PartDecoder, Result, TaskDecoder, no_panic,
};
use bytes::Bytes;

use super::admission::FollowUp;
use super::io::SLOW_READ;
use super::{Config, Part, Shared, State, Task};

/// Outputs (tasks or parts) started and not yet taken by the consumer, at most, per decode
/// thread, before the threads only continue started parts and the head task's work. The
/// output the consumer waits for starts even past this cap, so when its read finishes last,
/// one more than the cap is open. Bounding how far decoding runs ahead keeps the decoded data
/// in a few outputs' worth of memory that the allocator reuses, rather than fresh pages for
/// the whole file: a scan whose budget admits the whole file otherwise decodes far ahead of
/// the consumer, and zeroing new pages cost up to half of the CPU time (tpch.parquet from the
/// CLI).
pub(super) const DECODE_AHEAD_PER_THREAD: usize = 2;

/// Decoding runs ahead of the consumer only while the decoded batches, with the decoding in
/// progress and the consumer's batch, fit in this share of the budget, as a divisor: half.
/// The other half is room for what the budget's count does not see: decompressed pages,
/// decoders' buffers, memory the allocator keeps after it is freed (between two and three
/// times the live bytes in one measurement of the CLI's scans). On `ml.parquet` of 256,000
/// rows in 4,096-row batches at a 64 MiB budget, peak anonymous memory went from 122-136 MiB
/// to 94-100 MiB, in the same time.
pub(super) const DECODED_SHARE_OF_BUDGET: u64 = 2;

/// A job in the decode queue, served smallest first: by priority, then plan order, then slot.
/// Slot 0 is the task's decoder, slot `i + 1` its part `i`, so that a task's parts are served
/// in order and ahead of later tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct DecodeKey {
    pub(super) priority: u64,
    pub(super) task: u64,
    pub(super) slot: usize,
}

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
        piece: usize,
        rows: Range<u64>,
        rows_before: u64,
        decoder: Box<dyn PartDecoder>,
    },
}

/// What a decode thread brings back.
enum Outcome {
    Task(Result<Decoded>),
    /// Piece `piece` of part `index`.
    Piece {
        index: usize,
        piece: usize,
        result: Result<PartPiece>,
    },
}

/// A decoded piece of a part.
struct PartPiece {
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
                    piece: part.pieces,
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
            Self::Part { piece, .. } => *piece == 0,
        }
    }
}

impl State {
    /// True when one more decode job started ahead of the consumer still fits in the budget
    /// beside what the scan holds, what the jobs running will add and the batch the consumer
    /// holds, each of those last taken as a [`piece_estimate`](State::piece_estimate).
    ///
    /// The decoded bytes among those stay within half the budget
    /// ([`DECODED_SHARE_OF_BUDGET`]), less what the plan's decoders read themselves.
    fn decode_room(&self, config: &Config) -> bool {
        let pieces = self.running as u64 + 2;
        let room = self.piece_estimate.saturating_mul(pieces);
        let decoded = (self.decoded.bytes() as u64).saturating_add(room);
        let share =
            (config.budget / DECODED_SHARE_OF_BUDGET).saturating_sub(config.outside_bytes());
        self.held(config).saturating_add(room) <= config.budget && decoded <= share
    }

    /// The task and decode-queue slot of the job whose piece the consumer waits for, if that
    /// piece is not decoded yet.
    fn head_job(&self) -> Option<(u64, usize)> {
        if self.done.contains_key(&self.head) {
            return None;
        }
        let whole = self.tasks.get(&self.head.task)?.parts.is_empty();
        Some((self.head.task, if whole { 0 } else { self.head.part + 1 }))
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
        let is_head_job = |k: &DecodeKey| head_job == Some((k.task, k.slot));
        let room = self.decode_room(config);
        let limit = config
            .decode_parallelism
            .saturating_mul(DECODE_AHEAD_PER_THREAD);
        if room && self.open < limit {
            return self.decode_queue.pop().map(|Reverse(k)| k);
        }
        let (head, tasks) = (self.head.task, &self.tasks);
        let started = |k: &DecodeKey| {
            k.slot
                .checked_sub(1)
                .and_then(|i| tasks.get(&k.task)?.parts.get(i))
                .is_some_and(|p| p.pieces > 0)
        };
        // The greatest `Reverse` key is the first in queue order.
        let first = self
            .decode_queue
            .iter()
            .filter(|Reverse(k)| is_head_job(k) || (room && (k.task == head || started(k))))
            .max()
            .copied()?;
        self.decode_queue.retain(|k| *k != first);
        Some(first.0)
    }

    /// Queues decode-queue `slot` of task `seq`.
    pub(super) fn queue_decode(&mut self, priority: u64, seq: u64, slot: usize) {
        self.decode_queue.push(Reverse(DecodeKey {
            priority,
            task: seq,
            slot,
        }));
    }
}

impl Shared {
    pub(super) fn decode_loop(self: &Arc<Self>) {
        let mut st = self.lock();
        loop {
            let (seq, job) = loop {
                if st.work_over() {
                    return;
                }
                if let Some(key) = st.next_decode(&self.config) {
                    let job = st
                        .tasks
                        .get_mut(&key.task)
                        .and_then(|t| Job::take(t, key.slot));
                    if let Some(job) = job {
                        if job.starts_output() {
                            st.open += 1;
                        }
                        st.running += 1;
                        break (key.task, job);
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
            let outcome = self.run(seq, job);
            let elapsed = started.elapsed();
            st = self.lock();
            st.metrics.decode_time += elapsed;
            st.running -= 1;
            if st.tasks.contains_key(&seq) {
                st.decoded(self, seq, outcome);
            }
        }
    }

    /// Runs `job` of task `seq` (without the state lock). Row counts and schemas are checked
    /// here, off the consumer's thread.
    fn run(&self, seq: u64, job: Job) -> Outcome {
        let name = self.source.name();
        match job {
            Job::Task {
                rows,
                decoder,
                bytes,
            } => Outcome::Task(
                match no_panic(name, "a decoder", || decoder.decode(bytes)) {
                    Ok(Decoded::Batches(b)) => self
                        .check_batches(seq, &rows, 0, b, true)
                        .map(|(b, _)| Decoded::Batches(b)),
                    Ok(Decoded::Parts(p)) if p.is_empty() => self
                        .check_batches(seq, &rows, 0, Vec::new(), true)
                        .map(|(b, _)| Decoded::Batches(b)),
                    Ok(Decoded::Parts(p)) => self.check_parts(rows, p).map(Decoded::Parts),
                    other => other,
                },
            ),
            Job::Part {
                index,
                piece,
                rows,
                rows_before,
                decoder,
            } => Outcome::Piece {
                index,
                piece,
                result: no_panic(name, "a decoder", || decoder.decode()).and_then(|d| {
                    let (batches, next) = match d {
                        PartDecoded::Done(b) => (b, None),
                        PartDecoded::More(b, next) => (b, Some(next)),
                    };
                    let (batches, rows_out) =
                        self.check_batches(seq, &rows, rows_before, batches, next.is_none())?;
                    Ok(PartPiece {
                        batches,
                        rows_out,
                        next,
                    })
                }),
            },
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
}

impl State {
    /// Takes in what a decode job of task `seq` brought back.
    fn decoded(&mut self, shared: &Shared, seq: u64, outcome: Outcome) {
        match outcome {
            Outcome::Task(Ok(Decoded::Batches(batches))) => {
                self.finish_piece(shared, seq, 0, 0, batches);
            }
            Outcome::Piece {
                index,
                piece,
                result:
                    Ok(PartPiece {
                        batches,
                        rows_out,
                        next,
                    }),
            } => {
                let Some(t) = self.tasks.get_mut(&seq) else {
                    return;
                };
                let priority = t.priority;
                let Some(p) = t.parts.get_mut(index).filter(|_| index < t.end_part) else {
                    return;
                };
                p.pieces = piece + 1;
                p.rows_out = rows_out;
                match next {
                    Some(decoder) => {
                        p.decoder = Some(decoder);
                        self.queue_decode(priority, seq, index + 1);
                        shared.signals.decode.notify_one();
                    }
                    None => p.done = true,
                }
                self.finish_piece(shared, seq, index, piece, batches);
            }
            Outcome::Task(Ok(Decoded::Parts(parts))) => {
                // The parts are the outputs, counted as they start.
                self.open = self.open.saturating_sub(1);
                let Some(t) = self.tasks.get_mut(&seq) else {
                    return;
                };
                let n = parts.len();
                let priority = t.priority;
                t.parts = parts
                    .into_iter()
                    .map(|p| Part {
                        rows: p.rows,
                        decoder: Some(p.decoder),
                        pieces: 0,
                        rows_out: 0,
                        done: false,
                    })
                    .collect();
                t.update_finished();
                self.metrics.parts += n as u64;
                for i in 0..n {
                    self.queue_decode(priority, seq, i + 1);
                }
                shared.signals.decode.notify_all();
            }
            Outcome::Task(Ok(Decoded::NeedMore { ranges, decoder })) => {
                // Counted again when its decoder runs with the new bytes.
                self.open = self.open.saturating_sub(1);
                self.metrics.follow_ups += 1;
                if let Some(t) = self.tasks.get_mut(&seq) {
                    t.decoder = Some(decoder);
                    t.wanted = Some(ranges);
                    let priority = t.priority;
                    self.followups.push(Reverse(FollowUp {
                        priority,
                        task: seq,
                    }));
                }
                self.schedule(shared);
            }
            Outcome::Task(Err(e)) => self.fail(shared, seq, 0, e),
            Outcome::Piece {
                index,
                result: Err(e),
                ..
            } => self.fail(shared, seq, index, e),
        }
    }
}
