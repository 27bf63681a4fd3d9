//! I/O: the threads that serve the read queue, how many of them run, and the end of a fetch,
//! which hands the task's bytes to decoding.

use std::cmp::Reverse;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrowfeed_traits::{Error, Result, no_panic, spawn_thread};
use bytes::Bytes;

use super::{Shared, State};
use crate::reads::assemble;

/// When reads wait, no I/O thread is idle and none has started a read for this long, more
/// I/O threads start (up to `io_parallelism`). Reads from memory (a mapped file in the page
/// cache) never keep the threads busy this long, so such scans run on one I/O thread; a slow
/// source reaches `io_parallelism` this long after its first read starts. Idle decode threads
/// check while reads wait (they wake this often then), as do I/O threads after each read.
pub(super) const SLOW_READ: Duration = Duration::from_micros(250);

/// Which fetch a read belongs to: a follow-up (its task already holds budget and a decoder
/// waits for it) is served before a new task's reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ReadClass {
    FollowUp,
    New,
}

/// A read in the read queue, served smallest first: by class, then priority, then plan order,
/// then position in the fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ReadKey {
    pub(super) class: ReadClass,
    pub(super) priority: u64,
    pub(super) task: u64,
    /// The read's index in its fetch.
    pub(super) read: usize,
}

impl State {
    /// All reads of task `seq`'s fetch are in: hand its bytes to a decode thread.
    pub(super) fn fetch_complete(&mut self, shared: &Shared, seq: u64) {
        let Some(task) = self.tasks.get_mut(&seq) else {
            return;
        };
        let Some(fetch) = task.fetch.take() else {
            return;
        };
        let reads: Vec<(Range<u64>, Bytes)> = fetch
            .reads
            .into_iter()
            .map(|(r, b)| (r, b.unwrap_or_default()))
            .collect();
        let mut bytes = Vec::with_capacity(fetch.ranges.len());
        for r in &fetch.ranges {
            match assemble(r, &reads) {
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
        let priority = task.priority;
        self.queue_decode(priority, seq, 0);
        shared.signals.decode.notify_one();
    }
}

impl Shared {
    /// Starts one more I/O thread (the caller holds the state lock).
    pub(super) fn spawn_io(self: &Arc<Self>, st: &mut State) -> Result<()> {
        let s = self.clone();
        let handle = spawn_thread(format!("arrowfeed-io-{}", st.io_threads), move || {
            s.io_loop()
        })?;
        st.io_threads += 1;
        st.metrics.io_threads += 1;
        st.threads.push(handle);
        Ok(())
    }

    fn io_loop(self: &Arc<Self>) {
        let mut st = self.lock();
        loop {
            let (seq, read, range) = loop {
                if st.work_over() {
                    return;
                }
                if let Some(Reverse(ReadKey { task, read, .. })) = st.read_queue.pop() {
                    let range = st
                        .tasks
                        .get(&task)
                        .and_then(|t| t.fetch.as_ref())
                        .and_then(|f| f.reads.get(read))
                        .map(|(r, _)| r.clone());
                    if let Some(r) = range {
                        st.read_started = Instant::now();
                        break (task, read, r);
                    }
                    continue;
                }
                st.io_idle += 1;
                st = self.signals.io.wait(st).unwrap_or_else(|p| p.into_inner());
                st.io_idle -= 1;
            };
            drop(st);
            let started = Instant::now();
            let result = self.read(range);
            let elapsed = started.elapsed();
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
                            let slot = f.reads.get_mut(read)?;
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

    /// Reads `range` from the source (without the state lock), checking its length and
    /// turning a panic into an error.
    fn read(&self, range: Range<u64>) -> Result<Bytes> {
        let b = no_panic(self.source.name(), "the byte source", || {
            futures::executor::block_on(self.source.read(range.clone()))
        })?;
        if b.len() as u64 != range.end - range.start {
            return Err(Error::corrupt(
                self.source.name(),
                format!(
                    "the byte source returned {} bytes for the {}-byte range {}..{}",
                    b.len(),
                    range.end - range.start,
                    range.start,
                    range.end
                ),
            ));
        }
        Ok(b)
    }

    /// True when reads wait for an I/O thread and more may start.
    pub(super) fn io_wanted(&self, st: &State) -> bool {
        !st.cancelled
            && st.io_idle == 0
            && !st.read_queue.is_empty()
            && st.io_threads < self.config.io_parallelism
    }

    /// Starts I/O threads for the waiting reads if the busy ones have been at it for
    /// [`SLOW_READ`].
    pub(super) fn grow_io(self: &Arc<Self>, st: &mut State) {
        if !self.io_wanted(st) || st.read_started.elapsed() < SLOW_READ {
            return;
        }
        let room = self.config.io_parallelism - st.io_threads;
        for _ in 0..st.read_queue.len().min(room) {
            // Without another thread the scan still runs on the ones it has.
            if self.spawn_io(st).is_err() {
                break;
            }
        }
    }
}
