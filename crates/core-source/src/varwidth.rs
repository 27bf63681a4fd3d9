//! Our decoders for the columns of ML-shaped files that are not fixed-width: BYTE_ARRAY
//! columns read as Binary or Utf8 (required or optional, not repeated) and lists of INT32 (the
//! three-level LIST layout, list and element each required or optional), PLAIN or dictionary
//! encoded, v1 or v2 data pages.
//!
//! Each batch is built in two passes. The first walks the levels (and, for byte arrays, the
//! values' length prefixes or dictionary indices) and learns the batch's offsets, validity and
//! how many value bytes it holds; the second copies the values into a buffer allocated once, at
//! its exact size. The parquet crate's record readers instead grow their buffers page by page,
//! doubling and copying as they go: more copies, and freed buffers of every size that the
//! allocator keeps. Pages come from the same page readers as [`crate::flat`]'s, so parts of a
//! row group share them.
//!
//! Every length, level and index read from a page is checked: a damaged page is an error.

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int32Array, ListArray, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::FieldRef;
use bytes::Bytes;
use parquet::column::page::PageReader;

use crate::flat::{
    FlatPages, Hybrid, Res, Skipped, Validity, Values, dictionary, next_data_page, skip_whole_page,
};
use crate::levels;
use crate::pages::ColumnPages;

/// The 4-byte little-endian length at `pos` of a PLAIN byte-array stream.
fn length_at(buf: &[u8], pos: usize) -> Res<usize> {
    let b = buf
        .get(pos..pos.saturating_add(4))
        .ok_or("a page has fewer values than levels")?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The end of the PLAIN value whose length prefix is at `pos`; an error if it runs past `buf`.
fn value_end(buf: &[u8], pos: usize) -> Res<usize> {
    let len = length_at(buf, pos)?;
    (pos + 4)
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| "a value runs past the end of its page".to_string())
}

/// A byte-array dictionary: its page and each value's (start, length) in it.
struct ByteDict {
    data: Bytes,
    spans: Vec<(u32, u32)>,
}

impl ByteDict {
    fn new(buf: &Bytes, num_values: u32) -> Res<Self> {
        let n = num_values as usize;
        // Each value has a 4-byte prefix: a count the page cannot hold is refused before any
        // allocation it would size.
        if n > buf.len() / 4 || u32::try_from(buf.len()).is_err() {
            return Err(format!(
                "a dictionary page of {} bytes cannot hold {n} values",
                buf.len()
            ));
        }
        let mut spans = Vec::with_capacity(n);
        let mut pos = 0;
        for _ in 0..n {
            let end = value_end(buf, pos)?;
            spans.push(((pos + 4) as u32, (end - pos - 4) as u32));
            pos = end;
        }
        Ok(Self {
            data: buf.clone(),
            spans,
        })
    }
}

/// Where some of a batch's byte-array values are, found in the first pass.
enum Run {
    /// PLAIN values between these positions of a page.
    Plain {
        buf: Bytes,
        start: usize,
        end: usize,
    },
    /// Values of `dict` at `picked[from..to]`.
    Dict {
        dict: Arc<ByteDict>,
        from: usize,
        to: usize,
    },
}

/// One BYTE_ARRAY column of one row group, read batch by batch as Binary or Utf8.
pub(crate) struct ByteColumn {
    cur: FlatPages<Arc<ByteDict>>,
    utf8: bool,
}

impl ByteColumn {
    pub(crate) fn new(pages: Box<dyn PageReader>, nullable: bool, utf8: bool) -> Self {
        Self {
            cur: FlatPages::new(pages, nullable, |b, n| ByteDict::new(b, n).map(Arc::new)),
            utf8,
        }
    }

    pub(crate) fn skip(&mut self, rows: usize) -> Res<()> {
        self.cur.skip(rows, |values, valid| match values {
            Values::Plain { buf, pos } => {
                for _ in 0..valid {
                    *pos = value_end(buf, *pos)?;
                }
                Ok(())
            }
            Values::Dict(h) => h.skip(valid),
            Values::None => Err("no page".into()),
        })
    }

    /// The next `rows` rows.
    pub(crate) fn read(&mut self, rows: usize) -> Res<ArrayRef> {
        let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
        offsets.push(0);
        let mut nulls = self.cur.nullable.then(|| Validity::new(rows));
        let (mut runs, mut picked, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
        let (mut total, mut left) = (0usize, rows);
        // First pass: where the values are, their lengths, the offsets.
        while left > 0 {
            if self.cur.left == 0 {
                self.cur.next_page()?;
            }
            let k = self.cur.left.min(left);
            let before = rows - left;
            let valid = self.cur.levels(k, nulls.as_mut())?;
            let first = lengths.len();
            match &mut self.cur.values {
                Values::Plain { buf, pos } => {
                    let start = *pos;
                    for _ in 0..valid {
                        let end = value_end(buf, *pos)?;
                        lengths.push((end - *pos - 4) as u32);
                        *pos = end;
                    }
                    runs.push(Run::Plain {
                        buf: buf.clone(),
                        start,
                        end: *pos,
                    });
                }
                Values::Dict(h) => {
                    let dict = self.cur.dict.as_ref().ok_or("no dictionary")?;
                    let from = picked.len();
                    h.gather(valid, &dict.spans, &mut picked)?;
                    lengths.extend(picked[from..].iter().map(|&(_, len)| len));
                    runs.push(Run::Dict {
                        dict: dict.clone(),
                        from,
                        to: picked.len(),
                    });
                }
                Values::None => return Err("no page".into()),
            }
            let mut it = lengths[first..].iter();
            for r in 0..k {
                if nulls.as_ref().is_none_or(|n| n.get(before + r)) {
                    total += *it.next().ok_or("fewer values than valid levels")? as usize;
                }
                offsets.push(i32::try_from(total).map_err(|_| "a batch of over 2 GiB of values")?);
            }
            self.cur.left -= k;
            left -= k;
        }
        // Second pass: the values, copied once into a buffer of their size.
        let mut values: Vec<u8> = Vec::with_capacity(total);
        for run in &runs {
            match run {
                Run::Plain { buf, start, end } => {
                    let mut pos = *start;
                    while pos < *end {
                        let next = value_end(buf, pos)?;
                        values.extend_from_slice(&buf[pos + 4..next]);
                        pos = next;
                    }
                }
                Run::Dict { dict, from, to } => {
                    for &(s, len) in &picked[*from..*to] {
                        let s = s as usize;
                        values.extend_from_slice(&dict.data[s..s + len as usize]);
                    }
                }
            }
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let values = Buffer::from_vec(values);
        let nulls = nulls.and_then(Validity::finish);
        // `try_new` checks the offsets and, for Utf8, that every value is UTF-8.
        Ok(if self.utf8 {
            Arc::new(StringArray::try_new(offsets, values, nulls).map_err(|e| e.to_string())?)
        } else {
            Arc::new(BinaryArray::try_new(offsets, values, nulls).map_err(|e| e.to_string())?)
        })
    }
}

/// Levels decoded at a time from a page (bounds the level buffers whatever a page claims).
const LEVELS_AT_ONCE: usize = 4096;

/// One list<int32> column of one row group (three-level LIST), read batch by batch.
pub(crate) struct ListColumn {
    pages: Box<dyn ColumnPages>,
    /// The element field of the list type.
    item: FieldRef,
    list_nullable: bool,
    max_def: u8,
    dict: Option<ScalarBuffer<i32>>,
    /// The current page's level readers, the levels left in it, and decoded levels with the
    /// next one to use.
    rep_in: Option<Hybrid>,
    def_in: Option<Hybrid>,
    page_left: usize,
    rep: Vec<u8>,
    def: Vec<u8>,
    at: usize,
    /// The current page's values, and how many of them the batch being read takes.
    values: Values,
    taking: usize,
}

/// The offsets and validity of a batch being read.
struct ListOut {
    offsets: Vec<i32>,
    lists: Option<Validity>,
    elements: Validity,
    /// Element slots so far.
    slots: usize,
}

impl ListColumn {
    pub(crate) fn new(
        pages: Box<dyn ColumnPages>,
        item: FieldRef,
        list_nullable: bool,
        elem_nullable: bool,
    ) -> Self {
        Self {
            pages,
            item,
            list_nullable,
            max_def: u8::from(list_nullable) + 1 + u8::from(elem_nullable),
            dict: None,
            rep_in: None,
            def_in: None,
            page_left: 0,
            rep: Vec::new(),
            def: Vec::new(),
            at: 0,
            values: Values::None,
            taking: 0,
        }
    }

    /// The definition level at or above which a level is an element (of a list that is
    /// neither null nor empty).
    fn element_def(&self) -> u8 {
        u8::from(self.list_nullable) + 1
    }

    /// Makes the next level available in `rep`/`def` at `at`, moving to the next page when
    /// this one is done (the finished page's values go to `finished`). False at the end of
    /// the column chunk.
    fn fill(&mut self, mut finished: Option<&mut Vec<(Values, usize)>>) -> Res<bool> {
        if self.at < self.rep.len() {
            return Ok(true);
        }
        // A loop, not recursion: a damaged chunk may hold any number of empty pages.
        while self.page_left == 0 {
            let mut dict = None;
            let def_width = crate::flat::level_width(i16::from(self.max_def));
            let page = next_data_page(self.pages.as_mut(), 1, def_width, |b, n| {
                dict = Some(dictionary::<i32>(b, n)?);
                Ok(())
            })?;
            if dict.is_some() {
                self.dict = dict;
            }
            let Some(page) = page else {
                return Ok(false);
            };
            let values = Values::of(page.encoding, page.body, self.dict.is_some())?;
            let old = std::mem::replace(&mut self.values, values);
            let taken = std::mem::take(&mut self.taking);
            if let Some(f) = finished.as_deref_mut().filter(|_| taken > 0) {
                f.push((old, taken));
            }
            self.rep_in = page.rep;
            self.def_in = page.def;
            self.page_left = page.num_values;
        }
        let n = self.page_left.min(LEVELS_AT_ONCE);
        let (rep_in, def_in) = match (self.rep_in.as_mut(), self.def_in.as_mut()) {
            (Some(r), Some(d)) => (r, d),
            _ => return Err("a list page without levels".into()),
        };
        self.rep.clear();
        self.def.clear();
        rep_in.levels_into(n, 1, &mut self.rep)?;
        def_in.levels_into(n, self.max_def, &mut self.def)?;
        self.page_left -= n;
        self.at = 0;
        Ok(true)
    }

    /// Passes levels until `rows` rows have started and the next one starts (or the chunk
    /// ends), counting the values the batch takes. With `out`, also builds the batch's
    /// offsets and validity. With `continues`, the levels may open with the rest of a row
    /// skipped before them (pages passed whole by [`Self::skip`]), passed with it.
    fn walk(
        &mut self,
        rows: usize,
        finished: &mut Vec<(Values, usize)>,
        mut out: Option<&mut ListOut>,
        continues: bool,
    ) -> Res<()> {
        let (element, max) = (self.element_def(), self.max_def);
        let mut rows_left = rows;
        let mut first = !continues;
        loop {
            if !self.fill(Some(finished))? {
                if rows_left > 0 {
                    return Err("the column chunk ends before the row group's rows".into());
                }
                return Ok(());
            }
            let (rep, def) = (&self.rep[self.at..], &self.def[self.at..]);
            // Where the row after the batch's last starts, if it is among these levels.
            let (stop, seen) = match levels::nth_zero(rep, rows_left) {
                Ok(at) => (at, rows_left),
                Err(zeros) => (rep.len(), zeros),
            };
            rows_left -= seen;
            let found = stop < rep.len();
            if first && stop > 0 && rep[0] != 0 {
                return Err("a list's levels continue a row that did not start".into());
            }
            first = false;
            let (rep, def) = (&rep[..stop], &def[..stop]);
            // A level that continues a row is an element: a null or empty list has one level.
            let mut bad = false;
            let mut valid = 0;
            match out.as_deref_mut() {
                // Every level a valid element (lists of numbers without nulls or empty lists):
                // the offsets are where rows start.
                Some(o) if levels::all_are(def, max) => {
                    let before = o.offsets.len();
                    let (offsets, slots) = (&mut o.offsets, o.slots);
                    levels::each_zero(rep, |i| offsets.push((slots + i) as i32));
                    if let Some(l) = o.lists.as_mut() {
                        l.push(true, o.offsets.len() - before);
                    }
                    o.elements.push(true, stop);
                    o.slots += stop;
                    valid = stop;
                }
                Some(o) => {
                    let (mut slots, mut null_elements) = (o.slots, false);
                    for (&r, &d) in rep.iter().zip(def) {
                        if r == 0 {
                            o.offsets.push(slots as i32);
                            if let Some(l) = o.lists.as_mut() {
                                l.push(d > 0, 1);
                            }
                        }
                        bad |= r != 0 && d < element;
                        slots += usize::from(d >= element);
                        null_elements |= d >= element && d != max;
                        valid += usize::from(d == max);
                    }
                    if null_elements {
                        for &d in def.iter().filter(|&&d| d >= element) {
                            o.elements.push(d == max, 1);
                        }
                    } else {
                        o.elements.push(true, slots - o.slots);
                    }
                    o.slots = slots;
                }
                None => (valid, bad) = levels::count_valid(rep, def, element, max),
            }
            if bad {
                return Err("a null or empty list has more than one level".into());
            }
            self.taking += valid;
            self.at += stop;
            if found {
                return Ok(());
            }
        }
    }

    pub(crate) fn skip(&mut self, rows: usize) -> Res<()> {
        let mut rows = rows;
        // The rows passed so far may continue into the next page (only a v1 page can end
        // inside a row).
        let mut continues = false;
        // Whole pages are passed unread while the page at hand is done: v2 pages (which start
        // at a row and say how many rows they hold), and v1 pages whose rows, counted from
        // their repetition levels alone, are all to be skipped.
        while rows > 0 && self.at == self.rep.len() && self.page_left == 0 {
            let mut dict = None;
            let skipped = skip_whole_page(self.pages.as_mut(), rows, false, |b, n| {
                dict = Some(dictionary::<i32>(b, n)?);
                Ok(())
            })?;
            match skipped {
                Skipped::Rows(n) => {
                    rows -= n;
                    continues = false;
                    continue;
                }
                Skipped::Dictionary => {
                    self.dict = dict;
                    continue;
                }
                Skipped::Nothing => {}
            }
            match self.pages.row_starts(1).map_err(|e| e.to_string())? {
                // A page that continues a row not being skipped is left to `walk` to refuse.
                Some(s) if s.rows <= rows && (s.opens || continues) => {
                    self.pages.skip_next_page().map_err(|e| e.to_string())?;
                    rows -= s.rows;
                    continues = true;
                }
                _ => break,
            }
        }
        if rows == 0 && !continues {
            return Ok(());
        }
        let mut finished = Vec::new();
        self.walk(rows, &mut finished, None, continues)?;
        for (mut values, n) in finished {
            values.skip(n, 4)?;
        }
        self.values.skip(std::mem::take(&mut self.taking), 4)?;
        Ok(())
    }

    /// The next `rows` rows.
    pub(crate) fn read(&mut self, rows: usize) -> Res<ArrayRef> {
        let mut out = ListOut {
            offsets: Vec::with_capacity(rows + 1),
            lists: self.list_nullable.then(|| Validity::new(rows)),
            elements: Validity::new(0),
            slots: 0,
        };
        let mut finished = Vec::new();
        self.walk(rows, &mut finished, Some(&mut out), false)?;
        let ListOut {
            mut offsets,
            lists,
            elements,
            slots,
        } = out;
        let slots = i32::try_from(slots).map_err(|_| "a batch of over 2^31 list elements")?;
        offsets.push(slots);
        // The values, into a buffer of their size: dense, then spread over the slots if some
        // elements are null.
        let dense_len = finished.iter().map(|(_, n)| n).sum::<usize>() + self.taking;
        let mut dense: Vec<i32> = Vec::with_capacity(dense_len);
        let dict = self.dict.as_deref();
        for (mut values, n) in finished {
            values.take(n, dict, &mut dense)?;
        }
        self.values
            .take(std::mem::take(&mut self.taking), dict, &mut dense)?;
        let element_nulls = elements.finish();
        let values = match &element_nulls {
            None => dense,
            Some(nulls) => {
                let mut out = Vec::with_capacity(slots as usize);
                let mut it = dense.iter();
                for valid in nulls.iter() {
                    out.push(if valid {
                        *it.next().ok_or("fewer values than valid levels")?
                    } else {
                        0
                    });
                }
                out
            }
        };
        let child = Int32Array::new(ScalarBuffer::from(values), element_nulls);
        let list = ListArray::try_new(
            self.item.clone(),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Arc::new(child),
            lists.and_then(Validity::finish),
        )
        .map_err(|e| e.to_string())?;
        Ok(Arc::new(list))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use parquet::basic::Encoding;
    use parquet::column::page::{Page, PageMetadata};
    use parquet::errors::Result as ParquetResult;
    use proptest::prelude::*;

    use super::*;
    use crate::pages::{RowStarts, v1_row_starts};

    /// v1 data pages in memory, counting their rows as `ChunkPages` does (from the levels).
    struct Pages {
        pages: VecDeque<Page>,
        counted: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Iterator for Pages {
        type Item = ParquetResult<Page>;
        fn next(&mut self) -> Option<Self::Item> {
            self.pages.pop_front().map(Ok)
        }
    }

    impl PageReader for Pages {
        fn get_next_page(&mut self) -> ParquetResult<Option<Page>> {
            Ok(self.pages.pop_front())
        }
        fn peek_next_page(&mut self) -> ParquetResult<Option<PageMetadata>> {
            Ok(self.pages.front().map(|p| PageMetadata {
                num_rows: None,
                num_levels: Some(p.num_values() as usize),
                is_dict: false,
            }))
        }
        fn skip_next_page(&mut self) -> ParquetResult<()> {
            self.pages.pop_front();
            Ok(())
        }
    }

    impl ColumnPages for Pages {
        fn row_starts(&mut self, rep_width: u32) -> ParquetResult<Option<RowStarts>> {
            let starts = match self.pages.front() {
                Some(Page::DataPage {
                    buf, num_values, ..
                }) => v1_row_starts(buf, rep_width, *num_values as usize),
                _ => None,
            };
            if starts.is_some() {
                self.counted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(starts)
        }
    }

    /// `levels` (of one bit each) RLE/bit-packed hybrid encoded: runs of eight or more equal
    /// levels as RLE runs, the rest in bit-packed groups of eight.
    fn hybrid(levels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let varint = |out: &mut Vec<u8>, mut v: usize| {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        };
        let mut i = 0;
        while i < levels.len() {
            let run = levels[i..].iter().take_while(|&&l| l == levels[i]).count();
            if run >= 8 {
                varint(&mut out, run << 1);
                out.push(levels[i]);
                i += run;
            } else {
                varint(&mut out, 1 << 1 | 1);
                let group = &levels[i..(i + 8).min(levels.len())];
                out.push(group.iter().enumerate().map(|(k, &l)| l << k).sum());
                i += 8;
            }
        }
        out
    }

    /// Rows of a required list of required INT32 as v1 pages cut at the levels `cuts`
    /// (anywhere, so a page may end inside a row and the next continue it).
    fn pages_of(rows: &[Vec<i32>], cuts: &[usize]) -> VecDeque<Page> {
        let mut levels: Vec<(u8, u8, Option<i32>)> = Vec::new();
        for row in rows {
            if row.is_empty() {
                levels.push((0, 0, None));
            }
            for (k, &v) in row.iter().enumerate() {
                levels.push((u8::from(k > 0), 1, Some(v)));
            }
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (levels.len() + 1)).collect();
        cuts.extend([0, levels.len()]);
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2)
            .map(|w| {
                let page = &levels[w[0]..w[1]];
                let mut buf = Vec::new();
                for section in [
                    hybrid(&page.iter().map(|l| l.0).collect::<Vec<_>>()),
                    hybrid(&page.iter().map(|l| l.1).collect::<Vec<_>>()),
                ] {
                    buf.extend((section.len() as u32).to_le_bytes());
                    buf.extend(section);
                }
                buf.extend(page.iter().filter_map(|l| l.2).flat_map(i32::to_le_bytes));
                Page::DataPage {
                    buf: buf.into(),
                    num_values: page.len() as u32,
                    encoding: Encoding::PLAIN,
                    def_level_encoding: Encoding::RLE,
                    rep_level_encoding: Encoding::RLE,
                    statistics: None,
                }
            })
            .collect()
    }

    fn list(rows: &[Vec<i32>]) -> ListArray {
        let item = Arc::new(arrow_schema::Field::new_list_field(
            arrow_schema::DataType::Int32,
            false,
        ));
        let values = Int32Array::from_iter_values(rows.iter().flatten().copied());
        let offsets = OffsetBuffer::from_lengths(rows.iter().map(Vec::len));
        ListArray::new(item, offsets, Arc::new(values), None)
    }

    proptest! {
        /// Skips and reads in any order over v1 pages that end anywhere, inside rows too, give
        /// the rows they pass over and ask for; whole pages skipped are passed by their levels.
        #[test]
        fn skips_pass_pages_that_end_inside_rows(
            rows in proptest::collection::vec(proptest::collection::vec(-9i32..9, 0..12), 1..80),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
            steps in proptest::collection::vec((any::<bool>(), 0usize..40), 1..20),
        ) {
            let item = Arc::new(arrow_schema::Field::new_list_field(
                arrow_schema::DataType::Int32,
                false,
            ));
            let pages = Pages { pages: pages_of(&rows, &cuts), counted: Default::default() };
            let mut column = ListColumn::new(Box::new(pages), item, false, false);
            let mut at = 0;
            for (read, n) in steps {
                let n = n.min(rows.len() - at);
                if read {
                    let got = column.read(n).expect("reads");
                    let got = got.as_any().downcast_ref::<ListArray>().expect("a list");
                    prop_assert_eq!(got, &list(&rows[at..at + n]));
                } else {
                    column.skip(n).expect("skips");
                }
                at += n;
            }
            let rest = column.read(rows.len() - at).expect("reads the rest");
            prop_assert_eq!(rest.as_any().downcast_ref::<ListArray>(), Some(&list(&rows[at..])));
        }
    }

    /// The levels alone carry the rows: a skip over many pages counts them without reading
    /// their values (here cut off in every page the skip passes whole, which reading would
    /// refuse).
    #[test]
    fn whole_pages_skipped_are_not_read() {
        let rows: Vec<Vec<i32>> = (0..200).map(|i| vec![i; (i % 5) as usize]).collect();
        let cuts: Vec<usize> = (0..80).map(|k| k * 7 + 3).collect();
        let mut pages = pages_of(&rows, &cuts);
        // The level where row 190 starts: pages that end by it are passed whole.
        let first: usize = rows[..190].iter().map(|r| r.len().max(1)).sum();
        let mut end = 0;
        let mut damaged = 0;
        for page in &mut pages {
            end += page.num_values() as usize;
            if let Page::DataPage { buf, .. } = page
                && end <= first
            {
                *buf = buf.slice(..buf.len() - 4);
                damaged += 1;
            }
        }
        assert!(damaged > 40, "{damaged}");
        let item = Arc::new(arrow_schema::Field::new_list_field(
            arrow_schema::DataType::Int32,
            false,
        ));
        let counted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pages = Pages {
            pages,
            counted: counted.clone(),
        };
        let mut column = ListColumn::new(Box::new(pages), item, false, false);
        column.skip(190).expect("skips by levels alone");
        let got = column.read(10).expect("reads");
        assert_eq!(
            got.as_any().downcast_ref::<ListArray>(),
            Some(&list(&rows[190..]))
        );
        assert!(counted.load(std::sync::atomic::Ordering::Relaxed) >= damaged);
    }

    #[test]
    fn hybrid_runs_count_zeros() {
        for levels in [
            vec![0u8; 20],
            vec![1; 20],
            (0..50).map(|i| u8::from(i % 3 == 0)).collect(),
        ] {
            let mut h = Hybrid::new(Bytes::from(hybrid(&levels)), 1).expect("hybrid");
            let zeros = levels.iter().filter(|&&l| l == 0).count();
            assert_eq!(h.zeros(levels.len(), 1).expect("counts"), zeros);
        }
    }
}
