//! `Prefetch`: validated read-ahead settings, and the builder that makes them.

use arrow_array::RecordBatchReader;
use arrowfeed_traits::{Error, Result};

use crate::reader::PrefetchReader;

/// In what order [`Prefetch::spawn_many`] hands out the batches of several sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Order {
    /// Deterministic: source *i* is read by producer *i mod K* (after the sources before it on
    /// that producer), and the output takes one batch from each producer in turn, skipping
    /// producers that have finished. With at least as many producers as sources this is plain
    /// round-robin by source. The order depends only on the data, never on timing.
    #[default]
    RoundRobin,
    /// Whatever is ready first. Each source's own batches stay in order.
    AsReady,
}

/// Read-ahead settings; make them with [`Prefetch::builder`].
///
/// # Bounds
/// Producers stop reading when `depth` batches or `memory_budget` bytes (counted by
/// allocation with `arrowfeed_traits::MemoryLedger`) are buffered — with one exception so that a
/// batch larger than the whole budget still flows instead of deadlocking: a producer whose own
/// queue is empty may always add one batch. So at most `memory_budget` plus one batch per
/// producer is ever buffered (plus one batch, for a single source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefetch {
    pub(crate) depth: usize,
    pub(crate) memory_budget: usize,
    pub(crate) parallelism: usize,
    pub(crate) order: Order,
}

impl Prefetch {
    /// A builder with the defaults: depth 4, 256 MiB, one producer, round-robin order.
    pub fn builder() -> PrefetchBuilder {
        PrefetchBuilder::default()
    }

    /// Starts reading `source` ahead on a dedicated thread.
    ///
    /// # Errors
    /// [`Error::External`] if the thread cannot be spawned.
    pub fn spawn<R: RecordBatchReader + Send + 'static>(
        &self,
        source: R,
    ) -> Result<PrefetchReader> {
        let schema = source.schema();
        PrefetchReader::start(self, schema, vec![Box::new(source)], 1)
    }

    /// Reads several sources with up to `parallelism` producer threads, in the configured
    /// [`Order`], all bounded by the same budget.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no source is given or two schemas have different fields;
    /// [`Error::External`] if a thread cannot be spawned.
    pub fn spawn_many(
        &self,
        sources: Vec<Box<dyn RecordBatchReader + Send>>,
    ) -> Result<PrefetchReader> {
        let Some(first) = sources.first() else {
            return Err(Error::invalid_argument(
                "spawn_many needs at least one source",
            ));
        };
        let schema = first.schema();
        if let Some(i) = sources
            .iter()
            .position(|s| s.schema().fields() != schema.fields())
        {
            return Err(Error::invalid_argument(format!(
                "source {i} has schema {:?}, source 0 has {:?}",
                sources[i].schema(),
                schema
            )));
        }
        let producers = self.parallelism.min(sources.len());
        PrefetchReader::start(self, schema, sources, producers)
    }

    /// Batches buffered at most (see the bounds above).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Bytes buffered at most (see the bounds above).
    pub fn memory_budget(&self) -> usize {
        self.memory_budget
    }
}

/// Builds a [`Prefetch`]; [`build`](Self::build) checks the settings.
///
/// ```
/// use arrowfeed_prefetch::Prefetch;
/// let p = Prefetch::builder().depth(8).memory_budget(64 << 20).build()?;
/// assert_eq!(p.depth(), 8);
/// let err = Prefetch::builder().depth(0).build().unwrap_err();
/// assert!(err.to_string().contains("depth"));
/// # Ok::<(), arrowfeed_traits::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrefetchBuilder {
    depth: usize,
    memory_budget: usize,
    parallelism: usize,
    order: Order,
}

impl Default for PrefetchBuilder {
    fn default() -> Self {
        Self {
            depth: 4,
            memory_budget: 256 << 20,
            parallelism: 1,
            order: Order::RoundRobin,
        }
    }
}

impl PrefetchBuilder {
    /// Batches to buffer at most (at least 1).
    pub fn depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    /// Bytes to buffer at most (at least 1).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Producer threads for [`Prefetch::spawn_many`] (at least 1).
    pub fn parallelism(mut self, threads: usize) -> Self {
        self.parallelism = threads;
        self
    }

    /// Output order for [`Prefetch::spawn_many`].
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting that is zero.
    pub fn build(self) -> Result<Prefetch> {
        for (name, v) in [
            ("depth", self.depth),
            ("memory_budget", self.memory_budget),
            ("parallelism", self.parallelism),
        ] {
            if v == 0 {
                return Err(Error::invalid_argument(format!(
                    "prefetch {name} must be at least 1, got 0"
                )));
            }
        }
        Ok(Prefetch {
            depth: self.depth,
            memory_budget: self.memory_budget,
            parallelism: self.parallelism,
            order: self.order,
        })
    }
}
