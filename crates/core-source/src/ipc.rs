//! Arrow IPC file and stream sources.
//!
//! The file reader parses the footer itself so it can check every length it reads off the disk
//! against the file size *before* allocating or reading: a crafted footer cannot make it
//! allocate more than the file holds. Batches are read with one positioned read per block into
//! a 64-byte aligned buffer, then decoded zero-copy from it by arrow-ipc's `FileDecoder`.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::reader::{FileDecoder, StreamReader};
use arrow_ipc::{Block, CompressionType, MetadataVersion};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::ipc::{
    check_compressed_message, check_prefix, compressed_buffers, message_header,
};
use arrowfeed_traits::{ByteSource, Error, Result};

use crate::detect::ARROW_MAGIC;
use crate::guard::no_panic;
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

/// Largest flatbuffer footer or message header accepted (the schema of a very wide table is a
/// few MiB; anything larger is taken as damage rather than allocated).
const MAX_METADATA_BYTES: u64 = 256 << 20;

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

/// Passes an IPC stream through, checking each compressed buffer's length prefix (see
/// [`check_prefix`]) as its bytes go by, so a damaged one is an error before arrow-ipc's
/// `StreamReader` allocates for it. Framing it cannot follow (a header that does not parse)
/// it leaves to the reader, which fails on it.
struct CheckedStream<R> {
    inner: R,
    stage: Stage,
}

enum Stage {
    /// The continuation marker and length of the next message.
    Prefix(Vec<u8>),
    /// The message header, `len` bytes.
    Header { len: usize, buf: Vec<u8> },
    /// The body: where in it the next byte is, its length, and the buffers still to check with
    /// the bytes of the next one's prefix seen so far.
    Body {
        pos: u64,
        len: u64,
        checks: std::collections::VecDeque<(u64, u64, CompressionType)>,
        prefix: Vec<u8>,
    },
    /// End of stream, or framing left to the reader.
    Through,
}

impl<R> CheckedStream<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            stage: Stage::Prefix(Vec::with_capacity(8)),
        }
    }

    /// Follows `data` through the framing; an error names what is wrong.
    fn follow(&mut self, mut data: &[u8]) -> std::result::Result<(), String> {
        while !data.is_empty() {
            match &mut self.stage {
                Stage::Through => return Ok(()),
                Stage::Prefix(buf) => {
                    let want = if buf.len() >= 4 && buf[..4] == [0xff; 4] {
                        8
                    } else {
                        4
                    };
                    let take = (want - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() < want || (want == 4 && buf[..4] == [0xff; 4]) {
                        continue;
                    }
                    let raw = &buf[want - 4..want];
                    let len = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                    self.stage = match usize::try_from(len) {
                        Ok(0) | Err(_) => Stage::Through,
                        Ok(len) if len as u64 > MAX_METADATA_BYTES => Stage::Through,
                        Ok(len) => Stage::Header {
                            len,
                            buf: Vec::with_capacity(len),
                        },
                    };
                }
                Stage::Header { len, buf } => {
                    let take = (*len - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() < *len {
                        continue;
                    }
                    let Ok(msg) = arrow_ipc::root_as_message(buf) else {
                        self.stage = Stage::Through;
                        continue;
                    };
                    let body = u64::try_from(msg.bodyLength()).unwrap_or(0);
                    let mut checks = compressed_buffers(&msg)?;
                    checks.sort_by_key(|c| c.0);
                    if let Some(&(offset, ..)) =
                        checks.iter().find(|c| c.0.saturating_add(8) > body)
                    {
                        return Err(format!(
                            "a compressed buffer at {offset} lies outside the {body}-byte body"
                        ));
                    }
                    self.stage = Stage::Body {
                        pos: 0,
                        len: body,
                        checks: checks.into(),
                        prefix: Vec::with_capacity(8),
                    };
                }
                Stage::Body {
                    pos,
                    len,
                    checks,
                    prefix,
                } => {
                    if *pos == *len {
                        self.stage = Stage::Prefix(Vec::with_capacity(8));
                        continue;
                    }
                    let take = ((*len - *pos).min(data.len() as u64)) as usize;
                    let (end, chunk) = (*pos + take as u64, &data[..take]);
                    while let Some(&(offset, blen, codec)) = checks.front() {
                        let from = offset + prefix.len() as u64;
                        if from < *pos {
                            return Err(format!("compressed buffers overlap at {offset}"));
                        }
                        if from >= end {
                            break;
                        }
                        let i = (from - *pos) as usize;
                        let n = (8 - prefix.len()).min(take - i);
                        prefix.extend_from_slice(&chunk[i..i + n]);
                        if prefix.len() < 8 {
                            break;
                        }
                        let mut p = [0u8; 8];
                        p.copy_from_slice(prefix);
                        check_prefix(p, blen, codec)?;
                        prefix.clear();
                        checks.pop_front();
                    }
                    *pos = end;
                    data = &data[take..];
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for CheckedStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])
            .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidData, m))?;
        Ok(n)
    }
}

/// The facts of a record batch message, from its encapsulated header.
fn batch_info_from_header(
    meta: &[u8],
    bytes: u64,
) -> std::result::Result<Option<IpcBatchInfo>, String> {
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
        no_panic(path, || Self::from_file(file, |_| Ok(projection)))
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
        no_panic(path, || Self::from_file(file, by_name(columns)))
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
        no_panic(name.as_str(), || Self::from_file(file, by_name(columns)))
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
        // "ARROW1" + 2 bytes padding at the start; footer, 4-byte length and "ARROW1" at the end.
        if size < 8 + 10 {
            return Err(corrupt(format!(
                "too short for an Arrow IPC file ({size} bytes; truncated?)"
            )));
        }
        let head = file.bytes(0..6)?;
        let tail = file.bytes(size - 10..size)?;
        if &head[..] != ARROW_MAGIC {
            return Err(corrupt("missing the ARROW1 magic at the start".into()));
        }
        if &tail[4..] != ARROW_MAGIC {
            return Err(corrupt(
                "missing the ARROW1 magic at the end (truncated, or a stream rather than a file?)"
                    .into(),
            ));
        }
        let footer_len = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let footer_len = u64::try_from(footer_len)
            .ok()
            .filter(|&l| l > 0 && l <= size - 18 && l <= MAX_METADATA_BYTES)
            .ok_or_else(|| {
                corrupt(format!(
                    "footer length {footer_len} points outside the {size}-byte file"
                ))
            })?;
        let footer_start = size - 10 - footer_len;
        let footer_bytes = file.bytes(footer_start..size - 10)?;
        let footer = arrow_ipc::root_as_footer(&footer_bytes)
            .map_err(|e| corrupt(format!("the footer is not a valid flatbuffer: {e}")))?;
        let fb_schema = footer
            .schema()
            .ok_or_else(|| corrupt("the footer has no schema".into()))?;
        if !fb_schema.endianness().equals_to_target_endianness() {
            return Err(corrupt(
                "written on a machine of the other endianness".into(),
            ));
        }
        let schema = Arc::new(
            arrow_ipc::convert::try_fb_to_schema(fb_schema)
                .map_err(|e| Error::arrow_at(&path, e))?,
        );
        let check_block = |kind: &str, k: usize, b: &Block| -> Result<()> {
            let ok = b.offset() >= 8
                && b.metaDataLength() > 0
                && b.bodyLength() >= 0
                && (b.offset() as u64)
                    .checked_add(b.metaDataLength() as u64)
                    .and_then(|e| e.checked_add(b.bodyLength() as u64))
                    .is_some_and(|end| end <= footer_start);
            if ok {
                Ok(())
            } else {
                Err(corrupt(format!(
                    "{kind} block {k} (offset {}, {} + {} bytes) points outside the data section of the {size}-byte file",
                    b.offset(),
                    b.metaDataLength(),
                    b.bodyLength()
                )))
            }
        };
        let blocks: Vec<Block> = footer
            .recordBatches()
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        for (k, b) in blocks.iter().enumerate() {
            check_block("record batch", k, b)?;
        }
        let version = footer.version();
        if version == MetadataVersion::V1
            || version == MetadataVersion::V2
            || version == MetadataVersion::V3
        {
            return Err(corrupt(format!(
                "unsupported IPC metadata version {version:?}"
            )));
        }
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
        if let Some(dicts) = footer.dictionaries() {
            for (k, b) in dicts.iter().enumerate() {
                check_block("dictionary", k, b)?;
                let buf = file.block(b)?;
                check_compressed_message(&buf, b.metaDataLength() as usize)
                    .map_err(|m| corrupt(format!("dictionary {k}: {m}")))?;
                decoder
                    .read_dictionary(b, &buf)
                    .map_err(|e| Error::arrow_at(&path, e))?;
            }
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
        no_panic(path, || {
            let buf = self.file.block(block)?;
            check_compressed_message(&buf, block.metaDataLength() as usize)
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
    inner: StreamReader<BufReader<CheckedStream<Box<dyn Read + Send>>>>,
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
        let reader = BufReader::with_capacity(1 << 20, CheckedStream::new(read));
        let inner = no_panic(&path, || {
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
        let r = no_panic(path, || {
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
fn walk_stream(path: &Path, mut r: impl Read + Seek, size: u64) -> Result<Vec<IpcBatchInfo>> {
    let mut pos = 0u64;
    let mut out = Vec::new();
    let corrupt = |m: String| Error::corrupt(path, m);
    loop {
        let mut word = [0u8; 4];
        if pos + 4 > size {
            break; // end of stream without an end marker: allowed
        }
        r.read_exact(&mut word).map_err(|e| Error::io(path, e))?;
        pos += 4;
        let mut prefix = 4;
        if word == [0xff; 4] {
            if pos + 4 > size {
                return Err(corrupt(format!("truncated message length at byte {pos}")));
            }
            r.read_exact(&mut word).map_err(|e| Error::io(path, e))?;
            pos += 4;
            prefix = 8;
        }
        let meta_len = i32::from_le_bytes(word);
        if meta_len == 0 {
            break;
        }
        let meta_len = u64::try_from(meta_len)
            .ok()
            .filter(|&l| l <= MAX_METADATA_BYTES && pos + l <= size)
            .ok_or_else(|| corrupt(format!("message length {meta_len} at byte {} points past the end of the {size}-byte file", pos - 4)))?;
        let mut meta = vec![0u8; meta_len as usize];
        r.read_exact(&mut meta).map_err(|e| Error::io(path, e))?;
        pos += meta_len;
        let msg = arrow_ipc::root_as_message(&meta).map_err(|e| {
            corrupt(format!(
                "bad message header at byte {}: {e}",
                pos - meta_len
            ))
        })?;
        let body = u64::try_from(msg.bodyLength())
            .ok()
            .filter(|&b| pos + b <= size)
            .ok_or_else(|| corrupt(format!("message body of {} bytes at byte {pos} runs past the end of the {size}-byte file", msg.bodyLength())))?;
        if let Some(b) = msg.header_as_record_batch() {
            out.push(IpcBatchInfo {
                rows: u64::try_from(b.length()).unwrap_or(0),
                bytes: prefix + meta_len + body,
                compression: b.compression().map(|c| codec_name(c.codec())),
            });
        }
        r.seek(SeekFrom::Current(body as i64))
            .map_err(|e| Error::io(path, e))?;
        pos += body;
    }
    Ok(out)
}
