//! Touching every value byte of a batch, so a benchmark cannot be faked by lazy decoding.
//!
//! Only the bytes an array's slice covers are read (a batch sliced from a larger one is not
//! charged for its neighbours), and the checksum does not depend on where batches were cut:
//! the same rows give the same checksum from any reader.

use arrow_array::RecordBatch;
use arrow_buffer::BooleanBuffer;
use arrow_data::ArrayData;
use arrow_schema::DataType;

/// What touching some batches found: a checksum of their values and their logical size.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Touched {
    /// Adds up over batches: the checksum of many batches is the wrapping sum of theirs.
    pub(crate) checksum: u64,
    /// The bytes of the slices' values, offsets and validity, as Arrow lays them out.
    pub(crate) bytes: u64,
}

impl Touched {
    pub(crate) fn add(&mut self, other: Touched) {
        self.checksum = self.checksum.wrapping_add(other.checksum);
        self.bytes += other.bytes;
    }
}

/// Touches every value byte of `batch`.
pub(crate) fn touch_batch(batch: &RecordBatch) -> Touched {
    let mut total = Touched::default();
    for (i, c) in batch.columns().iter().enumerate() {
        let mut t = Touched::default();
        touch(&c.to_data(), &mut t);
        // Weighting by column keeps two swapped columns from cancelling out.
        let weight = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(2 * i as u64 + 1);
        total.checksum = total.checksum.wrapping_add(t.checksum.wrapping_mul(weight));
        total.bytes += t.bytes;
    }
    total
}

fn touch(d: &ArrayData, t: &mut Touched) {
    let (off, len) = (d.offset(), d.len());
    if let Some(n) = d.nulls() {
        t.checksum = t.checksum.wrapping_add(n.null_count() as u64);
        t.bytes += len.div_ceil(8) as u64;
    }
    let buffer = |i: usize| d.buffers().get(i).map_or(&[][..], |b| b.as_slice());
    match d.data_type() {
        DataType::Boolean => {
            let bits = BooleanBuffer::new(d.buffers()[0].clone(), off, len);
            t.checksum = t.checksum.wrapping_add(bits.count_set_bits() as u64);
            t.bytes += len.div_ceil(8) as u64;
        }
        DataType::Utf8 | DataType::Binary => var_len::<4>(buffer(0), buffer(1), off, len, t),
        DataType::LargeUtf8 | DataType::LargeBinary => {
            var_len::<8>(buffer(0), buffer(1), off, len, t);
        }
        DataType::List(_) | DataType::Map(..) => {
            let (s, e) = offsets::<4>(buffer(0), off, len);
            t.bytes += 4 * (len as u64 + 1);
            touch(&d.child_data()[0].slice(s, e - s), t);
        }
        DataType::LargeList(_) => {
            let (s, e) = offsets::<8>(buffer(0), off, len);
            t.bytes += 8 * (len as u64 + 1);
            touch(&d.child_data()[0].slice(s, e - s), t);
        }
        DataType::FixedSizeList(_, n) => {
            let n = *n as usize;
            touch(&d.child_data()[0].slice(off * n, len * n), t);
        }
        DataType::Struct(_) => {
            for c in d.child_data() {
                touch(&c.slice(off, len), t);
            }
        }
        DataType::Dictionary(key, _) => {
            let w = key.primitive_width().unwrap_or(4);
            values(&buffer(0)[off * w..(off + len) * w], t);
            touch(&d.child_data()[0], t);
        }
        DataType::FixedSizeBinary(w) => {
            let w = *w as usize;
            values(&buffer(0)[off * w..(off + len) * w], t);
        }
        other => match other.primitive_width() {
            Some(w) => values(&buffer(0)[off * w..(off + len) * w], t),
            // Anything else (views, unions, run ends): every buffer, whole.
            None => {
                for b in d.buffers() {
                    values(b.as_slice(), t);
                }
                for c in d.child_data() {
                    touch(c, t);
                }
            }
        },
    }
}

/// The first and last value offsets of rows `off..off + len`.
fn offsets<const W: usize>(buf: &[u8], off: usize, len: usize) -> (usize, usize) {
    let at = |i: usize| {
        let mut b = [0u8; 8];
        b[..W].copy_from_slice(&buf[i * W..(i + 1) * W]);
        u64::from_le_bytes(b) as usize
    };
    (at(off), at(off + len))
}

fn var_len<const W: usize>(offs: &[u8], data: &[u8], off: usize, len: usize, t: &mut Touched) {
    let (s, e) = offsets::<W>(offs, off, len);
    t.bytes += (W * (len + 1)) as u64;
    // Lengths, not offsets: they do not depend on where the batch was cut.
    t.checksum = t.checksum.wrapping_add((e - s) as u64);
    values(&data[s..e], t);
}

/// Adds the sum of `bytes` (each byte once, whatever its position).
fn values(bytes: &[u8], t: &mut Touched) {
    t.bytes += bytes.len() as u64;
    t.checksum = t.checksum.wrapping_add(byte_sum(bytes));
}

fn byte_sum(bytes: &[u8]) -> u64 {
    // Sum 8-byte words in 16-bit lanes, which the compiler vectorises: 256 words add at most
    // 256 * 255 < 2^16 to a lane, so each chunk of 256 is folded before a lane can overflow.
    const LANE: u64 = 0x00ff_00ff_00ff_00ff;
    let (words, tail) = bytes.as_chunks::<8>();
    let mut total = 0u64;
    for chunk in words.chunks(256) {
        let (mut even, mut odd) = (0u64, 0u64);
        for w in chunk {
            let v = u64::from_le_bytes(*w);
            even += v & LANE;
            odd += (v >> 8) & LANE;
        }
        for acc in [even, odd] {
            total += (acc & 0xffff) + ((acc >> 16) & 0xffff) + ((acc >> 32) & 0xffff) + (acc >> 48);
        }
    }
    total + tail.iter().map(|&b| u64::from(b)).sum::<u64>()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Int32Builder, ListBuilder};
    use arrow_array::{ArrayRef, Int64Array, StringArray};

    use super::*;

    #[test]
    fn byte_sum_matches_a_plain_sum() {
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 100, 70_000] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let want: u64 = bytes.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(byte_sum(&bytes), want, "n = {n}");
        }
        assert_eq!(byte_sum(&vec![0xff; 8 << 16]), 0xff * (8 << 16));
    }

    #[test]
    fn the_checksum_does_not_depend_on_where_batches_are_cut() {
        let mut list = ListBuilder::new(Int32Builder::new());
        for i in 0..100 {
            for k in 0..(i % 5) {
                list.values().append_value(i * 10 + k);
            }
            list.append(i % 7 != 0);
        }
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from_iter_values(0..100)) as ArrayRef,
            ),
            (
                "text",
                Arc::new(StringArray::from_iter(
                    (0..100).map(|i| (i % 3 != 0).then(|| "ab".repeat(i % 9))),
                )) as ArrayRef,
            ),
            ("tokens", Arc::new(list.finish()) as ArrayRef),
        ])
        .expect("valid");
        let whole = touch_batch(&batch);
        for cut in [1, 13, 50, 99] {
            let mut parts = touch_batch(&batch.slice(0, cut));
            parts.add(touch_batch(&batch.slice(cut, 100 - cut)));
            assert_eq!(parts.checksum, whole.checksum, "cut at {cut}");
        }
        // Different data, different checksum.
        assert_ne!(touch_batch(&batch.slice(1, 99)).checksum, whole.checksum);
    }
}
