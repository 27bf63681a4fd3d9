//! Criterion benchmarks of random gathers from a shard store: 256 uniformly random rows of
//! ML-shaped data, next to `arrow_select::interleave` over the same batches held in memory
//! (the floor: no routing, no mapping) in the same run.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int32Builder, ListBuilder, StringBuilder};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, RecordBatchIterator};
use arrowfeed_shard_store::{ShardStore, StoreWriter};
use arrowfeed_traits::RandomAccess;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn next(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *x >> 33
}

fn ml_batch(first: i64, n: usize, seed: u64) -> RecordBatch {
    let mut r = seed;
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(first..first + n as i64));
    let mut text = StringBuilder::new();
    let mut tokens = ListBuilder::new(Int32Builder::new());
    let mut image = BinaryBuilder::new();
    for _ in 0..n {
        let len = 50 + (next(&mut r) % 351) as usize;
        text.append_value("t".repeat(len));
        for _ in 0..16 + next(&mut r) % 241 {
            tokens.values().append_value((next(&mut r) % 50257) as i32);
        }
        tokens.append(true);
        let ilen = if next(&mut r).is_multiple_of(4) {
            1024 + (next(&mut r) % 7169) as usize
        } else {
            32
        };
        image.append_value(vec![7u8; ilen]);
    }
    RecordBatch::try_from_iter([
        ("id", ids),
        ("text", Arc::new(text.finish()) as ArrayRef),
        ("tokens", Arc::new(tokens.finish()) as ArrayRef),
        ("image", Arc::new(image.finish()) as ArrayRef),
    ])
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let n = 8192usize;
    let batches: Vec<RecordBatch> = (0..12)
        .map(|k| ml_batch((k * n) as i64, n, k as u64))
        .collect();
    let total = (batches.len() * n) as u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let input = RecordBatchIterator::new(batches.clone().into_iter().map(Ok), batches[0].schema());
    StoreWriter::new()
        .shard_rows(3 * n as u64)
        .write(&path, input)
        .unwrap();
    let store = ShardStore::open(&path).unwrap();
    let mut seed = 12345u64;
    let gathers: Vec<Vec<u64>> = (0..64)
        .map(|_| (0..256).map(|_| next(&mut seed) % total).collect())
        .collect();

    let mut g = c.benchmark_group("take_256_random_rows");
    g.throughput(Throughput::Elements(256));
    let mut k = 0;
    g.bench_function("shard_store", |b| {
        b.iter(|| {
            k = (k + 1) % gathers.len();
            black_box(store.take(&gathers[k], None).unwrap())
        })
    });
    let mut k = 0;
    g.bench_function("interleave_in_memory", |b| {
        b.iter(|| {
            k = (k + 1) % gathers.len();
            let positions: Vec<(usize, usize)> = gathers[k]
                .iter()
                .map(|&i| ((i as usize) / n, (i as usize) % n))
                .collect();
            let cols: Vec<ArrayRef> = (0..4)
                .map(|c| {
                    let arrays: Vec<&dyn Array> =
                        batches.iter().map(|b| b.column(c).as_ref()).collect();
                    arrow_select::interleave::interleave(&arrays, &positions).unwrap()
                })
                .collect();
            black_box(cols)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
