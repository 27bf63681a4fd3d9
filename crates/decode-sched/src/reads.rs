//! Turning a decoder's byte ranges into physical requests (coalesce nearby ranges, split huge
//! ones) and the fetched pieces back into one `Bytes` per asked range.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// The physical reads for `ranges`: sorted, ranges closer than `gap` bytes merged into one
/// (overlaps too), each merged span cut into pieces of at most `max` bytes. Cuts fall where an
/// asked range starts or ends when one is close enough, so that few ranges straddle two reads
/// (such a range is copied together from its pieces: on tpch.parquet at 8 MiB, equal cuts
/// copied about two column chunks per row group); a range longer than `max` is cut into equal
/// pieces. Empty ranges need no read.
pub(crate) fn plan_reads(ranges: &[Range<u64>], gap: u64, max: u64) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    sorted.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted.iter().cloned() {
        match merged.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r),
        }
    }
    // Where asked ranges start and end: the places to cut.
    let mut bounds: Vec<u64> = sorted.iter().flat_map(|r| [r.start, r.end]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let max = max.max(1);
    let mut out = Vec::with_capacity(merged.len());
    for m in merged {
        let mut s = m.start;
        while m.end - s > max {
            let limit = s + max;
            // The last boundary that keeps the read within `max`, if any lies past `s`.
            let at = bounds.partition_point(|&b| b <= limit);
            let e = match bounds[..at].last() {
                Some(&b) if b > s => b,
                _ => {
                    // One range runs past `limit`: cut its stretch up to the next boundary
                    // (or the span's end) into equal pieces.
                    let next = bounds.get(at).copied().unwrap_or(m.end).min(m.end);
                    let n = (next - s).div_ceil(max);
                    s + (next - s).div_ceil(n)
                }
            };
            out.push(s..e);
            s = e;
        }
        out.push(s..m.end);
    }
    out
}

/// The bytes of `range` from the fetched `pieces` (sorted by start, as [`plan_reads`] makes
/// them): a slice when one piece holds it, else a copy stitched from several.
///
/// Returns `None` when the pieces do not cover the range (a bug, reported by the caller).
pub(crate) fn assemble(range: &Range<u64>, pieces: &[(Range<u64>, Bytes)]) -> Option<Bytes> {
    if range.start >= range.end {
        return Some(Bytes::new());
    }
    let first = pieces.partition_point(|(p, _)| p.end <= range.start);
    let (p, b) = pieces.get(first)?;
    if p.start > range.start {
        return None;
    }
    if range.end <= p.end {
        let s = (range.start - p.start) as usize;
        let e = (range.end - p.start) as usize;
        return Some(b.slice(s..e));
    }
    let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
    let mut at = range.start;
    for (p, b) in &pieces[first..] {
        if at >= range.end {
            break;
        }
        if p.start > at {
            return None;
        }
        let s = (at - p.start) as usize;
        let e = (range.end.min(p.end) - p.start) as usize;
        out.extend_from_slice(&b[s..e]);
        at = p.start + e as u64;
    }
    (at == range.end).then(|| out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(n: u64) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    proptest! {
        /// Whatever the gap and the split size, every asked range comes back with exactly its
        /// bytes, no physical read exceeds the split size, and the reads cover only bytes within
        /// `gap` of an asked range.
        #[test]
        fn planned_reads_give_back_every_range(
            ranges in proptest::collection::vec((0u64..4000, 0u64..600), 0..12),
            gap in 0u64..300,
            max in 1u64..2000,
        ) {
            let file = data(5000);
            let ranges: Vec<Range<u64>> = ranges.into_iter().map(|(s, l)| s..(s + l).min(5000)).collect();
            let reads = plan_reads(&ranges, gap, max);
            for w in reads.windows(2) {
                prop_assert!(w[0].end <= w[1].start, "reads overlap: {:?}", reads);
            }
            for r in &reads {
                prop_assert!(r.end - r.start <= max);
                let near = ranges.iter().any(|a| a.start < a.end
                    && r.start < a.end.saturating_add(gap) && a.start < r.end.saturating_add(gap));
                prop_assert!(near, "read {:?} is near no asked range", r);
            }
            let pieces: Vec<(Range<u64>, Bytes)> = reads.iter()
                .map(|r| (r.clone(), Bytes::copy_from_slice(&file[r.start as usize..r.end as usize])))
                .collect();
            for a in &ranges {
                let got = assemble(a, &pieces);
                prop_assert_eq!(got.as_deref(), Some(&file[a.start as usize..a.end as usize]));
            }
        }
    }

    #[test]
    #[allow(
        clippy::single_range_in_vec_init,
        reason = "lists of one range on purpose"
    )]
    fn adjacent_ranges_become_one_read_and_huge_ones_split() {
        assert_eq!(
            plan_reads(&[0..10, 10..20, 25..30], 0, 100),
            vec![0..20, 25..30]
        );
        assert_eq!(plan_reads(&[0..10, 10..20, 25..30], 5, 100), vec![0..30]);
        assert_eq!(
            plan_reads(&[0..100], 0, 30),
            vec![0..25, 25..50, 50..75, 75..100]
        );
        assert_eq!(plan_reads(&[5..5], 0, 30), Vec::<Range<u64>>::new());
        // Cut where ranges meet rather than in equal pieces through them.
        assert_eq!(
            plan_reads(&[0..40, 40..70, 70..100], 0, 50),
            vec![0..40, 40..70, 70..100]
        );
        // A range longer than the limit among them: its stretch is cut evenly (the last read
        // may take in the next range whole).
        assert_eq!(
            plan_reads(&[0..10, 10..130, 130..140], 0, 50),
            vec![0..10, 10..50, 50..90, 90..140]
        );
    }

    #[test]
    fn uncovered_range_is_none() {
        let pieces = vec![
            (0..10, Bytes::from(vec![0u8; 10])),
            (20..30, Bytes::from(vec![0u8; 10])),
        ];
        assert!(assemble(&(5..25), &pieces).is_none());
        assert!(assemble(&(30..31), &pieces).is_none());
    }
}
