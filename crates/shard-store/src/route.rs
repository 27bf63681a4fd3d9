//! Routing: which shard holds a global row, by binary search over the shards' first rows.

use std::ops::Range;

/// The row where each shard starts, then the total.
#[derive(Debug)]
pub(crate) struct Routes {
    starts: Vec<u64>,
}

impl Routes {
    /// Routes over shards of `rows` rows each, in order.
    pub(crate) fn new(rows: impl IntoIterator<Item = u64>) -> Self {
        let mut starts = vec![0u64];
        for r in rows {
            let last = *starts.last().expect("starts is never empty");
            starts.push(last.saturating_add(r));
        }
        Self { starts }
    }

    /// Rows in all shards.
    pub(crate) fn total(&self) -> u64 {
        *self.starts.last().expect("starts is never empty")
    }

    /// The shard holding global `row` (below [`total`](Self::total)), and the row within it.
    pub(crate) fn route(&self, row: u64) -> (usize, u64) {
        let shards = self.starts.len() - 1;
        let s = self.starts.partition_point(|&start| start <= row) - 1;
        // Skip empty shards that share a start row.
        let s = (s..shards).find(|&k| self.starts[k + 1] > row).unwrap_or(s);
        (s, row - self.starts[s])
    }

    /// Each non-empty shard's global rows, in order.
    pub(crate) fn partitions(&self) -> Vec<Range<u64>> {
        self.starts
            .windows(2)
            .filter(|w| w[1] > w[0])
            .map(|w| w[0]..w[1])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Routes;

    proptest! {
        /// Every row routes to the shard whose rows hold it, skipping empty shards, at the
        /// row's place within that shard.
        #[test]
        fn every_row_routes_to_the_shard_that_holds_it(
            rows in proptest::collection::vec(0u64..5, 1..12),
        ) {
            let routes = Routes::new(rows.iter().copied());
            let mut expected = Vec::new();
            for (s, &n) in rows.iter().enumerate() {
                expected.extend((0..n).map(|r| (s, r)));
            }
            prop_assert_eq!(routes.total(), expected.len() as u64);
            for (row, want) in expected.iter().enumerate() {
                prop_assert_eq!(routes.route(row as u64), *want);
            }
            let parts = routes.partitions();
            prop_assert_eq!(parts.len(), rows.iter().filter(|&&n| n > 0).count());
            prop_assert!(parts.iter().all(|p| !p.is_empty()));
        }
    }
}
