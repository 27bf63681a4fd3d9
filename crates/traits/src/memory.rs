//! Batch memory accounting by underlying allocation, shared by every budget in the workspace.
//!
//! Arrow arrays are views over reference-counted buffers: slicing a batch, projecting it, or
//! decoding many batches zero-copy out of one memory map gives arrays that share allocations.
//! Summing `Array::get_buffer_memory_size` over such arrays counts one allocation many times.
//! These functions count each distinct allocation once, at its full capacity, because that is
//! what stays resident while any view of it is alive.

use std::collections::HashMap;

use arrow_array::{Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_data::ArrayData;

/// Calls `f(allocation start, allocation capacity)` for every buffer under `data`, children and
/// null bitmaps included. The same allocation may be reported more than once.
fn for_each_allocation(data: &ArrayData, f: &mut impl FnMut(usize, usize)) {
    let mut visit = |b: &Buffer| f(b.data_ptr().as_ptr() as usize, b.capacity());
    for b in data.buffers() {
        visit(b);
    }
    if let Some(nulls) = data.nulls() {
        visit(nulls.buffer());
    }
    for child in data.child_data() {
        for_each_allocation(child, f);
    }
}

/// Memory held by `batch`, counting each underlying allocation once at its capacity.
///
/// This is the figure every arrowfeed budget uses (prefetch, spill, the scheduler, the Loader).
/// A batch sliced out of a larger one is charged for the whole allocation it keeps alive.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use arrowfeed_traits::batch_memory_size;
///
/// let col = Arc::new(Int64Array::from_iter_values(0..1024));
/// let batch = RecordBatch::try_from_iter([("a", col.clone() as _), ("b", col as _)])?;
/// // Two columns share one 8 KiB allocation: it is counted once.
/// assert_eq!(batch_memory_size(&batch), batch.column(0).get_buffer_memory_size());
/// # Ok::<(), arrow_schema::ArrowError>(())
/// ```
pub fn batch_memory_size(batch: &RecordBatch) -> usize {
    let mut seen = HashMap::new();
    for col in batch.columns() {
        for_each_allocation(&col.to_data(), &mut |ptr, cap| {
            seen.entry(ptr).or_insert(cap);
        });
    }
    seen.values().sum()
}

/// Memory held by a single array, counting each allocation once.
pub fn array_memory_size(array: &dyn Array) -> usize {
    let mut seen = HashMap::new();
    for_each_allocation(&array.to_data(), &mut |ptr, cap| {
        seen.entry(ptr).or_insert(cap);
    });
    seen.values().sum()
}

/// A running total of the memory held by a changing set of batches, counting an allocation
/// shared by several batches once while any of them is held.
///
/// Use it where batches come and go (a read-ahead queue, a spill buffer): [`MemoryLedger::add`]
/// when a batch is taken in, [`MemoryLedger::remove`] with the same batch when it leaves.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int32Array, RecordBatch};
/// use arrowfeed_traits::MemoryLedger;
///
/// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1; 100])) as _)])?;
/// let (a, b) = (batch.slice(0, 50), batch.slice(50, 50));
/// let mut ledger = MemoryLedger::default();
/// ledger.add(&a);
/// let one = ledger.bytes();
/// ledger.add(&b); // shares a's allocation
/// assert_eq!(ledger.bytes(), one);
/// ledger.remove(&a);
/// assert_eq!(ledger.bytes(), one);
/// ledger.remove(&b);
/// assert_eq!(ledger.bytes(), 0);
/// # Ok::<(), arrow_schema::ArrowError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemoryLedger {
    /// allocation start -> (capacity, number of references from held batches)
    allocations: HashMap<usize, (usize, usize)>,
    bytes: usize,
}

impl MemoryLedger {
    /// Takes `batch` into the ledger; returns the bytes this added (0 if every allocation was
    /// already held).
    pub fn add(&mut self, batch: &RecordBatch) -> usize {
        let before = self.bytes;
        for col in batch.columns() {
            for_each_allocation(&col.to_data(), &mut |ptr, cap| {
                let e = self.allocations.entry(ptr).or_insert((cap, 0));
                if e.1 == 0 {
                    self.bytes += e.0;
                }
                e.1 += 1;
            });
        }
        self.bytes - before
    }

    /// Releases a batch previously passed to [`MemoryLedger::add`]; returns the bytes freed.
    /// Releasing a batch that was never added is ignored allocation by allocation.
    pub fn remove(&mut self, batch: &RecordBatch) -> usize {
        let before = self.bytes;
        for col in batch.columns() {
            for_each_allocation(&col.to_data(), &mut |ptr, _| {
                if let Some(e) = self.allocations.get_mut(&ptr) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        self.bytes -= e.0;
                        self.allocations.remove(&ptr);
                    }
                }
            });
        }
        before - self.bytes
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.allocations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, ListArray, StringArray, types::Int32Type};
    use proptest::prelude::*;

    fn sample(n: usize) -> RecordBatch {
        let ints: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..n as i64).map(|i| if i % 3 == 0 { None } else { Some(i) }),
        ));
        let strs: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| "x".repeat(i % 17)),
        ));
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..n).map(|i| Some((0..(i % 5) as i32).map(Some).collect::<Vec<_>>())),
        ));
        RecordBatch::try_from_iter([("i", ints), ("s", strs), ("l", lists)]).unwrap()
    }

    #[test]
    fn slices_are_charged_for_their_allocation_once() {
        let b = sample(1000);
        let full = batch_memory_size(&b);
        assert!(full >= b.get_array_memory_size() / 2);
        // A slice keeps the whole allocation alive.
        assert_eq!(batch_memory_size(&b.slice(10, 5)), full);
        // A projection keeps only its columns.
        let one = batch_memory_size(&b.project(&[0]).unwrap());
        assert!(one < full);
        assert_eq!(one, array_memory_size(b.column(0).as_ref()));
    }

    proptest! {
        /// Adding batches in any order and removing them in any order ends at zero, and the
        /// running total never exceeds the sum of the batches' own sizes.
        #[test]
        fn ledger_balances(n in 1usize..300, cuts in proptest::collection::vec(0usize..300, 0..6), shuffle in any::<u64>()) {
            let b = sample(n);
            let mut pieces = vec![b.clone()];
            for c in cuts { let c = c % n; pieces.push(b.slice(c, n - c)); }
            pieces.push(sample(n)); // an unrelated batch with its own allocations
            let mut ledger = MemoryLedger::default();
            let mut upper = 0;
            for p in &pieces {
                ledger.add(p);
                upper += batch_memory_size(p);
                prop_assert!(ledger.bytes() <= upper);
            }
            prop_assert_eq!(ledger.bytes(), batch_memory_size(&b) + batch_memory_size(pieces.last().unwrap()));
            let mut order: Vec<usize> = (0..pieces.len()).collect();
            order.rotate_left((shuffle % pieces.len() as u64) as usize);
            for i in order { ledger.remove(&pieces[i]); }
            prop_assert_eq!(ledger.bytes(), 0);
            prop_assert!(ledger.is_empty());
        }
    }
}
