//! The state a writer and its readers share, and the handle that opens readers.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrowfeed_traits::{Error, MemoryLedger};

use crate::reader::SpillReader;

/// An error shared by every reader of a spill: the writer's error behind an `Arc`, with the
/// same message and the same source chain.
#[derive(Debug, Clone)]
pub struct SharedError(pub Arc<Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// How the writing side ended, if it has.
#[derive(Debug, Clone)]
pub(crate) enum End {
    Open,
    Finished,
    Failed(Arc<Error>),
}

/// The spill file, once there is one.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
    /// A handle for positioned reads; the file is already unlinked on Unix.
    pub(crate) file: Arc<File>,
    pub(crate) path: Arc<PathBuf>,
    /// End of the schema message.
    pub(crate) schema_end: u64,
    /// End offset of each batch's messages (dictionaries and record batch), committed to the
    /// file in order.
    pub(crate) ends: Vec<u64>,
    /// Whether the schema has dictionary columns (readers that join mid-file must then replay
    /// the dictionary messages before their first batch).
    pub(crate) has_dictionaries: bool,
}

impl Disk {
    /// Where batch `k`'s messages start.
    pub(crate) fn start_of(&self, k: usize) -> u64 {
        if k == 0 {
            self.schema_end
        } else {
            self.ends[k - 1]
        }
    }
}

#[derive(Debug)]
pub(crate) struct State {
    /// Batches held in memory: all of them until the spill moves to disk, none after.
    pub(crate) mem: Vec<RecordBatch>,
    pub(crate) ledger: MemoryLedger,
    pub(crate) disk: Option<Disk>,
    /// Batches written so far.
    pub(crate) count: usize,
    pub(crate) end: End,
    pub(crate) wakers: Vec<Waker>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) schema: SchemaRef,
    pub(crate) dir: PathBuf,
    pub(crate) memory_budget: usize,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing that can panic runs under this lock except allocation; the state stays
        // consistent, so carry on after a poisoning panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every waiting reader that something changed.
    pub(crate) fn notify(&self, st: &mut State) {
        self.changed.notify_all();
        for w in st.wakers.drain(..) {
            w.wake();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // On Unix the file was unlinked at creation; elsewhere remove it now, when the writer
        // and every reader are gone.
        #[cfg(not(unix))]
        if let Some(d) = self.state.get_mut().ok().and_then(|s| s.disk.take()) {
            drop(d.file);
            let _ = std::fs::remove_file(d.path.as_path());
        }
    }
}

/// A cheap, cloneable handle to a spill: opens readers and reports its state. Readers and
/// handles keep the spilled data alive; the writer does not have to outlive them.
#[derive(Debug, Clone)]
pub struct SpillHandle {
    pub(crate) shared: Arc<Shared>,
}

impl SpillHandle {
    pub(crate) fn new(schema: SchemaRef, dir: PathBuf, memory_budget: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                schema,
                dir,
                memory_budget,
                state: Mutex::new(State {
                    mem: Vec::new(),
                    ledger: MemoryLedger::default(),
                    disk: None,
                    count: 0,
                    end: End::Open,
                    wakers: Vec::new(),
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// A reader of every batch from the first, following the writer live.
    pub fn reader(&self) -> SpillReader {
        SpillReader::new(self.shared.clone())
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.shared.schema.clone()
    }

    /// Whether the spill has moved to disk.
    pub fn is_spilled(&self) -> bool {
        self.shared.lock().disk.is_some()
    }

    /// Batches written so far.
    pub fn batches_written(&self) -> usize {
        self.shared.lock().count
    }

    /// Bytes of batches held in memory by the spill (not counting readers' own copies).
    pub fn memory_bytes(&self) -> usize {
        self.shared.lock().ledger.bytes()
    }

    /// Bytes committed to the spill file (0 while in memory).
    pub fn disk_bytes(&self) -> u64 {
        self.shared
            .lock()
            .disk
            .as_ref()
            .map_or(0, |d| d.ends.last().copied().unwrap_or(d.schema_end))
    }
}
