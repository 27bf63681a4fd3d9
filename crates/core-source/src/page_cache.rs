//! Pages of one Parquet row group shared by the readers that decode it in parts, so that a
//! page two parts both need is decompressed once: the cache policy, apart from how pages are
//! cut and decompressed (`pages.rs`).
//!
//! When the scan plan splits a row group into parts (and a part into a reader for the rows up
//! to the next batch boundary and one for the rest), each reader runs the parquet crate's
//! column readers over the same fetched bytes. The data page in which one reader stops and the
//! next starts, and every dictionary page, would otherwise be decompressed by each of them: on
//! `tpch.parquet` (1 MiB pages, row groups in halves) that was a quarter more snappy work than
//! one reader does. Here every reader's page reader sits behind a cache: a page whose rows
//! reach into another reader's rows is kept (as `Bytes`, no copy) until that reader takes it.
//! [`SharedRowGroup`] is the parquet crate's `RowGroups` over one row group's fetched bytes,
//! handing out those page readers.
//!
//! A data page's rows are known for columns without repetition (one value or null per row) and
//! for v2 pages (which state their rows); for the pages of a repeated column that follow a v1
//! page they are not, and those pages pass through uncached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use parquet::arrow::arrow_reader::RowGroups;
use parquet::basic::Compression;
use parquet::column::page::{Page, PageIterator, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result as ParquetResult};
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::reader::ChunkReader;
use parquet::file::serialized_reader::SerializedPageReader;

use crate::pages::{ChunkBytes, ChunkPages, ColumnPages, RowStarts, page_rows};
use crate::stream::{ChunkStream, Streamed};

/// Which page of a column chunk: its dictionary, or its `n`th data page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PageKey {
    Dictionary,
    Data(usize),
}

/// Pages read by a plan's readers: decompressed by them, or taken from another reader.
#[derive(Debug, Default)]
pub(crate) struct PageCounts {
    pub(crate) decompressed: AtomicU64,
    pub(crate) shared: AtomicU64,
    /// Snappy blocks our own page reader decompressed, and how many of them in pairs.
    pub(crate) snappy_blocks: AtomicU64,
    pub(crate) paired: AtomicU64,
    /// v1 pages of a repeated column whose rows were counted from their levels alone, by a
    /// reader skipping to its first row ([`crate::pages::ColumnPages::row_starts`]).
    pub(crate) by_levels: AtomicU64,
}

/// The pages of one row group that more than one reader needs, until each has taken them.
#[derive(Debug)]
pub(crate) struct SharedPages {
    /// Where the readers' rows meet, relative to the row group: sorted, from 0 to its rows.
    /// Reader `i` decodes rows `cuts[i]..cuts[i + 1]`.
    cuts: Vec<u64>,
    /// Decompressed pages, by column and page, with how many more readers will take them.
    cache: Mutex<HashMap<(usize, PageKey), (Page, usize)>>,
    /// The rows of v1 pages of repeated columns counted so far, by column and data page:
    /// each part skipping to its start passes the pages before it, and counts each once.
    starts: Mutex<HashMap<(usize, usize), RowStarts>>,
    counts: Arc<PageCounts>,
}

impl SharedPages {
    /// Pages shared by readers of the row-group rows between consecutive `cuts` (sorted
    /// boundaries from 0 to the row group's rows).
    pub(crate) fn new(mut cuts: Vec<u64>, counts: Arc<PageCounts>) -> Self {
        cuts.sort_unstable();
        cuts.dedup();
        Self {
            cuts,
            cache: Mutex::new(HashMap::new()),
            starts: Mutex::new(HashMap::new()),
            counts,
        }
    }

    /// How many readers besides the one that decoded it need a page of rows `rows`, or every
    /// other reader for a dictionary page (`None`).
    fn other_readers(&self, rows: Option<std::ops::Range<u64>>) -> usize {
        match rows {
            // Every cut strictly inside the page's rows starts another reader in it.
            Some(r) => self
                .cuts
                .iter()
                .filter(|&&c| r.start < c && c < r.end)
                .count(),
            None => self.cuts.len().saturating_sub(2),
        }
    }

    fn take(&self, column: usize, key: PageKey) -> Option<Page> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (page, left) = cache.get_mut(&(column, key))?;
        *left -= 1;
        let page = page.clone();
        if *left == 0 {
            cache.remove(&(column, key));
        }
        self.counts.shared.fetch_add(1, Ordering::Relaxed);
        Some(page)
    }

    /// Counts a page just decompressed, and keeps it for `readers` more readers.
    fn keep(&self, column: usize, key: PageKey, page: &Page, readers: usize) {
        self.counts.decompressed.fetch_add(1, Ordering::Relaxed);
        if readers > 0 {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert((column, key), (page.clone(), readers));
        }
    }

    /// Pages cached now (for tests).
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }
}

/// A column chunk's page reader that takes pages from, and leaves them in, [`SharedPages`].
struct SharingPageReader {
    inner: Box<dyn ColumnPages>,
    shared: Arc<SharedPages>,
    column: usize,
    /// Data pages passed so far (read or skipped).
    data_pages: usize,
    /// Rows of the data pages passed so far, while every page's rows have been known.
    rows_before: Option<u64>,
    /// The column has no repetition: a page's values (levels) are its rows.
    flat: bool,
    /// The column reader skipped the dictionary page and may ask for it later
    /// ([`PageReader::take_deferred_dictionary`]). Only then is it handed out: the column reader
    /// asks at every dictionary-encoded data page, and must get it once.
    deferred: bool,
}

impl SharingPageReader {
    /// The key and rows (row-group relative; `None` for a dictionary) of the next page.
    fn next_key(&mut self) -> ParquetResult<Option<(PageKey, Option<std::ops::Range<u64>>)>> {
        let Some(meta) = self.inner.peek_next_page()? else {
            return Ok(None);
        };
        Ok(Some(self.key_of(&meta)))
    }

    fn key_of(&self, meta: &PageMetadata) -> (PageKey, Option<std::ops::Range<u64>>) {
        if meta.is_dict {
            return (PageKey::Dictionary, None);
        }
        let rows = page_rows(meta, self.flat);
        let range = self
            .rows_before
            .zip(rows)
            .map(|(start, n)| start..start.saturating_add(n));
        (PageKey::Data(self.data_pages), range)
    }

    /// Moves past the page just read or skipped.
    fn advance(&mut self, key: PageKey, rows: Option<&std::ops::Range<u64>>) {
        if let PageKey::Data(_) = key {
            self.data_pages += 1;
            self.rows_before = rows.map(|r| r.end);
        }
    }
}

impl Iterator for SharingPageReader {
    type Item = ParquetResult<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl PageReader for SharingPageReader {
    fn get_next_page(&mut self) -> ParquetResult<Option<Page>> {
        let Some((key, rows)) = self.next_key()? else {
            return self.inner.get_next_page();
        };
        if let Some(page) = self.shared.take(self.column, key) {
            // Past the page unread. (A dictionary page skipped this way is deferred inside
            // `inner`, but never asked for: `deferred` stays false.)
            self.inner.skip_next_page()?;
            self.advance(key, rows.as_ref());
            return Ok(Some(page));
        }
        let page = self.inner.get_next_page()?;
        if let Some(page) = &page {
            // A data page of unknown rows may hold any reader's rows; none is kept.
            let others = match (key, &rows) {
                (PageKey::Dictionary, _) => self.shared.other_readers(None),
                (PageKey::Data(_), Some(r)) => self.shared.other_readers(Some(r.clone())),
                (PageKey::Data(_), None) => 0,
            };
            self.shared.keep(self.column, key, page, others);
        }
        self.advance(key, rows.as_ref());
        Ok(page)
    }

    fn peek_next_page(&mut self) -> ParquetResult<Option<PageMetadata>> {
        self.inner.peek_next_page()
    }

    fn skip_next_page(&mut self) -> ParquetResult<()> {
        if let Some((key, rows)) = self.next_key()? {
            self.deferred |= key == PageKey::Dictionary && self.supports_deferred_dictionary();
            self.advance(key, rows.as_ref());
        }
        self.inner.skip_next_page()
    }

    fn supports_deferred_dictionary(&self) -> bool {
        self.inner.supports_deferred_dictionary()
    }

    fn take_deferred_dictionary(&mut self) -> ParquetResult<Option<Page>> {
        if !std::mem::take(&mut self.deferred) {
            return Ok(None);
        }
        if let Some(page) = self.shared.take(self.column, PageKey::Dictionary) {
            return Ok(Some(page));
        }
        let page = self.inner.take_deferred_dictionary()?;
        if let Some(page) = &page {
            let others = self.shared.other_readers(None);
            self.shared
                .keep(self.column, PageKey::Dictionary, page, others);
        }
        Ok(page)
    }

    fn at_record_boundary(&mut self) -> ParquetResult<bool> {
        self.inner.at_record_boundary()
    }
}

impl ColumnPages for SharingPageReader {
    fn row_starts(&mut self, rep_width: u32) -> ParquetResult<Option<RowStarts>> {
        let Some((PageKey::Data(page), _)) = self.next_key()? else {
            return Ok(None);
        };
        let key = (self.column, page);
        let lock = || self.shared.starts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&s) = lock().get(&key) {
            return Ok(Some(s));
        }
        let starts = self.inner.row_starts(rep_width)?;
        if let Some(s) = starts {
            lock().insert(key, s);
        }
        Ok(starts)
    }
}

/// One row group of fetched bytes as the parquet crate's [`RowGroups`], its page readers
/// sharing pages through [`SharedPages`].
pub(crate) struct SharedRowGroup<R: ChunkReader> {
    pub(crate) reader: Arc<R>,
    pub(crate) metadata: Arc<ParquetMetaData>,
    pub(crate) row_group: usize,
    pub(crate) shared: Arc<SharedPages>,
    /// The rows of the row group its reader decodes, if known (see [`ChunkPages`]).
    pub(crate) rows: Option<std::ops::Range<u64>>,
    /// Set when the column chunks are not in `reader` but read from a source a window at a
    /// time ([`ChunkStream`]): the source and each leaf column's reach (`None` for columns
    /// not projected). Only uncompressed and snappy chunks can be.
    pub(crate) streamed: Option<Streamed>,
}

/// The one page reader of a column in a single row group.
struct OnePageReader(Option<Box<dyn ColumnPages>>);

impl Iterator for OnePageReader {
    type Item = ParquetResult<Box<dyn PageReader>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.take().map(|p| Ok(p as Box<dyn PageReader>))
    }
}

impl PageIterator for OnePageReader {}

impl<R: ChunkReader + 'static> SharedRowGroup<R> {
    /// The page reader of leaf column `i`: uncompressed and snappy chunks are read by
    /// `ChunkPages`, other codecs by the parquet crate's page reader; either way sharing pages
    /// with the row group's other readers.
    pub(crate) fn page_reader(&self, i: usize) -> ParquetResult<Box<dyn ColumnPages>> {
        let chunk = self.metadata.row_group(self.row_group).column(i);
        let descr = chunk.column_descr();
        let inner: Box<dyn ColumnPages> = match chunk.compression() {
            Compression::UNCOMPRESSED | Compression::SNAPPY => {
                let (start, len) = crate::parquet::chunk_range(chunk).ok_or_else(|| {
                    ParquetError::General("a column chunk with a negative offset or length".into())
                })?;
                let len = usize::try_from(len)
                    .map_err(|_| ParquetError::General(format!("column chunk of {len} bytes")))?;
                let reach =
                    (self.streamed.as_ref()).and_then(|s| Some((&s.from, (*s.reaches.get(i)?)?)));
                let bytes = match reach {
                    Some((from, reach)) => {
                        ChunkBytes::Streamed(ChunkStream::new(from.clone(), start, len, reach))
                    }
                    None => ChunkBytes::Whole(self.reader.get_bytes(start, len)?),
                };
                Box::new(ChunkPages::new(
                    bytes,
                    chunk.compression() == Compression::SNAPPY,
                    (descr.max_def_level() > 0, descr.max_rep_level() > 0),
                    self.rows.clone(),
                    self.shared.counts.clone(),
                ))
            }
            _ => {
                let locations = self
                    .metadata
                    .page_index()
                    .and_then(|p| p.page_locations(self.row_group, i).cloned());
                Box::new(SerializedPageReader::new(
                    self.reader.clone(),
                    chunk,
                    self.num_rows(),
                    locations,
                )?)
            }
        };
        Ok(Box::new(SharingPageReader {
            inner,
            shared: self.shared.clone(),
            column: i,
            data_pages: 0,
            rows_before: Some(0),
            flat: descr.max_rep_level() == 0,
            deferred: false,
        }))
    }
}

impl<R: ChunkReader + 'static> RowGroups for SharedRowGroup<R> {
    fn num_rows(&self) -> usize {
        self.metadata.row_group(self.row_group).num_rows().max(0) as usize
    }

    fn column_chunks(&self, i: usize) -> ParquetResult<Box<dyn PageIterator>> {
        Ok(Box::new(OnePageReader(Some(self.page_reader(i)?))))
    }

    fn row_groups(&self) -> Box<dyn Iterator<Item = &RowGroupMetaData> + '_> {
        Box::new(std::iter::once(self.metadata.row_group(self.row_group)))
    }

    fn metadata(&self) -> &ParquetMetaData {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_kept_for_each_other_reader_of_its_rows() {
        let s = SharedPages::new(vec![250, 0, 100, 400, 100], Arc::default());
        // Inside one reader's rows: no one else needs it.
        assert_eq!(s.other_readers(Some(0..100)), 0);
        assert_eq!(s.other_readers(Some(120..250)), 0);
        // Across one cut, two cuts.
        assert_eq!(s.other_readers(Some(90..110)), 1);
        assert_eq!(s.other_readers(Some(50..300)), 2);
        // A dictionary: every reader but this one.
        assert_eq!(s.other_readers(None), 2);
        let page = Page::DictionaryPage {
            buf: bytes::Bytes::from_static(b"abc"),
            num_values: 1,
            encoding: parquet::basic::Encoding::PLAIN,
            is_sorted: false,
        };
        s.keep(3, PageKey::Dictionary, &page, 2);
        assert!(s.take(3, PageKey::Dictionary).is_some());
        assert_eq!(s.cached(), 1);
        assert!(s.take(3, PageKey::Dictionary).is_some());
        assert_eq!(s.cached(), 0);
        assert!(s.take(3, PageKey::Dictionary).is_none());
        // Nobody else: not kept.
        s.keep(3, PageKey::Data(0), &page, 0);
        assert_eq!(s.cached(), 0);
        assert_eq!(s.counts.decompressed.load(Ordering::Relaxed), 2);
        assert_eq!(s.counts.shared.load(Ordering::Relaxed), 2);
    }
}
