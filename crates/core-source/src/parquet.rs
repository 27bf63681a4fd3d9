//! The Parquet source: projection by column name, row-group selection, batch size, every codec.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{ByteSource, Error, Result, no_panic};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;

use crate::input::SourceChunks;
use crate::{Format, ReadOptions, SourceInfo};

/// Reads a Parquet file as Arrow record batches.
///
/// Built on the parquet crate's `ParquetRecordBatchReader`; this adds projection by column name
/// in the order asked for, checks of the file's metadata against its size before any column data
/// is read, the file name in every error, and no panics on malformed files.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_array::{Int32Array, StringArray, RecordBatch};
/// use arrowfeed_core_source::{ParquetReader, ReadOptions};
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.parquet");
/// # let batch = RecordBatch::try_from_iter([
/// #     ("x", Arc::new(Int32Array::from(vec![1, 2, 3])) as _),
/// #     ("s", Arc::new(StringArray::from(vec!["a", "b", "c"])) as _)])?;
/// # let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path)?, batch.schema(), None)?;
/// # w.write(&batch)?; w.close()?;
/// let opts = ReadOptions::default().columns(["s"]).batch_size(2);
/// let reader = ParquetReader::open(&path, &opts)?;
/// let sizes: Vec<usize> = reader.map(|b| b.map(|b| b.num_rows())).collect::<Result<_, _>>()?;
/// assert_eq!(sizes, [2, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ParquetReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
    metadata: Arc<ParquetMetaData>,
    file_bytes: u64,
    /// Columns of each decoded batch, in the order the caller asked for.
    reorder: Option<Vec<usize>>,
    schema: SchemaRef,
    finished: bool,
}

impl std::fmt::Debug for ParquetReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetReader")
            .field("path", &self.path)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl ParquetReader {
    /// Opens the Parquet file at `path` with `options` (columns, row groups, batch size).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read; [`Error::Corrupt`] or [`Error::External`] naming the
    /// file if it is not valid Parquet; [`Error::InvalidArgument`] for an unknown column or a
    /// row group that does not exist.
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Self> {
        let path = path.as_ref();
        let (file, footer) = ParquetFooter::open(path, options)?;
        no_panic(path, "the decoder", || {
            Self::build(path, file, footer, options)
        })
    }

    fn build(
        path: &Path,
        file: File,
        footer: ParquetFooter,
        options: &ReadOptions,
    ) -> Result<Self> {
        let ParquetFooter {
            file_bytes,
            metadata: md,
            projection:
                Projection {
                    mask,
                    reorder,
                    schema,
                },
        } = footer;
        let metadata = md.metadata().clone();
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, md)
            .with_batch_size(options.parquet_batch_size())
            .with_projection(mask);
        if let Some(rgs) = &options.row_groups {
            builder = builder.with_row_groups(rgs.clone());
        }
        let inner = builder.build().map_err(|e| Error::external(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            inner,
            metadata,
            file_bytes,
            reorder,
            schema,
            finished: false,
        })
    }

    /// The path this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `arrowfeed info` shows: rows, row groups, codecs, size on disk.
    pub fn info(&self) -> SourceInfo {
        parquet_info(
            &self.path,
            &self.metadata,
            self.file_bytes,
            self.schema.clone(),
        )
    }
}

/// A Parquet file's footer read and checked, the asked columns resolved and the asked row
/// groups known to exist: what [`ParquetReader`] and the scan plan share.
pub(crate) struct ParquetFooter {
    pub(crate) file_bytes: u64,
    pub(crate) metadata: ArrowReaderMetadata,
    pub(crate) projection: Projection,
}

impl ParquetFooter {
    /// Reads the footer of the `file_bytes`-byte file `name` through `reader`, for `options`'
    /// columns and row groups.
    pub(crate) fn read<R: ChunkReader>(
        name: &str,
        reader: &R,
        file_bytes: u64,
        options: &ReadOptions,
    ) -> Result<Self> {
        no_panic(name, "the decoder", || {
            let metadata = load_metadata(name, reader, file_bytes)?;
            let projection = resolve_columns(name, &metadata, options.columns.as_deref())?;
            if let Some(rgs) = &options.row_groups {
                check_row_groups(name, metadata.metadata(), rgs)?;
            }
            Ok(Self {
                file_bytes,
                metadata,
                projection,
            })
        })
    }

    /// Reads the footer of the object behind `source`: one read of its tail for most files.
    pub(crate) fn from_source(source: &Arc<dyn ByteSource>, options: &ReadOptions) -> Result<Self> {
        options.check()?;
        let chunks = SourceChunks::new(source.clone())?;
        Self::read(source.name(), &chunks, chunks.size(), options)
    }

    /// Checks `options`, opens the regular file at `path` and reads its footer: the first
    /// steps of both the reader and the scan plan over a local file.
    pub(crate) fn open(path: &Path, options: &ReadOptions) -> Result<(std::fs::File, Self)> {
        options.check()?;
        let (file, file_bytes) = crate::detect::open_regular_file(path)?;
        let footer = Self::read(&path.display().to_string(), &file, file_bytes, options)?;
        Ok((file, footer))
    }
}

/// Reads and checks a Parquet file's footer: long enough to be Parquet, and every column chunk
/// inside the file, before any of them is read.
fn load_metadata<R: ChunkReader>(
    name: &str,
    reader: &R,
    file_bytes: u64,
) -> Result<ArrowReaderMetadata> {
    if file_bytes < 12 {
        return Err(Error::corrupt(
            name,
            format!("too short for a Parquet file ({file_bytes} bytes; truncated?)"),
        ));
    }
    let md = ArrowReaderMetadata::load(reader, ArrowReaderOptions::new()).map_err(|e| match e {
        // A read of the source failed: its own error says what and where.
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::external(name, parquet::errors::ParquetError::External(other)),
        },
        e => Error::external(name, e),
    })?;
    check_chunk_ranges(name, md.metadata(), file_bytes)?;
    Ok(md)
}

/// Columns asked for by name, resolved against a file.
pub(crate) struct Projection {
    /// The root columns to decode (the decoder yields them in file order).
    pub(crate) mask: ProjectionMask,
    /// Puts decoded columns in the order asked for; `None` when file order already is.
    pub(crate) reorder: Option<Vec<usize>>,
    /// The output schema.
    pub(crate) schema: SchemaRef,
}

/// Resolves `columns` (all when `None`) against the file described by `md`.
fn resolve_columns(
    path: &str,
    md: &ArrowReaderMetadata,
    columns: Option<&[String]>,
) -> Result<Projection> {
    let file_schema = md.schema().clone();
    let Some(names) = columns else {
        return Ok(Projection {
            mask: ProjectionMask::all(),
            reorder: None,
            schema: file_schema,
        });
    };
    let wanted = crate::column_indices(&file_schema, names).map_err(|e| e.or_location(path))?;
    let mut sorted = wanted.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let reorder: Vec<usize> = wanted
        .iter()
        .map(|w| {
            sorted
                .binary_search(w)
                .expect("sorted holds every wanted index")
        })
        .collect();
    let identity =
        reorder.len() == sorted.len() && reorder.iter().enumerate().all(|(i, &r)| i == r);
    let schema = Arc::new(
        file_schema
            .project(&wanted)
            .map_err(|e| Error::arrow_at(path, e))?,
    );
    Ok(Projection {
        mask: ProjectionMask::roots(md.parquet_schema(), sorted.iter().copied()),
        reorder: (!identity).then_some(reorder),
        schema,
    })
}

/// Rejects row groups the file does not have.
fn check_row_groups(path: &str, md: &ParquetMetaData, row_groups: &[usize]) -> Result<()> {
    let n = md.num_row_groups();
    match row_groups.iter().find(|&&g| g >= n) {
        Some(bad) => Err(Error::invalid_argument(format!(
            "{path}: row group {bad} does not exist (the file has {n})"
        ))),
        None => Ok(()),
    }
}

/// Where column chunk `col` starts in the file and its length, as its metadata says, or
/// `None` if either is negative. (The parquet crate's `byte_range` panics on those; a file's
/// chunks are checked with this at open, in [`check_chunk_ranges`].)
pub(crate) fn chunk_range(
    col: &parquet::file::metadata::ColumnChunkMetaData,
) -> Option<(u64, u64)> {
    let start = col
        .dictionary_page_offset()
        .unwrap_or_else(|| col.data_page_offset());
    Some((
        u64::try_from(start).ok()?,
        u64::try_from(col.compressed_size()).ok()?,
    ))
}

/// Rejects metadata whose column chunks point outside the file, before any of them is read.
fn check_chunk_ranges(path: &str, md: &ParquetMetaData, file_bytes: u64) -> Result<()> {
    for (g, rg) in md.row_groups().iter().enumerate() {
        if rg.num_rows() < 0 {
            return Err(Error::corrupt(
                path,
                format!("row group {g} has a negative row count"),
            ));
        }
        for (c, col) in rg.columns().iter().enumerate() {
            let Some((start, len)) = chunk_range(col) else {
                return Err(Error::corrupt(
                    path,
                    format!("row group {g}, column {c}: a negative offset or length"),
                ));
            };
            if start.checked_add(len).is_none_or(|end| end > file_bytes) {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "row group {g}, column {c}: bytes {start}..{} lie outside the {file_bytes}-byte file",
                        start.saturating_add(len)
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn parquet_info(
    path: &Path,
    md: &ParquetMetaData,
    file_bytes: u64,
    schema: SchemaRef,
) -> SourceInfo {
    let mut codecs: Vec<String> = md
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns().iter().map(|c| codec_name(c.compression())))
        .collect();
    codecs.sort();
    codecs.dedup();
    SourceInfo {
        path: path.to_path_buf(),
        format: Format::Parquet,
        schema,
        rows: Some(md.file_metadata().num_rows().max(0) as u64),
        file_bytes,
        unit: crate::SourceUnit::RowGroups,
        unit_rows: md
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows().max(0) as u64)
            .collect(),
        compression: codecs,
        created_by: md.file_metadata().created_by().map(str::to_string),
    }
}

fn codec_name(c: parquet::basic::Compression) -> String {
    use parquet::basic::Compression as C;
    match c {
        C::UNCOMPRESSED => "none".into(),
        C::SNAPPY => "snappy".into(),
        C::GZIP(_) => "gzip".into(),
        C::LZO => "lzo".into(),
        C::BROTLI(_) => "brotli".into(),
        C::LZ4 => "lz4".into(),
        C::ZSTD(_) => "zstd".into(),
        C::LZ4_RAW => "lz4_raw".into(),
    }
}

impl Iterator for ParquetReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let path = &self.path;
        let inner = &mut self.inner;
        let reorder = &self.reorder;
        let r = no_panic(path, "the decoder", || match inner.next() {
            None => Ok(None),
            Some(Err(e)) => Err(Error::arrow_at(path, e)),
            Some(Ok(b)) => match reorder {
                None => Ok(Some(b)),
                Some(p) => b.project(p).map(Some).map_err(|e| Error::arrow_at(path, e)),
            },
        });
        crate::end_on_none_or_error(&mut self.finished, r)
    }
}

impl RecordBatchReader for ParquetReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
