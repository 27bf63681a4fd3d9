//! The scan plan for Parquet files: *what* to read and *how* to decode it, as an
//! `arrowfeed_traits::ScanPlan`. An engine (arrowfeed-decode-sched) decides *when*; a plan can
//! also be run in order on one thread (`arrowfeed_traits::run_plan_in_order`), which is how the
//! tests check it against the readers. The Arrow IPC plan is in `ipc_plan.rs`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{
    ByteSource, DecodePart, Decoded, Error, PartDecoded, PartDecoder, ReadTask, Result, ScanPlan,
    TaskDecoder, batch_memory_size, no_panic,
};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, RowSelection, RowSelector,
};
use parquet::arrow::{FieldLevels, ProjectionMask, parquet_to_arrow_field_levels};
use parquet::file::metadata::ParquetMetaData;

use crate::ReadOptions;
use crate::flat::{FlatReader, Kind};
use crate::page_cache::{PageCounts, SharedPages, SharedRowGroup};
use crate::parquet::{ParquetFooter, Projection};
use crate::stream::{StreamSource, Streamed};
use fetched::Fetched;

/// A plan that reads a Parquet file one row group per task, fetching only the projected
/// columns' chunks.
///
/// Row groups split into parts that decode on several threads
/// ([`part_rows`](Self::part_rows)). Uncompressed and snappy pages are cut and
/// decompressed by this crate (no zeroing of page buffers; a page two parts need is
/// decompressed once); when every projected column is a flat fixed-width one (INT32, INT64,
/// FLOAT, DOUBLE as Int32, Date32, Int64, Float32, Float64) in PLAIN or dictionary encoding,
/// its values are decoded here too. Everything else goes through the parquet crate's
/// decoders. Either way the output equals `ParquetReader`'s; every length and index read from
/// a page is checked.
pub struct ParquetScanPlan {
    name: Arc<str>,
    file_bytes: u64,
    metadata: Arc<ArrowReaderMetadata>,
    mask: ProjectionMask,
    /// The projected columns as the parquet crate's readers build them.
    levels: Arc<FieldLevels>,
    reorder: Option<Vec<usize>>,
    schema: SchemaRef,
    batch_size: usize,
    part_rows: Option<usize>,
    /// A projected column is repeated: parts cost more (see [`Self::part_rows`]).
    repeated: bool,
    /// Set when every projected column is one [`crate::flat`] decodes.
    flat: Option<Arc<FlatColumns>>,
    piece_bytes: usize,
    row_groups: VecDeque<usize>,
    next_row: u64,
    total_rows: u64,
    /// Pages decompressed and shared by all the plan's readers.
    pages: Arc<PageCounts>,
    /// The source, when its reads are fresh memory rather than views of a map and do not
    /// block: row groups larger than [`ScanPlan::fit_fetches`] asks are then read from it a
    /// window at a time.
    stream_from: Option<Arc<dyn ByteSource>>,
    /// The most bytes a task should fetch, once an engine has said ([`ScanPlan::fit_fetches`]).
    fetch_bytes: Option<u64>,
    /// The bytes the streamed row groups' readers hold (see [`ScanPlan::fit_fetches`]).
    streamed_reads: Arc<arrowfeed_traits::OwnReads>,
    /// How many streamed row groups are taken to be read at once when their reaches are
    /// sized: [`crate::stream::STREAMS_AT_ONCE`], or fewer if there are fewer.
    streams_at_once: u64,
    /// Row groups of at most this many bytes are fetched whole ([`WHOLE_FETCH_BYTES`]; smaller
    /// in tests).
    whole_fetch: u64,
    /// The fewest bytes a streamed chunk asks for at once ([`crate::stream::MIN_REQUEST`];
    /// smaller in tests, to cut pages across requests).
    min_request: usize,
}

/// Row groups with at least this many rows split into parts by default: see
/// [`ParquetScanPlan::part_rows`].
pub const SPLIT_ROW_GROUPS_FROM: usize = 65_536;

/// A row group split by default ([`SPLIT_ROW_GROUPS_FROM`]) is cut into parts of about this
/// many bytes of its projected column chunks, uncompressed, when that makes more than four:
/// see [`ParquetScanPlan::part_rows`].
pub const PART_BYTES: u64 = 24 << 20;

/// Decoded bytes per piece by default: see [`ParquetScanPlan::piece_bytes`]. Pieces
/// this size stay well inside a 32 MiB L3 cache until taken. 1 MiB pieces (half a 2 MiB L2)
/// made a tpch scan 14% slower in one process (0.217 s against 0.190 s): four times as many
/// hand-overs, each waking the consumer.
pub const DEFAULT_PIECE_BYTES: usize = 4 << 20;

/// A row group whose projected chunks take at most this many bytes is fetched whole whatever
/// the budget ([`ScanPlan::fit_fetches`]): the engine always admits the fetch of the task the
/// consumer waits for, and reading a row group this small a window at a time costs more in
/// requests than it saves in memory. Scanning `tpch.parquet` of 256,000 rows (18 MB row groups)
/// over S3 (SeaweedFS on loopback) at a 16 MiB budget, streamed: 460 requests, three times the
/// server's CPU time, 0.78 s and 62-65 MiB of peak anonymous memory; fetched whole: 0.53 s and
/// 51-57 MiB.
pub(crate) const WHOLE_FETCH_BYTES: u64 = 32 << 20;

impl std::fmt::Debug for ParquetScanPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetScanPlan")
            .field("name", &self.name)
            .field("row_groups", &self.row_groups)
            .finish_non_exhaustive()
    }
}

impl ParquetScanPlan {
    /// Plans a scan of the Parquet file at `path` with `options` (columns, row groups, batch
    /// size). Reads the footer now; no column data.
    ///
    /// # Errors
    /// As [`ParquetReader::open`](crate::ParquetReader::open).
    pub fn try_new(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Self> {
        let path = path.as_ref();
        let (_, footer) = ParquetFooter::open(path, options)?;
        Self::from_footer(path.display().to_string().into(), footer, options)
    }

    /// Plans a scan of the Parquet object behind `source` (a remote object, a memory map):
    /// reads its footer through the source now, from one read of its tail for most files.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new), and the source's read errors.
    pub fn from_source(source: &Arc<dyn ByteSource>, options: &ReadOptions) -> Result<Self> {
        let footer = ParquetFooter::from_source(source, options)?;
        let mut plan = Self::from_footer(source.name().into(), footer, options)?;
        // A blocking source's reads would run one after another on the decode thread, where
        // the engine's I/O threads overlap them.
        if !source.reads_are_views() && !source.is_blocking() {
            plan.stream_from = Some(source.clone());
        }
        Ok(plan)
    }

    fn from_footer(name: Arc<str>, footer: ParquetFooter, options: &ReadOptions) -> Result<Self> {
        let ParquetFooter {
            file_bytes,
            metadata: arrow_md,
            projection:
                Projection {
                    mask,
                    reorder,
                    schema,
                },
        } = footer;
        let md = arrow_md.metadata().clone();
        let levels = parquet_to_arrow_field_levels(
            md.file_metadata().schema_descr(),
            mask.clone(),
            Some(arrow_md.schema().fields()),
        )
        .map_err(|e| Error::external(&*name, e))?;
        let repeated = md
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .enumerate()
            .any(|(i, c)| mask.leaf_included(i) && c.max_rep_level() > 0);
        let flat = FlatColumns::of(&arrow_md, &mask).map(Arc::new);
        let row_groups: VecDeque<usize> = match &options.row_groups {
            Some(r) => r.iter().copied().collect(),
            None => (0..md.num_row_groups()).collect(),
        };
        let total_rows = row_groups
            .iter()
            .map(|&g| md.row_group(g).num_rows().max(0) as u64)
            .sum();
        Ok(Self {
            name,
            file_bytes,
            metadata: Arc::new(arrow_md),
            mask,
            levels: Arc::new(levels),
            reorder,
            schema,
            batch_size: options.parquet_batch_size(),
            part_rows: None,
            repeated,
            flat,
            piece_bytes: DEFAULT_PIECE_BYTES,
            row_groups,
            next_row: 0,
            total_rows,
            pages: Arc::default(),
            stream_from: None,
            fetch_bytes: None,
            min_request: crate::stream::MIN_REQUEST,
            whole_fetch: WHOLE_FETCH_BYTES,
            streamed_reads: Arc::default(),
            streams_at_once: crate::stream::STREAMS_AT_ONCE,
        })
    }
}

impl ParquetScanPlan {
    /// Sets the rows per decoded batch (default: the options' batch size, else 8,192).
    ///
    /// Decoded batches break at multiples of this many rows counted from the plan's first
    /// row, not from each row group's: a row group starting mid-batch first yields the rows
    /// up to the next multiple. An engine cutting batches of the same size then hands them on
    /// as they are, with no copy where row groups meet. At least 1: with 0 the plan's first
    /// item is an [`Error::InvalidArgument`] naming the setting.
    pub fn decode_batch_rows(mut self, rows: usize) -> Self {
        self.batch_size = rows;
        self
    }

    /// Splits each row group into parts of about `rows` rows that an engine decodes on
    /// several threads at once (`Decoded::Parts`); `0` keeps row groups whole. Cuts fall on
    /// multiples of the decode batch size counted from the plan's first row, so batches never
    /// straddle two parts.
    ///
    /// By default a row group of at least [`SPLIT_ROW_GROUPS_FROM`] rows splits in four, or
    /// into parts of about [`PART_BYTES`] (of its projected chunks, uncompressed) when that
    /// makes more; a smaller one stays whole. Several threads then share the row group the
    /// consumer waits for, and only a part's worth of decoded data waits for it, in memory the
    /// allocator reuses: the consumer takes parts in order, so the part a second thread
    /// decodes waits, whole, for the part before it.
    ///
    /// The parts of a row group share decompressed pages: the data page where one part ends
    /// and the next begins, and each dictionary page, are decompressed once. What each part
    /// still repeats is decoding the dictionary and the values of the page at its start that
    /// belong to the part before. To reach its first row a part passes whole pages unread:
    /// pages that say their rows, and v1 pages of a list column that this crate decodes, whose
    /// rows it counts from their repetition levels alone (decompressing only those, and once
    /// for all the parts). Where the parquet crate decodes a repeated column, it can only count
    /// a v1 page's rows by decompressing the page and reading all its levels: such row groups
    /// split in two at most. On `tpch.parquet` from the CLI, quarters against halves: 0.27 s
    /// against 0.27-0.42 s and 20-90 MB less memory. On `ml.parquet` (row groups of 128,000
    /// rows and 219 MB), eight parts against two: the same median time, a narrower spread,
    /// 5% more CPU and half the memory.
    pub fn part_rows(mut self, rows: usize) -> Self {
        self.part_rows = Some(rows);
        self
    }

    /// Each part (a row group that is not split is one part) hands its batches to the
    /// engine in pieces of at least `bytes` decoded bytes (`PartDecoded::More`), rather than
    /// all at once: the consumer takes the first rows of the part while the rest decodes,
    /// likely while they are still in the CPU's cache, and the allocator reuses their memory
    /// instead of a whole part waiting in fresh pages. A piece holds whole batches, so at
    /// least one. Default [`DEFAULT_PIECE_BYTES`]; `usize::MAX` hands each part over whole.
    pub fn piece_bytes(mut self, bytes: usize) -> Self {
        self.piece_bytes = bytes;
        self
    }

    /// The rows per part of a row group of `rows` rows whose projected chunks take `bytes`
    /// uncompressed, decoded by this crate's decoders (`ours`) or the parquet crate's
    /// (before cuts snap to batch multiples).
    fn part_rows_for(&self, rows: u64, bytes: u64, ours: bool) -> u64 {
        match self.part_rows {
            Some(0) => u64::MAX,
            Some(r) => r as u64,
            None if rows >= SPLIT_ROW_GROUPS_FROM as u64 => {
                if self.repeated && !ours {
                    return rows.div_ceil(2);
                }
                let parts = bytes.div_ceil(PART_BYTES).max(4);
                rows.div_ceil(parts)
            }
            None => u64::MAX,
        }
    }

    /// The number of row groups still to plan.
    pub fn remaining_row_groups(&self) -> usize {
        self.row_groups.len()
    }

    /// The byte ranges of row group `g`'s projected column chunks, in file order.
    fn chunk_ranges(&self, g: usize) -> Vec<std::ops::Range<u64>> {
        (self
            .metadata
            .metadata()
            .row_group(g)
            .columns()
            .iter()
            .enumerate())
        .filter(|(c, _)| self.mask.leaf_included(*c))
        .map(|(_, col)| {
            // Checked when the file was opened.
            let (start, len) = crate::parquet::chunk_range(col).unwrap_or((0, 0));
            start..start.saturating_add(len)
        })
        .collect()
    }

    /// How row group `g`, whose projected chunks are `ranges`, is read a window at a time,
    /// if it is: when the source's reads are fresh memory, the chunks add up to more than
    /// [`ScanPlan::fit_fetches`] allowed and than [`WHOLE_FETCH_BYTES`], and every one is
    /// uncompressed or snappy (the codecs `ChunkPages` cuts pages of). The chunks' windows
    /// share that allowance.
    fn streamed(&self, g: usize, ranges: &[std::ops::Range<u64>]) -> Option<Streamed> {
        let (source, allowed) = self.stream_from.as_ref().zip(self.fetch_bytes)?;
        if !self.streams(g, ranges, allowed) {
            return None;
        }
        let sizes: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
        let mut reaches =
            crate::stream::reaches(&sizes, allowed, self.streams_at_once, self.min_request)
                .into_iter();
        let per_leaf = (0..self.metadata.metadata().row_group(g).num_columns())
            .map(|c| self.mask.leaf_included(c).then(|| reaches.next()).flatten())
            .collect();
        Some(Streamed {
            from: Arc::new(StreamSource::new(
                source.clone(),
                self.streamed_reads.clone(),
                allowed.saturating_mul(2),
            )),
            reaches: per_leaf,
        })
    }

    /// Whether row group `g`, whose projected chunks are `ranges`, is streamed when a task
    /// may fetch `allowed` bytes (see [`streamed`](Self::streamed)).
    fn streams(&self, g: usize, ranges: &[std::ops::Range<u64>], allowed: u64) -> bool {
        let total = ranges.iter().map(|r| r.end - r.start).sum::<u64>();
        let rg = self.metadata.metadata().row_group(g);
        let projected =
            || (rg.columns().iter().enumerate()).filter(|(c, _)| self.mask.leaf_included(*c));
        let codecs_cut_here = projected().all(|(_, col)| {
            matches!(
                col.compression(),
                parquet::basic::Compression::UNCOMPRESSED | parquet::basic::Compression::SNAPPY
            )
        });
        total > allowed.max(self.whole_fetch) && codecs_cut_here
    }
}

impl Iterator for ParquetScanPlan {
    type Item = Result<ReadTask>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.batch_size == 0 && !self.row_groups.is_empty() {
            self.row_groups.clear();
            return Some(Err(Error::invalid_argument(format!(
                "{}: decode_batch_rows must be at least 1, got 0",
                self.name
            ))));
        }
        let g = self.row_groups.pop_front()?;
        let md: &ParquetMetaData = self.metadata.metadata();
        let rg = md.row_group(g);
        let ranges = self.chunk_ranges(g);
        let rows = rg.num_rows().max(0) as u64;
        let streamed = self.streamed(g, &ranges);
        let ranges = if streamed.is_some() {
            Vec::new()
        } else {
            ranges
        };
        let flat = self.flat.clone().filter(|f| {
            f.columns
                .iter()
                .all(|c| crate::flat::encodings_supported(rg.column(c.0)))
        });
        let ours = flat.is_some();
        let task = ReadTask {
            ranges: ranges.clone(),
            priority: self.next_row,
            rows: self.next_row..self.next_row + rows,
            decoder: Box::new(ParquetRowGroupDecoder {
                group: RowGroup {
                    name: self.name.clone(),
                    metadata: self.metadata.clone(),
                    levels: self.levels.clone(),
                    reorder: self.reorder.clone(),
                    batch_size: self.batch_size,
                    row_group: g,
                    first_row: self.next_row,
                    rows,
                    piece_bytes: self.piece_bytes,
                    flat,
                },
                file_bytes: self.file_bytes,
                // A streamed row group is read in order by one reader: a later part would
                // have to read every page before it to find its first.
                part_rows: if streamed.is_some() {
                    u64::MAX
                } else {
                    let bytes = (rg.columns().iter().enumerate())
                        .filter(|(c, _)| self.mask.leaf_included(*c))
                        .map(|(_, col)| col.uncompressed_size().max(0) as u64)
                        .sum();
                    self.part_rows_for(rows, bytes, ours)
                },
                pages: self.pages.clone(),
                ranges,
                streamed,
            }),
        };
        self.next_row += rows;
        Some(Ok(task))
    }
}

impl ScanPlan for ParquetScanPlan {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn total_rows(&self) -> Option<u64> {
        Some(self.total_rows)
    }

    /// Reads a row group whose projected chunks add up to more than `bytes` (and than 32 MiB,
    /// `WHOLE_FETCH_BYTES`) from the source a window at a time, rather than fetching it whole,
    /// when the plan was made [`from_source`](ParquetScanPlan::from_source) whose reads are
    /// fresh memory and the chunks are uncompressed or snappy. The bytes fetched ahead of the
    /// readers of the row groups read at once add up to about `bytes` (more where two of a
    /// column's pages take more); when any row group will be read so, returns what they read
    /// and hold. Such a row group is decoded in one part.
    fn fit_fetches(&mut self, bytes: u64) -> Option<Arc<arrowfeed_traits::OwnReads>> {
        self.fetch_bytes = Some(bytes);
        self.stream_from.as_ref()?;
        let streamed = (self.row_groups.iter())
            .filter(|&&g| self.streams(g, &self.chunk_ranges(g), bytes))
            .count() as u64;
        // Fewer row groups than the engine reads at once share the allowance between them.
        self.streams_at_once = streamed.clamp(1, crate::stream::STREAMS_AT_ONCE);
        (streamed > 0).then(|| self.streamed_reads.clone())
    }

    /// Shrinks the decode batches (see [`decode_batch_rows`](Self::decode_batch_rows)) to
    /// fit `bytes` at the decoded size of a row of the planned row group with the widest rows,
    /// estimated from the footer (each column chunk's uncompressed size, or a value per row
    /// of its physical width if more), and the pieces
    /// ([`piece_bytes`](ParquetScanPlan::piece_bytes)) to `bytes`.
    fn fit_batch_rows(&mut self, rows: usize, bytes: u64) -> usize {
        if self.batch_size == 0 {
            // Left for the plan's first item to report, naming the setting.
            return rows;
        }
        let md = self.metadata.metadata();
        let row_bytes = self
            .row_groups
            .iter()
            .map(|&g| {
                let rg = md.row_group(g);
                let chunks: u64 = (rg.columns().iter().enumerate())
                    .filter(|(c, _)| self.mask.leaf_included(*c))
                    .map(|(_, col)| decoded_chunk_bytes(col))
                    .fold(0, u64::saturating_add);
                chunks.div_ceil(rg.num_rows().max(1) as u64)
            })
            .max()
            .unwrap_or(0);
        let fit = arrowfeed_traits::fitted_rows(rows.min(self.batch_size), bytes, row_bytes);
        self.batch_size = fit;
        // A piece holds whole batches, so at least one whatever this says.
        self.piece_bytes = self
            .piece_bytes
            .min(usize::try_from(bytes).unwrap_or(usize::MAX));
        fit
    }
}

/// About the bytes a column chunk takes once decoded, from its metadata: its uncompressed
/// size (a PLAIN page's values as they are), or, if more, a value per row of its physical
/// width (dictionary indices decode to whole values).
fn decoded_chunk_bytes(col: &parquet::file::metadata::ColumnChunkMetaData) -> u64 {
    use parquet::basic::Type;
    let width: u64 = match col.column_type() {
        Type::BOOLEAN => 1,
        Type::INT32 | Type::FLOAT | Type::BYTE_ARRAY => 4,
        Type::INT64 | Type::DOUBLE => 8,
        Type::INT96 => 12,
        Type::FIXED_LEN_BYTE_ARRAY => col.column_descr().type_length().max(1) as u64,
    };
    let values = (col.num_values().max(0) as u64).saturating_mul(width);
    (col.uncompressed_size().max(0) as u64).max(values)
}

/// One row group of the plan and how to decode it with the parquet crate's decoders.
struct RowGroup {
    name: Arc<str>,
    metadata: Arc<ArrowReaderMetadata>,
    levels: Arc<FieldLevels>,
    reorder: Option<Vec<usize>>,
    batch_size: usize,
    row_group: usize,
    /// The plan row this row group starts at: batches break at multiples of `batch_size`
    /// counted from row 0 of the plan.
    first_row: u64,
    /// The rows in the row group.
    rows: u64,
    /// Decoded bytes per piece (see [`ParquetScanPlan::piece_bytes`]).
    piece_bytes: usize,
    /// Set when this row group is decoded by [`crate::flat`].
    flat: Option<Arc<FlatColumns>>,
}

/// The projected columns, when every one is a flat fixed-width column [`crate::flat`]
/// decodes: (leaf index, kind, nullable) in file order, and the schema of their batches.
struct FlatColumns {
    columns: Vec<(usize, Kind, bool)>,
    schema: SchemaRef,
}

impl FlatColumns {
    fn of(md: &ArrowReaderMetadata, mask: &ProjectionMask) -> Option<Self> {
        let descr = md.parquet_schema();
        let arrow = md.schema();
        let mut columns = Vec::new();
        let mut roots = Vec::new();
        for (i, c) in descr.columns().iter().enumerate() {
            if !mask.leaf_included(i) {
                continue;
            }
            let root = descr.get_column_root_idx(i);
            // A list's repeated level is the group under the root, not the root itself.
            if descr.get_column_root(i).get_basic_info().repetition()
                == parquet::basic::Repetition::REPEATED
            {
                return None;
            }
            let field = arrow.fields().get(root)?;
            let kind = Kind::of(c, field.data_type())?;
            columns.push((i, kind, c.max_def_level() == 1));
            roots.push(root);
        }
        if columns.is_empty() {
            return None;
        }
        let schema = Arc::new(arrow.project(&roots).ok()?);
        Some(Self { columns, schema })
    }
}

/// Batches of some rows of a row group, from the parquet crate's reader or [`FlatReader`].
type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>;

/// Decodes one row group from its fetched column chunks, whole or in parts.
struct ParquetRowGroupDecoder {
    group: RowGroup,
    file_bytes: u64,
    /// Rows per part: each cut is the first multiple of `batch_size` (counted from row 0 of
    /// the plan) at least this many rows past the one before.
    part_rows: u64,
    ranges: Vec<std::ops::Range<u64>>,
    pages: Arc<PageCounts>,
    /// Set when the row group is read a window at a time rather than fetched.
    streamed: Option<Streamed>,
}

/// What the parts of one row group share: the row group, its fetched bytes and the pages more
/// than one of their readers decode.
struct RowGroupBytes {
    group: RowGroup,
    fetched: Arc<Fetched>,
    pages: Arc<SharedPages>,
    streamed: Option<Streamed>,
}

impl RowGroup {
    /// How plan rows `rows` of the row group are read: the rows up to the next multiple of the
    /// batch size (counted from row 0 of the plan) by a reader of their own, so that batches
    /// break at those multiples, then the rest. Returns the two lengths (either may be 0).
    fn reader_rows(&self, rows: &std::ops::Range<u64>) -> (u64, u64) {
        let bs = self.batch_size as u64;
        let len = rows.end - rows.start;
        let head = ((bs - rows.start % bs) % bs).min(len);
        (head, len - head)
    }
}

impl RowGroupBytes {
    /// Readers for the plan rows `rows` of the row group, in order (see
    /// [`RowGroup::reader_rows`]).
    fn readers(&self, rows: std::ops::Range<u64>) -> Result<VecDeque<Batches>> {
        let g = &self.group;
        let skip = rows.start - g.first_row;
        let (head, rest) = g.reader_rows(&rows);
        // A reader's pages, knowing which rows of the row group it decodes.
        let row_group = |rows: std::ops::Range<u64>| SharedRowGroup {
            reader: self.fetched.clone(),
            metadata: g.metadata.metadata().clone(),
            row_group: g.row_group,
            shared: self.pages.clone(),
            rows: Some(rows),
            streamed: self.streamed.clone(),
        };
        if let Some(flat) = &g.flat {
            let row_group = row_group(skip..skip + head + rest);
            let columns = flat
                .columns
                .iter()
                .map(|&(leaf, kind, nullable)| {
                    let pages = row_group
                        .page_reader(leaf)
                        .map_err(|e| Error::external(&*g.name, e))?;
                    Ok((pages, kind, nullable))
                })
                .collect::<Result<Vec<_>>>()?;
            let reader = FlatReader::new(
                flat.schema.clone(),
                columns,
                skip as usize,
                head as usize,
                rest as usize,
                g.batch_size,
            );
            return Ok(VecDeque::from([Box::new(reader) as Batches]));
        }
        let reader = |batch_size: u64, skip: u64, select: u64| {
            let mut selection = None;
            if skip > 0 || select != g.rows {
                let mut s = Vec::with_capacity(2);
                if skip > 0 {
                    s.push(RowSelector::skip(skip as usize));
                }
                s.push(RowSelector::select(select as usize));
                selection = Some(RowSelection::from(s));
            }
            ParquetRecordBatchReader::try_new_with_row_groups(
                &g.levels,
                &row_group(skip..skip + select),
                batch_size.clamp(1, g.rows.max(1)) as usize,
                selection,
            )
            .map(|r| Box::new(r) as Batches)
            .map_err(|e| Error::external(&*g.name, e))
        };
        let mut readers = VecDeque::with_capacity(2);
        if head > 0 {
            readers.push_back(reader(head, skip, head)?);
        }
        if rest > 0 {
            readers.push_back(reader(g.batch_size as u64, skip + head, rest)?);
        }
        Ok(readers)
    }
}

/// Decodes plan rows of one row group a piece at a time (see
/// [`ParquetScanPlan::piece_bytes`]).
struct PartReader {
    rg: Arc<RowGroupBytes>,
    rows: std::ops::Range<u64>,
    /// Built on the first call, on the decode thread.
    readers: Option<VecDeque<Batches>>,
    /// Rows not decoded yet.
    left: u64,
}

impl PartDecoder for PartReader {
    fn decode(mut self: Box<Self>) -> Result<PartDecoded> {
        let rg = self.rg.clone();
        let g = &rg.group;
        let out = no_panic(&*g.name, "the decoder", || {
            let readers = match &mut self.readers {
                Some(r) => r,
                None => self.readers.insert(rg.readers(self.rows.clone())?),
            };
            let (mut out, mut bytes) = (Vec::new(), 0);
            // At least one batch per piece, however small the piece size.
            while out.is_empty() || bytes < g.piece_bytes {
                let Some(reader) = readers.front_mut() else {
                    break;
                };
                let Some(b) = reader.next() else {
                    readers.pop_front();
                    continue;
                };
                let b = b.map_err(|e| Error::arrow_at(&*g.name, e))?;
                let b = match &g.reorder {
                    Some(p) => b.project(p)?,
                    None => b,
                };
                bytes += batch_memory_size(&b);
                self.left = self.left.saturating_sub(b.num_rows() as u64);
                out.push(b);
            }
            Ok(out)
        })
        .map_err(|e| {
            // A read of a streamed chunk failed: its error as the source gave it, not as the
            // parquet crate's reader wrapped it.
            let kept = rg.streamed.as_ref().and_then(|s| s.from.take_error());
            kept.unwrap_or(e)
        })?;
        Ok(if self.left == 0 {
            PartDecoded::Done(out)
        } else {
            PartDecoded::More(out, self)
        })
    }
}

impl TaskDecoder for ParquetRowGroupDecoder {
    fn decode(self: Box<Self>, bytes: Vec<Bytes>) -> Result<Decoded> {
        if bytes.len() != self.ranges.len() {
            return Err(Error::invalid_argument(format!(
                "{}: the decoder got {} ranges, asked for {}",
                self.group.name,
                bytes.len(),
                self.ranges.len()
            )));
        }
        let (start, end) = (self.group.first_row, self.group.first_row + self.group.rows);
        let bs = self.group.batch_size as u64;
        let mut cuts = vec![start];
        loop {
            let last = cuts[cuts.len() - 1];
            let at = last
                .saturating_add(self.part_rows.max(1))
                .div_ceil(bs)
                .saturating_mul(bs);
            if at >= end {
                break;
            }
            cuts.push(at);
        }
        cuts.push(end);
        // Where the readers of all parts start and end, so that a page on either side of one
        // is decompressed once.
        let mut reader_cuts = vec![0];
        for w in cuts.windows(2) {
            let (head, rest) = self.group.reader_rows(&(w[0]..w[1]));
            // The flat decoder reads a part's head and rest with one reader.
            if self.group.flat.is_none() {
                reader_cuts.push(w[0] + head - start);
            }
            reader_cuts.push(w[0] + head + rest - start);
        }
        let rg = Arc::new(RowGroupBytes {
            fetched: Arc::new(Fetched {
                len: self.file_bytes,
                parts: self.ranges.iter().map(|r| r.start).zip(bytes).collect(),
            }),
            pages: Arc::new(SharedPages::new(reader_cuts, self.pages)),
            group: self.group,
            streamed: self.streamed,
        });
        // A row group that is not split is one part, so that it too is decoded a piece at a
        // time.
        let parts = cuts
            .windows(2)
            .map(|w| DecodePart {
                rows: w[0]..w[1],
                decoder: Box::new(PartReader {
                    rg: rg.clone(),
                    rows: w[0]..w[1],
                    readers: None,
                    left: w[1] - w[0],
                }),
            })
            .collect();
        Ok(Decoded::Parts(parts))
    }
}

mod fetched;
#[cfg(test)]
mod tests;
