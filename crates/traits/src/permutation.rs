//! A seeded permutation of `[0, n)` that stores nothing per element: the exact global shuffle
//! of the Loader and the shuffled shard order of the shard store.

/// SplitMix64's finaliser: a bijective 64-bit mixer.
pub fn mix(mut z: u64) -> u64 {
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
    }

    #[test]
    fn huge_domains_cost_nothing_to_shuffle() {
        let p = Permutation::new(3_000_000_000, 42);
        let a: Vec<u64> = (0..5).map(|i| p.apply(i)).collect();
        assert!(a.iter().all(|&x| x < 3_000_000_000));
        assert_eq!(a, (0..5).map(|i| p.apply(i)).collect::<Vec<_>>());
    }
}
