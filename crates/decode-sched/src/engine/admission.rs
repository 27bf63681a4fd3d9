//! Admission: which reads may start. New tasks come from the plan in plan order, follow-up
//! reads ahead of them; each is charged to its task when it starts. A request of the task the
//! consumer waits for (the head) is always admitted, which keeps a budget smaller than one task
//! from deadlocking.

use std::cmp::Reverse;
use std::ops::Range;

use arrowfeed_traits::no_panic;

use super::io::{ReadClass, ReadKey};
use super::{Config, Fetch, Shared, State, Task};
use crate::reads::plan_reads;

/// Fetched bytes not yet consumed may take this share of the budget, as a divisor: a
/// quarter (the fetch of the task the consumer waits for is admitted whatever its size).
/// Without it, a consumer that keeps up leaves the decoded batches' half of the budget
/// ([`super::decode::DECODED_SHARE_OF_BUDGET`]) empty and fetches fill the whole budget:
/// scanning `tpch.parquet` of 256,000 rows (18 MB row groups) over S3 on loopback at the
/// default budget, peak anonymous memory was 328-344 MiB with no share, 300-332 with half and
/// 278-280 with a quarter, in the same time.
pub(super) const FETCHED_SHARE_OF_BUDGET: u64 = 4;

/// A follow-up fetch waiting for admission: served lowest priority first, then in plan order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct FollowUp {
    pub(super) priority: u64,
    pub(super) task: u64,
}

/// The bytes `ranges` ask for.
pub(super) fn cost(ranges: &[Range<u64>]) -> u64 {
    ranges
        .iter()
        .map(|r| r.end.saturating_sub(r.start))
        .fold(0u64, u64::saturating_add)
}

impl State {
    /// True when reads costing `cost` fit in the budget beside what the scan holds, and in
    /// the fetched bytes' share of it ([`FETCHED_SHARE_OF_BUDGET`]). Reads of views of a map
    /// cost no memory; only the task limit holds them back.
    fn fits(&self, config: &Config, cost: u64) -> bool {
        !config.fetch_counts
            || (self.held(config).saturating_add(cost) <= config.budget
                && self.charged.saturating_add(cost) <= config.budget / FETCHED_SHARE_OF_BUDGET)
    }

    /// Admits as much work as the budget allows: follow-up reads first, then new tasks from
    /// the plan, in plan order. A request of the head task is always admitted.
    pub(super) fn schedule(&mut self, shared: &Shared) {
        if self.cancelled {
            return;
        }
        loop {
            // The head's follow-up first: the consumer is waiting for it, whatever its priority.
            // (Its entry in `followups` goes stale and is dropped below.)
            let head = self.head.task;
            if let Some(ranges) = self.tasks.get_mut(&head).and_then(|t| t.wanted.take()) {
                self.start_fetch(shared, head, ranges, ReadClass::FollowUp);
                continue;
            }
            if let Some(&Reverse(FollowUp { task: seq, .. })) = self.followups.peek() {
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
                self.start_fetch(shared, seq, ranges, ReadClass::FollowUp);
                continue;
            }
            if self.end_seq.is_some() {
                break;
            }
            if self.staged.is_none() && !self.stage_next(shared) {
                break;
            }
            let seq = self.next_seq;
            let Some(task_cost) = self.staged.as_ref().map(|t| cost(&t.ranges)) else {
                break;
            };
            let room =
                self.fits(&shared.config, task_cost) && self.tasks.len() < shared.config.max_tasks;
            if !(seq == head || room) {
                break;
            }
            let Some(staged) = self.staged.take() else {
                break;
            };
            self.next_seq += 1;
            self.metrics.tasks += 1;
            let (task, ranges) = Task::admitted(staged);
            self.tasks.insert(seq, task);
            self.start_fetch(shared, seq, ranges, ReadClass::New);
        }
    }

    /// Pulls the plan's next task into `staged`. False when there is none: the plan ended or
    /// failed (that error is then the last output).
    fn stage_next(&mut self, shared: &Shared) -> bool {
        let Some(plan) = self.plan.as_mut() else {
            return false;
        };
        let name = shared.source.name();
        match no_panic(name, "the scan plan", || plan.next().transpose()) {
            Ok(Some(task)) => {
                self.staged = Some(task);
                true
            }
            Ok(None) => {
                self.end_seq = Some(self.next_seq);
                self.plan = None;
                self.wake_consumer(&shared.signals);
                false
            }
            Err(e) => {
                self.plan_failed(shared, e);
                false
            }
        }
    }

    /// Charges `ranges` to task `seq` and queues their reads.
    fn start_fetch(
        &mut self,
        shared: &Shared,
        seq: u64,
        ranges: Vec<Range<u64>>,
        class: ReadClass,
    ) {
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
            reads: reads.into_iter().map(|r| (r, None)).collect(),
            remaining: n,
        });
        let head_charge = self.tasks.get(&self.head.task).map_or(0, |t| t.charge);
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
        for read in 0..n {
            self.read_queue.push(Reverse(ReadKey {
                class,
                priority,
                task: seq,
                read,
            }));
        }
        if n == 1 {
            shared.signals.io.notify_one();
        } else {
            shared.signals.io.notify_all();
        }
    }
}
