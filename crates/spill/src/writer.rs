//! The writing side: memory first, then an Arrow IPC stream file.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, Field};
use arrowfeed_traits::{Error, Location, Result, batch_memory_size};

use crate::options::{FileHook, SpillBuilder, SpillCompression};
use crate::shared::{Disk, End, Shared};

/// Counts the bytes written through it, so each batch's end offset is known.
struct Counting {
    inner: Box<dyn Write + Send>,
    written: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct FileSink {
    ipc: StreamWriter<Counting>,
    path: Arc<PathBuf>,
}

/// The core of a writer, movable onto a blocking thread for the async API.
struct Core {
    shared: Arc<Shared>,
    sink: Option<FileSink>,
    compression: SpillCompression,
    disk_quota: Option<u64>,
    file_hook: Option<FileHook>,
}

/// Writes batches into a spill; see the [crate docs](crate).
///
/// Writing after [`finish`](Self::finish) or after an error is an error. Dropping the writer
/// without finishing is an error for readers ("the writer was dropped"), not a hang.
pub struct SpillWriter {
    core: Option<Core>,
}

impl std::fmt::Debug for SpillWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillWriter").finish_non_exhaustive()
    }
}

static SPILL_SEQ: AtomicU64 = AtomicU64::new(0);

fn has_dictionaries(fields: &[Arc<Field>]) -> bool {
    fields.iter().any(|f| dtype_has_dictionary(f.data_type()))
}

fn dtype_has_dictionary(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => dtype_has_dictionary(f.data_type()),
        DataType::ListView(f) | DataType::LargeListView(f) => dtype_has_dictionary(f.data_type()),
        DataType::Struct(fs) => has_dictionaries(fs),
        DataType::Union(fs, _) => fs.iter().any(|(_, f)| dtype_has_dictionary(f.data_type())),
        DataType::RunEndEncoded(_, v) => dtype_has_dictionary(v.data_type()),
        _ => false,
    }
}

impl Core {
    fn check_open(&self) -> Result<()> {
        match &self.shared.lock().end {
            End::Open => Ok(()),
            End::Finished => Err(Error::invalid_argument("the spill is already finished")),
            End::Failed(e) => Err(Error::invalid_argument(format!(
                "the spill already failed: {e}"
            ))),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.check_open()?;
        if batch.schema().fields() != self.shared.schema.fields() {
            return Err(Error::invalid_argument(format!(
                "batch schema differs from the spill's:\n  batch: {:?}\n  spill: {:?}",
                batch.schema(),
                self.shared.schema
            )));
        }
        if self.sink.is_some() {
            let r = self.append(std::slice::from_ref(batch));
            return self.commit(r);
        }
        let size = batch_memory_size(batch);
        let backlog = {
            let mut st = self.shared.lock();
            if st.ledger.bytes().saturating_add(size) <= self.shared.memory_budget
                || batch.num_rows() == 0 && size == 0
            {
                st.ledger.add(batch);
                st.mem.push(batch.clone());
                st.count += 1;
                self.shared.notify(&mut st);
                return Ok(());
            }
            // Over the limit: everything held so far goes to disk, then this batch. Readers
            // keep reading the memory copies until the file has them.
            st.mem.clone()
        };
        let r = self.open_file().and_then(|()| {
            let mut all = backlog;
            all.push(batch.clone());
            self.append(&all)
        });
        self.commit(r)
    }

    /// Creates the spill file and writes the schema.
    fn open_file(&mut self) -> Result<()> {
        let dir = &self.shared.dir;
        let path = dir.join(format!(
            ".arrowfeed-spill-{}-{}.arrows",
            std::process::id(),
            SPILL_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // Unlink at once: the data lives as long as an open handle, and nothing is left in the
        // directory whatever happens to this process.
        #[cfg(unix)]
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        let reader_file = file.try_clone().map_err(|e| Error::io(&path, e))?;
        let out: Box<dyn Write + Send> = match &self.file_hook {
            Some(hook) => hook(file),
            None => Box::new(BufWriter::with_capacity(1 << 20, file)),
        };
        let codec = match self.compression {
            SpillCompression::None => None,
            SpillCompression::Lz4 => Some(arrow_ipc::CompressionType::LZ4_FRAME),
            SpillCompression::Zstd => Some(arrow_ipc::CompressionType::ZSTD),
        };
        let options = IpcWriteOptions::default()
            .try_with_compression(codec)
            .map_err(|e| Error::arrow_at(&path, e))?;
        let mut ipc = StreamWriter::try_new_with_options(
            Counting {
                inner: out,
                written: 0,
            },
            &self.shared.schema,
            options,
        )
        .map_err(|e| Error::arrow_at(&path, e))?;
        ipc.get_mut().flush().map_err(|e| Error::io(&path, e))?;
        let schema_end = ipc.get_ref().written;
        let path = Arc::new(path);
        self.sink = Some(FileSink {
            ipc,
            path: path.clone(),
        });
        let mut st = self.shared.lock();
        st.disk = Some(Disk {
            file: Arc::new(reader_file),
            path,
            schema_end,
            ends: Vec::new(),
            has_dictionaries: has_dictionaries(self.shared.schema.fields()),
        });
        Ok(())
    }

    /// Writes `batches` to the file, returning each one's end offset.
    fn append(&mut self, batches: &[RecordBatch]) -> Result<Vec<u64>> {
        let sink = self
            .sink
            .as_mut()
            .expect("append is called once the file exists");
        let path = sink.path.clone();
        let mut ends = Vec::with_capacity(batches.len());
        for b in batches {
            sink.ipc
                .write(b)
                .map_err(|e| Error::arrow_at(path.as_path(), e))?;
            sink.ipc
                .get_mut()
                .flush()
                .map_err(|e| Error::io(path.as_path(), e))?;
            let end = sink.ipc.get_ref().written;
            if let Some(q) = self.disk_quota.filter(|&q| end > q) {
                return Err(Error::external(
                    Location::new(path.display().to_string()),
                    format!(
                        "the spill file needs {end} bytes, more than its disk quota of {q} bytes"
                    ),
                ));
            }
            ends.push(end);
        }
        Ok(ends)
    }

    /// Publishes a written batch to readers (with the batches moved from memory, when this
    /// write moved the spill to disk), or the error to everyone.
    fn commit(&mut self, r: Result<Vec<u64>>) -> Result<()> {
        match r {
            Ok(ends) => {
                let mut st = self.shared.lock();
                if let Some(d) = st.disk.as_mut() {
                    d.ends.extend(ends);
                }
                // Non-empty only right after the move to disk: the file now has these batches.
                if !st.mem.is_empty() {
                    st.mem.clear();
                    st.ledger = arrowfeed_traits::MemoryLedger::default();
                }
                st.count += 1;
                self.shared.notify(&mut st);
                Ok(())
            }
            Err(e) => {
                self.fail(Error::external(
                    Location::none(),
                    SharedMessage(e.to_string()),
                ));
                Err(e)
            }
        }
    }

    fn fail(&mut self, e: Error) {
        self.sink = None;
        let mut st = self.shared.lock();
        if matches!(st.end, End::Open) {
            st.end = End::Failed(Arc::new(e));
        }
        self.shared.notify(&mut st);
    }

    fn finish(&mut self) -> Result<()> {
        self.check_open()?;
        if let Some(mut sink) = self.sink.take() {
            let path = sink.path.clone();
            if let Err(e) = sink
                .ipc
                .finish()
                .and_then(|()| sink.ipc.get_mut().flush().map_err(Into::into))
            {
                let e = Error::arrow_at(path.as_path(), e);
                self.fail(Error::external(
                    Location::none(),
                    SharedMessage(e.to_string()),
                ));
                return Err(e);
            }
        }
        let mut st = self.shared.lock();
        st.end = End::Finished;
        self.shared.notify(&mut st);
        Ok(())
    }
}

/// The text of a writer-side error, as readers receive it (the writer keeps the original).
#[derive(Debug)]
struct SharedMessage(String);

impl std::fmt::Display for SharedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SharedMessage {}

impl SpillWriter {
    pub(crate) fn new(shared: Arc<Shared>, b: SpillBuilder) -> Self {
        Self {
            core: Some(Core {
                shared,
                sink: None,
                compression: b.compression,
                disk_quota: b.disk_quota,
                file_hook: b.file_hook,
            }),
        }
    }

    fn core(&mut self) -> Result<&mut Core> {
        self.core
            .as_mut()
            .ok_or_else(|| Error::invalid_argument("the spill writer was lost: a write_async or finish_async future was dropped before it completed"))
    }

    /// Writes one batch: into memory while within the limit, else to the file.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a batch of another schema or a spill that is finished or
    /// failed; an I/O, encoding or quota error, which every reader also receives.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.core()?.write(batch)
    }

    /// Ends the spill: readers end after the last batch.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn finish(&mut self) -> Result<()> {
        self.core()?.finish()
    }

    /// Ends the spill with an error: every reader, current and future, receives it (with its
    /// message and source chain) after the batches written before it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the spill is already finished or failed.
    pub fn abort(&mut self, error: Error) -> Result<()> {
        let core = self.core()?;
        core.check_open()?;
        core.fail(error);
        Ok(())
    }

    /// [`write`](Self::write) for async code: file work runs on tokio's blocking pool (or
    /// inline when called outside a tokio runtime). A batch that stays in memory is written
    /// without leaving the task.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub async fn write_async(&mut self, batch: RecordBatch) -> Result<()> {
        let in_memory = self.core.as_ref().is_some_and(|c| c.sink.is_none())
            && self.core.as_ref().is_some_and(|c| {
                c.shared
                    .lock()
                    .ledger
                    .bytes()
                    .saturating_add(batch_memory_size(&batch))
                    <= c.shared.memory_budget
            });
        if in_memory {
            return self.write(&batch);
        }
        self.offload(move |core| core.write(&batch)).await
    }

    /// [`finish`](Self::finish) for async code.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub async fn finish_async(&mut self) -> Result<()> {
        self.offload(Core::finish).await
    }

    async fn offload(
        &mut self,
        f: impl FnOnce(&mut Core) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let mut core = self.core.take().ok_or_else(|| {
            Error::invalid_argument("the spill writer was lost: a write_async or finish_async future was dropped before it completed")
        })?;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let (core, r) = rt
                    .spawn_blocking(move || {
                        let r = f(&mut core);
                        (core, r)
                    })
                    .await
                    .map_err(|e| Error::external(Location::new("spill writer"), e))?;
                self.core = Some(core);
                r
            }
            Err(_) => {
                let r = f(&mut core);
                self.core = Some(core);
                r
            }
        }
    }
}

impl Drop for SpillWriter {
    fn drop(&mut self) {
        if let Some(core) = self.core.as_mut() {
            let open = matches!(core.shared.lock().end, End::Open);
            if open {
                core.fail(Error::invalid_argument(
                    "the spill writer was dropped without finish()",
                ));
            }
        }
    }
}
