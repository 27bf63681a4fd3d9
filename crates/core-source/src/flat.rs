//! Our own decoder for flat fixed-width Parquet columns (INT32, INT64, FLOAT, DOUBLE read as
//! Int32, Date32, Int64, Float32, Float64; required or optional, not repeated), PLAIN or
//! dictionary encoded, v1 or v2 data pages; with [`crate::varwidth`], also byte arrays and
//! lists of INT32.
//!
//! On numeric files (`tpch.parquet`) the parquet crate's record readers zero every value
//! buffer before decoding into it and go through several layers per batch; here each batch's
//! values go straight from the page (a copy for PLAIN, a gather for a dictionary) into a
//! buffer of the right size. Anything else (other types, encodings, nesting) is left to the
//! parquet crate: a row group is decoded here only if every projected column qualifies and
//! its column chunk metadata lists no other encoding. The pages come from the same page
//! readers ([`crate::pages`]), so parts of a row group share them.
//!
//! Every count, index and length read from a page is checked: a damaged page is an error.

use std::sync::Arc;

use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Float32Type, Float64Type, Int32Type, Int64Type,
};
use arrow_array::{ArrayRef, PrimitiveArray, RecordBatch};
use arrow_buffer::{ArrowNativeType, BooleanBufferBuilder, Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use bytes::Bytes;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::schema::types::ColumnDescriptor;

use crate::varwidth::{ByteColumn, ListColumn};

pub(crate) type Res<T> = std::result::Result<T, String>;

/// How a column's values are stored and handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int32,
    Date32,
    Int64,
    Float32,
    Float64,
    Binary,
    Utf8,
    /// A three-level LIST of INT32.
    ListInt32 {
        list_nullable: bool,
        elem_nullable: bool,
    },
}

impl Kind {
    /// The kind for a leaf column read as `data_type` (its root field's type), if this crate
    /// decodes it.
    pub(crate) fn of(descr: &ColumnDescriptor, data_type: &DataType) -> Option<Self> {
        let (rep, def) = (descr.max_rep_level(), descr.max_def_level());
        if rep == 1 {
            // root (optional or required) -> repeated group -> element
            let DataType::List(item) = data_type else {
                return None;
            };
            if descr.physical_type() != PhysicalType::INT32
                || item.data_type() != &DataType::Int32
                || descr.path().parts().len() != 3
            {
                return None;
            }
            let elem_nullable = descr.self_type().is_optional();
            let list = def - 1 - i16::from(elem_nullable);
            if !(0..=1).contains(&list) || item.is_nullable() != elem_nullable {
                return None;
            }
            return Some(Self::ListInt32 {
                list_nullable: list == 1,
                elem_nullable,
            });
        }
        if rep != 0 || def > 1 || descr.path().parts().len() != 1 {
            return None;
        }
        Some(match (descr.physical_type(), data_type) {
            (PhysicalType::INT32, DataType::Int32) => Self::Int32,
            (PhysicalType::INT32, DataType::Date32) => Self::Date32,
            (PhysicalType::INT64, DataType::Int64) => Self::Int64,
            (PhysicalType::FLOAT, DataType::Float32) => Self::Float32,
            (PhysicalType::DOUBLE, DataType::Float64) => Self::Float64,
            (PhysicalType::BYTE_ARRAY, DataType::Binary) => Self::Binary,
            (PhysicalType::BYTE_ARRAY, DataType::Utf8) => Self::Utf8,
            _ => return None,
        })
    }
}

/// True if every encoding the column chunk lists is one this module decodes.
pub(crate) fn encodings_supported(chunk: &ColumnChunkMetaData) -> bool {
    chunk.encodings().all(|e| {
        matches!(
            e,
            Encoding::PLAIN | Encoding::RLE | Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY
        )
    })
}

/// A fixed-width value as Parquet stores it (little endian).
///
/// # Safety
/// Every bit pattern of `WIDTH` bytes must be a valid `Self` of size `WIDTH`.
pub(crate) unsafe trait Native: ArrowNativeType + Default + Send + 'static {
    const WIDTH: usize = std::mem::size_of::<Self>();
    fn from_le(b: &[u8]) -> Self;

    /// Appends the values stored in `bytes` (a multiple of `WIDTH` long) to `out`.
    #[inline(always)]
    fn extend_le(bytes: &[u8], out: &mut Vec<Self>) {
        let n = bytes.len() / Self::WIDTH;
        if cfg!(target_endian = "little") {
            out.reserve(n);
            // SAFETY: the spare capacity holds n values; any bytes are a valid value
            // (the trait's contract) and the target stores them little endian, as Parquet.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    out.as_mut_ptr().add(out.len()).cast::<u8>(),
                    n * Self::WIDTH,
                );
                out.set_len(out.len() + n);
            }
        } else {
            out.extend(bytes.chunks_exact(Self::WIDTH).map(Self::from_le));
        }
    }
}

macro_rules! native {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive number; every bit pattern of its size is one.
        unsafe impl Native for $t {
            #[inline(always)]
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::WIDTH]);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
native!(i32, i64, f32, f64);

/// Reads the RLE / bit-packed hybrid encoding (levels and dictionary indices).
pub(crate) struct Hybrid {
    buf: Bytes,
    pos: usize,
    bit_width: u32,
    /// Values left in the current RLE run, and its value.
    rle_left: usize,
    rle_value: u32,
    /// Values left in the current bit-packed run, and the bit where the next one starts.
    packed_left: usize,
    bit: usize,
    /// The low `bit_width` bits.
    mask: u64,
}

impl Hybrid {
    pub(crate) fn new(buf: Bytes, bit_width: u32) -> Res<Self> {
        if bit_width > 32 {
            return Err(format!("a bit width of {bit_width}"));
        }
        Ok(Self {
            buf,
            pos: 0,
            bit_width,
            rle_left: 0,
            rle_value: 0,
            packed_left: 0,
            bit: 0,
            mask: (1u64 << bit_width) - 1,
        })
    }

    /// Starts the next run; an error if there is none.
    fn next_run(&mut self) -> Res<()> {
        let mut header = 0u64;
        let mut shift = 0;
        loop {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or("a level or index run is missing (page too short)")?;
            self.pos += 1;
            header |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err("a run header is too long".into());
            }
        }
        let count = usize::try_from(header >> 1).map_err(|_| "a run is too long")?;
        if header & 1 == 1 {
            // Bit-packed groups of 8; a run cut short at the page end keeps what is there.
            let bytes = count.saturating_mul(self.bit_width as usize);
            let have = bytes.min(self.buf.len() - self.pos);
            self.bit = self.pos * 8;
            self.packed_left = if self.bit_width == 0 {
                count.saturating_mul(8)
            } else {
                have * 8 / self.bit_width as usize
            };
            self.pos += have;
        } else {
            let width = self.bit_width.div_ceil(8) as usize;
            let v = self
                .buf
                .get(self.pos..self.pos + width)
                .ok_or("an RLE run's value is cut off")?;
            let mut value = 0u32;
            for (i, &b) in v.iter().enumerate() {
                value |= u32::from(b) << (8 * i);
            }
            self.pos += width;
            self.rle_left = count;
            self.rle_value = value;
        }
        if self.rle_left == 0 && self.packed_left == 0 {
            return Err("an empty run".into());
        }
        Ok(())
    }

    /// The next bit-packed value (there must be one in the current run).
    #[inline(always)]
    fn unpack(&mut self) -> u32 {
        let (byte, shift) = (self.bit / 8, self.bit % 8);
        self.bit += self.bit_width as usize;
        self.packed_left -= 1;
        // The 8 bytes from `byte`, zeros past the end of the buffer.
        let mut word = [0u8; 8];
        let tail = self.buf.get(byte..).unwrap_or_default();
        let m = tail.len().min(8);
        word[..m].copy_from_slice(&tail[..m]);
        ((u64::from_le_bytes(word) >> shift) & self.mask) as u32
    }

    /// Calls `f(value, count)` for the next `n` values, in runs; an error if there are fewer.
    #[inline(always)]
    pub(crate) fn runs(
        &mut self,
        mut n: usize,
        mut f: impl FnMut(u32, usize) -> Res<()>,
    ) -> Res<()> {
        while n > 0 {
            if self.rle_left == 0 && self.packed_left == 0 {
                self.next_run()?;
            }
            if self.rle_left > 0 {
                let k = self.rle_left.min(n);
                f(self.rle_value, k)?;
                self.rle_left -= k;
                n -= k;
            } else {
                let k = self.packed_left.min(n);
                for _ in 0..k {
                    let v = self.unpack();
                    f(v, 1)?;
                }
                n -= k;
            }
        }
        Ok(())
    }

    /// Appends the next `n` values to `out` as bytes: levels, at most `max` each (an error for
    /// one above it).
    pub(crate) fn levels_into(&mut self, mut n: usize, max: u8, out: &mut Vec<u8>) -> Res<()> {
        if self.bit_width > 8 {
            return Err(format!("levels of {} bits", self.bit_width));
        }
        let mut top = 0u8;
        while n > 0 {
            if self.rle_left == 0 && self.packed_left == 0 {
                self.next_run()?;
            }
            if self.rle_left > 0 {
                let k = self.rle_left.min(n);
                let v = u8::try_from(self.rle_value).unwrap_or(u8::MAX);
                top = top.max(v);
                out.resize(out.len() + k, v);
                self.rle_left -= k;
                n -= k;
            } else {
                let k = self.packed_left.min(n);
                let (bw, mask) = (self.bit_width as usize, self.mask as u16);
                let buf = &self.buf[..];
                out.reserve(k);
                for j in 0..k {
                    // A value of at most 8 bits lies within the 2 bytes at its first bit; bytes
                    // past the end of the buffer read as 0.
                    let bit = self.bit + j * bw;
                    let b = bit / 8;
                    let lo = u16::from(buf.get(b).copied().unwrap_or(0));
                    let hi = u16::from(buf.get(b + 1).copied().unwrap_or(0));
                    let v = (((hi << 8 | lo) >> (bit % 8)) & mask) as u8;
                    top = top.max(v);
                    out.push(v);
                }
                self.bit += k * bw;
                self.packed_left -= k;
                n -= k;
            }
        }
        if top > max {
            return Err(format!("a level of {top} past the column's {max}"));
        }
        Ok(())
    }

    /// How many of the next `n` values are 0, passing them unread otherwise: a page's rows,
    /// from its repetition levels (each row starts at a level of 0). An error for a value
    /// above `max`, or if there are fewer than `n`.
    pub(crate) fn zeros(&mut self, mut n: usize, max: u8) -> Res<usize> {
        if self.bit_width > 8 {
            return Err(format!("levels of {} bits", self.bit_width));
        }
        let (mut zeros, mut top) = (0, 0u32);
        while n > 0 {
            if self.rle_left == 0 && self.packed_left == 0 {
                self.next_run()?;
            }
            if self.rle_left > 0 {
                let k = self.rle_left.min(n);
                top = top.max(self.rle_value);
                zeros += if self.rle_value == 0 { k } else { 0 };
                self.rle_left -= k;
                n -= k;
                continue;
            }
            let k = self.packed_left.min(n);
            let (bw, buf) = (self.bit_width as usize, &self.buf[..]);
            if bw == 1 {
                // A bit a level: the ones are counted a byte at a time; levels past the end of
                // the buffer are not in the run (`next_run` counts only the bytes there).
                let (mut bit, end) = (self.bit, self.bit + k);
                let mut ones = 0;
                while bit < end {
                    let take = (8 - bit % 8).min(end - bit);
                    let byte = u32::from(buf[bit / 8]) >> (bit % 8);
                    ones += (byte & ((1 << take) - 1)).count_ones() as usize;
                    bit += take;
                }
                zeros += k - ones;
                top = top.max(u32::from(ones > 0));
            } else {
                let mask = self.mask as u16;
                for j in 0..k {
                    let bit = self.bit + j * bw;
                    let b = bit / 8;
                    let lo = u16::from(buf.get(b).copied().unwrap_or(0));
                    let hi = u16::from(buf.get(b + 1).copied().unwrap_or(0));
                    let v = ((hi << 8 | lo) >> (bit % 8)) & mask;
                    top = top.max(u32::from(v));
                    zeros += usize::from(v == 0);
                }
            }
            self.bit += k * bw;
            self.packed_left -= k;
            n -= k;
        }
        if top > u32::from(max) {
            return Err(format!("a level of {top} past the column's {max}"));
        }
        Ok(zeros)
    }

    /// Appends `dict[i]` for each of the next `n` values `i` to `out`.
    pub(crate) fn gather<T: Copy>(
        &mut self,
        mut n: usize,
        dict: &[T],
        out: &mut Vec<T>,
    ) -> Res<()> {
        let bad = |i: usize| format!("dictionary index {i} of a dictionary of {}", dict.len());
        out.reserve(n);
        while n > 0 {
            if self.rle_left == 0 && self.packed_left == 0 {
                self.next_run()?;
            }
            if self.rle_left > 0 {
                let k = self.rle_left.min(n);
                let i = self.rle_value as usize;
                let v = *dict.get(i).ok_or_else(|| bad(i))?;
                out.extend(std::iter::repeat_n(v, k));
                self.rle_left -= k;
                n -= k;
                continue;
            }
            let k = self.packed_left.min(n);
            let bw = self.bit_width as usize;
            // Fixed 8-byte loads while the run's last value and 7 bytes past it are in the
            // buffer; `unpack` value by value near its end.
            if (self.bit + k * bw) / 8 + 8 <= self.buf.len() {
                let (src, mut bit) = (self.buf.as_ptr(), self.bit);
                let dst = out.spare_capacity_mut()[..k].as_mut_ptr();
                // Several indices from each 8-byte load when they fit in its 57 bits past
                // any bit offset: four up to 14 bits (most dictionaries), three up to 19, two
                // up to 28.
                // SAFETY (of each): `N * bw + 7 <= 64` for the widths each arm takes (4 x 14,
                // 3 x 19, 2 x 28, each + 7); the condition above puts the 8 bytes at the byte
                // of each of the k values' first bit inside `buf`; `dst` is `out`'s spare
                // capacity, reserved for at least k values.
                let j = unsafe {
                    match bw {
                        0..=14 => gather_n::<4, T>(src, &mut bit, bw, self.mask, k, dict, dst),
                        15..=19 => gather_n::<3, T>(src, &mut bit, bw, self.mask, k, dict, dst),
                        20..=28 => gather_n::<2, T>(src, &mut bit, bw, self.mask, k, dict, dst),
                        _ => Ok(0),
                    }
                }
                .map_err(bad)?;
                for j in j..k {
                    // SAFETY: the condition above puts the 8 bytes at every value's byte in
                    // `buf`.
                    let word =
                        u64::from_le(unsafe { src.add(bit / 8).cast::<u64>().read_unaligned() });
                    let i = ((word >> (bit % 8)) & self.mask) as usize;
                    let Some(&v) = dict.get(i) else {
                        return Err(bad(i));
                    };
                    // SAFETY: j < k, and the spare capacity holds k values.
                    unsafe { (*dst.add(j)).write(v) };
                    bit += bw;
                }
                // SAFETY: the k slots after the length were all written above.
                unsafe { out.set_len(out.len() + k) };
                self.bit = bit;
                self.packed_left -= k;
            } else {
                for _ in 0..k {
                    let i = self.unpack() as usize;
                    out.push(*dict.get(i).ok_or_else(|| bad(i))?);
                }
            }
            n -= k;
        }
        Ok(())
    }

    /// Skips `n` values.
    pub(crate) fn skip(&mut self, mut n: usize) -> Res<()> {
        while n > 0 {
            if self.rle_left == 0 && self.packed_left == 0 {
                self.next_run()?;
            }
            if self.rle_left > 0 {
                let k = self.rle_left.min(n);
                self.rle_left -= k;
                n -= k;
            } else {
                let k = self.packed_left.min(n);
                self.bit += k * self.bit_width as usize;
                self.packed_left -= k;
                n -= k;
            }
        }
        Ok(())
    }
}

/// Gathers `dict[i]` into `dst[..]` for bit-packed indices `i` of `bw` bits from `src` at
/// `*bit`, `N` from each 8-byte load, while `N` more fit in `k`; returns how many it gathered
/// (moving `*bit` past them), or the first index outside `dict`.
///
/// # Safety
/// `N * bw + 7 <= 64`; the 8 bytes at the byte of each of the `k` values' first bit are
/// readable at `src`, and `dst` is valid for `k` writes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn gather_n<const N: usize, T: Copy>(
    src: *const u8,
    bit: &mut usize,
    bw: usize,
    mask: u64,
    k: usize,
    dict: &[T],
    dst: *mut std::mem::MaybeUninit<T>,
) -> std::result::Result<usize, usize> {
    let mut j = 0;
    while j + N <= k {
        // SAFETY: the caller's; `*bit` is the first of the N values' bits.
        let word =
            u64::from_le(unsafe { src.add(*bit / 8).cast::<u64>().read_unaligned() }) >> (*bit % 8);
        let ix: [usize; N] = std::array::from_fn(|m| ((word >> (m * bw)) & mask) as usize);
        if let Some(&i) = ix.iter().find(|&&i| i >= dict.len()) {
            return Err(i);
        }
        for (m, &i) in ix.iter().enumerate() {
            // SAFETY: j + m < k; i is inside `dict`, checked above.
            unsafe { (*dst.add(j + m)).write(*dict.get_unchecked(i)) };
        }
        *bit += N * bw;
        j += N;
    }
    Ok(j)
}

/// Where the values of the current page come from.
pub(crate) enum Values {
    Plain { buf: Bytes, pos: usize },
    Dict(Hybrid),
    None,
}

impl Values {
    /// The values of a data page encoded `encoding` whose values section is `body`.
    pub(crate) fn of(encoding: Encoding, body: Bytes, has_dict: bool) -> Res<Self> {
        match encoding {
            Encoding::PLAIN => Ok(Self::Plain { buf: body, pos: 0 }),
            Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY => {
                if !has_dict {
                    return Err("a dictionary-encoded page without a dictionary".into());
                }
                let width = *body.first().ok_or("a dictionary page has no bit width")?;
                Ok(Self::Dict(Hybrid::new(body.slice(1..), u32::from(width))?))
            }
            e => Err(format!("a data page encoded {e}")),
        }
    }

    /// Appends the next `n` fixed-width values to `out`, looking dictionary indices up in
    /// `dict`.
    pub(crate) fn take<T: Native>(
        &mut self,
        n: usize,
        dict: Option<&[T]>,
        out: &mut Vec<T>,
    ) -> Res<()> {
        match self {
            Self::Plain { buf, pos } => {
                let r = plain(buf, *pos, n * T::WIDTH)?;
                T::extend_le(&buf[r.clone()], out);
                *pos = r.end;
            }
            Self::Dict(h) => h.gather(n, dict.ok_or("no dictionary")?, out)?,
            // Nothing from no page: the end of a chunk whose pages were all skipped whole.
            Self::None if n == 0 => {}
            Self::None => return Err("no page".into()),
        }
        Ok(())
    }

    /// Passes the next `n` fixed-width values of `width` bytes.
    pub(crate) fn skip(&mut self, n: usize, width: usize) -> Res<()> {
        match self {
            Self::Plain { buf, pos } => *pos = plain(buf, *pos, n * width)?.end,
            Self::Dict(h) => h.skip(n)?,
            Self::None => {}
        }
        Ok(())
    }
}

/// A dictionary page's first `num_values` fixed-width values: the page itself when aligned
/// (the page reader lays it so), else a copy.
pub(crate) fn dictionary<T: Native>(buf: &Bytes, num_values: u32) -> Res<ScalarBuffer<T>> {
    let n = num_values as usize;
    if buf.len() / T::WIDTH < n {
        return Err(format!(
            "a dictionary page of {} bytes cannot hold {n} values",
            buf.len()
        ));
    }
    let bytes = buf.slice(..n * T::WIDTH);
    Ok(
        if cfg!(target_endian = "little")
            && bytes.as_ptr().align_offset(std::mem::align_of::<T>()) == 0
        {
            ScalarBuffer::new(Buffer::from(bytes), 0, n)
        } else {
            let mut dict = Vec::new();
            T::extend_le(&bytes, &mut dict);
            ScalarBuffer::from(dict)
        },
    )
}

/// The bit width of levels up to `max` (0 for a column without such levels).
pub(crate) fn level_width(max: i16) -> u32 {
    u32::try_from(max).map_or(0, |m| 32 - m.leading_zeros())
}

/// The definition levels (of a flat column: 0 null, 1 valid) of the next `k` rows of a page:
/// how many are valid, appending them to `nulls` if given. A column that is not nullable has
/// no levels: all `k` are.
pub(crate) fn def_levels(
    levels: Option<&mut Hybrid>,
    nullable: bool,
    k: usize,
    nulls: Option<&mut Validity>,
) -> Res<usize> {
    let levels = match levels {
        Some(l) if nullable => l,
        _ => {
            if let Some(n) = nulls {
                n.push(true, k);
            }
            return Ok(k);
        }
    };
    let (mut valid, mut nulls) = (0, nulls);
    levels.runs(k, |v, c| {
        if let Some(n) = nulls.as_deref_mut() {
            n.push(v == 1, c);
        }
        valid += if v == 1 { c } else { 0 };
        Ok(())
    })?;
    Ok(valid)
}

/// What [`skip_whole_page`] did.
pub(crate) enum Skipped {
    /// Passed a data page of this many rows unread.
    Rows(usize),
    /// Read the dictionary page, the next page, into `on_dict`.
    Dictionary,
    /// Nothing: the next page must be read to skip rows in it (or there is none).
    Nothing,
}

/// Passes the next page of `pages` unread if it is a data page that holds at most `rows` rows
/// and says how many. A page says so in a v2 header; a page of a `flat` column (no
/// repetition) holds a row per level. A dictionary page is read into `on_dict` (its bytes and
/// value count), so that skipping rows never decompresses the data pages before them.
pub(crate) fn skip_whole_page(
    pages: &mut dyn PageReader,
    rows: usize,
    flat: bool,
    on_dict: impl FnOnce(&Bytes, u32) -> Res<()>,
) -> Res<Skipped> {
    let Some(meta) = pages.peek_next_page().map_err(|e| e.to_string())? else {
        return Ok(Skipped::Nothing);
    };
    if meta.is_dict {
        return match pages.get_next_page().map_err(|e| e.to_string())? {
            Some(Page::DictionaryPage {
                buf,
                num_values,
                encoding,
                ..
            }) => {
                if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                    return Err(format!("a dictionary page encoded {encoding}"));
                }
                on_dict(&buf, num_values)?;
                Ok(Skipped::Dictionary)
            }
            _ => Err("a page said to be a dictionary is not one".into()),
        };
    }
    let n = if flat { meta.num_levels } else { meta.num_rows };
    match n.filter(|&n| n <= rows) {
        Some(n) => {
            pages.skip_next_page().map_err(|e| e.to_string())?;
            Ok(Skipped::Rows(n))
        }
        None => Ok(Skipped::Nothing),
    }
}

/// A data page taken apart: its levels, its values section, how those are encoded.
pub(crate) struct DataPage {
    pub(crate) rep: Option<Hybrid>,
    pub(crate) def: Option<Hybrid>,
    pub(crate) body: Bytes,
    pub(crate) encoding: Encoding,
    /// Levels (slots) in the page.
    pub(crate) num_values: usize,
}

/// The next data page of `pages`, with its repetition and definition levels read with
/// `rep_width` and `def_width` bits (0: the column has none); dictionary pages on the way go to
/// `on_dict` (their bytes and value count). `None` at the end of the column chunk.
pub(crate) fn next_data_page(
    pages: &mut dyn PageReader,
    rep_width: u32,
    def_width: u32,
    mut on_dict: impl FnMut(&Bytes, u32) -> Res<()>,
) -> Res<Option<DataPage>> {
    loop {
        let Some(page) = pages.get_next_page().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        match page {
            Page::DictionaryPage {
                buf,
                num_values,
                encoding,
                ..
            } => {
                if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                    return Err(format!("a dictionary page encoded {encoding}"));
                }
                on_dict(&buf, num_values)?;
            }
            Page::DataPage {
                buf,
                num_values,
                encoding,
                def_level_encoding,
                rep_level_encoding,
                ..
            } => {
                // v1: each kind of level is a 4-byte length and an RLE run section.
                let mut at = 0;
                let mut levels = |width: u32, enc: Encoding, what: &str| -> Res<Option<Hybrid>> {
                    if width == 0 {
                        return Ok(None);
                    }
                    if enc != Encoding::RLE {
                        return Err(format!("{what} levels encoded {enc}"));
                    }
                    let len = buf
                        .get(at..at + 4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                        .ok_or("a data page too short for its levels")?;
                    let start = at + 4;
                    if buf.len() - start < len {
                        return Err(format!("{what} levels run past their page"));
                    }
                    at = start + len;
                    Ok(Some(Hybrid::new(buf.slice(start..start + len), width)?))
                };
                let rep = levels(rep_width, rep_level_encoding, "repetition")?;
                let def = levels(def_width, def_level_encoding, "definition")?;
                return Ok(Some(DataPage {
                    rep,
                    def,
                    body: buf.slice(at..),
                    encoding,
                    num_values: num_values as usize,
                }));
            }
            Page::DataPageV2 {
                buf,
                num_values,
                encoding,
                def_levels_byte_len,
                rep_levels_byte_len,
                ..
            } => {
                // v2: repetition then definition levels, lengths in the header.
                let (d, r) = (def_levels_byte_len as usize, rep_levels_byte_len as usize);
                if (rep_width == 0 && r != 0) || d.saturating_add(r) > buf.len() {
                    return Err("a v2 page's levels do not fit it".into());
                }
                let level = |range: std::ops::Range<usize>, width: u32| {
                    (width > 0)
                        .then(|| Hybrid::new(buf.slice(range), width))
                        .transpose()
                };
                return Ok(Some(DataPage {
                    rep: level(0..r, rep_width)?,
                    def: level(r..r + d, def_width)?,
                    body: buf.slice(r + d..),
                    encoding,
                    num_values: num_values as usize,
                }));
            }
        }
    }
}

/// The next `bytes` bytes of a PLAIN page at `pos`; an error if the page is shorter.
pub(crate) fn plain(buf: &Bytes, pos: usize, bytes: usize) -> Res<std::ops::Range<usize>> {
    let end = pos
        .checked_add(bytes)
        .filter(|&e| e <= buf.len())
        .ok_or("a page has fewer values than levels")?;
    Ok(pos..end)
}

/// The pages of one flat (not repeated) column of one row group: the current page's
/// definition levels and values, and the column's dictionary, decoded by `parse` into a `D`.
pub(crate) struct FlatPages<D> {
    pages: Box<dyn PageReader>,
    pub(crate) nullable: bool,
    pub(crate) dict: Option<D>,
    /// Levels (rows) left in the current page, its definition levels and values.
    pub(crate) left: usize,
    levels: Option<Hybrid>,
    pub(crate) values: Values,
    parse: fn(&Bytes, u32) -> Res<D>,
}

impl<D> FlatPages<D> {
    pub(crate) fn new(
        pages: Box<dyn PageReader>,
        nullable: bool,
        parse: fn(&Bytes, u32) -> Res<D>,
    ) -> Self {
        Self {
            pages,
            nullable,
            dict: None,
            left: 0,
            levels: None,
            values: Values::None,
            parse,
        }
    }

    /// Moves to the next data page; an error if the column has no rows left.
    pub(crate) fn next_page(&mut self) -> Res<()> {
        let parse = self.parse;
        loop {
            let mut dict = None;
            let page = next_data_page(self.pages.as_mut(), 0, u32::from(self.nullable), |b, n| {
                dict = Some(parse(b, n)?);
                Ok(())
            })?;
            if dict.is_some() {
                self.dict = dict;
            }
            let page = page.ok_or("the column chunk ends before the row group's rows")?;
            self.levels = page.def;
            self.values = Values::of(page.encoding, page.body, self.dict.is_some())?;
            self.left = page.num_values;
            if self.left > 0 {
                return Ok(());
            }
        }
    }

    /// Definition levels of the next `k` rows of the page: how many are valid, appending
    /// them to `nulls` if given.
    pub(crate) fn levels(&mut self, k: usize, nulls: Option<&mut Validity>) -> Res<usize> {
        def_levels(self.levels.as_mut(), self.nullable, k, nulls)
    }

    /// Passes `rows` rows: whole pages unread where a page says its rows, the rest through
    /// its levels, `pass(values, valid)` passing the values of the valid ones.
    pub(crate) fn skip(
        &mut self,
        mut rows: usize,
        mut pass: impl FnMut(&mut Values, usize) -> Res<()>,
    ) -> Res<()> {
        let parse = self.parse;
        while rows > 0 {
            if self.left == 0 {
                let mut dict = None;
                let skipped = skip_whole_page(self.pages.as_mut(), rows, true, |b, n| {
                    dict = Some(parse(b, n)?);
                    Ok(())
                })?;
                match skipped {
                    Skipped::Rows(n) => rows -= n,
                    Skipped::Dictionary => self.dict = dict,
                    Skipped::Nothing => self.next_page()?,
                }
                if !matches!(skipped, Skipped::Nothing) {
                    continue;
                }
            }
            let k = self.left.min(rows);
            let valid = self.levels(k, None)?;
            pass(&mut self.values, valid)?;
            self.left -= k;
            rows -= k;
        }
        Ok(())
    }
}

/// One flat fixed-width column of one row group, read batch by batch. Its dictionary's values
/// are the page itself when aligned (the page reader lays it so), else a copy.
struct Column<T: Native> {
    cur: FlatPages<ScalarBuffer<T>>,
}

impl<T: Native> Column<T> {
    fn new(pages: Box<dyn PageReader>, nullable: bool) -> Self {
        Self {
            cur: FlatPages::new(pages, nullable, dictionary::<T>),
        }
    }

    fn skip(&mut self, rows: usize) -> Res<()> {
        self.cur
            .skip(rows, |values, valid| values.skip(valid, T::WIDTH))
    }

    /// Appends the next `valid` values of the page to `out`.
    fn values(&mut self, valid: usize, out: &mut Vec<T>) -> Res<()> {
        self.cur.values.take(valid, self.cur.dict.as_deref(), out)
    }

    /// The next `rows` rows as values and nulls.
    fn read(&mut self, rows: usize) -> Res<(ScalarBuffer<T>, Option<NullBuffer>)> {
        let mut out = Vec::with_capacity(rows);
        let mut nulls = self.cur.nullable.then(|| Validity::new(rows));
        let mut dense = Vec::new();
        let mut left = rows;
        while left > 0 {
            if self.cur.left == 0 {
                self.cur.next_page()?;
            }
            let k = self.cur.left.min(left);
            let before = rows - left;
            let valid = self.cur.levels(k, nulls.as_mut())?;
            if valid == rows {
                // The whole batch, no nulls, in one PLAIN page whose values are aligned (the
                // page reader lays them so): a slice of the page, no copy.
                if let Values::Plain { buf, pos } = &mut self.cur.values {
                    let r = plain(buf, *pos, rows * T::WIDTH)?;
                    if buf[r.clone()]
                        .as_ptr()
                        .align_offset(std::mem::align_of::<T>())
                        == 0
                    {
                        let values = buf.slice(r.clone());
                        *pos = r.end;
                        self.cur.left -= k;
                        let nulls = nulls.and_then(Validity::finish);
                        let values = ScalarBuffer::new(Buffer::from(values), 0, rows);
                        return Ok((values, nulls));
                    }
                }
            }
            if valid == k {
                self.values(valid, &mut out)?;
            } else {
                dense.clear();
                self.values(valid, &mut dense)?;
                let mut it = dense.iter();
                for r in 0..k {
                    let set = nulls.as_ref().is_some_and(|n| n.get(before + r));
                    out.push(if set {
                        *it.next().ok_or("fewer values than valid levels")?
                    } else {
                        T::default()
                    });
                }
            }
            self.cur.left -= k;
            left -= k;
        }
        Ok((ScalarBuffer::from(out), nulls.and_then(Validity::finish)))
    }
}

/// The validity of a batch's rows, as a bitmap only once a null turns up (most batches of
/// most columns have none, and a bitmap of all-valid rows is thrown away).
pub(crate) struct Validity {
    bits: Option<BooleanBufferBuilder>,
    len: usize,
    capacity: usize,
}

impl Validity {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            bits: None,
            len: 0,
            capacity,
        }
    }

    pub(crate) fn push(&mut self, valid: bool, n: usize) {
        if valid && self.bits.is_none() {
            self.len += n;
            return;
        }
        let bits = self.bits.get_or_insert_with(|| {
            let mut b = BooleanBufferBuilder::new(self.capacity);
            b.append_n(self.len, true);
            b
        });
        bits.append_n(n, valid);
        self.len += n;
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.bits
            .as_ref()
            .is_none_or(|b| arrow_buffer::bit_util::get_bit(b.as_slice(), i))
    }

    pub(crate) fn finish(self) -> Option<NullBuffer> {
        self.bits
            .map(|mut b| NullBuffer::new(b.finish()))
            .filter(|n| n.null_count() > 0)
    }
}

/// A column of any kind.
enum AnyColumn {
    I32(Column<i32>, Kind),
    I64(Column<i64>),
    F32(Column<f32>),
    F64(Column<f64>),
    Bytes(ByteColumn),
    List(ListColumn),
}

fn array<P: ArrowPrimitiveType>(
    (values, nulls): (ScalarBuffer<P::Native>, Option<NullBuffer>),
) -> ArrayRef {
    Arc::new(PrimitiveArray::<P>::new(values, nulls))
}

impl AnyColumn {
    fn skip(&mut self, rows: usize) -> Res<()> {
        match self {
            Self::I32(c, _) => c.skip(rows),
            Self::I64(c) => c.skip(rows),
            Self::F32(c) => c.skip(rows),
            Self::F64(c) => c.skip(rows),
            Self::Bytes(c) => c.skip(rows),
            Self::List(c) => c.skip(rows),
        }
    }

    fn read(&mut self, rows: usize) -> Res<ArrayRef> {
        Ok(match self {
            Self::I32(c, Kind::Date32) => array::<Date32Type>(c.read(rows)?),
            Self::I32(c, _) => array::<Int32Type>(c.read(rows)?),
            Self::I64(c) => array::<Int64Type>(c.read(rows)?),
            Self::F32(c) => array::<Float32Type>(c.read(rows)?),
            Self::F64(c) => array::<Float64Type>(c.read(rows)?),
            Self::Bytes(c) => c.read(rows)?,
            Self::List(c) => c.read(rows)?,
        })
    }
}

/// Rows of one row group in batches: the first `head` rows (if any) as one batch, then batches
/// of `batch_size`; each column read by its own decoder.
pub(crate) struct FlatReader {
    schema: SchemaRef,
    columns: Vec<AnyColumn>,
    /// Rows still to skip before the first batch.
    skip: usize,
    head: usize,
    left: usize,
    batch_size: usize,
}

impl FlatReader {
    /// Reads rows `skip..skip + head + rest` of the row group whose columns' pages are
    /// `pages` (with their kinds and nullability), into batches of `schema` (a field per
    /// column, in order).
    pub(crate) fn new(
        schema: SchemaRef,
        columns: Vec<(Box<dyn crate::pages::ColumnPages>, Kind, bool)>,
        skip: usize,
        head: usize,
        rest: usize,
        batch_size: usize,
    ) -> Self {
        let columns = columns
            .into_iter()
            .zip(schema.fields())
            .map(|((pages, kind, nullable), field)| match kind {
                Kind::Int32 | Kind::Date32 => AnyColumn::I32(Column::new(pages, nullable), kind),
                Kind::Int64 => AnyColumn::I64(Column::new(pages, nullable)),
                Kind::Float32 => AnyColumn::F32(Column::new(pages, nullable)),
                Kind::Float64 => AnyColumn::F64(Column::new(pages, nullable)),
                Kind::Binary | Kind::Utf8 => {
                    AnyColumn::Bytes(ByteColumn::new(pages, nullable, kind == Kind::Utf8))
                }
                Kind::ListInt32 {
                    list_nullable,
                    elem_nullable,
                } => {
                    let item = match field.data_type() {
                        DataType::List(item) => item.clone(),
                        // Kind::of gives this kind only for a list field.
                        _ => Arc::new(arrow_schema::Field::new("item", DataType::Int32, true)),
                    };
                    AnyColumn::List(ListColumn::new(pages, item, list_nullable, elem_nullable))
                }
            })
            .collect();
        Self {
            schema,
            columns,
            skip,
            head,
            left: head + rest,
            batch_size: batch_size.max(1),
        }
    }

    fn next_batch(&mut self) -> Res<RecordBatch> {
        if self.skip > 0 {
            for c in &mut self.columns {
                c.skip(self.skip)?;
            }
            self.skip = 0;
        }
        let rows = if self.head > 0 {
            std::mem::take(&mut self.head)
        } else {
            self.batch_size.min(self.left)
        };
        let columns = self
            .columns
            .iter_mut()
            .map(|c| c.read(rows))
            .collect::<Res<Vec<_>>>()?;
        self.left -= rows;
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| e.to_string())
    }
}

impl Iterator for FlatReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let r = self.next_batch();
        if r.is_err() {
            self.left = 0;
        }
        Some(r.map_err(ArrowError::ParquetError))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `indices` as one bit-packed run of `bw`-bit values, as Parquet writes them: a run
    /// header, then groups of 8 values, least significant bit first; then 16 more bytes.
    fn packed(indices: &[u32], bw: u32) -> Bytes {
        let groups = indices.len().div_ceil(8);
        let mut out = Vec::new();
        let mut header = ((groups as u64) << 1) | 1;
        loop {
            let b = (header & 0x7f) as u8;
            header >>= 7;
            if header == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        let mut bits = vec![0u8; groups * bw as usize];
        for (k, &v) in indices.iter().enumerate() {
            for b in 0..bw as usize {
                if v >> b & 1 == 1 {
                    let at = k * bw as usize + b;
                    bits[at / 8] |= 1 << (at % 8);
                }
            }
        }
        out.extend(bits);
        // Bytes of whatever follows in a page: ones, so a load that does not mask them off
        // shows. (And enough of them for the fixed-size loads to run to the last value.)
        out.extend([0xff; 16]);
        Bytes::from(out)
    }

    proptest! {
        /// Gathering bit-packed indices of any width, in pieces of any size, gives what
        /// looking each one up gives; an index past the dictionary is an error naming it
        /// exactly (all its bits, wherever in a load it sits).
        #[test]
        fn gather_looks_up_every_index(
            bw in 0u32..=32,
            raw in proptest::collection::vec(any::<u32>(), 1..300),
            pieces in proptest::collection::vec(1usize..40, 1..20),
            bad in proptest::option::of((any::<prop::sample::Index>(), any::<u32>())),
        ) {
            let mask = if bw == 32 { u32::MAX } else { (1u32 << bw) - 1 };
            let len = (mask as usize).saturating_add(1).min(4096);
            let dict: Vec<u64> = (0..len as u64).map(|i| i * 3 + 1).collect();
            let mut indices: Vec<u32> = raw.iter().map(|&v| (v & mask) % len as u32).collect();
            // One index past the dictionary, with the field's top bit set, where the width
            // leaves room for one.
            let bad = bad.filter(|_| bw > 12).map(|(at, v)| {
                let at = at.index(indices.len());
                indices[at] = (v & mask) | (1 << (bw - 1));
                at
            });
            let mut h = Hybrid::new(packed(&indices, bw), bw).expect("width");
            let (mut out, mut at) = (Vec::new(), 0);
            let mut result = Ok(());
            for &p in pieces.iter().cycle() {
                if at == indices.len() {
                    break;
                }
                let n = p.min(indices.len() - at);
                result = h.gather(n, &dict, &mut out);
                if result.is_err() {
                    break;
                }
                at += n;
            }
            let want: Vec<u64> = indices
                .iter()
                .take(bad.unwrap_or(indices.len()))
                .map(|&i| dict[i as usize])
                .collect();
            match bad {
                None => {
                    prop_assert!(result.is_ok());
                    prop_assert_eq!(out, want);
                }
                Some(at) => {
                    let e = result.expect_err("an index past the dictionary");
                    let name = format!("dictionary index {} ", indices[at]);
                    prop_assert!(e.contains(&name), "{} (wanted {})", e, name);
                    // Pieces before the bad one's were gathered right.
                    prop_assert!(out.len() <= at);
                    prop_assert_eq!(&out[..], &want[..out.len()]);
                }
            }
        }
    }

    /// An index with its field's top bit set, at every slot of a load and every bit offset:
    /// the error names all its bits (a load that drops the top bit would name another).
    #[test]
    fn every_bit_of_every_slot_reaches_the_lookup() {
        let dict: Vec<u32> = (0..4096).collect();
        for bw in 13u32..=32 {
            // `lead` values gathered first put the loads at every bit offset.
            for (lead, at) in (0..8).flat_map(|l| (l..l + 16).map(move |a| (l, a))) {
                let mut indices: Vec<u32> = (0..48u32).map(|i| i * 37 % 4096).collect();
                let top = 1u32 << (bw - 1);
                indices[at] = top | (at as u32);
                let mut h = Hybrid::new(packed(&indices, bw), bw).expect("width");
                let mut out = Vec::new();
                h.gather(lead, &dict, &mut out)
                    .expect("before the bad index");
                let e = h
                    .gather(48 - lead, &dict, &mut out)
                    .expect_err("past the dictionary");
                assert!(
                    e.contains(&format!("dictionary index {} ", top | at as u32)),
                    "width {bw}, {lead} first, slot {at}: {e}"
                );
            }
        }
    }
}
