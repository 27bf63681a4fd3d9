//! Writing a store: shards cut at a target size, checksums while writing, atomic publish.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_schema::SchemaRef;
use arrowfeed_traits::{Error, ObjectDir, Result};

use crate::manifest::{MANIFEST_FILE, Manifest, ShardCompression, ShardEntry};
use crate::wide::{large_type, offset_span};

/// Hashes and counts what passes through it.
struct Hashing {
    inner: BufWriter<File>,
    hasher: xxhash_rust::xxh3::Xxh3,
    written: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct OpenShard {
    file: String,
    path: PathBuf,
    writer: FileWriter<Hashing>,
    rows: u64,
    /// Bytes written when writeback was last started.
    kicked: u64,
}

/// Bytes of a shard between two early writebacks.
const WRITEBACK_BYTES: u64 = 64 << 20;

/// Makes shard files durable off the writing thread. Each closed shard is synced (`fsync`) on
/// a thread of its own while the writer goes on with the next one, and while a shard is being
/// written its bytes so far are flushed (`fdatasync` of a second handle) every
/// [`WRITEBACK_BYTES`], so the disk works while the writer encodes and the sync at its close
/// finds little left. [`finish`](Self::finish) waits for every sync and reports the first
/// failure, naming the shard; the manifest is written only after it.
struct Syncer {
    jobs: Option<std::sync::mpsc::Sender<Sync>>,
    /// An early writeback is queued and not yet started: more are not queued (the one
    /// waiting covers them).
    early_queued: Arc<AtomicBool>,
    worker: Option<std::thread::JoinHandle<Result<()>>>,
}

enum Sync {
    /// Flush the data written so far.
    Early(File, PathBuf),
    /// The shard is complete: sync it whole.
    Close(File, PathBuf),
}

impl Syncer {
    fn new() -> Result<Self> {
        let (jobs, rx) = std::sync::mpsc::channel::<Sync>();
        let early_queued = Arc::new(AtomicBool::new(false));
        let queued = early_queued.clone();
        let worker = arrowfeed_traits::spawn_thread("arrowfeed-sync".into(), move || {
            let mut first: Result<()> = Ok(());
            for job in rx {
                let (r, path) = match job {
                    Sync::Early(f, path) => {
                        queued.store(false, Ordering::Release);
                        (f.sync_data(), path)
                    }
                    Sync::Close(f, path) => (f.sync_all(), path),
                };
                if let (Err(e), true) = (r, first.is_ok()) {
                    first = Err(Error::io(path, e));
                }
            }
            first
        })?;
        Ok(Self {
            jobs: Some(jobs),
            early_queued,
            worker: Some(worker),
        })
    }

    fn send(&self, job: Sync) {
        if let Some(tx) = &self.jobs {
            // The worker runs until the sender is dropped, so this cannot fail.
            let _ = tx.send(job);
        }
    }

    /// Starts writeback of what `o` has written so far, if it wrote enough since the last.
    fn kick(&self, o: &mut OpenShard) {
        let written = o.writer.get_ref().written;
        if written - o.kicked < WRITEBACK_BYTES || self.early_queued.load(Ordering::Acquire) {
            return;
        }
        o.kicked = written;
        if let Ok(f) = o.writer.get_ref().inner.get_ref().try_clone() {
            self.early_queued.store(true, Ordering::Release);
            self.send(Sync::Early(f, o.path.clone()));
        }
    }

    /// Syncs the closed shard `file` at `path` before [`finish`](Self::finish) returns.
    fn close(&self, file: File, path: &Path) {
        self.send(Sync::Close(file, path.to_path_buf()));
    }

    /// Waits for every sync; the first failure, naming its shard.
    fn finish(mut self) -> Result<()> {
        self.jobs = None;
        match self.worker.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Writes a shard store from any `RecordBatchReader`.
///
/// Shards are cut when they reach [`shard_bytes`](Self::shard_bytes) (default 256 MiB) or
/// [`shard_rows`](Self::shard_rows); inside a shard, batches hold at most
/// [`batch_rows`](Self::batch_rows) rows (default 8,192), small enough that a gather touches
/// little beyond the rows it needs.
///
/// # Atomic publish
/// Everything is written into a hidden temporary directory beside the target, synced to disk,
/// and renamed into place. A crash at any moment leaves either no dataset at the target or the
/// complete one (possibly with a hidden `.NAME.tmp-*` directory beside it). Replacing an
/// existing store needs [`overwrite`](Self::overwrite); the old one is renamed aside, the new
/// one renamed in, then the old one deleted — a crash in between leaves no dataset at the
/// target, never a mixed one.
///
/// A writer holds a lock on its hidden directories while it works (`flock`, released by the
/// kernel when the process dies however it dies). The next write to the same target removes
/// the hidden directories that killed writers left, and leaves alone those of a writer still
/// at work.
#[derive(Debug, Clone)]
pub struct StoreWriter {
    shard_bytes: u64,
    shard_rows: Option<u64>,
    batch_rows: usize,
    compression: ShardCompression,
    overwrite: bool,
}

impl Default for StoreWriter {
    fn default() -> Self {
        Self::new()
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl StoreWriter {
    /// A writer with the defaults.
    pub fn new() -> Self {
        Self {
            shard_bytes: 256 << 20,
            shard_rows: None,
            batch_rows: 8192,
            compression: ShardCompression::None,
            overwrite: false,
        }
    }

    /// Cut a shard once it holds this many bytes (at least 1).
    pub fn shard_bytes(mut self, bytes: u64) -> Self {
        self.shard_bytes = bytes.max(1);
        self
    }

    /// Cut a shard once it holds this many rows (at least 1).
    pub fn shard_rows(mut self, rows: u64) -> Self {
        self.shard_rows = Some(rows.max(1));
        self
    }

    /// Rows per batch inside a shard (at least 1).
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// Shard compression; see [`ShardCompression`] for the trade-off.
    pub fn compression(mut self, c: ShardCompression) -> Self {
        self.compression = c;
        self
    }

    /// Replace a store that already exists at the target.
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    /// Writes every batch of `input` as a store at `dir`; returns its manifest.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `dir` exists and overwriting was not asked for; the
    /// input's error; [`Error::Io`] naming the file that could not be written. Nothing is left
    /// at `dir` on error (the temporary directory is removed).
    pub fn write(&self, dir: impl AsRef<Path>, input: impl RecordBatchReader) -> Result<Manifest> {
        self.write_with_progress(dir, input, |_| {})
    }

    /// [`write`](Self::write), calling `progress(rows written so far)` after each batch.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn write_with_progress(
        &self,
        dir: impl AsRef<Path>,
        input: impl RecordBatchReader,
        mut progress: impl FnMut(u64),
    ) -> Result<Manifest> {
        let dir = dir.as_ref();
        if dir.exists() && !self.overwrite {
            return Err(Error::invalid_argument(format!(
                "{} already exists; ask for overwrite to replace it",
                dir.display()
            )));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::invalid_argument(format!(
                    "{}: a store needs a directory name",
                    dir.display()
                ))
            })?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        remove_abandoned(&parent, &name);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        // Held until the write is over, published or not.
        let _working = lock_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let r = self
            .write_into(&tmp, input, &mut progress, "", true, &mut |_, _| Ok(()))
            .and_then(|m| {
                publish(&tmp, dir, &parent, &name, seq)?;
                Ok(m)
            });
        if r.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        r
    }

    /// Writes every batch of `input` as a store under the object-store prefix `objects`
    /// (`s3://bucket/train`); returns its manifest.
    ///
    /// Shards are written to a local staging directory one at a time, uploaded as each is
    /// finished (multipart for large ones) and removed locally, so the staging space is one
    /// shard. The manifest is uploaded last: until then a reader finds the previous store or
    /// none, never a half one. Shard names carry a token of this write, so a reader of the
    /// previous manifest never reads a shard of this one; the previous store's shards are left
    /// where they are.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a store exists there and overwriting was not asked for;
    /// the input's error; the directory's upload errors, naming the object.
    pub fn write_to(
        &self,
        objects: &dyn ObjectDir,
        input: impl RecordBatchReader,
        mut progress: impl FnMut(u64),
    ) -> Result<Manifest> {
        use futures::executor::block_on;
        match block_on(objects.open(MANIFEST_FILE)) {
            Ok(_) if !self.overwrite => {
                return Err(Error::invalid_argument(format!(
                    "{} already holds a store; ask for overwrite to replace it",
                    objects.url()
                )));
            }
            Ok(_) => {}
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let token = format!(
            "-{:08x}",
            xxhash_rust::xxh3::xxh3_64(
                &[nanos, u64::from(std::process::id()), seq]
                    .map(u64::to_le_bytes)
                    .concat()
            ) as u32
        );
        let staging =
            std::env::temp_dir().join(format!(".arrowfeed-upload-{}-{seq}", std::process::id()));
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        let r = self
            .write_into(
                &staging,
                input,
                &mut progress,
                &token,
                false,
                &mut |path, entry| {
                    block_on(objects.put_file(&entry.file, path))?;
                    std::fs::remove_file(path).map_err(|e| Error::io(path, e))
                },
            )
            .and_then(|m| {
                block_on(objects.put_file(MANIFEST_FILE, &staging.join(MANIFEST_FILE)))?;
                Ok(m)
            });
        let _ = std::fs::remove_dir_all(&staging);
        r
    }

    /// Writes the shards and manifest into `tmp`, naming shards `shard-NNNNN{token}.arrow`
    /// and calling `on_shard` with each one's path and entry once it is complete. With
    /// `durable`, every file is on disk (synced) when it returns; without (a staging directory
    /// whose files are uploaded and removed), nothing is synced.
    fn write_into(
        &self,
        tmp: &Path,
        input: impl RecordBatchReader,
        progress: &mut impl FnMut(u64),
        token: &str,
        durable: bool,
        on_shard: &mut dyn FnMut(&Path, &ShardEntry) -> Result<()>,
    ) -> Result<Manifest> {
        let syncer = durable.then(Syncer::new).transpose()?;
        let mut close = |o: OpenShard, shards: &mut Vec<ShardEntry>| -> Result<()> {
            let path = o.path.clone();
            let (entry, file) = close_shard(o)?;
            if let Some(s) = &syncer {
                s.close(file, &path);
            }
            on_shard(&path, &entry)?;
            shards.push(entry);
            Ok(())
        };
        let schema = input.schema();
        let mut shards: Vec<ShardEntry> = Vec::new();
        let mut open: Option<OpenShard> = None;
        let mut total = 0u64;
        let mut spans = vec![0u64; schema.fields().len()];
        for batch in input {
            let batch = batch.map_err(Error::from_arrow)?;
            let mut done = 0;
            while done < batch.num_rows() {
                let room = match (&open, self.shard_rows) {
                    (Some(o), Some(max)) => (max - o.rows) as usize,
                    (None, Some(max)) => max as usize,
                    _ => usize::MAX,
                };
                let n = (batch.num_rows() - done)
                    .min(self.batch_rows)
                    .min(room.max(1));
                let piece = batch.slice(done, n);
                for (span, col) in spans.iter_mut().zip(piece.columns()) {
                    *span = span.saturating_add(offset_span(col.as_ref()));
                }
                if open.is_none() {
                    open = Some(self.open_shard(tmp, shards.len(), token, &schema)?);
                }
                let o = open.as_mut().expect("opened above");
                o.writer
                    .write(&piece)
                    .map_err(|e| Error::arrow_at(&o.path, e))?;
                o.rows += n as u64;
                done += n;
                total += n as u64;
                if let Some(s) = &syncer {
                    s.kick(o);
                }
                let full = o.writer.get_ref().written >= self.shard_bytes
                    || self.shard_rows.is_some_and(|m| o.rows >= m);
                if full {
                    close(open.take().expect("open"), &mut shards)?;
                }
            }
            progress(total);
        }
        if let Some(o) = open.take() {
            close(o, &mut shards)?;
        }
        if let Some(s) = syncer {
            s.finish()?;
        }
        let column_spans = schema
            .fields()
            .iter()
            .zip(spans)
            .map(|(f, span)| large_type(f.data_type()).map(|_| span))
            .collect();
        let manifest = Manifest {
            column_spans,
            schema,
            compression: self.compression,
            shards,
        };
        let path = tmp.join(MANIFEST_FILE);
        let mut f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        f.write_all(manifest.to_json()?.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        if durable {
            f.sync_all().map_err(|e| Error::io(&path, e))?;
            sync_dir(tmp)?;
        }
        Ok(manifest)
    }

    fn open_shard(
        &self,
        tmp: &Path,
        k: usize,
        token: &str,
        schema: &SchemaRef,
    ) -> Result<OpenShard> {
        let file = format!("shard-{k:05}{token}.arrow");
        let path = tmp.join(&file);
        let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let codec = match self.compression {
            ShardCompression::None => None,
            ShardCompression::Lz4 => Some(arrow_ipc::CompressionType::LZ4_FRAME),
            ShardCompression::Zstd => Some(arrow_ipc::CompressionType::ZSTD),
        };
        let options = IpcWriteOptions::default()
            .try_with_compression(codec)
            .map_err(|e| Error::arrow_at(&path, e))?;
        let out = Hashing {
            inner: BufWriter::with_capacity(1 << 20, f),
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            written: 0,
        };
        let writer = FileWriter::try_new_with_options(out, schema, options)
            .map_err(|e| Error::arrow_at(&path, e))?;
        Ok(OpenShard {
            file,
            path,
            writer,
            rows: 0,
            kicked: 0,
        })
    }
}

/// Finishes `o`'s file: its entry, and the file to sync.
fn close_shard(mut o: OpenShard) -> Result<(ShardEntry, File)> {
    o.writer.finish().map_err(|e| Error::arrow_at(&o.path, e))?;
    let mut h = o
        .writer
        .into_inner()
        .map_err(|e| Error::arrow_at(&o.path, e))?;
    h.flush().map_err(|e| Error::io(&o.path, e))?;
    let file = h
        .inner
        .into_inner()
        .map_err(|e| Error::io(&o.path, e.into_error()))?;
    let entry = ShardEntry {
        file: o.file,
        rows: o.rows,
        bytes: h.written,
        xxh3: h.hasher.digest(),
    };
    Ok((entry, file))
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// An exclusive lock on directory `dir`, held while the returned handle lives (on Unix; a
/// no-op elsewhere).
fn lock_dir(dir: &Path) -> std::io::Result<Option<File>> {
    #[cfg(unix)]
    {
        let f = File::open(dir)?;
        f.lock()?;
        Ok(Some(f))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// The hidden `.NAME.tmp-*` and `.NAME.old-*` directories in `parent` that no writer holds:
/// what writes of the store `name` killed before they finished left behind.
pub(crate) fn abandoned(parent: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return out;
        };
        let (tmp, old) = (format!(".{name}.tmp-"), format!(".{name}.old-"));
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let n = file_name.to_string_lossy();
            if !(n.starts_with(&tmp) || n.starts_with(&old)) {
                continue;
            }
            let path = entry.path();
            // A writer at work holds the lock; a killed one's died with it.
            if let Ok(f) = File::open(&path)
                && f.try_lock().is_ok()
            {
                out.push(path);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (parent, name);
    out
}

/// Removes the [`abandoned`] directories. Best effort: what cannot be removed stays.
fn remove_abandoned(parent: &Path, name: &str) {
    for path in abandoned(parent, name) {
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// Renames the finished temporary directory into place (see "Atomic publish").
fn publish(tmp: &Path, dir: &Path, parent: &Path, name: &str, seq: u64) -> Result<()> {
    if dir.exists() {
        let old = parent.join(format!(".{name}.old-{}-{seq}", std::process::id()));
        // The old store, once renamed aside, is ours to delete: no other writer's cleanup
        // may take it while we do.
        let _aside = lock_dir(dir).map_err(|e| Error::io(dir, e))?;
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        std::fs::rename(tmp, dir).map_err(|e| Error::io(dir, e))?;
        sync_dir(parent)?;
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    } else {
        std::fs::rename(tmp, dir).map_err(|e| Error::io(dir, e))?;
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes `batch`es of `schema` to a store at `dir` with default settings; a shorthand for
/// tests and examples.
///
/// # Errors
/// As [`StoreWriter::write`].
pub fn write_batches(
    dir: impl AsRef<Path>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    writer: &StoreWriter,
) -> Result<Manifest> {
    let input = arrow_array::RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    writer.write(dir, input)
}
