//! Parquet page headers: the Thrift compact-protocol struct before each page of a column chunk,
//! read here so that [`crate::pages`] can decompress pages itself.
//!
//! Only the fields a reader needs are kept (type, sizes, value counts, encodings, the v2 level
//! lengths); statistics and unknown fields are skipped, as Thrift allows. Every read is checked:
//! a header that runs past its bytes, nests too deep or has a negative size is an error.

use parquet::basic::Encoding;

/// Nesting a header may have before it is taken for garbage (statistics are two levels deep).
const MAX_DEPTH: usize = 16;

/// What a page header says, for the page kinds a reader decodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageHeader {
    pub(crate) kind: PageKind,
    pub(crate) uncompressed_size: usize,
    pub(crate) compressed_size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PageKind {
    Dictionary {
        num_values: u32,
        encoding: Encoding,
        is_sorted: bool,
    },
    DataV1 {
        num_values: u32,
        encoding: Encoding,
        def_level_encoding: Encoding,
        rep_level_encoding: Encoding,
    },
    DataV2 {
        num_values: u32,
        num_nulls: u32,
        num_rows: u32,
        encoding: Encoding,
        def_levels_byte_len: u32,
        rep_levels_byte_len: u32,
        is_compressed: bool,
    },
    /// An index page or a kind this reader does not know: skipped.
    Other,
}

/// A Thrift compact-protocol reader over a byte slice.
struct Compact<'a> {
    buf: &'a [u8],
    pos: usize,
}

type Res<T> = std::result::Result<T, String>;

impl Compact<'_> {
    fn byte(&mut self) -> Res<u8> {
        let b = *self.buf.get(self.pos).ok_or("the page header is cut off")?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint in the page header is too long".into())
    }

    fn zigzag(&mut self) -> Res<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i32(&mut self) -> Res<i32> {
        i32::try_from(self.zigzag()?)
            .map_err(|_| "an i32 in the page header is out of range".into())
    }

    fn skip_bytes(&mut self, n: u64) -> Res<()> {
        let n = usize::try_from(n).map_err(|_| "a length in the page header is too large")?;
        if self.buf.len() - self.pos < n {
            return Err("the page header is cut off".into());
        }
        self.pos += n;
        Ok(())
    }

    /// The next field's (id, type) in a struct whose last field id was `last`, or `None` at
    /// its end.
    fn field(&mut self, last: i16) -> Res<Option<(i16, u8)>> {
        let b = self.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let delta = (b >> 4) as i16;
        let id = if delta == 0 {
            i16::try_from(self.zigzag()?)
                .map_err(|_| "a field id in the page header is out of range")?
        } else {
            last.saturating_add(delta)
        };
        Ok(Some((id, b & 0x0f)))
    }

    /// Skips a value of compact type `t`.
    fn skip(&mut self, t: u8, depth: usize) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err("the page header nests too deep".into());
        }
        match t {
            1 | 2 => Ok(()),
            3 => self.byte().map(drop),
            4..=6 => self.varint().map(drop),
            7 => self.skip_bytes(8),
            8 => {
                let n = self.varint()?;
                self.skip_bytes(n)
            }
            9 | 10 => {
                let h = self.byte()?;
                let n = match h >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                let et = h & 0x0f;
                for _ in 0..n {
                    // Booleans in a list take a byte each.
                    if et == 1 || et == 2 {
                        self.byte()?;
                    } else {
                        self.skip(et, depth + 1)?;
                    }
                }
                Ok(())
            }
            11 => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let kv = self.byte()?;
                for _ in 0..n {
                    self.skip(kv >> 4, depth + 1)?;
                    self.skip(kv & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            12 => self.skip_struct(depth + 1),
            _ => Err(format!("unknown Thrift type {t} in the page header")),
        }
    }

    fn skip_struct(&mut self, depth: usize) -> Res<()> {
        let mut last = 0;
        while let Some((id, t)) = self.field(last)? {
            self.skip(t, depth)?;
            last = id;
        }
        Ok(())
    }

    /// Reads a struct of i32 and bool fields into `ints` / `bools` by field id (others are
    /// skipped).
    fn small_struct(&mut self, ints: &mut [Option<i32>], bools: &mut [Option<bool>]) -> Res<()> {
        let mut last = 0;
        while let Some((id, t)) = self.field(last)? {
            let slot = usize::try_from(id).ok();
            match t {
                5 if slot.is_some_and(|i| i < ints.len()) => {
                    ints[slot.unwrap_or_default()] = Some(self.i32()?);
                }
                1 | 2 if slot.is_some_and(|i| i < bools.len()) => {
                    bools[slot.unwrap_or_default()] = Some(t == 1);
                }
                _ => self.skip(t, 1)?,
            }
            last = id;
        }
        Ok(())
    }
}

fn encoding(v: Option<i32>) -> Res<Encoding> {
    #[allow(deprecated, reason = "BIT_PACKED level pages still exist in old files")]
    Ok(match v.ok_or("a page header has no encoding")? {
        0 => Encoding::PLAIN,
        2 => Encoding::PLAIN_DICTIONARY,
        3 => Encoding::RLE,
        4 => Encoding::BIT_PACKED,
        5 => Encoding::DELTA_BINARY_PACKED,
        6 => Encoding::DELTA_LENGTH_BYTE_ARRAY,
        7 => Encoding::DELTA_BYTE_ARRAY,
        8 => Encoding::RLE_DICTIONARY,
        9 => Encoding::BYTE_STREAM_SPLIT,
        e => return Err(format!("unknown page encoding {e}")),
    })
}

fn count(v: Option<i32>, what: &str) -> Res<u32> {
    let v = v.ok_or_else(|| format!("a page header has no {what}"))?;
    u32::try_from(v).map_err(|_| format!("a page header has {what} {v}"))
}

/// Reads the page header at the start of `buf`, returning it and its length in bytes.
pub(crate) fn read_page_header(buf: &[u8]) -> Res<(PageHeader, usize)> {
    let mut c = Compact { buf, pos: 0 };
    let (mut kind, mut sizes) = (None, [None, None]);
    let mut pages: [Option<PageKind>; 3] = [None, None, None];
    let mut last = 0;
    while let Some((id, t)) = c.field(last)? {
        match (id, t) {
            (1, 5) => kind = Some(c.i32()?),
            (2, 5) => sizes[0] = Some(c.i32()?),
            (3, 5) => sizes[1] = Some(c.i32()?),
            (5, 12) => {
                let mut ints = [None; 5];
                c.small_struct(&mut ints, &mut [])?;
                pages[0] = Some(PageKind::DataV1 {
                    num_values: count(ints[1], "value count")?,
                    encoding: encoding(ints[2])?,
                    def_level_encoding: encoding(ints[3])?,
                    rep_level_encoding: encoding(ints[4])?,
                });
            }
            (7, 12) => {
                let (mut ints, mut bools) = ([None; 3], [None; 4]);
                c.small_struct(&mut ints, &mut bools)?;
                pages[1] = Some(PageKind::Dictionary {
                    num_values: count(ints[1], "value count")?,
                    encoding: encoding(ints[2])?,
                    is_sorted: bools[3].unwrap_or(false),
                });
            }
            (8, 12) => {
                let (mut ints, mut bools) = ([None; 7], [None; 8]);
                c.small_struct(&mut ints, &mut bools)?;
                pages[2] = Some(PageKind::DataV2 {
                    num_values: count(ints[1], "value count")?,
                    num_nulls: count(ints[2], "null count")?,
                    num_rows: count(ints[3], "row count")?,
                    encoding: encoding(ints[4])?,
                    def_levels_byte_len: count(ints[5], "definition level length")?,
                    rep_levels_byte_len: count(ints[6], "repetition level length")?,
                    is_compressed: bools[7].unwrap_or(true),
                });
            }
            _ => c.skip(t, 1)?,
        }
        last = id;
    }
    let size = |v: Option<i32>, what: &str| -> Res<usize> {
        let v = v.ok_or_else(|| format!("a page header has no {what}"))?;
        usize::try_from(v).map_err(|_| format!("a page header has {what} {v}"))
    };
    let [data, dict, v2] = pages;
    let kind = match kind.ok_or("a page header has no page type")? {
        0 => data.ok_or("a data page has no data page header")?,
        2 => dict.ok_or("a dictionary page has no dictionary page header")?,
        3 => v2.ok_or("a v2 data page has no v2 header")?,
        _ => PageKind::Other,
    };
    let header = PageHeader {
        kind,
        uncompressed_size: size(sizes[0], "uncompressed size")?,
        compressed_size: size(sizes[1], "compressed size")?,
    };
    Ok((header, c.pos))
}
