//! Scans of decoded levels, eight at a time: where a list column's rows start (its zero
//! repetition levels) and whether every definition level is the maximum.
//!
//! A list of 136 numbers on average (the ML set's `tokens`) has one row start in 136 levels,
//! so a loop that looks at each level spends nearly all its time finding nothing. These read a
//! word of eight levels and test it whole; only a word holding a zero is looked into.

/// Bit `8k + 7` set where byte `k` of `w` is zero, and no other bit: exact for any bytes (no
/// carry crosses a byte, as each byte's low seven bits plus `0x7f` stay below `0x100`).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7)
}

#[inline(always)]
fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().expect("chunks of eight"))
}

/// The place in `rep` of its zero number `nth` (counting from 0), or `Err` with how many
/// zeros `rep` holds when that is `nth` or fewer.
pub(crate) fn nth_zero(rep: &[u8], nth: usize) -> Result<usize, usize> {
    let mut seen = 0;
    let mut chunks = rep.chunks_exact(8);
    for (k, chunk) in chunks.by_ref().enumerate() {
        let mut m = zero_bytes(word(chunk));
        let c = m.count_ones() as usize;
        if seen + c > nth {
            for _ in seen..nth {
                m &= m - 1;
            }
            return Ok(k * 8 + m.trailing_zeros() as usize / 8);
        }
        seen += c;
    }
    let base = rep.len() - chunks.remainder().len();
    for (i, &r) in chunks.remainder().iter().enumerate() {
        if r == 0 {
            if seen == nth {
                return Ok(base + i);
            }
            seen += 1;
        }
    }
    Err(seen)
}

/// Calls `f` with the place of each zero in `rep`, in order.
#[inline]
pub(crate) fn each_zero(rep: &[u8], mut f: impl FnMut(usize)) {
    let mut chunks = rep.chunks_exact(8);
    for (k, chunk) in chunks.by_ref().enumerate() {
        let mut m = zero_bytes(word(chunk));
        while m != 0 {
            f(k * 8 + m.trailing_zeros() as usize / 8);
            m &= m - 1;
        }
    }
    let base = rep.len() - chunks.remainder().len();
    for (i, &r) in chunks.remainder().iter().enumerate() {
        if r == 0 {
            f(base + i);
        }
    }
}

/// True when every level of `def` is `max`.
pub(crate) fn all_are(def: &[u8], max: u8) -> bool {
    // Without an early exit within a block, the compiler compares a block in a few vector
    // instructions; a block that fails ends the scan.
    def.chunks(64)
        .all(|c| c.iter().fold(true, |all, &d| all & (d == max)))
}

/// How many levels of `def` are `max`, and whether some level continuing a row (`rep` not
/// zero) is below `element` (a null or empty list given more than one level).
pub(crate) fn count_valid(rep: &[u8], def: &[u8], element: u8, max: u8) -> (usize, bool) {
    rep.iter()
        .zip(def)
        .fold((0, false), |(valid, bad), (&r, &d)| {
            (valid + usize::from(d == max), bad | (r != 0 && d < element))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zeros(rep: &[u8]) -> Vec<usize> {
        (0..rep.len()).filter(|&i| rep[i] == 0).collect()
    }

    proptest! {
        /// Each scan equals its one-level-at-a-time definition, for levels of any byte value
        /// (not only 0 and 1), any length and any place the zeros fall.
        #[test]
        fn scans_equal_level_by_level_loops(
            rep in prop::collection::vec(prop_oneof![Just(0u8), Just(1), any::<u8>()], 0..200),
            def in prop::collection::vec(prop_oneof![Just(3u8), Just(2), any::<u8>()], 0..200),
            nth in 0usize..60,
        ) {
            let at = zeros(&rep);
            let want = at.get(nth).copied().ok_or(at.len());
            prop_assert_eq!(nth_zero(&rep, nth), want);
            let mut got = Vec::new();
            each_zero(&rep, |i| got.push(i));
            prop_assert_eq!(got, at);
            prop_assert_eq!(all_are(&def, 3), def.iter().all(|&d| d == 3));
            let n = rep.len().min(def.len());
            let (rep, def) = (&rep[..n], &def[..n]);
            let valid = def.iter().filter(|&&d| d == 3).count();
            let bad = rep.iter().zip(def).any(|(&r, &d)| r != 0 && d < 2);
            prop_assert_eq!(count_valid(rep, def, 2, 3), (valid, bad));
        }
    }

    #[test]
    fn zero_bytes_marks_exactly_the_zero_bytes() {
        for w in [
            0u64,
            u64::MAX,
            0x0100_0100_0100_0100,
            0x8000_0000_0000_0080,
            0x0001,
        ] {
            let want = (0..8)
                .filter(|k| (w >> (8 * k)) & 0xff == 0)
                .fold(0u64, |m, k| m | 0x80 << (8 * k));
            assert_eq!(zero_bytes(w), want, "{w:#x}");
        }
    }
}
