//! Measures how well read-ahead overlaps a slow source with a slow consumer.
//!
//! A source takes P ms per batch and the consumer C ms per batch. Without read-ahead an epoch of
//! N batches costs about N·(P+C); with it, about N·max(P, C); with K producers over K sources
//! and P > C, about N·max(P/K, C). Prints each measured time as a ratio to its ideal.
//!
//! Run: `cargo run --release -p arrowfeed-prefetch --example overlap`
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_prefetch::{Order, Prefetch};

/// A source that "works" (sleeps) `delay` per batch.
struct Slow {
    left: usize,
    delay: Duration,
    batch: RecordBatch,
}

impl Iterator for Slow {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        std::thread::sleep(self.delay);
        Some(Ok(self.batch.clone()))
    }
}

impl RecordBatchReader for Slow {
    fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }
}

fn main() {
    let batch =
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from_iter_values(0..1024)) as _)])
            .unwrap();
    let n = 60usize;
    let ms = Duration::from_millis;
    println!(
        "{:>6} {:>6} {:>3} {:>10} {:>10} {:>12} {:>10}",
        "P ms", "C ms", "K", "serial s", "ideal s", "prefetch s", "ratio"
    );
    for (p, c) in [(1u64, 4u64), (2, 4), (4, 4), (4, 2), (4, 1)] {
        for k in [1usize, 2, 4] {
            if k > 1 && p <= c {
                continue;
            }
            let sources: Vec<Box<dyn RecordBatchReader + Send>> = (0..k)
                .map(|_| {
                    Box::new(Slow {
                        left: n / k,
                        delay: ms(p),
                        batch: batch.clone(),
                    }) as _
                })
                .collect();
            let reader = Prefetch::builder()
                .depth(8)
                .parallelism(k)
                .order(Order::AsReady)
                .build()
                .unwrap()
                .spawn_many(sources)
                .unwrap();
            let t = Instant::now();
            for b in reader {
                b.unwrap();
                std::thread::sleep(ms(c));
            }
            let took = t.elapsed().as_secs_f64();
            let serial = n as f64 * (p + c) as f64 / 1e3;
            let ideal = n as f64 * (p as f64 / k as f64).max(c as f64) / 1e3;
            println!(
                "{p:>6} {c:>6} {k:>3} {serial:>10.3} {ideal:>10.3} {took:>12.3} {:>10.3}",
                took / ideal
            );
        }
    }
    // The channel's own cost: P = C = 0.
    let items: Vec<_> = (0..200_000).map(|_| Ok(batch.clone())).collect();
    let t = Instant::now();
    let r = Prefetch::builder()
        .depth(16)
        .build()
        .unwrap()
        .spawn(arrow_array::RecordBatchIterator::new(items, batch.schema()))
        .unwrap();
    let count = r.count();
    let per = t.elapsed().as_secs_f64() / count as f64 * 1e6;
    println!("overhead with P = C = 0: {per:.2} µs per batch over {count} batches");
}
