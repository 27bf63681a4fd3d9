//! Raw snappy decompression into uninitialised memory, for Parquet pages.
//!
//! Decompressing snappy is most of the CPU time of a scan of numeric Parquet files: pages of
//! 64-bit integers or prices compress into a few bytes of literal and a short copy per value,
//! so the decoder runs one tag every four or five output bytes (`tpch.parquet`: 40% of the
//! scan engine's samples went to the `snap` crate's decoder, and 3-5% to zeroing each page's
//! buffer before it). This decoder writes straight into the output's spare capacity, with
//! fixed-size 16-byte copies wherever the input and a little slack past the output allow, and
//! checks every length and offset against both buffers first: a damaged or crafted block is an
//! error, never a read or write out of bounds.
//!
//! Each element says where the next one starts, so decoding one block is a chain of dependent
//! loads; [`decompress_two_into`] decodes two blocks an element of each in turn, and the CPU
//! overlaps the two chains (the page reader pairs pages its reader will read both of).
//!
//! Format: <https://github.com/google/snappy/blob/main/format_description.txt> (a varint of
//! the decompressed length, then literals and back-references).

/// Bytes of spare capacity past the decompressed length that copies may overwrite: a copy of up
/// to 64 bytes runs in 16-byte steps.
const SLACK: usize = 16;

/// Why a block does not decompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnappyError {
    /// The length varint is missing, too long or says other than the caller expects.
    Length,
    /// A literal runs past the input or the output.
    Literal,
    /// A copy reaches before the output's start, has offset 0 or runs past its end.
    Copy,
    /// A tag is cut off at the end of the input.
    Truncated,
    /// The elements end short of the declared length.
    Short,
}

impl std::fmt::Display for SnappyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Length => "snappy: the decompressed length is missing or not the page's",
            Self::Literal => "snappy: a literal runs past the end of its block",
            Self::Copy => "snappy: a back-reference points outside the decompressed data",
            Self::Truncated => "snappy: the block is cut off inside a tag",
            Self::Short => "snappy: the block ends before its declared length",
        })
    }
}

/// The decompressed length a raw snappy block declares, and where its elements start.
pub(crate) fn decompressed_len(input: &[u8]) -> Result<(usize, usize), SnappyError> {
    let mut len: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(5) {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(len)
                .map(|l| (l, i + 1))
                .map_err(|_| SnappyError::Length);
        }
    }
    Err(SnappyError::Length)
}

/// Appends the decompressed contents of the raw snappy block `input` to `out`, which must come
/// to exactly `expected` bytes.
///
/// # Errors
/// A [`SnappyError`] if the block is malformed or declares another length; `out` then keeps its
/// old length (its spare capacity may have been written).
pub(crate) fn decompress_into(
    input: &[u8],
    expected: usize,
    out: &mut Vec<u8>,
) -> Result<(), SnappyError> {
    let mut block = Block::begin(input, expected, out)?;
    block.finish()?;
    block.end();
    Ok(())
}

/// As [`decompress_into`] for two blocks, decoded together (see [`decode_pair`]): faster than
/// one after the other.
///
/// # Errors
/// A [`SnappyError`] if either block is malformed; both outputs then keep their old lengths.
/// (Which block failed is not said: decompress them one at a time to know.)
pub(crate) fn decompress_two_into(
    (a_in, a_len, a_out): (&[u8], usize, &mut Vec<u8>),
    (b_in, b_len, b_out): (&[u8], usize, &mut Vec<u8>),
) -> Result<(), SnappyError> {
    let mut a = Block::begin(a_in, a_len, a_out)?;
    let mut b = Block::begin(b_in, b_len, b_out)?;
    decode_pair(&mut a, &mut b)?;
    a.end();
    b.end();
    Ok(())
}

/// For each copy tag byte: its length (bits 0-7), the high bits of a 1-byte-offset copy's offset
/// (bits 8-10) and how many bytes follow the tag (bits 11-13). Literal tags are 0.
const COPY_TAGS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let tag = i as u16;
        t[i] = match tag & 3 {
            1 => (((tag >> 2) & 7) + 4) | ((tag >> 5) << 8) | (1 << 11),
            2 => ((tag >> 2) + 1) | (2 << 11),
            3 => ((tag >> 2) + 1) | (4 << 11),
            _ => 0,
        };
        i += 1;
    }
    t
};

/// The low `n` bytes of a little-endian word, for `n` in 0..=4.
const WORD_MASK: [u32; 5] = [0, 0xff, 0xffff, 0x00ff_ffff, 0xffff_ffff];

/// Decodes two blocks at once, an element of each in turn: each block's elements form a chain
/// of dependent loads (where one ends says where the next starts), and two independent chains
/// keep the CPU busy while one waits (on `tpch.parquet`'s pages, ~1.4x the throughput of
/// decoding them one after the other).
// Not inlined: inlined into `decompress_two_into` it ran ~20% slower on tpch's pages (1.9
// against 2.4 GB/s in a loop over every page), the two blocks' state spilling to the stack.
#[inline(never)]
fn decode_pair(a: &mut Block<'_>, b: &mut Block<'_>) -> Result<(), SnappyError> {
    let (mut ia, mut oa, mut ib, mut ob) = (a.ip, a.op, b.ip, b.op);
    while a.src.len() - ia >= FAST_INPUT && b.src.len() - ib >= FAST_INPUT {
        // SAFETY: both blocks have FAST_INPUT input bytes left (the loop's condition); each
        // `dst` is its block's own reserved output, with `dst[..op]` written (`Block`'s
        // invariant, kept by `fast_step`, which advances `op` only past bytes it wrote).
        unsafe {
            fast_step(a.src, a.dst, a.len, &mut ia, &mut oa)?;
            fast_step(b.src, b.dst, b.len, &mut ib, &mut ob)?;
        }
    }
    (a.ip, a.op, b.ip, b.op) = (ia, oa, ib, ob);
    a.finish()?;
    b.finish()
}

/// A block being decoded: its elements, where they go and how far both have come.
///
/// Invariant (what the unsafe code relies on): `dst` points at the spare capacity of `out`,
/// which holds at least `len + SLACK` bytes; the block borrows `out` exclusively for its whole
/// life, so that memory stays allocated and nothing else writes it; `dst[..op]` is written.
/// Only [`begin`](Self::begin) makes a block, and only the decoding steps move `op`.
struct Block<'a> {
    /// The elements (after the length varint).
    src: &'a [u8],
    /// The vector decoded bytes are appended to, borrowed until [`end`](Self::end).
    out: &'a mut Vec<u8>,
    /// `out`'s spare capacity: `len + SLACK` bytes.
    dst: *mut u8,
    len: usize,
    ip: usize,
    op: usize,
}

/// Input [`fast_step`] needs left: a tag, its 4 following bytes and a 16-byte literal.
const FAST_INPUT: usize = 21;

/// Decodes the element at `src[*ip..]` with fixed-size reads; only lengths and offsets are
/// checked.
///
/// # Safety
/// `src.len() - *ip >= FAST_INPUT`, `dst` valid for writes of `len + SLACK` bytes and
/// `dst[..*op]` written.
#[inline(always)]
unsafe fn fast_step(
    src: &[u8],
    dst: *mut u8,
    len: usize,
    ip: &mut usize,
    op: &mut usize,
) -> Result<(), SnappyError> {
    let sp = src.as_ptr();
    // SAFETY: ip + FAST_INPUT <= n.
    let (tag, word) = unsafe {
        let p = sp.add(*ip);
        (
            *p,
            u32::from_le_bytes([*p.add(1), *p.add(2), *p.add(3), *p.add(4)]),
        )
    };
    if tag & 3 == 0 {
        let lit = (tag >> 2) as usize + 1;
        if lit <= 16 {
            if len - *op < lit {
                return Err(SnappyError::Literal);
            }
            // SAFETY: ip + 1 + 16 <= n; op + lit <= len, so op + 16 <= len + SLACK.
            unsafe { std::ptr::copy_nonoverlapping(sp.add(*ip + 1), dst.add(*op), 16) };
            *ip += 1 + lit;
            *op += lit;
            return Ok(());
        }
        let (lit, extra) = if lit > 60 {
            let extra = lit - 60;
            ((word & WORD_MASK[extra]) as usize + 1, extra)
        } else {
            (lit, 0)
        };
        *ip += 1 + extra;
        if lit <= 64 && src.len() - *ip >= 64 && len - *op >= lit {
            // A short literal: 16-byte copies, not a call to memcpy.
            // SAFETY: 64 input bytes from ip are readable; op + lit <= len and the last copy
            // ends less than 16 bytes past op + lit, inside the slack.
            unsafe {
                let (s, d) = (sp.add(*ip), dst.add(*op));
                let mut k = 0;
                while k < lit {
                    std::ptr::copy_nonoverlapping(s.add(k), d.add(k), 16);
                    k += 16;
                }
            }
        } else {
            // SAFETY: `dst` holds `len` bytes and more (this function's contract); `literal`
            // checks that the copy stays inside `src` and `dst[op..len]`.
            unsafe { literal(src, *ip, dst, *op, len, lit)? };
        }
        *ip += lit;
        *op += lit;
        return Ok(());
    }
    let e = COPY_TAGS[tag as usize] as usize;
    let extra = e >> 11;
    let m = e & 0xff;
    let offset = (e & 0x700) + (word & WORD_MASK[extra]) as usize;
    // SAFETY: `dst` holds `len + SLACK` bytes with `dst[..op]` written (this function's
    // contract); `copy` checks that it reads inside `dst[..op]` and writes inside `dst[op..len]`.
    unsafe { copy(dst, *op, offset, m, len)? };
    *ip += 1 + extra;
    *op += m;
    Ok(())
}

impl<'a> Block<'a> {
    /// Checks the length `input` declares (it must be `expected`) and reserves room for it
    /// (and [`SLACK`]) in `out`'s spare capacity.
    fn begin(input: &'a [u8], expected: usize, out: &'a mut Vec<u8>) -> Result<Self, SnappyError> {
        let (len, start) = decompressed_len(input)?;
        // A tag expands to at most 64 bytes from 2 or 3 (a literal never grows): a declared
        // length past that is a lie, refused before it is allocated.
        if len != expected || len > (input.len() - start).saturating_mul(32) {
            return Err(SnappyError::Length);
        }
        out.reserve(len + SLACK);
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        Ok(Self {
            src: &input[start..],
            out,
            dst,
            len,
            ip: 0,
            op: 0,
        })
    }

    /// Appends the decoded bytes to the output, if decoding wrote all of them; else leaves
    /// its length as it was.
    fn end(self) {
        if self.op == self.len {
            // SAFETY: `dst` is `out`'s spare capacity and `dst[..op]` is written (the block's
            // invariant), so with `op == len` the `len` bytes after `out.len()` are written,
            // and `reserve` made room for them.
            unsafe { self.out.set_len(self.out.len() + self.len) };
        }
    }

    /// Decodes the rest of the block: fixed-size reads while they fit, then the tail, where a
    /// fixed-size read could pass the end of the input, with every read checked.
    #[inline(always)]
    fn finish(&mut self) -> Result<(), SnappyError> {
        let (src, dst, len) = (self.src, self.dst, self.len);
        let (mut ip, mut op) = (self.ip, self.op);
        let n = src.len();
        while n - ip >= FAST_INPUT {
            // SAFETY: FAST_INPUT input bytes are left (the loop's condition); `dst` holds
            // `len + SLACK` bytes with `dst[..op]` written (the block's invariant).
            unsafe { fast_step(src, dst, len, &mut ip, &mut op)? };
        }
        while ip < n {
            let tag = src[ip];
            ip += 1;
            match element(tag, src, &mut ip)? {
                Element::Literal(lit) => {
                    // SAFETY: `dst` holds `len` bytes and more (the block's invariant);
                    // `literal` checks that the copy stays inside `src` and `dst[op..len]`.
                    unsafe { literal(src, ip, dst, op, len, lit)? };
                    ip += lit;
                    op += lit;
                }
                Element::Copy { offset, len: m } => {
                    // SAFETY: `dst` holds `len + SLACK` bytes with `dst[..op]` written (the
                    // block's invariant); `copy` checks that it reads inside `dst[..op]` and
                    // writes inside `dst[op..len]`.
                    unsafe { copy(dst, op, offset, m, len)? };
                    op += m;
                }
            }
        }
        self.ip = ip;
        self.op = op;
        if op != len {
            return Err(SnappyError::Short);
        }
        Ok(())
    }
}

/// A tag's element, read with every read checked.
enum Element {
    /// A literal of this many bytes, which follow the tag.
    Literal(usize),
    /// A copy of `len` bytes from `offset` bytes back.
    Copy { offset: usize, len: usize },
}

/// The element of `tag` (read at `src[*ip - 1]`), moving `ip` past the bytes after the tag
/// that give its length or offset (not past a literal's bytes).
#[inline(always)]
fn element(tag: u8, src: &[u8], ip: &mut usize) -> Result<Element, SnappyError> {
    if tag & 3 == 0 {
        let mut lit = (tag >> 2) as usize + 1;
        if lit > 60 {
            let extra = lit - 60;
            lit = le(src.get(*ip..*ip + extra).ok_or(SnappyError::Truncated)?) + 1;
            *ip += extra;
        }
        return Ok(Element::Literal(lit));
    }
    let e = COPY_TAGS[tag as usize] as usize;
    let extra = e >> 11;
    let word = le(src.get(*ip..*ip + extra).ok_or(SnappyError::Truncated)?);
    *ip += extra;
    Ok(Element::Copy {
        offset: (e & 0x700) + word,
        len: e & 0xff,
    })
}

/// The little-endian number in `bytes` (at most 4 of them).
fn le(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .fold(0, |v, (i, &b)| v | (b as usize) << (8 * i))
}

/// Copies the `lit` bytes of a literal at `src[ip..]` to `dst + op`, after checking that they
/// are inside `src` and `dst[op..len]`.
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes.
#[inline(always)]
unsafe fn literal(
    src: &[u8],
    ip: usize,
    dst: *mut u8,
    op: usize,
    len: usize,
    lit: usize,
) -> Result<(), SnappyError> {
    if src.len() - ip < lit || len - op < lit {
        return Err(SnappyError::Literal);
    }
    // SAFETY: both ranges checked just above.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr().add(ip), dst.add(op), lit) };
    Ok(())
}

/// The first `n` bytes of the raw snappy block `input`'s decompressed data (all of it if it is
/// shorter), decoded up to there and no further: what a page's levels take, when the values
/// after them are not wanted. Checked as [`decompress_into`] checks, in safe code: this runs
/// on a page's first few kilobytes, not on its values.
///
/// # Errors
/// A [`SnappyError`] if the block is malformed before its `n`th byte.
pub(crate) fn decompress_prefix(input: &[u8], n: usize) -> Result<Vec<u8>, SnappyError> {
    let (len, start) = decompressed_len(input)?;
    if len > (input.len() - start).saturating_mul(32) {
        return Err(SnappyError::Length);
    }
    let want = n.min(len);
    let src = &input[start..];
    let mut out = Vec::with_capacity(want);
    let mut ip = 0;
    while out.len() < want {
        let tag = *src.get(ip).ok_or(SnappyError::Short)?;
        ip += 1;
        let (offset, m) = match element(tag, src, &mut ip)? {
            Element::Literal(lit) => {
                let bytes = src.get(ip..ip + lit).ok_or(SnappyError::Literal)?;
                if len - out.len() < lit {
                    return Err(SnappyError::Literal);
                }
                // Only what is wanted of a long literal.
                out.extend_from_slice(&bytes[..lit.min(want - out.len())]);
                ip += lit;
                continue;
            }
            Element::Copy { offset, len: m } => (offset, m),
        };
        if offset == 0 || offset > out.len() || len - out.len() < m {
            return Err(SnappyError::Copy);
        }
        // Byte by byte: the source may overlap what this copy writes.
        let from = out.len() - offset;
        for k in 0..m.min(want - out.len()) {
            let b = out[from + k];
            out.push(b);
        }
    }
    Ok(out)
}

/// The bytes of a raw snappy block's first element if it is a literal (a block usually opens
/// with one): the start of the decompressed data, read without decompressing.
pub(crate) fn first_literal(block: &[u8]) -> Option<&[u8]> {
    let (_, start) = decompressed_len(block).ok()?;
    let tag = *block.get(start)?;
    if tag & 3 != 0 {
        return None;
    }
    let (lit, data) = match (tag >> 2) as usize + 1 {
        n @ 1..=60 => (n, start + 1),
        n => {
            let extra = n - 60;
            (
                le(block.get(start + 1..start + 1 + extra)?) + 1,
                start + 1 + extra,
            )
        }
    };
    block.get(data..data.checked_add(lit)?)
}

/// Copies `m` (1..=64) bytes from `offset` bytes back to `dst + op`, after checking that they
/// are inside `dst[..op]` and `dst[op..len]`.
///
/// # Safety
/// `dst` must be valid for writes of `len + SLACK` bytes, with `dst[..op]` written.
#[inline(always)]
unsafe fn copy(
    dst: *mut u8,
    op: usize,
    offset: usize,
    m: usize,
    len: usize,
) -> Result<(), SnappyError> {
    if offset.wrapping_sub(1) >= op || len - op < m {
        return Err(SnappyError::Copy);
    }
    // SAFETY: the source starts `offset` (1..=op) bytes back, inside what is written, and
    // each fixed-size load reads only bytes written before it (it ends at or before the
    // store's start when `offset` >= the step). The copy ends at op + m <= len and the
    // fixed-size stores end at most 15 bytes past it, inside the slack.
    unsafe {
        let d = dst.add(op);
        let s = d.sub(offset);
        if offset >= 8 {
            std::ptr::copy_nonoverlapping(s, d, 8);
            std::ptr::copy_nonoverlapping(s.add(8), d.add(8), 8);
            let mut k = 16;
            while k < m {
                std::ptr::copy_nonoverlapping(s.add(k), d.add(k), 8);
                std::ptr::copy_nonoverlapping(s.add(k + 8), d.add(k + 8), 8);
                k += 16;
            }
        } else {
            // A repeating pattern shorter than 8 bytes: byte by byte, each reading one already
            // written.
            for k in 0..m {
                *d.add(k) = *s.add(k);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decompress(input: &[u8]) -> Result<Vec<u8>, SnappyError> {
        let (len, _) = decompressed_len(input)?;
        let mut out = Vec::new();
        decompress_into(input, len, &mut out)?;
        Ok(out)
    }

    /// Data shaped like Parquet pages: small integers as 8 bytes, repeated runs, random bytes.
    fn page_like() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(0u64..200_000, 0..3000)
                .prop_map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            proptest::collection::vec((any::<u8>(), 1usize..300), 0..50).prop_map(|v| v
                .iter()
                .flat_map(|&(b, n)| std::iter::repeat_n(b, n))
                .collect()),
            proptest::collection::vec(any::<u8>(), 0..5000),
            proptest::collection::vec(0u8..4, 0..5000),
        ]
    }

    proptest! {
        /// Whatever the snap crate's encoder writes decodes to the original bytes.
        #[test]
        fn decodes_what_snap_encodes(data in page_like()) {
            let block = snap::raw::Encoder::new().compress_vec(&data).expect("compress");
            prop_assert_eq!(decompress(&block).expect("valid block"), data);
        }

        /// Damaged blocks are errors or some bytes, as the snap crate's decoder says; never a
        /// panic or an access outside the buffers (run under Miri or ASan to see the latter).
        #[test]
        fn damaged_blocks_agree_with_snap(
            data in page_like(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut block = snap::raw::Encoder::new().compress_vec(&data).expect("compress");
            for (at, x) in flips {
                let i = at % block.len();
                block[i] ^= x;
            }
            block.truncate(1 + cut % block.len());
            let theirs = snap::raw::Decoder::new().decompress_vec(&block).ok();
            prop_assert_eq!(decompress(&block).ok(), theirs);
        }
    }

    proptest! {
        /// Two blocks decoded together give what each gives alone.
        #[test]
        fn pairs_decode_as_one_at_a_time(a in page_like(), b in page_like()) {
            let mut enc = snap::raw::Encoder::new();
            let (ba, bb) = (enc.compress_vec(&a).expect("a"), enc.compress_vec(&b).expect("b"));
            let (mut oa, mut ob) = (vec![7u8], Vec::new());
            decompress_two_into((&ba, a.len(), &mut oa), (&bb, b.len(), &mut ob))
                .expect("valid blocks");
            prop_assert_eq!(&oa[1..], &a[..]);
            prop_assert_eq!(ob, b);
        }

        /// A pair with a damaged block is an error exactly when one of its blocks alone is, and
        /// leaves both outputs as they were.
        #[test]
        fn damaged_pairs_fail_as_their_blocks_do(
            a in page_like(),
            b in page_like(),
            flips in proptest::collection::vec((any::<bool>(), any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut enc = snap::raw::Encoder::new();
            let mut blocks = [enc.compress_vec(&a).expect("a"), enc.compress_vec(&b).expect("b")];
            let lens = [a.len(), b.len()];
            for (second, at, x) in flips {
                let block = &mut blocks[usize::from(second)];
                let i = at % block.len();
                block[i] ^= x;
            }
            let alone: Vec<Option<Vec<u8>>> = (0..2)
                .map(|k| {
                    let mut out = Vec::new();
                    decompress_into(&blocks[k], lens[k], &mut out).ok().map(|()| out)
                })
                .collect();
            let (mut oa, mut ob) = (vec![1u8, 2], vec![3u8]);
            let pair = decompress_two_into(
                (&blocks[0], lens[0], &mut oa),
                (&blocks[1], lens[1], &mut ob),
            );
            match (&alone[0], &alone[1]) {
                (Some(x), Some(y)) => {
                    prop_assert!(pair.is_ok());
                    prop_assert_eq!(&oa[2..], &x[..]);
                    prop_assert_eq!(&ob[1..], &y[..]);
                }
                _ => {
                    prop_assert!(pair.is_err());
                    prop_assert_eq!(oa, vec![1u8, 2]);
                    prop_assert_eq!(ob, vec![3u8]);
                }
            }
        }
    }

    proptest! {
        /// A prefix is the decompressed data's first bytes; on a damaged block, it is those
        /// bytes or an error, never a panic, and an error only if the whole block is one too.
        #[test]
        fn prefixes_are_what_the_whole_block_starts_with(
            data in page_like(),
            n in 0usize..6000,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        ) {
            let mut block = snap::raw::Encoder::new().compress_vec(&data).expect("compress");
            for &(at, x) in &flips {
                let i = at % block.len();
                block[i] ^= x;
            }
            let whole = decompress(&block);
            match (decompress_prefix(&block, n), whole) {
                (Ok(p), Ok(w)) => prop_assert_eq!(&p[..], &w[..n.min(w.len())]),
                (Err(_), Ok(_)) => prop_assert!(false, "a prefix of a valid block failed"),
                (Ok(p), Err(_)) => {
                    // Damage past the prefix; undamaged, the prefix is the original's.
                    if flips.is_empty() {
                        prop_assert_eq!(&p[..], &data[..n.min(data.len())]);
                    }
                }
                (Err(_), Err(_)) => {}
            }
            if flips.is_empty() {
                prop_assert_eq!(decompress_prefix(&block, n).expect("valid"), &data[..n.min(data.len())]);
            }
        }
    }

    #[test]
    fn a_wrong_expected_length_is_an_error() {
        let block = snap::raw::Encoder::new()
            .compress_vec(b"hello hello hello")
            .expect("compress");
        let mut out = vec![1, 2];
        assert_eq!(
            decompress_into(&block, 16, &mut out),
            Err(SnappyError::Length)
        );
        assert_eq!(out, [1, 2]);
        decompress_into(&block, 17, &mut out).expect("valid");
        assert_eq!(&out[2..], b"hello hello hello");
    }

    #[test]
    fn hand_made_blocks() {
        // len 5, literal "ab", copy offset 2 len 4 (1-byte-offset form): "ababab"[..6]? No: 2 + 4.
        let ok = [6u8, 0b0000_0100, b'a', b'b', 0b0000_0001, 2];
        assert_eq!(decompress(&ok).expect("valid"), b"ababab");
        // The same copy reaching 3 bytes back, before the start.
        let bad = [6u8, 0b0000_0100, b'a', b'b', 0b0000_0001, 3];
        assert_eq!(decompress(&bad), Err(SnappyError::Copy));
        // Offset 0.
        let zero = [6u8, 0b0000_0100, b'a', b'b', 0b0000_0001, 0];
        assert_eq!(decompress(&zero), Err(SnappyError::Copy));
        // Declares more than the elements make.
        let short = [7u8, 0b0000_0100, b'a', b'b', 0b0000_0001, 2];
        assert_eq!(decompress(&short), Err(SnappyError::Short));
        // A literal longer than the rest of the input.
        let lit = [3u8, 0b0000_1000, b'a'];
        assert_eq!(decompress(&lit), Err(SnappyError::Literal));
        // A 2-byte-offset copy cut off.
        let cut = [4u8, 0b0000_0000, b'a', 0b0000_1110, 1];
        assert_eq!(decompress(&cut), Err(SnappyError::Truncated));
        // A length varint that never ends.
        assert_eq!(decompress(&[0x80; 6]), Err(SnappyError::Length));
        assert_eq!(decompress(&[]), Err(SnappyError::Length));
    }
}
