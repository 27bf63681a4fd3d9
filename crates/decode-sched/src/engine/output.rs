//! Output: the pieces waiting for the consumer, handed out in plan order (task, then part, then
//! piece), and the error that ends the output.

use std::task::{Poll, Waker};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrowfeed_traits::{Error, MemoryLedger, Result};

use super::{Shared, State};

/// Which piece of the output: piece `piece` of part `part` (0 for a task that is not split) of
/// task `task`. Ordered as the consumer takes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct OutputKey {
    pub(super) task: u64,
    pub(super) part: usize,
    pub(super) piece: usize,
}

/// Decoded batches (or the error) waiting for the consumer: one piece of a part, or a whole
/// task that is not split.
pub(super) struct Output {
    batches: Result<Vec<RecordBatch>>,
    /// The part's (or the task's) last piece.
    last: bool,
}

impl State {
    /// The plan failed while producing task number `next_seq`: that error is the last output.
    pub(super) fn plan_failed(&mut self, shared: &Shared, e: Error) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.end_seq = Some(seq + 1);
        self.plan = None;
        let key = OutputKey {
            task: seq,
            ..OutputKey::default()
        };
        self.done.insert(
            key,
            Output {
                batches: Err(e),
                last: true,
            },
        );
        self.wake_consumer(&shared.signals);
    }

    /// Part `part` of task `seq` failed (part 0 for a task that is not split): its error is
    /// the last output, and nothing after it is worth doing. Earlier parts of the task still
    /// decode; the consumer takes them first.
    pub(super) fn fail(&mut self, shared: &Shared, seq: u64, part: usize, e: Error) {
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
        let piece = self
            .tasks
            .get(&seq)
            .and_then(|t| t.parts.get(part))
            .map_or(0, |p| p.pieces);
        let at = OutputKey {
            task: seq,
            part,
            piece,
        };
        self.done.retain(|&k, _| k < at);
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
            at,
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

    /// Piece `piece` of part `part` of task `seq` is decoded (its part, if split, already
    /// updated).
    pub(super) fn finish_piece(
        &mut self,
        shared: &Shared,
        seq: u64,
        part: usize,
        piece: usize,
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
        let key = OutputKey {
            task: seq,
            part,
            piece,
        };
        self.done.insert(
            key,
            Output {
                batches: Ok(batches),
                last,
            },
        );
        if seq == self.head.task {
            self.wake_consumer(&shared.signals);
        }
        if self.work_over() {
            shared.signals.io.notify_all();
            shared.signals.decode.notify_all();
        }
    }
}

impl Shared {
    /// The next piece of the output, in plan order, once it is decoded: `Ready(None)` at the
    /// end. With a waker, registers it and returns `Pending` instead of blocking; without one,
    /// never `Pending`.
    pub(crate) fn next_output(
        &self,
        waker: Option<&Waker>,
    ) -> Poll<Option<Result<Vec<RecordBatch>>>> {
        let mut st = self.lock();
        let mut waited: Option<Instant> = None;
        let out = loop {
            let head = st.head;
            if let Some(out) = st.done.remove(&head) {
                for b in out.batches.iter().flatten() {
                    st.decoded.remove(b);
                }
                // Decoding may wait for room in the budget, for the consumer to catch up, or
                // for a new head.
                self.signals.decode.notify_all();
                if !(out.last || out.batches.is_err()) {
                    st.head.piece += 1;
                    break Poll::Ready(Some(out.batches));
                }
                st.open = st.open.saturating_sub(1);
                st.head.piece = 0;
                let task_done = out.batches.is_err()
                    || st
                        .tasks
                        .get(&head.task)
                        .is_none_or(|t| head.part + 1 >= t.outputs());
                if task_done {
                    if let Some(t) = st.tasks.remove(&head.task) {
                        st.charged -= t.charge.min(st.charged);
                    }
                    st.head = OutputKey {
                        task: head.task + 1,
                        ..OutputKey::default()
                    };
                    st.schedule(self);
                } else {
                    st.head.part += 1;
                }
                break Poll::Ready(Some(out.batches));
            }
            if st.cancelled || st.end_seq == Some(head.task) {
                break Poll::Ready(None);
            }
            match waker {
                Some(w) => {
                    st.waker = Some(w.clone());
                    break Poll::Pending;
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
}
