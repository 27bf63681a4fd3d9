//! `open`: one entry point for any supported file, or many files as one source.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use arrowfeed_traits::{ByteSource, Error, Result};

use crate::ipc::{IpcFileReader, IpcStreamReader, stream_batch_infos, stream_batch_infos_of};
use crate::parquet::{ParquetFooter, ParquetReader, parquet_info};
use crate::{Format, ParquetScanPlan, PlanReader, detect_format, detect_format_of};

/// What to read from a source. `Default` reads every column of every row group in the file's
/// own batches (Parquet: 8,192 rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Columns to read, by name, in the output order; `None` for all.
    pub columns: Option<Vec<String>>,
    /// Parquet row groups to read (all formats but Parquet ignore it); `None` for all.
    pub row_groups: Option<Vec<usize>>,
    /// Rows per batch. Parquet decodes batches of this size; IPC batches longer than it are
    /// split (never merged). `None`: Parquet uses 8,192 and IPC keeps the written batches.
    pub batch_size: Option<usize>,
}

impl ReadOptions {
    /// Reads only `columns`, in that order.
    pub fn columns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Reads only the Parquet row groups `row_groups`.
    pub fn row_groups(mut self, row_groups: Vec<usize>) -> Self {
        self.row_groups = Some(row_groups);
        self
    }

    /// Sets the rows per batch.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// [`Error::InvalidArgument`] naming a setting that cannot work: a batch size of 0.
    pub(crate) fn check(&self) -> Result<()> {
        if self.batch_size == Some(0) {
            return Err(Error::invalid_argument(
                "batch_size must be at least 1, got 0",
            ));
        }
        Ok(())
    }

    /// The Parquet batch size these options imply.
    pub(crate) fn parquet_batch_size(&self) -> usize {
        self.batch_size
            .unwrap_or(arrowfeed_traits::DEFAULT_BATCH_SIZE)
    }
}

/// Facts about one file, as `arrowfeed info` shows them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SourceInfo {
    /// The file.
    pub path: PathBuf,
    /// Its format, detected from its bytes.
    pub format: Format,
    /// Its schema.
    pub schema: SchemaRef,
    /// Rows, when the format records them.
    pub rows: Option<u64>,
    /// Size on disk.
    pub file_bytes: u64,
    /// What the file is divided into.
    pub unit: SourceUnit,
    /// Rows in each of those.
    pub unit_rows: Vec<u64>,
    /// Codecs used (`"snappy"`, `"zstd"`, `"lz4"`, `"none"`, ...), sorted.
    pub compression: Vec<String>,
    /// The writer that made the file, when recorded.
    pub created_by: Option<String>,
}

/// What a file is divided into, the units of [`SourceInfo::unit_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceUnit {
    /// Parquet row groups.
    RowGroups,
    /// Arrow IPC record batches.
    RecordBatches,
}

impl SourceUnit {
    /// Its name as `arrowfeed info` prints it: `row groups` or `record batches`.
    pub fn name(self) -> &'static str {
        match self {
            Self::RowGroups => "row groups",
            Self::RecordBatches => "record batches",
        }
    }
}

impl std::fmt::Display for SourceUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to open: a file on this machine, or any [`ByteSource`] (a remote object, a memory map,
/// bytes in memory). Paths and sources convert into it, so [`open_inputs`] takes either.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A local file, read with the parquet crate's and this crate's file readers.
    Path(PathBuf),
    /// An object read through its `ByteSource`: footers from one read of its tail, data by
    /// ranges, never the whole object first.
    Source(Arc<dyn ByteSource>),
}

impl Input {
    /// The path, or the source's name: what errors and [`Source::paths`] show.
    pub fn name(&self) -> PathBuf {
        match self {
            Self::Path(p) => p.clone(),
            Self::Source(s) => PathBuf::from(s.name()),
        }
    }
}

impl From<PathBuf> for Input {
    fn from(p: PathBuf) -> Self {
        Self::Path(p)
    }
}

impl From<&Path> for Input {
    fn from(p: &Path) -> Self {
        Self::Path(p.to_path_buf())
    }
}

impl From<Arc<dyn ByteSource>> for Input {
    fn from(s: Arc<dyn ByteSource>) -> Self {
        Self::Source(s)
    }
}

/// Reads the facts `arrowfeed info` shows about the file at `path`, without decoding its data.
///
/// # Errors
/// As [`open`].
pub fn info(path: impl AsRef<Path>) -> Result<SourceInfo> {
    let path = path.as_ref();
    let format = detect_format(path)?;
    match format {
        Format::Parquet => Ok(ParquetReader::open(path, &ReadOptions::default())?.info()),
        Format::ArrowFile | Format::ArrowStream => {
            let file_bytes = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .len();
            let (schema, batches) = if format == Format::ArrowFile {
                let r = IpcFileReader::open(path)?;
                (RecordBatchReader::schema(&r), r.batch_infos()?)
            } else {
                let r = IpcStreamReader::open(path)?;
                (RecordBatchReader::schema(&r), stream_batch_infos(path)?)
            };
            Ok(ipc_info(path, format, schema, batches, file_bytes))
        }
    }
}

/// [`info`] of the object behind `source`: footers through the source, no data read (an IPC
/// stream's message headers are read, its bodies skipped).
///
/// # Errors
/// As [`open_source`].
pub fn info_source(source: Arc<dyn ByteSource>) -> Result<SourceInfo> {
    let name = PathBuf::from(source.name());
    let format = detect_format_of(source.as_ref())?;
    match format {
        Format::Parquet => {
            let footer = ParquetFooter::from_source(&source, &ReadOptions::default())?;
            Ok(parquet_info(
                &name,
                footer.metadata.metadata(),
                footer.file_bytes,
                footer.projection.schema,
            ))
        }
        Format::ArrowFile | Format::ArrowStream => {
            let file_bytes = futures::executor::block_on(source.size())?;
            let (schema, batches) = if format == Format::ArrowFile {
                let r = IpcFileReader::from_source(source.clone(), None)?;
                (RecordBatchReader::schema(&r), r.batch_infos()?)
            } else {
                let r = IpcStreamReader::from_source(source.clone(), None)?;
                (
                    RecordBatchReader::schema(&r),
                    stream_batch_infos_of(source)?,
                )
            };
            Ok(ipc_info(&name, format, schema, batches, file_bytes))
        }
    }
}

/// [`SourceInfo`] of an IPC file or stream from its batches' headers.
fn ipc_info(
    path: &Path,
    format: Format,
    schema: SchemaRef,
    batches: Vec<crate::IpcBatchInfo>,
    file_bytes: u64,
) -> SourceInfo {
    let mut compression: Vec<String> = batches
        .iter()
        .map(|b| b.compression.unwrap_or("none").to_string())
        .collect();
    compression.sort();
    compression.dedup();
    SourceInfo {
        path: path.to_path_buf(),
        format,
        schema,
        rows: Some(batches.iter().map(|b| b.rows).sum()),
        file_bytes,
        unit: SourceUnit::RecordBatches,
        unit_rows: batches.iter().map(|b| b.rows).collect(),
        compression,
        created_by: None,
    }
}

type BoxReader = Box<dyn RecordBatchReader + Send>;

fn open_one(input: &Input, options: &ReadOptions) -> Result<(Format, BoxReader)> {
    match input {
        Input::Path(path) => open_path(path, options),
        Input::Source(source) => open_source_one(source, options),
    }
}

fn open_path(path: &Path, options: &ReadOptions) -> Result<(Format, BoxReader)> {
    let format = detect_format(path)?;
    let reader: BoxReader = match format {
        Format::Parquet => {
            let mut o = options.clone();
            o.batch_size = Some(options.parquet_batch_size());
            Box::new(ParquetReader::open(path, &o)?)
        }
        Format::ArrowFile => Box::new(IpcFileReader::open_with_columns(
            path,
            options.columns.as_deref(),
        )?),
        Format::ArrowStream => {
            let projection = stream_projection(options, &path.display().to_string(), || {
                Ok(RecordBatchReader::schema(&IpcStreamReader::open(path)?))
            })?;
            Box::new(IpcStreamReader::open_with_projection(path, projection)?)
        }
    };
    Ok((format, reader))
}

/// The columns `options` asks for as indices into an IPC stream's schema: a stream has no
/// footer, so `schema_of` opens it once to read its schema message.
fn stream_projection(
    options: &ReadOptions,
    name: &str,
    schema_of: impl FnOnce() -> Result<SchemaRef>,
) -> Result<Option<Vec<usize>>> {
    let Some(names) = &options.columns else {
        return Ok(None);
    };
    let schema = schema_of()?;
    Ok(Some(
        crate::column_indices(&schema, names).map_err(|e| e.or_location(name))?,
    ))
}

fn open_source_one(
    source: &Arc<dyn ByteSource>,
    options: &ReadOptions,
) -> Result<(Format, BoxReader)> {
    let format = detect_format_of(source.as_ref())?;
    let reader: BoxReader = match format {
        Format::Parquet => {
            // Row groups whole: this reader decodes on one thread, so parts buy nothing.
            let plan = ParquetScanPlan::from_source(source, options)?.part_rows(0);
            Box::new(
                PlanReader::new(Box::new(plan), source.clone())
                    .exact_batches(options.parquet_batch_size()),
            )
        }
        Format::ArrowFile => Box::new(IpcFileReader::from_source(
            source.clone(),
            options.columns.as_deref(),
        )?),
        Format::ArrowStream => {
            let projection = stream_projection(options, source.name(), || {
                Ok(RecordBatchReader::schema(&IpcStreamReader::from_source(
                    source.clone(),
                    None,
                )?))
            })?;
            Box::new(IpcStreamReader::from_source(source.clone(), projection)?)
        }
    };
    Ok((format, reader))
}

/// Opens the object behind `source` (a remote object, a memory map, bytes in memory) as
/// [`open_with`] opens a file: format from its first bytes, footers from one read of its tail,
/// column data by ranges (Parquet: a row group's projected column chunks in one batched read),
/// never the whole object first.
///
/// # Errors
/// As [`open_with`], and the source's read errors.
pub fn open_source(source: Arc<dyn ByteSource>, options: &ReadOptions) -> Result<Source> {
    open_inputs([Input::Source(source)], options)
}

/// Opens the Parquet or Arrow IPC (file or stream) file at `path`, detecting the format from
/// its bytes, and reads every column.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_array::{Int32Array, RecordBatch};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("no-extension");
/// # let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1, 2, 3])) as _)])?;
/// # let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path)?, batch.schema(), None)?;
/// # w.write(&batch)?; w.close()?;
/// let source = arrowfeed_core_source::open(&path)?;
/// assert_eq!(source.format(), arrowfeed_core_source::Format::Parquet);
/// let batches: Vec<_> = source.collect::<Result<_, _>>()?;
/// assert_eq!(batches[0].num_rows(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Corrupt`], [`Error::Arrow`] or
/// [`Error::External`] naming the file if its content is malformed.
pub fn open(path: impl AsRef<Path>) -> Result<Source> {
    open_with(path, &ReadOptions::default())
}

/// Opens the file at `path` with `options`: columns, row groups, batch size.
///
/// # Errors
/// As [`open`], and [`Error::InvalidArgument`] for a column the file does not have.
pub fn open_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Source> {
    open_many([path.as_ref()], options)
}

/// Opens several files as one source: their batches one file after another. The files may be
/// of different formats, but their schemas must have the same fields.
///
/// Every file is opened once up front, to check its format and schema, and again when its turn
/// comes, so only one file is open at a time while reading.
///
/// # Errors
/// As [`open_with`], and [`Error::InvalidArgument`] naming both files when two schemas differ
/// or when no path is given.
pub fn open_many<P: AsRef<Path>>(
    paths: impl IntoIterator<Item = P>,
    options: &ReadOptions,
) -> Result<Source> {
    open_inputs(
        paths
            .into_iter()
            .map(|p| Input::Path(p.as_ref().to_path_buf())),
        options,
    )
}

/// Opens several inputs — paths and sources, mixed — as one source, as [`open_many`] does.
///
/// # Errors
/// As [`open_many`].
pub fn open_inputs(
    inputs: impl IntoIterator<Item = Input>,
    options: &ReadOptions,
) -> Result<Source> {
    options.check()?;
    let inputs: Vec<Input> = inputs.into_iter().collect();
    let Some(first) = inputs.first() else {
        return Err(Error::invalid_argument("no input files given"));
    };
    let (format, reader) = open_one(first, options)?;
    let schema = reader.schema();
    for other in &inputs[1..] {
        let (_, r) = open_one(other, options)?;
        if let Some(diff) = schema_difference(&schema, &r.schema()) {
            return Err(Error::invalid_argument(format!(
                "{} and {} have different schemas: {diff}",
                first.name().display(),
                other.name().display()
            )));
        }
    }
    Ok(Source {
        schema,
        format,
        paths: inputs.iter().map(Input::name).collect(),
        current: Some(reader),
        pending: inputs.into_iter().skip(1).collect(),
        options: options.clone(),
        carry: None,
        finished: false,
    })
}

/// Describes the first difference between two schemas' fields, if any.
fn schema_difference(a: &Schema, b: &Schema) -> Option<String> {
    if a.fields() == b.fields() {
        return None;
    }
    if a.fields().len() != b.fields().len() {
        return Some(format!(
            "{} columns in the first, {} in the second",
            a.fields().len(),
            b.fields().len()
        ));
    }
    a.fields()
        .iter()
        .zip(b.fields())
        .enumerate()
        .find_map(|(i, (x, y))| {
            (x != y).then(|| {
                format!(
                    "column {i} is `{}: {}{}` in the first and `{}: {}{}` in the second",
                    x.name(),
                    x.data_type(),
                    if x.is_nullable() { "" } else { " not null" },
                    y.name(),
                    y.data_type(),
                    if y.is_nullable() { "" } else { " not null" },
                )
            })
        })
}

/// Batches from one or more files, as a [`RecordBatchReader`]; see [`open`] and [`open_many`].
///
/// Errors come as `ArrowError::ExternalError` wrapping an arrowfeed [`enum@Error`] that names
/// the file; `arrowfeed_traits::Error::from_arrow` gets it back. After an error the source ends.
pub struct Source {
    schema: SchemaRef,
    format: Format,
    paths: Vec<PathBuf>,
    current: Option<BoxReader>,
    pending: VecDeque<Input>,
    options: ReadOptions,
    /// A batch longer than the batch size, and how many of its rows were handed out.
    carry: Option<(RecordBatch, usize)>,
    finished: bool,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("format", &self.format)
            .field("paths", &self.paths)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// The format of the first file.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The files, in reading order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some((batch, done)) = self.carry.take() {
            return Ok(Some(self.split(batch, done)));
        }
        loop {
            let Some(reader) = self.current.as_mut() else {
                let Some(input) = self.pending.pop_front() else {
                    return Ok(None);
                };
                let (_, r) = open_one(&input, &self.options)?;
                if let Some(diff) = schema_difference(&self.schema, &r.schema()) {
                    return Err(Error::corrupt(
                        &input.name(),
                        format!("the schema changed since it was opened: {diff}"),
                    ));
                }
                self.current = Some(r);
                continue;
            };
            match reader.next() {
                Some(Ok(b)) => return Ok(Some(self.split(b, 0))),
                Some(Err(e)) => return Err(Error::from_arrow(e)),
                None => self.current = None,
            }
        }
    }

    /// Hands out at most `batch_size` rows of `batch` from row `done`, keeping the rest.
    fn split(&mut self, batch: RecordBatch, done: usize) -> RecordBatch {
        // Checked when the source opened: never 0.
        let size = self.options.batch_size.unwrap_or(usize::MAX);
        let left = batch.num_rows() - done;
        if done == 0 && left <= size {
            return batch;
        }
        let n = left.min(size);
        let out = batch.slice(done, n);
        if done + n < batch.num_rows() {
            self.carry = Some((batch, done + n));
        }
        out
    }
}

impl Iterator for Source {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let r = self.next_batch();
        crate::end_on_none_or_error(&mut self.finished, r)
    }
}

impl RecordBatchReader for Source {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
