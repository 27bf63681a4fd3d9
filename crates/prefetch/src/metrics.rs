//! Counters that tell a user whether a loop is input-bound.

use std::fmt;
use std::time::Duration;

/// A snapshot of a [`PrefetchReader`](crate::PrefetchReader)'s counters.
///
/// If `consumer_wait` is a large share of the epoch, the loop is input-bound: read-ahead is not
/// keeping up (add producers, or make the source faster). If `producer_wait` is large, the
/// consumer is the bottleneck and the buffer is full most of the time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrefetchMetrics {
    /// Time the consumer spent waiting for a batch.
    pub consumer_wait: Duration,
    /// Time producers spent waiting for space in the buffer (summed over producers).
    pub producer_wait: Duration,
    /// Batches the producers read.
    pub batches_produced: u64,
    /// Bytes of the batches the producers read (allocation-aware, per batch).
    pub bytes_produced: u64,
    /// The most bytes buffered at once.
    pub peak_bytes: usize,
    /// Batches buffered now.
    pub buffered_batches: usize,
    /// Bytes buffered now.
    pub buffered_bytes: usize,
}

impl fmt::Display for PrefetchMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "consumer waited {:.3} s, producers waited {:.3} s, {} batches / {:.1} MB produced, peak {:.1} MB buffered",
            self.consumer_wait.as_secs_f64(),
            self.producer_wait.as_secs_f64(),
            self.batches_produced,
            self.bytes_produced as f64 / 1e6,
            self.peak_bytes as f64 / 1e6
        )
    }
}
