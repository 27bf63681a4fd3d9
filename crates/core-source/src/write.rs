//! Writing batches to a file whose extension picks the format: the other half of `convert`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow_schema::SchemaRef;
use arrowfeed_traits::{Error, Result};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::Format;

/// Compression for written files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteCompression {
    /// The format's usual choice: none for Arrow IPC (so it can be memory-mapped and read
    /// zero-copy), snappy for Parquet.
    #[default]
    Default,
    /// No compression.
    None,
    /// LZ4 (LZ4 frame for IPC, LZ4_RAW for Parquet).
    Lz4,
    /// Zstandard at level 1.
    Zstd,
}

/// Writes record batches to a Parquet, Arrow IPC file or Arrow IPC stream file.
///
/// The output is written to a temporary name beside the target and renamed into place by
/// [`finish`](Self::finish), so a failed or interrupted write never leaves a half file under
/// the target's name.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_array::{Int32Array, RecordBatch};
/// use arrowfeed_core_source::{BatchWriter, Format, WriteCompression};
///
/// # let dir = tempfile::tempdir()?;
/// # let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1, 2, 3])) as _)])?;
/// let path = dir.path().join("out.parquet");
/// let format = BatchWriter::format_for(&path)?;
/// assert_eq!(format, Format::Parquet);
/// let mut w = BatchWriter::create(&path, format, batch.schema(), WriteCompression::Default)?;
/// w.write(&batch)?;
/// w.finish()?;
/// assert_eq!(arrowfeed_core_source::info(&path)?.rows, Some(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BatchWriter {
    path: PathBuf,
    tmp: PathBuf,
    inner: Option<Inner>,
}

enum Inner {
    Parquet(ArrowWriter<BufWriter<File>>, ParquetAdapt),
    File(FileWriter<BufWriter<File>>),
    Stream(StreamWriter<BufWriter<File>>),
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl BatchWriter {
    /// The format an output path asks for: `.parquet`/`.pq` Parquet, `.arrow`/`.feather`/`.ipc`
    /// Arrow IPC file, `.arrows` Arrow IPC stream.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other extension.
    pub fn format_for(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("parquet" | "pq") => Ok(Format::Parquet),
            Some("arrow" | "feather" | "ipc") => Ok(Format::ArrowFile),
            Some("arrows") => Ok(Format::ArrowStream),
            _ => Err(Error::invalid_argument(format!(
                "{}: cannot tell the output format from the extension; use .arrow (IPC file), .arrows (IPC stream) or .parquet",
                path.display()
            ))),
        }
    }

    /// Creates a writer of `format` for batches of `schema`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be created; [`Error::Arrow`]/[`Error::External`] if the
    /// format cannot represent the schema.
    pub fn create(
        path: impl AsRef<Path>,
        format: Format,
        schema: SchemaRef,
        compression: WriteCompression,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let made = Self::make(out, format, &schema, compression).map_err(|e| e.or_location(&path));
        match made {
            Ok(inner) => Ok(Self {
                path,
                tmp,
                inner: Some(inner),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn make(
        out: BufWriter<File>,
        format: Format,
        schema: &SchemaRef,
        compression: WriteCompression,
    ) -> Result<Inner> {
        let ipc_options = || -> Result<IpcWriteOptions> {
            let c = match compression {
                WriteCompression::Default | WriteCompression::None => None,
                WriteCompression::Lz4 => Some(arrow_ipc::CompressionType::LZ4_FRAME),
                WriteCompression::Zstd => Some(arrow_ipc::CompressionType::ZSTD),
            };
            Ok(IpcWriteOptions::default().try_with_compression(c)?)
        };
        Ok(match format {
            Format::Parquet => {
                let codec = match compression {
                    WriteCompression::Default => Compression::SNAPPY,
                    WriteCompression::None => Compression::UNCOMPRESSED,
                    WriteCompression::Lz4 => Compression::LZ4_RAW,
                    WriteCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
                };
                let props = WriterProperties::builder().set_compression(codec).build();
                let adapt = ParquetAdapt::new(schema);
                Inner::Parquet(
                    ArrowWriter::try_new(out, adapt.schema.clone(), Some(props))
                        .map_err(|e| Error::external(arrowfeed_traits::Location::none(), e))?,
                    adapt,
                )
            }
            Format::ArrowFile => Inner::File(FileWriter::try_new_with_options(
                out,
                schema,
                ipc_options()?,
            )?),
            Format::ArrowStream => Inner::Stream(StreamWriter::try_new_with_options(
                out,
                schema,
                ipc_options()?,
            )?),
        })
    }

    /// Writes one batch.
    ///
    /// # Errors
    /// [`Error::Io`] or an encoding error naming the output file.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let path = &self.path;
        let r = match self.inner.as_mut() {
            Some(Inner::Parquet(w, adapt)) => adapt
                .apply(batch)
                .map_err(|e| e.or_location(path))
                .and_then(|b| w.write(&b).map_err(|e| Error::external(path, e))),
            Some(Inner::File(w)) => w.write(batch).map_err(|e| Error::arrow_at(path, e)),
            Some(Inner::Stream(w)) => w.write(batch).map_err(|e| Error::arrow_at(path, e)),
            None => Err(Error::invalid_argument(format!(
                "{}: write after finish",
                path.display()
            ))),
        };
        if r.is_err() {
            self.abandon();
        }
        r
    }

    /// Finishes the file, flushes it to disk and moves it into place.
    ///
    /// # Errors
    /// [`Error::Io`] or an encoding error naming the output file; the target is then untouched.
    pub fn finish(mut self) -> Result<()> {
        let path = self.path.clone();
        let r = (|| -> Result<()> {
            let file = match self.inner.take() {
                Some(Inner::Parquet(w, _)) => {
                    w.into_inner().map_err(|e| Error::external(&path, e))?
                }
                Some(Inner::File(mut w)) => {
                    w.finish().map_err(|e| Error::arrow_at(&path, e))?;
                    w.into_inner().map_err(|e| Error::arrow_at(&path, e))?
                }
                Some(Inner::Stream(mut w)) => {
                    w.finish().map_err(|e| Error::arrow_at(&path, e))?;
                    w.into_inner().map_err(|e| Error::arrow_at(&path, e))?
                }
                None => {
                    return Err(Error::invalid_argument(format!(
                        "{}: finished twice",
                        path.display()
                    )));
                }
            };
            let mut file = file;
            file.flush().map_err(|e| Error::io(&self.tmp, e))?;
            let file = file
                .into_inner()
                .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
            file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
            std::fs::rename(&self.tmp, &path).map_err(|e| Error::io(&path, e))
        })();
        if r.is_err() {
            self.abandon();
        }
        r
    }

    fn abandon(&mut self) {
        self.inner = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Drop for BatchWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            self.abandon();
        }
    }
}

/// Types Parquet has no exact form for, stored the way pyarrow stores them so that every Parquet
/// reader sees a date or time rather than a bare integer: second-resolution times widened to
/// milliseconds, and `Date64` as `Date32` (whole days). Only top-level columns are adapted; nested ones are written as arrow-rs writes them.
struct ParquetAdapt {
    schema: SchemaRef,
    /// Columns to widen.
    columns: Vec<usize>,
}

impl ParquetAdapt {
    fn new(schema: &SchemaRef) -> Self {
        use arrow_schema::{DataType, Field, TimeUnit};
        let mut columns = Vec::new();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let widened = match f.data_type() {
                    DataType::Timestamp(TimeUnit::Second, tz) => {
                        Some(DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))
                    }
                    DataType::Time32(TimeUnit::Second) => {
                        Some(DataType::Time32(TimeUnit::Millisecond))
                    }
                    DataType::Date64 => Some(DataType::Date32),
                    _ => None,
                };
                match widened {
                    Some(t) => {
                        columns.push(i);
                        f.as_ref().clone().with_data_type(t)
                    }
                    None => f.as_ref().clone(),
                }
            })
            .collect();
        let schema = if columns.is_empty() {
            schema.clone()
        } else {
            std::sync::Arc::new(arrow_schema::Schema::new_with_metadata(
                fields,
                schema.metadata().clone(),
            ))
        };
        Self { schema, columns }
    }

    fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{
            Date32Type, Date64Type, Time32MillisecondType, Time32SecondType,
            TimestampMillisecondType, TimestampSecondType,
        };
        if self.columns.is_empty() {
            return Ok(batch.clone());
        }
        let mut cols = batch.columns().to_vec();
        for &i in &self.columns {
            let c = &cols[i];
            let overflow = || {
                Error::invalid_argument(format!(
                    "column {i}: a second-resolution time does not fit in milliseconds"
                ))
            };
            cols[i] = if let Some(ts) = c.as_primitive_opt::<TimestampSecondType>() {
                let ms = ts
                    .try_unary::<_, TimestampMillisecondType, _>(|v| {
                        v.checked_mul(1000).ok_or_else(|| {
                            arrow_schema::ArrowError::ComputeError("overflow".into())
                        })
                    })
                    .map_err(|_| overflow())?;
                std::sync::Arc::new(ms.with_timezone_opt(ts.timezone().map(str::to_string)))
            } else if let Some(t) = c.as_primitive_opt::<Time32SecondType>() {
                let ms = t
                    .try_unary::<_, Time32MillisecondType, _>(|v| {
                        v.checked_mul(1000).ok_or_else(|| {
                            arrow_schema::ArrowError::ComputeError("overflow".into())
                        })
                    })
                    .map_err(|_| overflow())?;
                std::sync::Arc::new(ms)
            } else if let Some(d) = c.as_primitive_opt::<Date64Type>() {
                // Whole days, as pyarrow stores date64 in Parquet.
                std::sync::Arc::new(d.unary::<_, Date32Type>(|ms| ms.div_euclid(86_400_000) as i32))
            } else {
                c.clone()
            };
        }
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}
