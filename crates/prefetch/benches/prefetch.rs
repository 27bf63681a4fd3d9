//! Criterion benchmarks of read-ahead: the cost of the channel itself (producer and consumer
//! doing nothing), against iterating the same batches directly.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, RecordBatchIterator};
use arrowfeed_prefetch::Prefetch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn overhead(c: &mut Criterion) {
    let batch =
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from_iter_values(0..64)) as _)])
            .unwrap();
    let n = 10_000;
    let items: Vec<RecordBatch> = (0..n).map(|_| batch.clone()).collect();
    let mut g = c.benchmark_group("prefetch_overhead");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("direct", |b| {
        b.iter(|| {
            let src = RecordBatchIterator::new(items.clone().into_iter().map(Ok), batch.schema());
            black_box(src.map(|r| r.unwrap().num_rows()).sum::<usize>())
        })
    });
    for depth in [1usize, 16] {
        g.bench_function(format!("prefetch_depth_{depth}"), |b| {
            let p = Prefetch::builder().depth(depth).build().unwrap();
            b.iter(|| {
                let src =
                    RecordBatchIterator::new(items.clone().into_iter().map(Ok), batch.schema());
                let r = p.spawn(src).unwrap();
                black_box(r.map(|r| r.unwrap().num_rows()).sum::<usize>())
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = overhead
}
criterion_main!(benches);
