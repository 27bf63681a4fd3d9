//! The Loader: permutations per epoch, ranks, remainder policies, workers, resume.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrowfeed_core_source::MemTable;
use arrowfeed_prefetch::{Loader, LoaderState, PAD_COLUMN, Remainder, Shuffle};
use arrowfeed_traits::RandomAccess;
use proptest::prelude::*;

/// A table of `n` rows whose `id` is the row number, split into batches of `part` rows (so it
/// has partitions for the local shuffle).
fn table(n: usize, part: usize) -> Arc<MemTable> {
    let mut batches = Vec::new();
    let mut i = 0;
    while i < n {
        let k = part.min(n - i);
        let ids = Arc::new(Int64Array::from_iter_values(i as i64..(i + k) as i64));
        let txt = Arc::new(StringArray::from_iter_values(
            (i..i + k).map(|r| format!("row {r}")),
        ));
        batches.push(RecordBatch::try_from_iter([("id", ids as _), ("text", txt as _)]).unwrap());
        i += k;
    }
    let schema = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(Vec::<i64>::new())) as _),
        ("text", Arc::new(StringArray::from(Vec::<&str>::new())) as _),
    ])
    .unwrap()
    .schema();
    Arc::new(MemTable::try_new(schema, batches).unwrap())
}

/// (id, is padding) of every row delivered, batch by batch.
fn collect(
    it: impl Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>,
) -> Vec<Vec<(i64, bool)>> {
    it.map(|b| {
        let b = b.unwrap();
        let ids = b.column(0).as_primitive::<Int64Type>();
        let pad = b.column_by_name(PAD_COLUMN).map(|c| c.as_boolean().clone());
        (0..b.num_rows())
            .map(|i| (ids.value(i), pad.as_ref().is_some_and(|p| p.value(i))))
            .collect()
    })
    .collect()
}

fn arb_shuffle() -> impl Strategy<Value = Shuffle> {
    prop_oneof![
        Just(Shuffle::None),
        Just(Shuffle::Global),
        (1usize..4).prop_map(|window| Shuffle::Local { window })
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Across ranks, every row comes exactly once per epoch (real rows, under Pad) or at most
    /// once with floor(n/w)*w rows (under Drop); every rank gets the same number of batches.
    #[test]
    fn each_epoch_is_a_permutation_across_ranks(
        n in 0usize..400, part in 1usize..60, bs in 1usize..50, world in 1u64..5,
        shuffle in arb_shuffle(), pad in any::<bool>(), drop_last in any::<bool>(),
        seed in any::<u64>(), epoch in 0u64..5, workers in 1usize..4,
    ) {
        let ds = table(n, part);
        let remainder = if pad { Remainder::Pad } else { Remainder::Drop };
        let mut seen = HashSet::new();
        let mut counts = Vec::new();
        let mut real = 0usize;
        for rank in 0..world {
            let loader = Loader::builder(ds.clone()).batch_size(bs).shuffle(shuffle).seed(seed).rank(rank, world)
                .remainder(remainder).drop_last(drop_last).workers(workers).build().unwrap();
            let batches = collect(loader.epoch(epoch).unwrap());
            prop_assert_eq!(batches.len() as u64, loader.batches_per_epoch());
            counts.push(batches.len());
            for b in &batches {
                prop_assert!(b.len() <= bs);
                if drop_last { prop_assert_eq!(b.len(), bs); }
                for &(id, is_pad) in b {
                    prop_assert!((id as usize) < n);
                    if !is_pad {
                        prop_assert!(seen.insert(id), "row {} delivered twice", id);
                        real += 1;
                    }
                }
            }
        }
        prop_assert!(counts.iter().all(|&c| c == counts[0]), "batch counts per rank differ: {:?}", counts);
        let w = world as usize;
        let per_rank = if pad { n.div_ceil(w) } else { n / w };
        let delivered_per_rank = if drop_last { per_rank / bs * bs } else { per_rank };
        if !drop_last {
            let want = if pad { n } else { n / w * w };
            prop_assert_eq!(real, want);
        } else {
            prop_assert!(real <= delivered_per_rank * w);
        }
    }

    /// Resuming from the state after any number of batches, with any number of workers, gives
    /// exactly the batches not yet delivered.
    #[test]
    fn resume_reproduces_the_rest_with_any_worker_count(
        n in 1usize..300, bs in 1usize..40, stop in 0u64..20, workers_a in 1usize..4, workers_b in 1usize..4,
        seed in any::<u64>(), epoch in 0u64..3, shuffle in arb_shuffle(),
    ) {
        let ds = table(n, 37);
        let make = |w| Loader::builder(ds.clone()).batch_size(bs).shuffle(shuffle).seed(seed).workers(w).build().unwrap();
        let all = collect(make(workers_a).epoch(epoch).unwrap());
        let stop = (stop as usize).min(all.len());
        let mut it = make(workers_a).epoch(epoch).unwrap();
        for _ in 0..stop { it.next().unwrap().unwrap(); }
        let saved: LoaderState = it.state().to_string().parse().unwrap();
        drop(it);
        prop_assert_eq!(saved.position, stop as u64);
        let rest = collect(make(workers_b).resume(saved).unwrap());
        prop_assert_eq!(&rest[..], &all[stop..]);
    }
}

#[test]
fn epochs_differ_and_are_not_rotations_of_each_other() {
    let n = 1000;
    let ds = table(n, 100);
    let loader = Loader::builder(ds)
        .batch_size(1000)
        .seed(3)
        .build()
        .unwrap();
    let order = |e| -> Vec<i64> {
        collect(loader.epoch(e).unwrap())
            .concat()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    let (a, b) = (order(0), order(1));
    assert_eq!(order(0), a, "deterministic for a seed and epoch");
    assert_ne!(a, b);
    let shifts: HashSet<i64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (y - x).rem_euclid(n as i64))
        .collect();
    assert!(
        shifts.len() > n / 2,
        "epoch 1 looks like a rotation of epoch 0 ({} distinct shifts)",
        shifts.len()
    );
    // Positions of each row in the two epochs are unrelated too.
    let mut pos_a = vec![0; n];
    for (i, &r) in a.iter().enumerate() {
        pos_a[r as usize] = i as i64;
    }
    let moved = b
        .iter()
        .enumerate()
        .filter(|&(i, &r)| (pos_a[r as usize] - i as i64).abs() > 10)
        .count();
    assert!(moved > n * 9 / 10);
}

#[test]
fn local_shuffle_keeps_reads_within_a_window_of_partitions() {
    let ds = table(1000, 100);
    let loader = Loader::builder(ds)
        .batch_size(50)
        .shuffle(Shuffle::Local { window: 2 })
        .seed(1)
        .build()
        .unwrap();
    let batches = collect(loader.epoch(0).unwrap());
    // 1,000 rows in windows of 2 partitions of 100 rows: each 200-row window (4 batches) draws
    // from exactly two partitions.
    for window in batches.chunks(4) {
        let parts: HashSet<i64> = window.iter().flatten().map(|&(id, _)| id / 100).collect();
        assert_eq!(parts.len(), 2, "{parts:?}");
    }
}

#[test]
fn settings_are_validated() {
    let ds = table(10, 5);
    for (b, what) in [
        (Loader::builder(ds.clone()).batch_size(0), "batch_size"),
        (Loader::builder(ds.clone()).workers(0), "workers"),
        (
            Loader::builder(ds.clone()).memory_budget(0),
            "memory_budget",
        ),
        (Loader::builder(ds.clone()).rank(2, 2), "world_size"),
        (
            Loader::builder(ds.clone()).shuffle(Shuffle::Local { window: 0 }),
            "window",
        ),
        (Loader::builder(ds.clone()).projection(vec![5]), "column 5"),
    ] {
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
    let loader = Loader::builder(ds).seed(1).build().unwrap();
    let e = loader.resume(loader.state(0, 99)).unwrap_err();
    assert!(e.to_string().contains("past the epoch"), "{e}");
    assert!("nonsense".parse::<LoaderState>().is_err());
}

/// A state names the run it belongs to: resuming with another seed, batch size, `drop_last`,
/// shuffle, remainder policy or dataset is an error naming that setting; a version 1 state
/// is refused with the reason.
#[test]
fn a_state_is_refused_by_a_loader_it_does_not_belong_to() {
    let ds = table(1000, 100);
    let base = || {
        Loader::builder(ds.clone())
            .batch_size(37)
            .seed(1)
            .shuffle(Shuffle::Global)
    };
    let state = base().build().unwrap().state(0, 3);
    for (other, what) in [
        (base().seed(2), "seed"),
        (base().batch_size(64), "batch_size"),
        (base().drop_last(true), "drop_last"),
        (base().shuffle(Shuffle::Local { window: 2 }), "shuffle"),
        (base().remainder(Remainder::Pad), "remainder"),
        (
            Loader::builder(table(1000, 50)).batch_size(37).seed(1),
            "another dataset",
        ),
        (
            Loader::builder(table(999, 100)).batch_size(37).seed(1),
            "another dataset",
        ),
    ] {
        let e = other.build().unwrap().resume(state).unwrap_err();
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
    assert!(base().build().unwrap().resume(state).is_ok());
    let e = "arrowfeed-loader/v1:1:0:3"
        .parse::<LoaderState>()
        .unwrap_err();
    assert!(e.to_string().contains("version 1"), "{e}");
    let printed = state.to_string();
    assert!(printed.starts_with("arrowfeed-loader/v2:seed=1,epoch=0,position=3,"));
    // Every field is checked when parsed: each truncation and each bad value is an error.
    for cut in 0..printed.len() {
        assert!(
            printed[..cut].parse::<LoaderState>().is_err(),
            "{}",
            &printed[..cut]
        );
    }
    for (from, to) in [
        ("batch_size=37", "batch_size=0"),
        ("rank=0", "rank=1"),
        ("shuffle=global", "shuffle=local-0"),
        ("remainder=drop", "remainder=cut"),
        ("drop_last=0", "drop_last=2"),
        ("seed=1", "seed=-1"),
    ] {
        let damaged = printed.replace(from, to);
        assert!(damaged.parse::<LoaderState>().is_err(), "{damaged}");
    }
    assert!(format!("{printed},x=1").parse::<LoaderState>().is_err());
}

#[test]
fn projection_and_metrics() {
    let ds = table(500, 100);
    let loader = Loader::builder(ds.clone())
        .batch_size(64)
        .projection(vec![1])
        .workers(2)
        .build()
        .unwrap();
    let mut it = loader.epoch(0).unwrap();
    let mut rows = 0;
    for b in it.by_ref() {
        let b = b.unwrap();
        assert_eq!(b.schema().field(0).name(), "text");
        assert_eq!(b.num_columns(), 1);
        rows += b.num_rows();
    }
    assert_eq!(rows as u64, ds.num_rows());
    let m = it.metrics();
    assert_eq!(m.rows, 500);
    assert_eq!(m.batches, 8);
    assert!(m.bytes > 0 && m.gather > std::time::Duration::ZERO, "{m}");
}

/// The async stream delivers the same batches and keeps the resume state, on a current-thread
/// runtime.
#[tokio::test(flavor = "current_thread")]
async fn the_stream_keeps_state_and_resumes() {
    use futures::StreamExt;
    let ds = table(700, 64);
    let loader = Loader::builder(ds)
        .batch_size(50)
        .seed(9)
        .workers(2)
        .build()
        .unwrap();
    let want = collect(loader.epoch(1).unwrap());
    let mut s = loader.epoch(1).unwrap().into_stream();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(s.next().await.unwrap());
    }
    let state = s.state();
    assert_eq!(state.position, 5);
    assert_eq!(s.metrics().batches, 5);
    drop(s);
    let rest: Vec<_> = loader.resume(state).unwrap().into_stream().collect().await;
    got.extend(rest);
    assert_eq!(collect(got.into_iter()), want);
}

/// A dataset that records the rows it was told of (`will_need`) and checks, on every `take`,
/// that each row was hinted first.
struct Hinted {
    inner: Arc<MemTable>,
    hinted: std::sync::Mutex<HashSet<u64>>,
    unhinted_takes: std::sync::atomic::AtomicU64,
}

impl RandomAccess for Hinted {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.inner.schema()
    }
    fn num_rows(&self) -> u64 {
        self.inner.num_rows()
    }
    fn take(
        &self,
        indices: &[u64],
        projection: Option<&[usize]>,
    ) -> arrowfeed_traits::Result<RecordBatch> {
        let hinted = self.hinted.lock().unwrap();
        if indices.iter().any(|i| !hinted.contains(i)) {
            self.unhinted_takes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        drop(hinted);
        self.inner.take(indices, projection)
    }
    fn slice(
        &self,
        offset: u64,
        len: u64,
        projection: Option<&[usize]>,
    ) -> arrowfeed_traits::Result<RecordBatch> {
        self.inner.slice(offset, len, projection)
    }
    fn partitions(&self) -> Vec<std::ops::Range<u64>> {
        self.inner.partitions()
    }
    fn will_need(&self, rows: &[u64]) {
        self.hinted.lock().unwrap().extend(rows.iter().copied());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// With read-ahead on, every batch's rows were hinted to the dataset before it was
    /// gathered, from any resume position, any rank and worker count; with it off, none is.
    #[test]
    fn every_batch_is_hinted_before_it_is_gathered(
        n in 1usize..600,
        part in 1usize..80,
        batch in 1usize..40,
        shuffle in arb_shuffle(),
        (world, rank) in (1u64..4).prop_flat_map(|w| (Just(w), 0..w)),
        workers in 1usize..4,
        ahead in prop_oneof![Just(None), (1u64..300).prop_map(Some)],
        start_frac in 0.0f64..1.0,
    ) {
        let ds = Arc::new(Hinted {
            inner: table(n, part),
            hinted: Default::default(),
            unhinted_takes: Default::default(),
        });
        let mut b = Loader::builder(ds.clone())
            .batch_size(batch)
            .shuffle(shuffle)
            .seed(5)
            .rank(rank, world)
            .workers(workers);
        if let Some(rows) = ahead {
            b = b.read_ahead_rows(rows);
        }
        let loader = b.build().unwrap();
        let start = (loader.batches_per_epoch() as f64 * start_frac) as u64;
        let state = loader.state(1, start);
        let got = collect(loader.resume(state).unwrap());
        prop_assert_eq!(got.len() as u64, loader.batches_per_epoch() - start);
        prop_assert_eq!(ds.unhinted_takes.load(std::sync::atomic::Ordering::Relaxed), 0);

        let off = Arc::new(Hinted {
            inner: table(n, part),
            hinted: Default::default(),
            unhinted_takes: Default::default(),
        });
        let loader = Loader::builder(off.clone())
            .batch_size(batch)
            .shuffle(shuffle)
            .read_ahead_rows(0)
            .build()
            .unwrap();
        collect(loader.epoch(0).unwrap());
        prop_assert!(off.hinted.lock().unwrap().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `shares` consumers each iterating their share deliver, taken in turn, exactly the
    /// batches of one consumer iterating everything; each share gathers only its own batches
    /// and hints them before gathering.
    #[test]
    fn shares_of_an_epoch_interleave_to_the_whole_epoch(
        n in 1usize..500,
        part in 1usize..60,
        batch in 1usize..30,
        shuffle in arb_shuffle(),
        shares in 1u64..5,
        workers in 1usize..4,
        start_frac in 0.0f64..1.0,
    ) {
        let build = |ds: Arc<dyn RandomAccess>| {
            Loader::builder(ds)
                .batch_size(batch)
                .shuffle(shuffle)
                .seed(3)
                .workers(workers)
                .read_ahead_rows(200)
                .build()
                .unwrap()
        };
        let loader = build(table(n, part));
        let start = (loader.batches_per_epoch() as f64 * start_frac) as u64;
        let state = loader.state(2, start);
        let whole = collect(loader.resume(state).unwrap());
        let mut parts = Vec::new();
        for offset in 0..shares {
            let ds = Arc::new(Hinted {
                inner: table(n, part),
                hinted: Default::default(),
                unhinted_takes: Default::default(),
            });
            let share = collect(build(ds.clone()).resume_share(state, offset, shares).unwrap());
            prop_assert_eq!(ds.unhinted_takes.load(std::sync::atomic::Ordering::Relaxed), 0);
            parts.push(share);
        }
        let mut interleaved = Vec::new();
        let longest = parts.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            for p in &parts {
                if let Some(b) = p.get(i) {
                    interleaved.push(b.clone());
                }
            }
        }
        prop_assert_eq!(interleaved, whole);
        prop_assert!(loader.resume_share(state, shares, shares).is_err());
    }
}

fn arb_remainder() -> impl Strategy<Value = Remainder> {
    prop_oneof![Just(Remainder::Drop), Just(Remainder::Pad)]
}

proptest! {
    /// Any state prints and parses back to itself.
    #[test]
    fn a_printed_state_parses_back(
        seed in any::<u64>(), epoch in any::<u64>(), position in any::<u64>(), start in any::<u64>(),
        batch in 1u64..1 << 40, drop_last in any::<bool>(), shuffle in arb_shuffle(),
        remainder in arb_remainder(), (world, rank) in (1u64..1 << 20).prop_flat_map(|w| (Just(w), 0..w)),
        dataset in any::<u64>(),
    ) {
        let mut state = Loader::builder(table(3, 3)).build().unwrap().state(0, 0);
        state.seed = seed;
        state.epoch = epoch;
        state.position = position;
        state.start = start;
        state.batch_size = batch;
        state.drop_last = drop_last;
        state.shuffle = shuffle;
        state.remainder = remainder;
        state.rank = rank;
        state.world_size = world;
        state.dataset = dataset;
        prop_assert_eq!(state.to_string().parse::<LoaderState>().unwrap(), state);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Elastic resume: an epoch run on `a` ranks in lockstep, checkpointed after `stop_a`
    /// batches, resumed on `b` ranks, checkpointed again after `stop_b` and finished on `c`
    /// ranks delivers no row twice, skips no row beyond what the remainder policy drops at the
    /// end of the epoch, and gives every rank of each run the same number of batches.
    #[test]
    fn an_epoch_resumes_on_any_number_of_ranks(
        n in 1usize..400, part in 1usize..90, bs in 1usize..20,
        a in 1u64..5, b in 1u64..5, c in 1u64..5,
        frac_a in 0.0f64..=1.0, frac_b in 0.0f64..=1.0, from_rank in 0u64..4,
        remainder in arb_remainder(), drop_last in any::<bool>(), shuffle in arb_shuffle(),
        seed in any::<u64>(), epoch in 0u64..3,
    ) {
        let ds = table(n, part);
        let loader = |rank, world| {
            Loader::builder(ds.clone())
                .batch_size(bs).shuffle(shuffle).seed(seed).rank(rank, world)
                .remainder(remainder).drop_last(drop_last).workers(1)
                .build().unwrap()
        };
        let mut seen: Vec<i64> = Vec::new();
        // Runs every rank of `world` from `state` (or the epoch's start) for `frac` of its
        // batches (all of them when `frac` is None); returns one rank's state.
        let mut run = |world: u64, state: Option<LoaderState>, frac: Option<f64>| -> Result<LoaderState, TestCaseError> {
            let mut counts = Vec::new();
            let mut states = Vec::new();
            for rank in 0..world {
                let l = loader(rank, world);
                let mut it = match state {
                    Some(s) => l.resume(s.to_string().parse().unwrap()).unwrap(),
                    None => l.epoch(epoch).unwrap(),
                };
                let mut batches: Vec<RecordBatch> = Vec::new();
                let total = {
                    let probe = match state {
                        Some(s) => l.resume(s).unwrap(),
                        None => l.epoch(epoch).unwrap(),
                    };
                    probe.count() as f64
                };
                let take = frac.map_or(usize::MAX, |f| (total * f) as usize);
                for item in it.by_ref().take(take) {
                    batches.push(item.unwrap());
                }
                counts.push(batches.len());
                for rows in collect(batches.into_iter().map(Ok)) {
                    seen.extend(rows.iter().filter(|r| !r.1).map(|r| r.0));
                }
                states.push(it.state());
            }
            prop_assert!(counts.iter().all(|&k| k == counts[0]), "ranks got {:?} batches", counts);
            Ok(states[(from_rank % world) as usize])
        };
        let s1 = run(a, None, Some(frac_a))?;
        let s2 = run(b, Some(s1), Some(frac_b))?;
        let finished = run(c, Some(s2), None)?;
        // A finished epoch stays finished on any number of ranks: what its remainder policy
        // dropped is not delivered later.
        for world in 1..5 {
            prop_assert_eq!(loader(world - 1, world).resume(finished).unwrap().count(), 0);
        }
        let distinct: HashSet<i64> = seen.iter().copied().collect();
        prop_assert_eq!(distinct.len(), seen.len(), "a row was delivered twice");
        let skipped = n as u64 - distinct.len() as u64;
        let widest = a.max(b).max(c);
        // Pad leaves no row out, Drop up to one fewer than the ranks; drop_last adds up to a
        // short batch per rank.
        let bound = match (remainder == Remainder::Pad, drop_last) {
            (true, false) => 0,
            (false, false) => widest - 1,
            (true, true) => widest * (bs as u64 - 1),
            (false, true) => widest * bs as u64 - 1,
        };
        prop_assert!(skipped <= bound, "{} rows skipped, at most {} allowed", skipped, bound);
    }
}

/// A dataset that breaks the `RandomAccess` contract: its `take` returns `text` as
/// `LargeUtf8` while its schema says `Utf8` (what the shard store did before its schema said
/// which columns are wide).
struct Promoting(Arc<MemTable>);

impl RandomAccess for Promoting {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.0.schema()
    }
    fn num_rows(&self) -> u64 {
        self.0.num_rows()
    }
    fn take(
        &self,
        indices: &[u64],
        projection: Option<&[usize]>,
    ) -> arrowfeed_traits::Result<RecordBatch> {
        let b = self.0.take(indices, projection)?;
        let cols = b
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                arrow_schema::DataType::Utf8 => Arc::new(arrow_array::LargeStringArray::from_iter(
                    c.as_string::<i32>().iter(),
                )) as arrow_array::ArrayRef,
                _ => c.clone(),
            })
            .collect::<Vec<_>>();
        Ok(RecordBatch::try_from_iter(
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .zip(cols),
        )
        .unwrap())
    }
    fn slice(
        &self,
        offset: u64,
        len: u64,
        projection: Option<&[usize]>,
    ) -> arrowfeed_traits::Result<RecordBatch> {
        self.0.slice(offset, len, projection)
    }
}

/// Under every remainder policy, a batch whose types differ from the dataset's schema is an
/// error naming the column and both types, not a batch of another schema (Drop) or an arrow
/// error from building the padded batch (Pad).
#[test]
fn a_dataset_returning_other_types_than_its_schema_is_an_error_naming_the_column() {
    for remainder in [Remainder::Drop, Remainder::Pad] {
        let loader = Loader::builder(Arc::new(Promoting(table(10, 4))))
            .batch_size(3)
            .rank(0, 3)
            .remainder(remainder)
            .build()
            .unwrap();
        let err = loader
            .epoch(0)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"text\"") && err.contains("LargeUtf8") && err.contains("Utf8"),
            "{remainder:?}: {err}"
        );
        // Projecting the column away leaves a dataset that keeps the contract.
        let loader = Loader::builder(Arc::new(Promoting(table(10, 4))))
            .batch_size(3)
            .projection(vec![0])
            .remainder(remainder)
            .build()
            .unwrap();
        assert!(loader.epoch(0).unwrap().all(|b| b.is_ok()), "{remainder:?}");
    }
}
