//! Arrow IPC file and stream sources.
//!
//! The file reader parses the footer itself so it can check every length it reads off the disk
//! against the file size *before* allocating or reading: a crafted footer cannot make it
//! allocate more than the file holds. Batches are read with one positioned read per block into
//! a 64-byte aligned buffer, then decoded zero-copy from it by arrow-ipc's `FileDecoder`.

use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::reader::{FileDecoder, StreamReader};
use arrow_ipc::{Block, CompressionType};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::ipc::{CheckedRead, FileFooter, check_message, footer_range, message_header};
use arrowfeed_traits::{ByteSource, Error, Result, no_panic};

use crate::input::{SourceChunks, SourceReader};
use crate::local::LocalFile;

/// Bytes per request when an IPC stream is read front to back from a `ByteSource`.
const STREAM_READ_BYTES: u64 = 8 << 20;
/// Bytes per request when only a stream's message headers are wanted: small, since the
/// bodies between them are skipped.
const STREAM_HEADER_READ_BYTES: u64 = 64 << 10;

/// An arrow IPC error whose cause is a failed read of a source: the source's own error, which
/// names it, rather than arrow's rendering of it.
fn from_source_error(e: ArrowError) -> ArrowError {
    match e {
        ArrowError::IoError(msg, io) => {
            let kind = io.kind();
            if io.get_ref().is_some_and(|inner| inner.is::<Error>()) {
                let inner = io.into_inner().expect("checked above");
                match inner.downcast::<Error>() {
                    Ok(ours) => ours.into_arrow(),
                    Err(other) => ArrowError::IoError(msg, std::io::Error::new(kind, other)),
                }
            } else {
                ArrowError::IoError(msg, io)
            }
        }
        other => other,
    }
}

/// Facts about one IPC record batch, read from its message header without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcBatchInfo {
    /// Rows in the batch.
    pub rows: u64,
    /// Bytes of the message (header and body) in the file.
    pub bytes: u64,
    /// The body's compression, if any: `"lz4"` or `"zstd"`.
    pub compression: Option<&'static str>,
}

fn codec_name(c: CompressionType) -> &'static str {
    match c {
        CompressionType::LZ4_FRAME => "lz4",
        CompressionType::ZSTD => "zstd",
        _ => "unknown",
    }
}

/// The facts of a record batch message, from its encapsulated header.
fn batch_info_from_header(meta: &[u8], bytes: u64) -> Result<Option<IpcBatchInfo>> {
    let msg = message_header(meta)?;
    Ok(msg.header_as_record_batch().map(|b| IpcBatchInfo {
        rows: u64::try_from(b.length()).unwrap_or(0),
        bytes,
        compression: b.compression().map(|c| codec_name(c.codec())),
    }))
}

/// Reads an Arrow IPC *file* (random access to its record batches).
///
/// Iterating yields the batches in file order; [`read_batch`](Self::read_batch) reads any one.
/// With a batch size set, batches longer than it are split (never merged).
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_array::{Int32Array, RecordBatch};
/// use arrowfeed_core_source::IpcFileReader;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.arrow");
/// # let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1, 2, 3])) as _)])?;
/// # let mut w = arrow_ipc::writer::FileWriter::try_new(std::fs::File::create(&path)?, &batch.schema())?;
/// # w.write(&batch)?; w.finish()?;
/// let reader = IpcFileReader::open(&path)?;
/// assert_eq!(reader.num_batches(), 1);
/// let rows: usize = reader.map(|b| b.map(|b| b.num_rows())).sum::<Result<_, _>>()?;
/// assert_eq!(rows, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct IpcFileReader {
    file: Reads,
    decoder: Arc<FileDecoder>,
    schema: SchemaRef,
    blocks: Vec<Block>,
    next: usize,
    finished: bool,
}

impl IpcFileReader {
    /// Opens the IPC file at `path`, reading every column.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, [`Error::Corrupt`] naming the file if it is not a valid
    /// Arrow IPC file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_projection(path, None)
    }

    /// Opens the IPC file at `path`, reading only the columns `projection` (indices into the
    /// file's schema, in the output order).
    ///
    /// # Errors
    /// As [`open`](Self::open), and [`Error::InvalidArgument`] for a projection outside the
    /// schema.
    pub fn open_with_projection(
        path: impl AsRef<Path>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let file = Reads::Local(LocalFile::open(path)?);
        no_panic(path, "the decoder", || {
            Self::from_file(file, |_| Ok(projection))
        })
    }

    /// Opens the IPC file at `path`, reading only `columns` (by name, in the output order), or
    /// every column for `None`. The names are resolved against the footer's schema, so the
    /// footer and dictionaries are read once.
    ///
    /// # Errors
    /// As [`open`](Self::open), and [`Error::InvalidArgument`] naming a column the file does
    /// not have.
    pub fn open_with_columns(path: impl AsRef<Path>, columns: Option<&[String]>) -> Result<Self> {
        let path = path.as_ref();
        let file = Reads::Local(LocalFile::open(path)?);
        no_panic(path, "the decoder", || {
            Self::from_file(file, by_name(columns))
        })
    }

    /// Opens the IPC file behind `source` (a remote object, a memory map), reading only
    /// `columns` (by name) if given: its tail (footer) in one read for most files, and the
    /// dictionaries.
    ///
    /// # Errors
    /// As [`open_with_columns`](Self::open_with_columns), and the source's read errors.
    pub fn from_source(source: Arc<dyn ByteSource>, columns: Option<&[String]>) -> Result<Self> {
        let name = source.name().to_string();
        let file = Reads::Source {
            name: PathBuf::from(&name),
            tail: SourceChunks::new(source.clone())?,
            source,
        };
        no_panic(name.as_str(), "the decoder", || {
            Self::from_file(file, by_name(columns))
        })
    }

    /// Reads the footer and dictionaries of `file`; `projection` picks the columns once the
    /// schema is known.
    fn from_file(
        file: Reads,
        projection: impl FnOnce(&SchemaRef) -> Result<Option<Vec<usize>>>,
    ) -> Result<Self> {
        let path = file.path().to_path_buf();
        let corrupt = |msg: String| Error::corrupt(&path, msg);
        let size = file.len();
        let (head, tail) = if size < 18 {
            (bytes::Bytes::new(), bytes::Bytes::new())
        } else {
            (file.bytes(0..6)?, file.bytes(size - 10..size)?)
        };
        let footer = footer_range(&path, size, &head, &tail)?;
        let footer_start = footer.start;
        let footer = FileFooter::parse(&path, &file.bytes(footer)?, footer_start)?;
        let (schema, version) = (Arc::new(footer.schema), footer.version);
        let blocks = footer.record_batches;
        let projection = projection(&schema).map_err(|e| e.or_location(&path))?;
        let out_schema = match &projection {
            Some(p) => Arc::new(
                crate::project_schema_by_index(&schema, p).map_err(|e| e.or_location(&path))?,
            ),
            None => schema.clone(),
        };
        let mut decoder = FileDecoder::new(schema, version);
        if let Some(p) = projection {
            decoder = decoder.with_projection(p);
        }
        for (k, b) in footer.dictionaries.iter().enumerate() {
            let buf = file.block(b)?;
            check_message(&buf, b.metaDataLength() as usize)
                .map_err(|m| corrupt(format!("dictionary {k}: {m}")))?;
            decoder
                .read_dictionary(b, &buf)
                .map_err(|e| Error::arrow_at(&path, e))?;
        }
        Ok(Self {
            file,
            decoder: Arc::new(decoder),
            schema: out_schema,
            blocks,
            next: 0,
            finished: false,
        })
    }

    /// The path this was opened from.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The number of record batches in the file.
    pub fn num_batches(&self) -> usize {
        self.blocks.len()
    }

    /// The decoder (dictionaries loaded), output schema and record batch blocks, for a scan plan.
    pub(crate) fn into_parts(self) -> (Arc<FileDecoder>, SchemaRef, Vec<Block>) {
        (self.decoder, self.schema, self.blocks)
    }

    /// Reads the header of every record batch (not its body): rows, bytes and compression.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a header is malformed.
    pub fn batch_infos(&self) -> Result<Vec<IpcBatchInfo>> {
        let path = self.file.path();
        let headers = self.file.many(
            self.blocks
                .iter()
                .map(|b| b.offset() as u64..(b.offset() + b.metaDataLength() as i64) as u64)
                .collect(),
        )?;
        self.blocks
            .iter()
            .zip(headers)
            .enumerate()
            .map(|(k, (b, meta))| {
                let bytes = b.metaDataLength() as u64 + b.bodyLength() as u64;
                batch_info_from_header(&meta, bytes)
                    .map_err(|m| Error::corrupt(path, format!("record batch {k}: {m}")))?
                    .ok_or_else(|| Error::corrupt(path, format!("block {k} is not a record batch")))
            })
            .collect()
    }

    /// Reads and decodes record batch `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] past the last batch; [`Error::Corrupt`] or [`Error::Arrow`]
    /// naming the file for malformed data.
    pub fn read_batch(&self, index: usize) -> Result<RecordBatch> {
        let path = self.file.path();
        let block = self.blocks.get(index).ok_or_else(|| {
            Error::index_out_of_range(index as u64, self.blocks.len() as u64).or_location(path)
        })?;
        no_panic(path, "the decoder", || {
            let buf = self.file.block(block)?;
            check_message(&buf, block.metaDataLength() as usize)
                .map_err(|m| Error::corrupt(path, format!("record batch {index}: {m}")))?;
            match self.decoder.read_record_batch(block, &buf) {
                Ok(Some(b)) => Ok(b),
                Ok(None) => Err(Error::corrupt(
                    path,
                    format!("block {index} holds no record batch"),
                )),
                Err(e) => Err(Error::arrow_at(path, e)),
            }
        })
        .map_err(|e| match e {
            Error::Arrow { location, source } => Error::Arrow {
                location: arrowfeed_traits::Location::new(format!(
                    "{} (record batch {index})",
                    location.as_str().unwrap_or_default()
                )),
                source,
            },
            other => other,
        })
    }
}

/// Column names to the projection `from_file` wants, once the schema is known.
fn by_name(columns: Option<&[String]>) -> impl FnOnce(&SchemaRef) -> Result<Option<Vec<usize>>> {
    move |schema| {
        columns
            .map(|names| crate::column_indices(schema, names))
            .transpose()
    }
}

/// Where an IPC file's bytes come from: a local file read with `pread`, or any `ByteSource`
/// (its tail, where the footer is, read once).
#[derive(Debug)]
enum Reads {
    Local(LocalFile),
    Source {
        name: PathBuf,
        source: Arc<dyn ByteSource>,
        tail: SourceChunks,
    },
}

impl Reads {
    fn path(&self) -> &Path {
        match self {
            Self::Local(f) => f.path(),
            Self::Source { name, .. } => name,
        }
    }

    fn len(&self) -> u64 {
        match self {
            Self::Local(f) => f.len(),
            Self::Source { tail, .. } => tail.size(),
        }
    }

    fn bytes(&self, range: std::ops::Range<u64>) -> Result<bytes::Bytes> {
        match self {
            Self::Local(f) => f.read_blocking(range),
            Self::Source { tail, .. } => tail.read(range),
        }
    }

    fn many(&self, ranges: Vec<std::ops::Range<u64>>) -> Result<Vec<bytes::Bytes>> {
        match self {
            Self::Local(f) => ranges.into_iter().map(|r| f.read_blocking(r)).collect(),
            Self::Source { source, .. } => futures::executor::block_on(source.read_many(ranges)),
        }
    }

    /// One block: from a local file into a 64-byte aligned buffer, so the decoder uses it
    /// without copying; from a source as it arrives (the decoder copies a misaligned buffer).
    fn block(&self, block: &Block) -> Result<Buffer> {
        let start = block.offset() as u64;
        let len = block.metaDataLength() as u64 + block.bodyLength() as u64;
        match self {
            Self::Local(file) => {
                let mut buf = MutableBuffer::from_len_zeroed(len as usize);
                file.read_into(start, buf.as_slice_mut())?;
                Ok(buf.into())
            }
            Self::Source { .. } => Ok(Buffer::from(self.bytes(start..start + len)?)),
        }
    }
}

impl Iterator for IpcFileReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.next >= self.blocks.len() {
            return None;
        }
        let r = self.read_batch(self.next);
        self.next += 1;
        if r.is_err() {
            self.finished = true;
        }
        Some(r.map_err(Error::into_arrow))
    }
}

impl RecordBatchReader for IpcFileReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Reads an Arrow IPC *stream* from a file.
///
/// arrow-ipc's `StreamReader` does the decoding (it reads message bodies with bounded
/// allocation); this adds the file name to every error and turns a decoder panic into an error.
pub struct IpcStreamReader {
    path: PathBuf,
    inner: StreamReader<BufReader<CheckedRead<Box<dyn Read + Send>>>>,
    schema: SchemaRef,
    finished: bool,
}

impl std::fmt::Debug for IpcStreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpcStreamReader")
            .field("path", &self.path)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl IpcStreamReader {
    /// Opens the IPC stream at `path`, reading every column.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, [`Error::Corrupt`]/[`Error::Arrow`] naming the file
    /// if it does not start with a valid schema message.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_projection(path, None)
    }

    /// Opens the IPC stream at `path`, reading only the columns `projection`.
    ///
    /// # Errors
    /// As [`open`](Self::open), and [`Error::InvalidArgument`] for a bad projection.
    pub fn open_with_projection(
        path: impl AsRef<Path>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let (file, len) = crate::detect::open_regular_file(path)?;
        Self::from_read(path.to_path_buf(), Box::new(file), len, projection)
    }

    /// Opens the IPC stream behind `source` (a remote object, a memory map), reading it front
    /// to back in requests of 8 MiB, only the columns `projection` if given.
    ///
    /// # Errors
    /// As [`open_with_projection`](Self::open_with_projection), and the source's read errors.
    pub fn from_source(
        source: Arc<dyn ByteSource>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let name = PathBuf::from(source.name());
        let reader = SourceReader::new(source, STREAM_READ_BYTES)?;
        let len = reader.size();
        Self::from_read(name, Box::new(reader), len, projection)
    }

    fn from_read(
        path: PathBuf,
        read: Box<dyn Read + Send>,
        len: u64,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        if len == 0 {
            return Err(Error::corrupt(
                &path,
                "the file is empty; expected an Arrow IPC stream",
            ));
        }
        let reader = BufReader::with_capacity(1 << 20, CheckedRead::new(read));
        let inner = no_panic(&path, "the decoder", || {
            // Check the projection against the schema first, for an error that says what is wrong.
            StreamReader::try_new(reader, projection.clone()).map_err(|e| match e {
                ArrowError::SchemaError(_) | ArrowError::InvalidArgumentError(_)
                    if projection.is_some() =>
                {
                    Error::invalid_argument(format!("{}: {e}", path.display()))
                }
                e => Error::arrow_at(&path, from_source_error(e)),
            })
        })?;
        let schema = inner.schema();
        Ok(Self {
            path,
            inner,
            schema,
            finished: false,
        })
    }

    /// The path this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Iterator for IpcStreamReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let path = &self.path;
        let inner = &mut self.inner;
        let r = no_panic(path, "the decoder", || {
            inner
                .next()
                .transpose()
                .map_err(|e| Error::arrow_at(path, from_source_error(e)))
        });
        crate::end_on_none_or_error(&mut self.finished, r)
    }
}

impl RecordBatchReader for IpcStreamReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Walks the messages of an IPC stream file without decoding bodies: rows, bytes and
/// compression of each record batch.
///
/// # Errors
/// [`Error::Corrupt`] naming the file if a message length points past the end.
pub fn stream_batch_infos(path: &Path) -> Result<Vec<IpcBatchInfo>> {
    let (file, size) = crate::detect::open_regular_file(path)?;
    walk_stream(path, BufReader::new(file), size)
}

/// [`stream_batch_infos`] of the IPC stream behind `source`: reads message headers and skips
/// bodies, in requests of at most 8 MiB.
///
/// # Errors
/// As [`stream_batch_infos`], and the source's read errors.
pub fn stream_batch_infos_of(source: Arc<dyn ByteSource>) -> Result<Vec<IpcBatchInfo>> {
    let name = PathBuf::from(source.name());
    let reader = SourceReader::new(source, STREAM_HEADER_READ_BYTES)?;
    let size = reader.size();
    walk_stream(&name, reader, size)
}

/// The walk of [`stream_batch_infos`] over any reader of a `size`-byte stream.
fn walk_stream(path: &Path, r: impl Read + Seek, size: u64) -> Result<Vec<IpcBatchInfo>> {
    let mut out = Vec::new();
    arrowfeed_traits::ipc::walk_stream(path, r, size, |m| {
        if let Some(b) = m.header.header_as_record_batch() {
            let rows = u64::try_from(b.length()).map_err(|_| {
                Error::corrupt(path, format!("negative batch length at byte {}", m.offset))
            })?;
            out.push(IpcBatchInfo {
                rows,
                bytes: m.bytes,
                compression: b.compression().map(|c| codec_name(c.codec())),
            });
        }
        Ok(())
    })?;
    Ok(out)
}
