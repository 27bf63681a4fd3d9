//! Epoch orders for the Loader: sequential, exact global shuffle (a seeded bijection on
//! `[0, n)`, O(1) memory) and locality-aware shuffle (shuffled partitions, rows shuffled within
//! windows of a few partitions). Every order maps a position to a row in O(1) or O(log P).

use std::ops::Range;

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

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded bijection on `[0, n)`: a balanced Feistel network on the smallest even number of
/// bits covering `n`, with cycle walking to stay inside `[0, n)`. Evaluating it costs a few
/// multiplications; it stores nothing per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; Self::ROUNDS],
}

impl Permutation {
    const ROUNDS: usize = 6;

    /// The permutation of `[0, n)` for `key`.
    pub fn new(n: u64, key: u64) -> Self {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut keys = [0u64; Self::ROUNDS];
        let mut k = key;
        for slot in &mut keys {
            k = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *slot = mix(k);
        }
        Self { n, half_bits, keys }
    }

    fn encrypt(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for &k in &self.keys {
            let f = mix(r ^ k) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }

    /// The image of `i` (`i < n`).
    pub fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut y = self.encrypt(i);
        // The domain is at most 4n, so this loops about 4 times at worst on average; it ends
        // because `i` lies on a cycle of the network that returns into [0, n).
        while y >= self.n {
            y = self.encrypt(y);
        }
        y
    }

    /// The size of the domain.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True for the empty domain.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
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
        /// Every Permutation is a bijection on [0, n).
        #[test]
        fn permutations_are_bijections(n in 0u64..3000, key in any::<u64>()) {
            let p = Permutation::new(n, key);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let y = p.apply(i);
                prop_assert!(y < n);
                prop_assert!(!seen[y as usize], "{} hit twice", y);
                seen[y as usize] = true;
            }
        }

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

    #[test]
    fn huge_domains_cost_nothing_to_shuffle() {
        let p = Permutation::new(3_000_000_000, 42);
        let a: Vec<u64> = (0..5).map(|i| p.apply(i)).collect();
        assert!(a.iter().all(|&x| x < 3_000_000_000));
        assert_eq!(a, (0..5).map(|i| p.apply(i)).collect::<Vec<_>>());
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
