//! `take` and `slice` equal a naive gather; the conformance kit; caps, modes and iteration.

use arrowfeed_shard_store::{LoadMode, OpenOptions, ShardStore, StoreWriter};
use arrowfeed_traits::RandomAccess;
use arrowfeed_traits::testkit::check_random_access;
use proptest::prelude::*;

use crate::common::*;

fn naive(
    all: &arrow_array::RecordBatch,
    idx: &[u64],
    proj: Option<&[usize]>,
) -> arrow_array::RecordBatch {
    let rows: Vec<_> = idx.iter().map(|&i| all.slice(i as usize, 1)).collect();
    let b = arrow_select::concat::concat_batches(&all.schema(), &rows).unwrap();
    match proj {
        Some(p) => b.project(p).unwrap(),
        None => b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// take and slice equal a naive gather over the concatenated input, for any shard and
    /// batch sizes, index lists (empty, duplicates, unsorted, crossing shards) and projection.
    #[test]
    fn take_and_slice_equal_a_naive_gather(
        sizes in proptest::collection::vec(0usize..60, 1..6),
        shard_rows in 1u64..80,
        batch_rows in 1usize..30,
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        proj in proptest::option::of(proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..4)),
        slice_at in any::<prop::sample::Index>(),
        slice_len in 0usize..100,
        mode_read in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let batches = input(&sizes);
        let all = concat(&batches);
        let n = all.num_rows();
        let path = dir.path().join("store");
        write(&path, batches, &StoreWriter::new().shard_rows(shard_rows).batch_rows(batch_rows));
        let mode = if mode_read { LoadMode::Read } else { LoadMode::Mmap };
        let store = ShardStore::open_with(&path, OpenOptions::default().mode(mode).max_open_shards(2)).unwrap();
        prop_assert_eq!(store.num_rows(), n as u64);
        let p = proj.as_deref();
        if n > 0 {
            let idx: Vec<u64> = picks.iter().map(|i| i.index(n) as u64).collect();
            prop_assert_eq!(store.take(&idx, p).unwrap(), naive(&all, &idx, p));
            let start = slice_at.index(n);
            let len = slice_len.min(n - start);
            let want = naive(&all, &(start as u64..(start + len) as u64).collect::<Vec<_>>(), p);
            prop_assert_eq!(store.slice(start as u64, len as u64, p).unwrap(), want);
        }
        prop_assert!(store.open_shards() <= 2);
    }
}

#[test]
fn the_store_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let batches = input(&[50, 0, 37, 90]);
    let all = concat(&batches);
    let store = write(
        &dir.path().join("s"),
        batches,
        &StoreWriter::new().shard_rows(40).batch_rows(16),
    );
    assert_eq!(store.num_shards(), 5);
    check_random_access(&store, &all);
    for r in [0u64, 49, 50, 176] {
        assert_eq!(
            store.get_row(r, Some(&[1, 0])).unwrap(),
            all.slice(r as usize, 1).project(&[1, 0]).unwrap()
        );
    }
    assert!(store.get_row(177, None).is_err());
    // Shared across threads.
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = store.clone();
            let all = &all;
            s.spawn(move || {
                for k in 0..50u64 {
                    let i = (t * 37 + k * 11) % 177;
                    assert_eq!(
                        store.take(&[i, 176 - i], None).unwrap(),
                        naive(all, &[i, 176 - i], None)
                    );
                }
            });
        }
    });
}

#[test]
fn the_open_shard_cap_is_respected_and_lru() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("s");
    write(
        &store_dir,
        input(&[1000]),
        &StoreWriter::new().shard_rows(100),
    );
    let store =
        ShardStore::open_with(&store_dir, OpenOptions::default().max_open_shards(3)).unwrap();
    assert_eq!(store.num_shards(), 10);
    assert_eq!(store.open_shards(), 0, "opening maps nothing");
    for round in 0..3 {
        for s in 0..10u64 {
            store.take(&[s * 100 + round], None).unwrap();
            assert!(store.open_shards() <= 3);
        }
    }
    assert_eq!(store.shard_loads(), 30);
    // Hot shards stay open.
    let before = store.shard_loads();
    for _ in 0..10 {
        store.take(&[950, 999], None).unwrap();
    }
    assert_eq!(store.shard_loads(), before);

    // Least recently used, not first opened: with shards 0, 1, 2 open and 0 used again,
    // opening 3 closes 1, so 0 is still open (first-in-first-out would have closed 0).
    let store =
        ShardStore::open_with(&store_dir, OpenOptions::default().max_open_shards(3)).unwrap();
    let loads_after = |shard: u64| {
        store.take(&[shard * 100], None).unwrap();
        store.shard_loads()
    };
    assert_eq!([0, 1, 2, 0].map(loads_after), [1, 2, 3, 3]);
    assert_eq!(loads_after(3), 4);
    assert_eq!(loads_after(0), 4, "shard 0, used after 1, must outlive it");
    assert_eq!(loads_after(1), 5, "shard 1 was the least recently used");
}

/// A take whose rows lie in many shards not yet open loads them side by side (more than one
/// to load): each is loaded once, and the rows come back in the asked order.
#[test]
fn a_take_across_unopened_shards_loads_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    let batches = input(&[1000]);
    let all = concat(&batches);
    write(
        &p,
        batches,
        &StoreWriter::new().shard_rows(100).batch_rows(30),
    );
    for mode in [LoadMode::Mmap, LoadMode::Read] {
        let store = ShardStore::open_with(&p, OpenOptions::default().mode(mode)).unwrap();
        let idx: Vec<u64> = (0..10u64).rev().map(|s| s * 100 + 7 * s).collect();
        assert_eq!(store.take(&idx, None).unwrap(), naive(&all, &idx, None));
        assert_eq!(store.shard_loads(), 10);
        let again: Vec<u64> = idx.iter().map(|i| i + 1).collect();
        assert_eq!(store.take(&again, None).unwrap(), naive(&all, &again, None));
        assert_eq!(store.shard_loads(), 10, "open shards are not loaded again");
    }
}

/// Threads that need the same shard at once load it once: the others wait for that load
/// rather than mapping and decoding it again (which doubled a fresh epoch's resident memory).
#[test]
fn threads_asking_for_one_shard_at_once_load_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    write(&p, input(&[4000]), &StoreWriter::new().shard_rows(2000));
    for round in 0..20 {
        let store = ShardStore::open_with(&p, OpenOptions::default().mode(LoadMode::Read)).unwrap();
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for t in 0..8u64 {
                let (store, start) = (&store, &start);
                scope.spawn(move || {
                    start.wait();
                    store.take(&[t * 7, 3999 - t], None).unwrap();
                });
            }
        });
        assert_eq!(store.shard_loads(), 2, "round {round}");
    }
}

#[test]
fn shard_iteration_natural_and_shuffled() {
    let dir = tempfile::tempdir().unwrap();
    let store = write(
        &dir.path().join("s"),
        input(&[500]),
        &StoreWriter::new().shard_rows(100).batch_rows(30),
    );
    let firsts = |seed| -> Vec<i64> {
        store
            .iter_shards(seed)
            .map(|b| b.unwrap())
            .filter_map(|b| {
                let ids = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .unwrap();
                (ids.value(0) % 100 == 0).then(|| ids.value(0))
            })
            .collect()
    };
    assert_eq!(firsts(None), vec![0, 100, 200, 300, 400]);
    let a = firsts(Some(7));
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![0, 100, 200, 300, 400],
        "a permutation of the shards"
    );
    assert_eq!(firsts(Some(7)), a, "deterministic for a seed");
    assert!(
        (0..20).any(|s| firsts(Some(s)) != firsts(Some(s + 1))),
        "seeds differ"
    );
    let rows: usize = store
        .iter_shards(Some(3))
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 500);
}

#[test]
fn overwrite_is_explicit_and_replaces_whole() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    write(&p, input(&[10]), &StoreWriter::new());
    let e = arrowfeed_shard_store::write_batches(
        &p,
        batch(0, 0).schema(),
        input(&[20]),
        &StoreWriter::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let store = write(&p, input(&[20]), &StoreWriter::new().overwrite(true));
    assert_eq!(store.num_rows(), 20);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("s")],
        "no temporary or old directories left"
    );
}

#[test]
fn compressed_shards_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let batches = input(&[300]);
    let all = concat(&batches);
    for c in [
        arrowfeed_shard_store::ShardCompression::Lz4,
        arrowfeed_shard_store::ShardCompression::Zstd,
    ] {
        let p = dir.path().join(format!("{c:?}"));
        let store = write(
            &p,
            batches.clone(),
            &StoreWriter::new().shard_rows(120).compression(c),
        );
        assert_eq!(
            store.take(&[299, 0, 150], None).unwrap(),
            naive(&all, &[299, 0, 150], None)
        );
        assert!(store.verify().unwrap().is_ok());
    }
}
