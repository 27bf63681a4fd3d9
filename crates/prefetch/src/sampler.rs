//! Epoch orders for the Loader: sequential, exact global shuffle (a seeded bijection on
//! `[0, n)`, O(1) memory) and locality-aware shuffle (shuffled partitions, rows shuffled within
//! windows of a few partitions). Every order maps a position to a row in O(1) or O(log P).

use std::ops::Range;

use arrowfeed_traits::Permutation;
use arrowfeed_traits::permutation::mix;

/// The order of an epoch's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Shuffle {
    /// Rows in storage order.
    None,
    /// An exact global shuffle: a seeded permutation of all rows, different every epoch, that
    /// costs O(1) memory however many rows there are.
    #[default]
    Global,
    /// Locality-aware: the dataset's partitions (shards) in a shuffled order, and rows shuffled
    /// within windows of `window` consecutive partitions of that order, so reads stay within a
    /// few partitions at a time.
    Local {
        /// Partitions per shuffle window (at least 1).
        window: usize,
    },
}

/// The order of one epoch: position → row.
#[derive(Debug, Clone)]
pub(crate) enum EpochOrder {
    Sequential,
    Global(Permutation),
    Local {
        /// Shuffled partitions: (start row, rows), in epoch order.
        parts: Vec<(u64, u64)>,
        /// Rows before each shuffled partition, then the total.
        cum: Vec<u64>,
        window: usize,
        key: u64,
    },
}

impl EpochOrder {
    pub(crate) fn new(
        shuffle: Shuffle,
        n: u64,
        partitions: &[Range<u64>],
        seed: u64,
        epoch: u64,
    ) -> Self {
        let key = mix(seed ^ mix(epoch.wrapping_add(0x5151)));
        match shuffle {
            Shuffle::None => Self::Sequential,
            Shuffle::Global => Self::Global(Permutation::new(n, key)),
            Shuffle::Local { window } => {
                let p = Permutation::new(partitions.len() as u64, key ^ 0xa5a5);
                let parts: Vec<(u64, u64)> = (0..partitions.len() as u64)
                    .map(|j| {
                        let r = &partitions[p.apply(j) as usize];
                        (r.start, r.end - r.start)
                    })
                    .collect();
                let mut cum = Vec::with_capacity(parts.len() + 1);
                let mut t = 0;
                for (_, len) in &parts {
                    cum.push(t);
                    t += len;
                }
                cum.push(t);
                Self::Local {
                    parts,
                    cum,
                    window: window.max(1),
                    key,
                }
            }
        }
    }

    /// The row at `pos` of the epoch.
    pub(crate) fn row(&self, pos: u64) -> u64 {
        match self {
            Self::Sequential => pos,
            Self::Global(p) => p.apply(pos),
            Self::Local {
                parts,
                cum,
                window,
                key,
            } => {
                // The shuffled partition holding `pos`, its window, and the window's rows.
                let j = cum.partition_point(|&c| c <= pos) - 1;
                let g = j / window;
                let first = g * window;
                let last = (first + window).min(parts.len());
                let (lo, hi) = (cum[first], cum[last]);
                let q = Permutation::new(hi - lo, key ^ mix(g as u64 + 1)).apply(pos - lo);
                let s = lo + q;
                let k = cum.partition_point(|&c| c <= s) - 1;
                parts[k].0 + (s - cum[k])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The locality-aware order visits every row once and keeps each window within its
        /// partitions.
        #[test]
        fn local_orders_are_permutations(sizes in proptest::collection::vec(1u64..50, 1..12), window in 1usize..4, seed in any::<u64>()) {
            let mut parts = Vec::new();
            let mut t = 0;
            for s in &sizes { parts.push(t..t + s); t += s; }
            let o = EpochOrder::new(Shuffle::Local { window }, t, &parts, seed, 3);
            let mut seen = vec![false; t as usize];
            for pos in 0..t {
                let r = o.row(pos);
                prop_assert!(!seen[r as usize]);
                seen[r as usize] = true;
            }
        }
    }

    /// A smoke test that the shuffle does not keep rows near their position: the mean
    /// displacement of a uniform permutation of n is about n/3.
    #[test]
    fn global_shuffle_is_not_biased_toward_staying_put() {
        let n = 20_000u64;
        for seed in 0..5 {
            let o = EpochOrder::new(Shuffle::Global, n, &[], seed, 0);
            let mean = (0..n).map(|i| o.row(i).abs_diff(i) as f64).sum::<f64>() / n as f64;
            assert!(
                (0.31..0.36).contains(&(mean / n as f64)),
                "seed {seed}: mean displacement {mean}"
            );
            let fixed = (0..n).filter(|&i| o.row(i) == i).count();
            assert!(fixed < 10, "seed {seed}: {fixed} fixed points");
        }
    }
}
