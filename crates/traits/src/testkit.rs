//! A conformance kit: checks that a `RandomAccess` or `ByteSource` keeps its trait's contract.
//!
//! Call these from the implementation's own tests with a reference of what the data should be.
//! They panic with a message saying which part of the contract failed, like `assert!`.

use std::ops::Range;

use arrow_array::RecordBatch;

use crate::{ByteSource, Error, RandomAccess};

fn row_eq(got: &RecordBatch, j: usize, want: &RecordBatch, i: usize) -> bool {
    let g = got.slice(j, 1);
    let w = want.slice(i, 1);
    g.columns().len() == w.columns().len()
        && g.columns()
            .iter()
            .zip(w.columns())
            .all(|(a, b)| a.as_ref() == b.as_ref())
}

fn assert_gather(got: &RecordBatch, want: &RecordBatch, rows: &[u64], what: &str) {
    assert_eq!(got.num_rows(), rows.len(), "{what}: wrong number of rows");
    assert_eq!(got.schema(), want.schema(), "{what}: wrong schema");
    for (j, &i) in rows.iter().enumerate() {
        assert!(
            row_eq(got, j, want, i as usize),
            "{what}: output row {j} should be dataset row {i}"
        );
    }
}

/// A small deterministic generator, so the kit needs no random-number crate.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// Checks `ra` against `expected`, which holds every row of the dataset in one batch.
///
/// Covers: schema and row count; partitions covering the rows; `take` with empty, sorted,
/// reversed, duplicated, pseudo-random and partition-crossing indices; `slice` at the edges,
/// empty and whole; projections (a subset, reordered); and the errors for out-of-range indices,
/// out-of-range slices and bad projections.
///
/// # Panics
/// When `ra` breaks the [`RandomAccess`] contract, with a message saying how.
pub fn check_random_access(ra: &dyn RandomAccess, expected: &RecordBatch) {
    let n = expected.num_rows() as u64;
    assert_eq!(ra.schema(), expected.schema(), "schema differs");
    assert_eq!(ra.num_rows(), n, "num_rows differs");

    let parts = ra.partitions();
    let mut next = 0;
    for p in &parts {
        assert_eq!(p.start, next, "partitions must be contiguous: {parts:?}");
        assert!(p.end > p.start, "partitions must be non-empty: {parts:?}");
        next = p.end;
    }
    assert_eq!(next, n, "partitions must cover every row: {parts:?}");

    let ncols = expected.num_columns();
    let mut projections: Vec<Option<Vec<usize>>> = vec![None];
    if ncols > 0 {
        projections.push(Some(vec![ncols - 1]));
        projections.push(Some((0..ncols).rev().collect()));
        projections.push(Some(Vec::new()));
    }
    let mut seed = 0x5eed ^ n;
    for proj in &projections {
        let p = proj.as_deref();
        let want = match p {
            Some(p) => expected.project(p).expect("projection of the reference"),
            None => expected.clone(),
        };
        let mut index_lists: Vec<(&str, Vec<u64>)> = vec![("empty take", vec![])];
        if n > 0 {
            index_lists.push(("sorted take", (0..n).collect()));
            index_lists.push(("reversed take", (0..n).rev().collect()));
            index_lists.push(("duplicated take", vec![0, n - 1, 0, n / 2, n / 2, n - 1]));
            let random = (0..(2 * n).min(500)).map(|_| lcg(&mut seed) % n).collect();
            index_lists.push(("random take", random));
            let edges = parts
                .iter()
                .flat_map(|r| [r.start, r.end - 1])
                .rev()
                .collect();
            index_lists.push(("partition-edge take", edges));
        }
        for (what, idx) in &index_lists {
            let got = ra
                .take(idx, p)
                .unwrap_or_else(|e| panic!("{what} with projection {p:?} failed: {e}"));
            assert_gather(&got, &want, idx, &format!("{what} with projection {p:?}"));
        }

        let mut slices: Vec<Range<u64>> = vec![0..0, 0..n, n..n];
        if n > 0 {
            slices.push(0..1);
            slices.push(n - 1..n);
            slices.push(n / 3..n - n / 3);
            for r in &parts {
                // Straddle each partition boundary.
                slices.push(r.start.saturating_sub(1)..(r.start + 1).min(n));
            }
        }
        for r in slices {
            let got = ra
                .slice(r.start, r.end - r.start, p)
                .unwrap_or_else(|e| panic!("slice {r:?} with projection {p:?} failed: {e}"));
            let rows: Vec<u64> = r.clone().collect();
            assert_gather(
                &got,
                &want,
                &rows,
                &format!("slice {r:?}, projection {p:?}"),
            );
        }
    }

    for bad in [n, n + 7, u64::MAX] {
        // A valid index before the bad one: no partial result may come back.
        let idx: Vec<u64> = if n > 0 { vec![0, bad] } else { vec![bad] };
        match ra.take(&idx, None) {
            Err(Error::IndexOutOfRange { .. }) => {}
            other => {
                panic!("take of index {bad} of {n} rows should be IndexOutOfRange, got {other:?}")
            }
        }
    }
    for (off, len) in [(n, 1), (0, n + 1), (u64::MAX, 2), (1, u64::MAX)] {
        match ra.slice(off, len, None) {
            Err(Error::IndexOutOfRange { .. }) => {}
            other => {
                panic!("slice({off}, {len}) of {n} rows should be IndexOutOfRange, got {other:?}")
            }
        }
    }
    match ra.take(&[], Some(&[ncols])) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("projection of column {ncols} should be InvalidArgument, got {other:?}"),
    }
}

/// Checks `src` against `expected`, the object's whole content: its size, reads at the edges,
/// empty and whole reads, `read_many` in a scrambled order, and that a read past the end is an
/// error naming the source.
///
/// # Panics
/// When `src` breaks the [`ByteSource`] contract, with a message saying how.
pub fn check_byte_source(src: &dyn ByteSource, expected: &[u8]) {
    use futures::executor::block_on;

    let n = expected.len() as u64;
    let size = block_on(src.size()).unwrap_or_else(|e| panic!("size failed: {e}"));
    assert_eq!(size, n, "size differs");
    let mut ranges = vec![0..0, 0..n, n..n];
    if n > 0 {
        ranges.extend([0..1, n - 1..n, n / 3..n - n / 3]);
    }
    let mut seed = 0xb17e ^ n;
    for _ in 0..20 {
        if n == 0 {
            break;
        }
        let a = lcg(&mut seed) % n;
        let b = lcg(&mut seed) % (n + 1);
        ranges.push(a.min(b)..a.max(b));
    }
    for r in &ranges {
        let got =
            block_on(src.read(r.clone())).unwrap_or_else(|e| panic!("read {r:?} failed: {e}"));
        assert_eq!(
            &got[..],
            &expected[r.start as usize..r.end as usize],
            "read {r:?} returned other bytes"
        );
    }
    let mut scrambled = ranges.clone();
    scrambled.reverse();
    let got = block_on(src.read_many(scrambled.clone()))
        .unwrap_or_else(|e| panic!("read_many failed: {e}"));
    assert_eq!(
        got.len(),
        scrambled.len(),
        "read_many returned a wrong count"
    );
    for (g, r) in got.iter().zip(&scrambled) {
        assert_eq!(
            &g[..],
            &expected[r.start as usize..r.end as usize],
            "read_many {r:?}"
        );
    }
    for bad in [n..n + 1, n.saturating_sub(1)..n + 100] {
        match block_on(src.read(bad.clone())) {
            Err(e) => assert!(
                e.to_string().contains(src.name()),
                "the error for reading {bad:?} should name {:?}: {e}",
                src.name()
            ),
            Ok(b) => panic!("read {bad:?} past the end ({n}) returned {} bytes", b.len()),
        }
    }
}
