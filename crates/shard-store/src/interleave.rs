//! Gathers of the column types ML stores hold, faster than arrow's `interleave` for random
//! rows: the numbers, strings and binary with 32-bit offsets, and lists of numbers, all
//! without nulls.
//!
//! A take of random rows from a store is bound by memory latency: each row's offsets and
//! values are in a different place of a map many times the CPU's cache. arrow's kernel copies
//! one row at a time, so each row waits for its own cache misses. These kernels work in two
//! passes, each asking the CPU for the lines it will need a few rows ahead (`prefetch`): first
//! every row's value range from its offsets, then the values. On anything else (nulls, other
//! types, sources of mixed types) they decline and the caller uses arrow's kernel; their
//! output equals arrow's (a property test checks it).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, BinaryType, ByteArrayType, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type, Utf8Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, GenericListArray, PrimitiveArray, StringArray, new_empty_array,
};
use arrow_buffer::{Buffer, MutableBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType};

/// Rows ahead of the one being copied whose lines are asked for. On an AMD EPYC VM, 16 took
/// 0.90x the time of 8 for the CLI's full-store take (15 pairs, every pair faster; 32 was the
/// same as 16), where a random row's first touch is a TLB miss as well as a cache miss: `perf`
/// put three quarters of the byte gather's own samples on the prefetch. On an Intel Xeon 16
/// and 8 were the same (0.996x) and 4 slower (1.046x).
const AHEAD: usize = 16;

/// Asks the CPU to bring the cache line holding `p` closer; a hint only (it never faults).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads no memory the program sees and cannot fault, whatever the
    // address; SSE, which it needs, is part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `positions` (array, row) of `arrays` gathered into one array, or `None` when these
/// kernels do not cover the arrays (the caller then uses arrow's `interleave`). An
/// `OffsetOverflowError` when the gathered strings, binary or list elements pass 32-bit
/// offsets, as arrow's kernel says.
///
/// Every position must be in bounds, as for arrow's kernel (the store's routing makes them);
/// one that is not panics rather than reading out of bounds.
pub(crate) fn interleave(
    arrays: &[&dyn Array],
    positions: &[(usize, usize)],
) -> Option<Result<ArrayRef, ArrowError>> {
    let first = arrays.first()?;
    let dt = first.data_type();
    if arrays
        .iter()
        .any(|a| a.null_count() > 0 || a.data_type() != dt)
    {
        return None;
    }
    if positions.is_empty() {
        return Some(Ok(new_empty_array(dt)));
    }
    macro_rules! primitive {
        ($t:ty) => {
            Some(Ok(
                Arc::new(gather_primitive::<$t>(arrays, positions)) as ArrayRef
            ))
        };
    }
    match dt {
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Float32 => primitive!(Float32Type),
        DataType::Float64 => primitive!(Float64Type),
        DataType::Utf8 => Some(
            gather_bytes(&byte_parts::<Utf8Type>(arrays), positions, 1).map(|(offsets, values)| {
                // SAFETY: every value is the bytes of one value of a valid `StringArray`,
                // whole, so each is UTF-8 and the offsets fall on their boundaries.
                Arc::new(unsafe { StringArray::new_unchecked(offsets, values, None) }) as ArrayRef
            }),
        ),
        DataType::Binary => Some(
            gather_bytes(&byte_parts::<BinaryType>(arrays), positions, 1).map(
                |(offsets, values)| Arc::new(BinaryArray::new(offsets, values, None)) as ArrayRef,
            ),
        ),
        DataType::List(field) if !field.is_nullable() || no_child_nulls(arrays) => {
            macro_rules! list {
                ($t:ty) => {
                    list_of::<$t>(arrays, positions, field.clone())
                };
            }
            match field.data_type() {
                DataType::Int32 => list!(Int32Type),
                DataType::Int64 => list!(Int64Type),
                DataType::Float32 => list!(Float32Type),
                DataType::Float64 => list!(Float64Type),
                DataType::UInt8 => list!(UInt8Type),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Each of `arrays` (all of type `T`) as its offsets and value bytes.
fn byte_parts<'a, T: ByteArrayType<Offset = i32>>(
    arrays: &[&'a dyn Array],
) -> Vec<(&'a [i32], &'a [u8])> {
    arrays
        .iter()
        .map(|a| {
            let b = a.as_bytes::<T>();
            (b.value_offsets(), b.value_data())
        })
        .collect()
}

/// True when no list in `arrays` has a null element.
fn no_child_nulls(arrays: &[&dyn Array]) -> bool {
    arrays
        .iter()
        .all(|a| a.as_list::<i32>().values().null_count() == 0)
}

fn gather_primitive<T: ArrowPrimitiveType>(
    arrays: &[&dyn Array],
    positions: &[(usize, usize)],
) -> PrimitiveArray<T> {
    let values: Vec<&[T::Native]> = arrays
        .iter()
        .map(|a| a.as_primitive::<T>().values().as_ref())
        .collect();
    let mut out = Vec::with_capacity(positions.len());
    for (k, &(a, r)) in positions.iter().enumerate() {
        if let Some(&(a2, r2)) = positions.get(k + AHEAD)
            && let Some(v) = values[a2].get(r2)
        {
            prefetch(v);
        }
        out.push(values[a].get(r).copied().expect("row in bounds"));
    }
    // The type's parameters (a timestamp's zone, a decimal's scale) are the first array's.
    PrimitiveArray::<T>::new(ScalarBuffer::from(out), None)
        .with_data_type(arrays[0].data_type().clone())
}

/// A list column of `T` elements gathered: the rows' element ranges as bytes would be, then
/// the elements.
fn list_of<T: ArrowPrimitiveType>(
    arrays: &[&dyn Array],
    positions: &[(usize, usize)],
    field: Arc<arrow_schema::Field>,
) -> Option<Result<ArrayRef, ArrowError>> {
    let lists: Vec<&GenericListArray<i32>> = arrays.iter().map(|a| a.as_list::<i32>()).collect();
    if lists
        .iter()
        .any(|l| l.values().data_type() != field.data_type())
    {
        return None;
    }
    let children: Vec<&PrimitiveArray<T>> = lists
        .iter()
        .map(|l| l.values().as_primitive::<T>())
        .collect();
    let parts: Vec<(&[i32], &[u8])> = lists
        .iter()
        .zip(&children)
        .map(|(l, c)| {
            let v: &[T::Native] = c.values();
            // SAFETY: a slice of numbers viewed as its bytes: same memory, length times the
            // width, and every byte pattern is a valid u8.
            let bytes = unsafe {
                std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v))
            };
            (l.value_offsets(), bytes)
        })
        .collect();
    let width = std::mem::size_of::<T::Native>();
    Some(
        gather_bytes(&parts, positions, width).map(|(offsets, values)| {
            let len = values.len() / width;
            let values = PrimitiveArray::<T>::new(ScalarBuffer::new(values, 0, len), None)
                .with_data_type(field.data_type().clone());
            Arc::new(GenericListArray::<i32>::new(
                field,
                offsets,
                Arc::new(values),
                None,
            )) as ArrayRef
        }),
    )
}

/// Gathers the offset ranges at `positions` of `parts` (each an offsets slice and its values
/// as bytes, `width` bytes per offset unit): the new offsets (in units) and the values.
fn gather_bytes(
    parts: &[(&[i32], &[u8])],
    positions: &[(usize, usize)],
    width: usize,
) -> Result<(OffsetBuffer<i32>, Buffer), ArrowError> {
    // Pass 1: each row's byte range, and the offsets.
    let mut ranges: Vec<(usize, usize, usize)> = Vec::with_capacity(positions.len());
    let mut offsets: Vec<i32> = Vec::with_capacity(positions.len() + 1);
    offsets.push(0);
    let mut total: usize = 0;
    for (k, &(a, r)) in positions.iter().enumerate() {
        if let Some(&(a2, r2)) = positions.get(k + AHEAD)
            && let Some(o) = parts[a2].0.get(r2)
        {
            prefetch(o);
        }
        let o = parts[a].0;
        let (start, end) = (o[r] as usize, o[r + 1] as usize);
        let units = end.checked_sub(start).expect("offsets in order");
        total += units;
        let Ok(at) = i32::try_from(total) else {
            return Err(ArrowError::OffsetOverflowError(total));
        };
        offsets.push(at);
        ranges.push((a, start * width, units * width));
    }
    // Pass 2: the values, each row's first line asked for a few rows ahead. An arrow buffer
    // (64-byte aligned, even when empty), so a list's elements can be viewed as numbers.
    let mut values = MutableBuffer::with_capacity(total * width);
    for (k, &(a, start, len)) in ranges.iter().enumerate() {
        if let Some(&(a2, s2, _)) = ranges.get(k + AHEAD)
            && let Some(v) = parts[a2].1.get(s2)
        {
            prefetch(v);
        }
        values.extend_from_slice(&parts[a].1[start..start + len]);
    }
    Ok((
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from(values),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{BinaryBuilder, ListBuilder, PrimitiveBuilder, StringBuilder};
    use proptest::prelude::*;

    /// An array of `kind` (0 int64, 1 float32, 2 string, 3 binary, 4 list<int32>, 5 sliced
    /// string) from `rows`, each row a length and a seed.
    fn array(kind: u8, rows: &[(usize, u8)]) -> ArrayRef {
        match kind {
            0 => Arc::new(arrow_array::Int64Array::from_iter_values(
                rows.iter().map(|&(n, s)| n as i64 * 1000 + i64::from(s)),
            )),
            1 => Arc::new(arrow_array::Float32Array::from_iter_values(
                rows.iter().map(|&(n, s)| n as f32 + f32::from(s) / 7.0),
            )),
            2 | 5 => {
                let mut b = StringBuilder::new();
                for &(n, s) in rows {
                    b.append_value("é".repeat(n % 5) + &"x".repeat(n) + &s.to_string());
                }
                let a = b.finish();
                if kind == 5 && a.len() > 2 {
                    Arc::new(a.slice(1, a.len() - 2))
                } else {
                    Arc::new(a)
                }
            }
            3 => {
                let mut b = BinaryBuilder::new();
                for &(n, s) in rows {
                    b.append_value(vec![s; n]);
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = ListBuilder::new(PrimitiveBuilder::<Int32Type>::new()).with_field(
                    Arc::new(arrow_schema::Field::new("item", DataType::Int32, false)),
                );
                for &(n, s) in rows {
                    b.append_value((0..n).map(|i| Some(i as i32 * i32::from(s))));
                }
                Arc::new(b.finish())
            }
        }
    }

    proptest! {
        /// Ours equals arrow's `interleave` for every covered type, sliced arrays included,
        /// and declines arrays with nulls.
        #[test]
        fn equals_arrows_interleave(
            kind in 0u8..6,
            batches in prop::collection::vec(prop::collection::vec((0usize..40, any::<u8>()), 3..30), 1..6),
            picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..100),
        ) {
            let arrays: Vec<ArrayRef> = batches.iter().map(|rows| array(kind, rows)).collect();
            let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            let positions: Vec<(usize, usize)> = picks
                .iter()
                .map(|(a, r)| {
                    let a = a.index(refs.len());
                    (a, r.index(refs[a].len()))
                })
                .collect();
            let ours = interleave(&refs, &positions).expect("covered").expect("no overflow");
            let theirs = arrow_select::interleave::interleave(&refs, &positions).expect("arrow's");
            prop_assert_eq!(ours.data_type(), theirs.data_type());
            prop_assert_eq!(ours.to_data(), theirs.to_data());
        }
    }

    /// Rows of no bytes or no elements only: the values buffer is empty, and a list's
    /// elements still view it as numbers (an empty `Vec` has an unaligned pointer).
    #[test]
    fn gathers_rows_that_hold_nothing() {
        for kind in 2..6 {
            let a = array(kind, &[(0, 1), (0, 2), (0, 3), (0, 4)]);
            let positions = [(0, 1), (0, 0), (0, 1)];
            let ours = interleave(&[a.as_ref()], &positions)
                .expect("covered")
                .expect("fits");
            let theirs =
                arrow_select::interleave::interleave(&[a.as_ref()], &positions).expect("arrow's");
            assert_eq!(ours.to_data(), theirs.to_data(), "kind {kind}");
        }
    }

    #[test]
    fn declines_nulls_and_mixed_types() {
        let with_null: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![Some(1), None]));
        let plain: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![1, 2]));
        let other: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![1, 2]));
        assert!(interleave(&[with_null.as_ref()], &[(0, 0)]).is_none());
        assert!(interleave(&[plain.as_ref(), other.as_ref()], &[(0, 0)]).is_none());
        assert!(interleave(&[plain.as_ref()], &[(0, 1)]).is_some());
    }
}
