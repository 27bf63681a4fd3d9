//! `Spill::builder`: where to spill, how much to keep in memory, compression, quota.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use arrowfeed_traits::{Error, Result};

use crate::shared::SpillHandle;
use crate::writer::SpillWriter;

/// Compression of the spill file's record batch bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpillCompression {
    /// None: fastest to write and to replay.
    #[default]
    None,
    /// LZ4 frame: cheap, for spills that would otherwise not fit the disk or page cache.
    Lz4,
    /// Zstandard: smaller, slower.
    Zstd,
}

/// Wraps the spill file's writer; used by fault-injection tests.
pub(crate) type FileHook = Arc<dyn Fn(File) -> Box<dyn Write + Send> + Send + Sync>;

/// Entry point: [`Spill::builder`].
#[derive(Debug)]
pub struct Spill;

impl Spill {
    /// A spill of batches of `schema`, with its file (if one is ever needed) in `dir`.
    pub fn builder(dir: impl AsRef<Path>, schema: SchemaRef) -> SpillBuilder {
        SpillBuilder {
            dir: dir.as_ref().to_path_buf(),
            schema,
            memory_budget: 64 << 20,
            compression: SpillCompression::None,
            disk_quota: None,
            file_hook: None,
        }
    }
}

/// Settings of a spill; [`build`](Self::build) creates it.
pub struct SpillBuilder {
    pub(crate) dir: PathBuf,
    pub(crate) schema: SchemaRef,
    pub(crate) memory_budget: usize,
    pub(crate) compression: SpillCompression,
    pub(crate) disk_quota: Option<u64>,
    pub(crate) file_hook: Option<FileHook>,
}

impl std::fmt::Debug for SpillBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillBuilder")
            .field("dir", &self.dir)
            .field("memory_budget", &self.memory_budget)
            .field("compression", &self.compression)
            .field("disk_quota", &self.disk_quota)
            .finish_non_exhaustive()
    }
}

impl SpillBuilder {
    /// Bytes of batches kept in memory before spilling (default 64 MiB; at least 1: a budget
    /// of 1 spills the first non-empty batch).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Compression of the spill file (default none).
    pub fn compression(mut self, c: SpillCompression) -> Self {
        self.compression = c;
        self
    }

    /// Largest spill file allowed; a write that takes the file past it fails, and every reader
    /// gets the error.
    pub fn disk_quota(mut self, bytes: u64) -> Self {
        self.disk_quota = Some(bytes);
        self
    }

    /// Wraps the spill file's writer, to inject faults in tests (feature `fault-injection`,
    /// which only this crate's tests enable). Not for other uses: the wrapper gets the file
    /// that replay maps, and a map's contract (see `arrowfeed_traits::mmap`) needs the bytes
    /// below the committed length never to change.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn wrap_file_writer(
        mut self,
        hook: impl Fn(File) -> Box<dyn Write + Send> + Send + Sync + 'static,
    ) -> Self {
        self.file_hook = Some(Arc::new(hook));
        self
    }

    /// Creates the spill: a writer and a handle that opens readers. Nothing is written to the
    /// directory until the memory budget is exceeded.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero memory budget; [`Error::Io`] if `dir` is not a
    /// directory.
    pub fn build(self) -> Result<(SpillWriter, SpillHandle)> {
        if self.memory_budget == 0 {
            return Err(Error::invalid_argument(
                "spill memory_budget must be at least 1 byte, got 0",
            ));
        }
        let meta = std::fs::metadata(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        if !meta.is_dir() {
            return Err(Error::io(
                &self.dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "the spill directory is not a directory",
                ),
            ));
        }
        let handle = SpillHandle::new(self.schema.clone(), self.dir.clone(), self.memory_budget);
        let writer = SpillWriter::new(handle.shared.clone(), self);
        Ok((writer, handle))
    }
}
