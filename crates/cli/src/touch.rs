//! Touching every byte of a batch, so a benchmark cannot be faked by lazy decoding.

use arrow_array::RecordBatch;
use arrow_data::ArrayData;

/// XOR of every 8-byte word (and trailing byte) of every buffer under `batch`.
pub(crate) fn touch_batch(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .fold(0, |acc, c| acc ^ touch_data(&c.to_data()))
}

fn touch_data(d: &ArrayData) -> u64 {
    let mut x = 0;
    for b in d.buffers() {
        x ^= xor_bytes(b.as_slice());
    }
    if let Some(n) = d.nulls() {
        x ^= xor_bytes(n.buffer().as_slice());
    }
    for c in d.child_data() {
        x ^= touch_data(c);
    }
    x
}

fn xor_bytes(bytes: &[u8]) -> u64 {
    // Four independent accumulators let the compiler vectorise the loop.
    let (blocks, tail) = bytes.as_chunks::<32>();
    let mut acc = [0u64; 4];
    for block in blocks {
        let (words, _) = block.as_chunks::<8>();
        for (a, w) in acc.iter_mut().zip(words) {
            *a ^= u64::from_le_bytes(*w);
        }
    }
    let mut x = acc[0] ^ acc[1] ^ acc[2] ^ acc[3];
    // The tail starts at a multiple of 8, so byte i of it lands at bit 8 * (i % 8).
    for (i, b) in tail.iter().enumerate() {
        x ^= u64::from(*b) << (8 * (i % 8));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_matches_a_plain_fold() {
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 100] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let mut want = 0u64;
            for (i, b) in bytes.iter().enumerate() {
                want ^= u64::from(*b) << (8 * (i % 8));
            }
            assert_eq!(xor_bytes(&bytes), want, "n = {n}");
        }
    }
}
