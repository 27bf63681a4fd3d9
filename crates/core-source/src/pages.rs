//! The pages of a Parquet column chunk, cut and decompressed here: uncompressed and snappy
//! chunks are cut into pages ([`crate::page_header`]) and decompressed with [`crate::snappy`]
//! (`ChunkPages`); other codecs go through the parquet crate's `SerializedPageReader`. Which
//! pages are kept for other readers of the same row group is `page_cache.rs`'s concern.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use parquet::basic::Compression;
use parquet::column::page::{Page, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result as ParquetResult};

use crate::page_cache::PageCounts;
use crate::page_header::{PageHeader, PageKind, read_page_header};
use crate::snappy;
use crate::stream::ChunkStream;

/// The pages of an uncompressed or snappy column chunk, decompressed here ([`snappy`]) rather
/// than by the parquet crate: straight into fresh memory, with no zeroing first.
///
/// A snappy data page is decompressed together with the next one when the reader will read
/// both (their rows are known and the next one's reach into the reader's): two blocks decoded
/// together go ~1.4x as fast as one after the other ([`snappy::decompress_two_into`]).
pub(crate) struct ChunkPages {
    bytes: ChunkBytes,
    /// Where the next page header starts.
    pos: usize,
    snappy: bool,
    /// The column has definition levels, repetition levels.
    def: bool,
    rep: bool,
    /// The next page's header and its length, once peeked.
    next: Option<(PageHeader, usize)>,
    /// The rows of the row group the reader decodes, if known.
    wanted: Option<std::ops::Range<u64>>,
    /// Rows of the data pages taken so far, while every one's rows have been known.
    rows_before: Option<u64>,
    /// The page after the one last handed out, decompressed with it (or why not).
    ahead: Option<(PageHeader, ParquetResult<Bytes>)>,
    counts: Arc<PageCounts>,
}

/// Values are laid at this alignment in decompressed data pages (enough for every
/// fixed-width type), so that [`crate::flat`] can hand a page's values on without a copy.
const VALUES_ALIGN: usize = 8;

/// Where the values of a decompressed v1 data page start, if the snappy block's first element
/// shows it: 0 without levels, else 4 plus the levels' length, which a block starting with a
/// literal holds in its first bytes.
fn v1_values_at(block: &[u8], def: bool) -> Option<usize> {
    if !def {
        return Some(0);
    }
    let b = snappy::first_literal(block)?.get(..4)?;
    Some(4 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn corrupt(message: impl Into<String>) -> ParquetError {
    ParquetError::General(message.into())
}

/// The bytes of a column chunk: fetched whole, or read from its source a window at a time
/// ([`ChunkStream`]).
pub(crate) enum ChunkBytes {
    Whole(Bytes),
    Streamed(ChunkStream),
}

/// Bytes first asked for to read a page header from a streamed chunk; more when the header
/// (its statistics) is longer.
const HEADER_PROBE: usize = 1 << 10;

impl ChunkBytes {
    fn len(&self) -> usize {
        match self {
            Self::Whole(b) => b.len(),
            Self::Streamed(s) => s.len(),
        }
    }

    /// The page header at `pos` and its length.
    fn header(&mut self, pos: usize) -> ParquetResult<(PageHeader, usize)> {
        match self {
            Self::Whole(b) => read_page_header(&b[pos..]).map_err(corrupt),
            Self::Streamed(s) => {
                let mut probe = HEADER_PROBE;
                loop {
                    let rest = s.get(pos, probe)?;
                    match read_page_header(&rest) {
                        Ok(h) => {
                            s.saw_page(h.1 + h.0.compressed_size);
                            return Ok(h);
                        }
                        // Perhaps cut short: try again with more, up to the chunk's end.
                        Err(_) if pos + rest.len() < s.len() => probe *= 8,
                        Err(e) => return Err(corrupt(e)),
                    }
                }
            }
        }
    }

    fn slice(&mut self, range: std::ops::Range<usize>) -> ParquetResult<Bytes> {
        match self {
            Self::Whole(b) => Ok(b.slice(range)),
            Self::Streamed(s) => s.get(range.start, range.end - range.start),
        }
    }
}

impl ChunkPages {
    /// The pages of the column chunk `bytes` (snappy-compressed or not), of a column with
    /// definition levels (`def`) and repetition levels (`rep`), for a reader of the row-group
    /// rows `wanted` if known.
    pub(crate) fn new(
        bytes: ChunkBytes,
        snappy: bool,
        (def, rep): (bool, bool),
        wanted: Option<std::ops::Range<u64>>,
        counts: Arc<PageCounts>,
    ) -> Self {
        Self {
            bytes,
            pos: 0,
            snappy,
            def,
            rep,
            next: None,
            wanted,
            rows_before: Some(0),
            ahead: None,
            counts,
        }
    }

    /// The next page's header (its length in bytes beside it), skipping pages of kinds no
    /// reader needs.
    fn peek(&mut self) -> ParquetResult<Option<&(PageHeader, usize)>> {
        while self.next.is_none() {
            let left = self.bytes.len().saturating_sub(self.pos);
            if left == 0 {
                return Ok(None);
            }
            let (header, len) = self.bytes.header(self.pos)?;
            if left - len < header.compressed_size {
                return Err(corrupt(format!(
                    "a page of {} bytes runs past the end of its column chunk ({} bytes left)",
                    header.compressed_size,
                    left - len
                )));
            }
            if header.kind == PageKind::Other {
                self.pos += len + header.compressed_size;
            } else {
                self.next = Some((header, len));
            }
        }
        Ok(self.next.as_ref())
    }

    /// Moves past the next page, returning its header and its (compressed) body.
    fn take_page(&mut self) -> ParquetResult<Option<(PageHeader, Bytes)>> {
        if self.peek()?.is_none() {
            return Ok(None);
        }
        let Some((header, len)) = self.next.take() else {
            return Ok(None);
        };
        let start = self.pos + len;
        let end = start + header.compressed_size;
        self.pos = end;
        if !matches!(header.kind, PageKind::Dictionary { .. }) {
            self.rows_before = self
                .rows_before
                .zip(page_rows(&metadata(&header), !self.rep))
                .map(|(a, b)| a + b);
        }
        Ok(Some((header, self.bytes.slice(start..end)?)))
    }

    /// Takes the next page if the reader will read it (its rows reach into the reader's),
    /// unpacked for decompression.
    fn take_wanted_next(&mut self) -> Option<(PageHeader, ParquetResult<Unpacked>)> {
        // A streamed chunk's reader waits on its source, not on snappy: pairing would only
        // hold a second decompressed page and read further ahead.
        if matches!(self.bytes, ChunkBytes::Streamed(_)) {
            return None;
        }
        let (start, wanted) = self.rows_before.zip(self.wanted.clone())?;
        // An error in the next header is left for the reader to meet when it asks for it.
        let flat = !self.rep;
        let (header, _) = self.peek().ok()??;
        let rows = page_rows(&metadata(header), flat)?;
        if start >= wanted.end || start + rows <= wanted.start {
            return None;
        }
        let (header, body) = self.take_page().ok()??;
        let unpacked = self.unpack(&header, body);
        Some((header, unpacked))
    }

    /// The page's data as the parquet crate's decoders take it (levels of a v2 page as they
    /// are, the rest decompressed), or what it takes to decompress it.
    fn unpack(&self, header: &PageHeader, body: Bytes) -> ParquetResult<Unpacked> {
        let levels = match header.kind {
            PageKind::DataV2 {
                is_compressed: false,
                ..
            } => return Ok(Unpacked::Ready(body)),
            PageKind::DataV2 {
                def_levels_byte_len,
                rep_levels_byte_len,
                ..
            } => def_levels_byte_len as usize + rep_levels_byte_len as usize,
            _ => 0,
        };
        if !self.snappy {
            return Ok(Unpacked::Ready(body));
        }
        if levels > body.len() || levels > header.uncompressed_size {
            return Err(corrupt(format!(
                "a v2 page's levels ({levels} bytes) are longer than the page"
            )));
        }
        let values = header.uncompressed_size - levels;
        if values == 0 {
            // No non-null values: nothing was compressed.
            return Ok(Unpacked::Ready(body.slice(..levels)));
        }
        // Where the values will start, to put them at an aligned address.
        let values_at = match header.kind {
            PageKind::DataV1 { .. } if !self.rep => v1_values_at(&body, self.def),
            PageKind::DataV2 { .. } => Some(levels),
            PageKind::Dictionary { .. } => Some(0),
            _ => None,
        };
        let mut out = Vec::with_capacity(VALUES_ALIGN + header.uncompressed_size + 16);
        let pad = values_at.map_or(0, |at| {
            (VALUES_ALIGN - (out.as_ptr() as usize + at) % VALUES_ALIGN) % VALUES_ALIGN
        });
        out.resize(pad, 0);
        out.extend_from_slice(&body[..levels]);
        Ok(Unpacked::Snappy(Packed {
            out,
            pad,
            block: body.slice(levels..),
            values,
        }))
    }

    /// The page handed to the column reader, of its header and data.
    fn page(&self, header: PageHeader, buf: Bytes) -> ParquetResult<Page> {
        if !self.snappy && buf.len() != header.uncompressed_size {
            return Err(corrupt(format!(
                "an uncompressed page of {} bytes says it has {}",
                buf.len(),
                header.uncompressed_size
            )));
        }
        Ok(match header.kind {
            PageKind::Dictionary {
                num_values,
                encoding,
                is_sorted,
            } => Page::DictionaryPage {
                buf,
                num_values,
                encoding,
                is_sorted,
            },
            PageKind::DataV1 {
                num_values,
                encoding,
                def_level_encoding,
                rep_level_encoding,
            } => Page::DataPage {
                buf,
                num_values,
                encoding,
                def_level_encoding,
                rep_level_encoding,
                statistics: None,
            },
            PageKind::DataV2 {
                num_values,
                num_nulls,
                num_rows,
                encoding,
                def_levels_byte_len,
                rep_levels_byte_len,
                is_compressed,
            } => Page::DataPageV2 {
                buf,
                num_values,
                encoding,
                num_nulls,
                num_rows,
                def_levels_byte_len,
                rep_levels_byte_len,
                is_compressed,
                statistics: None,
            },
            PageKind::Other => {
                return Err(corrupt("internal error: an index page was not skipped"));
            }
        })
    }
}

/// A page as [`ChunkPages::unpack`] leaves it.
enum Unpacked {
    /// Its data, nothing to decompress.
    Ready(Bytes),
    Snappy(Packed),
}

impl Unpacked {
    fn decompress(self) -> ParquetResult<Bytes> {
        match self {
            Self::Ready(b) => Ok(b),
            Self::Snappy(p) => p.decompress(),
        }
    }
}

/// A snappy page's values block, and its output with any padding and levels in place.
struct Packed {
    out: Vec<u8>,
    /// Bytes of `out` before the page's data.
    pad: usize,
    block: Bytes,
    /// The decompressed length of `block`.
    values: usize,
}

impl Packed {
    fn decompress(mut self) -> ParquetResult<Bytes> {
        snappy::decompress_into(&self.block, self.values, &mut self.out)
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(self.into_data())
    }

    /// The page's data, once decompressed into `out`.
    fn into_data(self) -> Bytes {
        Bytes::from(self.out).slice(self.pad..)
    }

    /// Both pages, decompressed together; after an error, one at a time to say which failed.
    fn decompress_two(mut a: Self, mut b: Self) -> (ParquetResult<Bytes>, ParquetResult<Bytes>) {
        match snappy::decompress_two_into(
            (&a.block, a.values, &mut a.out),
            (&b.block, b.values, &mut b.out),
        ) {
            Ok(()) => (Ok(a.into_data()), Ok(b.into_data())),
            Err(_) => (a.decompress(), b.decompress()),
        }
    }
}

/// What a v1 data page's repetition levels say of its rows, read without its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowStarts {
    /// Rows that start in the page: its levels of 0.
    pub(crate) rows: usize,
    /// The page's first level starts a row; if not, it continues the row before the page.
    pub(crate) opens: bool,
}

/// A column chunk's page reader that can also count the rows of its next page when that is a
/// v1 data page of a repeated column, from the page's repetition levels alone: v1 pages do not
/// say their rows, and a reader skipping to a row past them would otherwise decompress them
/// and read all their levels. (The parquet crate's readers never see these counts: a v1 page
/// may end inside a row, which its `PageMetadata::num_rows` cannot say.)
pub(crate) trait ColumnPages: PageReader {
    /// The [`RowStarts`] of the next page, with repetition levels of `rep_width` bits; `None`
    /// when it is not a v1 data page, at the end of the chunk, when this reader cannot count
    /// them cheaply, or when its levels are damaged (left for the page's reader to find).
    fn row_starts(&mut self, rep_width: u32) -> ParquetResult<Option<RowStarts>> {
        let _ = rep_width;
        Ok(None)
    }
}

impl<R: parquet::file::reader::ChunkReader> ColumnPages
    for parquet::file::serialized_reader::SerializedPageReader<R>
{
}

/// The [`RowStarts`] of a v1 data page of `num_values` levels whose decompressed data begins
/// with `data` (its repetition levels' 4-byte length and at least those levels).
pub(crate) fn v1_row_starts(data: &Bytes, rep_width: u32, num_values: usize) -> Option<RowStarts> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let levels = data.get(4..4usize.checked_add(len)?)?;
    let mut rep = crate::flat::Hybrid::new(data.slice_ref(levels), rep_width).ok()?;
    let max = u8::try_from((1u32 << rep_width) - 1).ok()?;
    if num_values == 0 {
        return Some(RowStarts {
            rows: 0,
            opens: false,
        });
    }
    let opens = rep.zeros(1, max).ok()? == 1;
    let rest = rep.zeros(num_values - 1, max).ok()?;
    Some(RowStarts {
        rows: usize::from(opens) + rest,
        opens,
    })
}

impl ColumnPages for ChunkPages {
    fn row_starts(&mut self, rep_width: u32) -> ParquetResult<Option<RowStarts>> {
        if !self.rep {
            return Ok(None);
        }
        let v1 = |h: &PageHeader| match h.kind {
            PageKind::DataV1 {
                num_values,
                rep_level_encoding: parquet::basic::Encoding::RLE,
                ..
            } => Some(num_values as usize),
            _ => None,
        };
        if let Some((h, buf)) = &self.ahead {
            // Already decompressed, with the page before.
            return Ok(v1(h)
                .zip(buf.as_ref().ok())
                .and_then(|(n, b)| v1_row_starts(b, rep_width, n)));
        }
        let Some((header, len)) = self.peek()? else {
            return Ok(None);
        };
        let Some(num_values) = v1(header) else {
            return Ok(None);
        };
        let (size, compressed, len) = (header.uncompressed_size, header.compressed_size, *len);
        let start = self.pos + len;
        let body = self.bytes.slice(start..start + compressed)?;
        let data = if self.snappy {
            // The levels' length, then the levels: a few kilobytes of a page of values.
            let levels_len = snappy::decompress_prefix(&body, 4)
                .ok()
                .and_then(|h| Some(u32::from_le_bytes(h.get(..4)?.try_into().ok()?) as usize))
                .filter(|&l| l <= size.saturating_sub(4));
            let Some(prefix) =
                levels_len.and_then(|l| snappy::decompress_prefix(&body, 4 + l).ok())
            else {
                return Ok(None);
            };
            Bytes::from(prefix)
        } else {
            body
        };
        let starts = v1_row_starts(&data, rep_width, num_values);
        if starts.is_some() {
            self.counts.by_levels.fetch_add(1, Ordering::Relaxed);
        }
        Ok(starts)
    }
}

impl Iterator for ChunkPages {
    type Item = ParquetResult<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl PageReader for ChunkPages {
    fn get_next_page(&mut self) -> ParquetResult<Option<Page>> {
        if let Some((header, buf)) = self.ahead.take() {
            return buf.and_then(|b| self.page(header, b)).map(Some);
        }
        let Some((header, body)) = self.take_page()? else {
            return Ok(None);
        };
        let counts = self.counts.clone();
        let single = |p: Unpacked| {
            if let Unpacked::Snappy(_) = p {
                counts.snappy_blocks.fetch_add(1, Ordering::Relaxed);
            }
            p.decompress()
        };
        let buf = match self.unpack(&header, body)? {
            Unpacked::Snappy(this) => match self.take_wanted_next() {
                Some((next, Ok(Unpacked::Snappy(that)))) => {
                    counts.snappy_blocks.fetch_add(2, Ordering::Relaxed);
                    counts.paired.fetch_add(2, Ordering::Relaxed);
                    let (this, that) = Packed::decompress_two(this, that);
                    self.ahead = Some((next, that));
                    this?
                }
                Some((next, that)) => {
                    self.ahead = Some((next, that.and_then(single)));
                    single(Unpacked::Snappy(this))?
                }
                None => single(Unpacked::Snappy(this))?,
            },
            ready => single(ready)?,
        };
        self.page(header, buf).map(Some)
    }

    fn peek_next_page(&mut self) -> ParquetResult<Option<PageMetadata>> {
        if let Some((h, _)) = &self.ahead {
            return Ok(Some(metadata(h)));
        }
        Ok(self.peek()?.map(|(h, _)| metadata(h)))
    }

    fn skip_next_page(&mut self) -> ParquetResult<()> {
        if self.ahead.take().is_some() {
            return Ok(());
        }
        self.take_page().map(drop)
    }
}

/// The rows of a data page, if its metadata says: a v2 page states them, and a page of a
/// column without repetition (`flat`) has one value (or null) per row.
pub(crate) fn page_rows(meta: &PageMetadata, flat: bool) -> Option<u64> {
    meta.num_rows
        .or_else(|| flat.then_some(meta.num_levels).flatten())
        .map(|n| n as u64)
}

/// What the parquet crate's column readers see of a page before reading it.
fn metadata(h: &PageHeader) -> PageMetadata {
    match h.kind {
        PageKind::Dictionary { .. } | PageKind::Other => PageMetadata {
            num_rows: None,
            num_levels: None,
            is_dict: true,
        },
        PageKind::DataV1 { num_values, .. } => PageMetadata {
            num_rows: None,
            num_levels: Some(num_values as usize),
            is_dict: false,
        },
        PageKind::DataV2 {
            num_values,
            num_rows,
            ..
        } => PageMetadata {
            num_rows: Some(num_rows as usize),
            num_levels: Some(num_values as usize),
            is_dict: false,
        },
    }
}

/// Each snappy page of the Parquet file at `path`, for benchmarks: its compressed block and
/// decompressed length.
pub(crate) fn snappy_blocks(path: &std::path::Path) -> crate::Result<Vec<(Bytes, usize)>> {
    use arrowfeed_traits::Error;
    let data = Bytes::from(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&data)
        .map_err(|e| Error::external(path, e))?;
    let mut blocks = Vec::new();
    for chunk in metadata.row_groups().iter().flat_map(|g| g.columns()) {
        if chunk.compression() != Compression::SNAPPY {
            continue;
        }
        let Some((start, len)) = crate::parquet::chunk_range(chunk)
            .filter(|&(s, l)| s.checked_add(l).is_some_and(|e| e <= data.len() as u64))
        else {
            return Err(Error::corrupt(path, "a column chunk lies outside the file"));
        };
        let descr = chunk.column_descr();
        let mut pages = ChunkPages::new(
            ChunkBytes::Whole(data.slice(start as usize..(start + len) as usize)),
            true,
            (descr.max_def_level() > 0, descr.max_rep_level() > 0),
            None,
            Arc::default(),
        );
        while let Some((header, body)) = pages.take_page().map_err(|e| Error::external(path, e))? {
            if let Ok(Unpacked::Snappy(p)) = pages.unpack(&header, body) {
                blocks.push((p.block, p.values));
            }
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_cache::{SharedPages, SharedRowGroup};

    /// A Parquet file of one snappy INT64 column, 1,000 rows in PLAIN pages of 100.
    fn file() -> Bytes {
        let batch = arrow_array::RecordBatch::try_from_iter([(
            "x",
            Arc::new(arrow_array::Int64Array::from_iter_values(
                (0..1000).map(|i| i * 7919 % 5000),
            )) as _,
        )])
        .expect("batch");
        let props = parquet::file::properties::WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(100)
            .set_compression(Compression::SNAPPY)
            .build();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
            .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        Bytes::from(out)
    }

    /// The pages one reader of all rows reads from `data`, up to the first error, after
    /// changing the declared length of data page `damaged`'s snappy block; and how many were
    /// decompressed in pairs.
    fn read(data: &Bytes, damaged: Option<usize>) -> (Vec<ParquetResult<Bytes>>, u64) {
        let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(data)
            .expect("metadata");
        let mut bytes = data.to_vec();
        if let Some(k) = damaged {
            let (mut pos, _) = metadata.row_group(0).column(0).byte_range();
            for _ in 0..k {
                let (h, len) = read_page_header(&bytes[pos as usize..]).expect("header");
                pos += (len + h.compressed_size) as u64;
            }
            let (_, len) = read_page_header(&bytes[pos as usize..]).expect("header");
            // The block's first byte is its length varint: one more or less than the page's.
            bytes[pos as usize + len] ^= 1;
        }
        let counts = Arc::new(PageCounts::default());
        let group = SharedRowGroup {
            reader: Arc::new(Bytes::from(bytes)),
            metadata: Arc::new(metadata),
            row_group: 0,
            shared: Arc::new(SharedPages::new(vec![0, 1000], counts.clone())),
            rows: Some(0..1000),
            streamed: None,
        };
        let mut reader = group.page_reader(0).expect("page reader");
        let mut pages = Vec::new();
        loop {
            match reader.get_next_page() {
                Ok(Some(page)) => pages.push(Ok(page.buffer().clone())),
                Ok(None) => break,
                Err(e) => {
                    pages.push(Err(e));
                    break;
                }
            }
        }
        (pages, counts.paired.load(Ordering::Relaxed))
    }

    /// Pages decompressed in pairs are the pages decompressed alone; a damaged one is an error
    /// in its own turn, whichever of a pair it is, and the pages before it are whole.
    #[test]
    fn a_damaged_page_of_a_pair_fails_alone_in_its_turn() {
        let data = file();
        let (clean, paired) = read(&data, None);
        assert_eq!(clean.len(), 10);
        assert_eq!(paired, 10, "every page decompressed in a pair");
        let clean: Vec<Bytes> = clean.into_iter().map(|p| p.expect("clean")).collect();
        for k in 0..10 {
            let (pages, _) = read(&data, Some(k));
            assert_eq!(pages.len(), k + 1, "page {k} damaged");
            for (i, p) in pages.iter().enumerate().take(k) {
                assert_eq!(p.as_ref().expect("before the damage"), &clean[i]);
            }
            let e = pages[k].as_ref().expect_err("the damaged page");
            assert!(e.to_string().contains("snappy"), "{e}");
        }
    }
}
