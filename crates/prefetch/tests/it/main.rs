//! Integration tests of arrowfeed-prefetch, in one binary.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::sync::Arc;
mod fuzz_inputs;
mod loader;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchReader, StringArray};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_prefetch::{Order, Prefetch, PrefetchStream, TryNext};
use futures::StreamExt;
use proptest::prelude::*;

/// A batch of `n` rows whose ids start at `first`, with a string column of `width` bytes a row.
fn batch(first: i64, n: usize, width: usize) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(first..first + n as i64));
    let s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|_| "x".repeat(width)),
    ));
    RecordBatch::try_from_iter([("id", ids), ("s", s)]).unwrap()
}

/// A scripted source: yields the given items, optionally sleeping before each, and counts
/// how many it has handed out.
struct Scripted {
    items: std::vec::IntoIter<Result<RecordBatch, ArrowError>>,
    schema: SchemaRef,
    delay: Duration,
    reads: Arc<AtomicUsize>,
    panic_at: Option<usize>,
}

impl Scripted {
    fn new(items: Vec<Result<RecordBatch, ArrowError>>) -> Self {
        Self {
            items: items.into_iter(),
            schema: batch(0, 0, 0).schema(),
            delay: Duration::ZERO,
            reads: Arc::new(AtomicUsize::new(0)),
            panic_at: None,
        }
    }
    fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

impl Iterator for Scripted {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let k = self.reads.fetch_add(1, Ordering::SeqCst);
        if self.panic_at == Some(k) {
            panic!("scripted panic at read {k}");
        }
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.items.next()
    }
}

impl RecordBatchReader for Scripted {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

fn ids(b: &RecordBatch) -> Vec<i64> {
    b.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The consumer sees exactly the producer's batches, in order, then the error if any, then
    /// the end — blocking and async alike, for any depth and budget.
    #[test]
    fn output_is_the_input_in_order(
        sizes in proptest::collection::vec(0usize..50, 0..20),
        error_at in proptest::option::of(0usize..20),
        depth in 1usize..6,
        budget in prop_oneof![Just(1usize), 1usize..5000, Just(usize::MAX)],
        use_stream in any::<bool>(),
    ) {
        let mut items = Vec::new();
        let mut first = 0i64;
        for (k, &n) in sizes.iter().enumerate() {
            if error_at == Some(k) {
                items.push(Err(ArrowError::ComputeError(format!("boom at {k}"))));
            }
            items.push(Ok(batch(first, n, 3)));
            first += n as i64;
        }
        let want = items.iter().map(|i| i.as_ref().map(ids).map_err(|e| e.to_string())).collect::<Vec<_>>();
        let want: Vec<_> = match want.iter().position(|r| r.is_err()) {
            Some(p) => want[..=p].to_vec(),
            None => want,
        };
        let reader = Prefetch::builder().depth(depth).memory_budget(budget).build().unwrap()
            .spawn(Scripted::new(items)).unwrap();
        let got: Vec<Result<Vec<i64>, String>> = if use_stream {
            futures::executor::block_on_stream(reader.into_stream()).map(|r| r.as_ref().map(ids).map_err(|e| e.to_string())).collect()
        } else {
            reader.map(|r| r.as_ref().map(ids).map_err(|e| e.to_string())).collect()
        };
        prop_assert_eq!(got, want);
    }
}

#[test]
fn buffered_bytes_stay_within_budget_plus_one_batch() {
    let sizes = [10usize, 2000, 5, 700, 3000, 1, 1, 1500, 40, 900];
    let items = || -> Vec<_> {
        sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| Ok(batch(k as i64 * 10_000, n, 16)))
            .collect()
    };
    let largest = sizes
        .iter()
        .map(|&n| arrowfeed_traits::batch_memory_size(&batch(0, n, 16)))
        .max()
        .unwrap();
    for budget in [1usize, 10_000, 50_000, 200_000] {
        let mut reader = Prefetch::builder()
            .depth(100)
            .memory_budget(budget)
            .build()
            .unwrap()
            .spawn(Scripted::new(items()))
            .unwrap();
        let mut seen = 0;
        loop {
            // A slow consumer, so the producer runs into the bounds.
            std::thread::sleep(Duration::from_millis(3));
            let (_, bytes) = reader.queued();
            assert!(
                bytes <= budget + largest,
                "budget {budget}: {bytes} buffered"
            );
            match reader.next() {
                Some(r) => {
                    r.unwrap();
                    seen += 1;
                }
                None => break,
            }
        }
        assert_eq!(seen, sizes.len());
        let m = reader.metrics();
        assert!(
            m.peak_bytes <= budget + largest,
            "budget {budget}: peak {}",
            m.peak_bytes
        );
        assert_eq!(m.batches_produced, sizes.len() as u64);
        if budget == 1 {
            // Every batch exceeds the budget alone, and still each one flowed.
            assert!(m.peak_bytes <= largest);
        }
    }
}

#[test]
fn dropping_the_consumer_stops_a_slow_producer() {
    let items: Vec<_> = (0..1000).map(|k| Ok(batch(k, 4, 4))).collect();
    let src = Scripted::new(items).delay(Duration::from_millis(5));
    let reads = src.reads.clone();
    let depth = 3;
    let mut reader = Prefetch::builder()
        .depth(depth)
        .build()
        .unwrap()
        .spawn(src)
        .unwrap();
    reader.next().unwrap().unwrap();
    drop(reader);
    std::thread::sleep(Duration::from_millis(150));
    let n = reads.load(Ordering::SeqCst);
    // The first batch, what filled the buffer, and the read in flight when we dropped.
    assert!(n <= 1 + depth + 1, "{n} reads after dropping");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(reads.load(Ordering::SeqCst), n, "the producer kept reading");
}

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l[8..].trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_thousand_create_drop_cycles_leak_no_threads() {
    let before = thread_count();
    for k in 0..1000 {
        let items: Vec<_> = (0..5).map(|j| Ok(batch(j, 8, 2))).collect();
        let mut r = Prefetch::builder()
            .depth(2)
            .build()
            .unwrap()
            .spawn(Scripted::new(items))
            .unwrap();
        if k % 2 == 0 {
            r.next().unwrap().unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while thread_count() > before + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if cfg!(target_os = "linux") {
        assert!(
            thread_count() <= before + 2,
            "{} threads, {before} before",
            thread_count()
        );
    }
}

#[test]
fn a_panicking_source_becomes_an_error() {
    let items: Vec<_> = (0..5).map(|k| Ok(batch(k, 1, 1))).collect();
    let mut src = Scripted::new(items);
    src.panic_at = Some(2);
    let got: Vec<_> = Prefetch::builder()
        .build()
        .unwrap()
        .spawn(src)
        .unwrap()
        .collect();
    assert_eq!(got.len(), 3);
    assert!(got[0].is_ok() && got[1].is_ok());
    let msg = got[2].as_ref().unwrap_err().to_string();
    assert!(msg.contains("scripted panic at read 2"), "{msg}");
}

#[test]
fn zero_settings_are_errors_naming_the_setting() {
    for (b, name) in [
        (Prefetch::builder().depth(0), "depth"),
        (Prefetch::builder().memory_budget(0), "memory_budget"),
        (Prefetch::builder().parallelism(0), "parallelism"),
    ] {
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
    let none: Vec<Box<dyn RecordBatchReader + Send>> = Vec::new();
    assert!(
        Prefetch::builder()
            .build()
            .unwrap()
            .spawn_many(none)
            .is_err()
    );
}

#[test]
fn try_next_never_blocks() {
    let items: Vec<_> = (0..3).map(|k| Ok(batch(k, 1, 1))).collect();
    let mut r = Prefetch::builder()
        .build()
        .unwrap()
        .spawn(Scripted::new(items).delay(Duration::from_millis(40)))
        .unwrap();
    let t = Instant::now();
    assert!(matches!(r.try_next(), TryNext::Pending));
    assert!(t.elapsed() < Duration::from_millis(30));
    let mut got = 0;
    loop {
        match r.try_next() {
            TryNext::Ready(b) => {
                b.unwrap();
                got += 1;
            }
            TryNext::Pending => std::thread::sleep(Duration::from_millis(2)),
            TryNext::Ended => break,
        }
    }
    assert_eq!(got, 3);
}

/// On a current-thread runtime a blocking poll would freeze every other task; here a ticker
/// task keeps running while the stream waits for a slow producer.
#[tokio::test(flavor = "current_thread")]
async fn the_stream_never_blocks_a_current_thread_runtime() {
    let items: Vec<_> = (0..4).map(|k| Ok(batch(k, 1, 1))).collect();
    let mut r = Prefetch::builder()
        .build()
        .unwrap()
        .spawn(Scripted::new(items).delay(Duration::from_millis(50)))
        .unwrap()
        .into_stream();
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            t.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut n = 0;
    while let Some(b) = r.next().await {
        b.unwrap();
        n += 1;
    }
    ticker.abort();
    assert_eq!(n, 4);
    // About 200 ms of waiting: the ticker ran throughout.
    assert!(
        ticks.load(Ordering::SeqCst) >= 10,
        "ticker ran {} times",
        ticks.load(Ordering::SeqCst)
    );
    assert!(
        r.metrics().consumer_wait >= Duration::from_millis(100),
        "{}",
        r.metrics()
    );
}

fn sources(n: usize, batches: usize, delay: Duration) -> Vec<Box<dyn RecordBatchReader + Send>> {
    (0..n)
        .map(|s| {
            let items: Vec<_> = (0..batches)
                .map(|k| Ok(batch((s * 1000 + k) as i64, 1, 1)))
                .collect();
            Box::new(Scripted::new(items).delay(delay)) as Box<dyn RecordBatchReader + Send>
        })
        .collect()
}

#[test]
fn round_robin_order_is_deterministic() {
    // 3 sources on 2 producers: producer 0 reads sources 0 then 2, producer 1 reads source 1.
    let want: Vec<i64> = vec![0, 1000, 1, 1001, 2, 2000, 2001, 2002];
    for depth in [1, 2, 8] {
        let lens = [3usize, 2, 3];
        let srcs: Vec<Box<dyn RecordBatchReader + Send>> = lens
            .iter()
            .enumerate()
            .map(|(s, &n)| {
                let items: Vec<_> = (0..n)
                    .map(|k| Ok(batch((s * 1000 + k) as i64, 1, 1)))
                    .collect();
                Box::new(
                    Scripted::new(items).delay(Duration::from_micros(((s * 7) % 3 * 300) as u64)),
                ) as Box<dyn RecordBatchReader + Send>
            })
            .collect();
        let r = Prefetch::builder()
            .parallelism(2)
            .depth(depth)
            .order(Order::RoundRobin)
            .build()
            .unwrap()
            .spawn_many(srcs)
            .unwrap();
        let got: Vec<i64> = r.map(|b| ids(&b.unwrap())[0]).collect();
        assert_eq!(got, want, "depth {depth}");
    }
}

#[test]
fn as_ready_keeps_each_sources_order_and_loses_nothing() {
    let r = Prefetch::builder()
        .parallelism(3)
        .order(Order::AsReady)
        .build()
        .unwrap()
        .spawn_many(sources(5, 20, Duration::from_micros(200)))
        .unwrap();
    let got: Vec<i64> = r.map(|b| ids(&b.unwrap())[0]).collect();
    assert_eq!(got.len(), 100);
    for s in 0..5i64 {
        let mine: Vec<i64> = got.iter().copied().filter(|i| i / 1000 == s).collect();
        assert_eq!(mine, (0..20).map(|k| s * 1000 + k).collect::<Vec<_>>());
    }
}

#[test]
fn readers_and_streams_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let r = Prefetch::builder()
        .build()
        .unwrap()
        .spawn(Scripted::new(vec![]))
        .unwrap();
    is_send(&r);
    let fut = async move {
        let mut r: PrefetchStream = r.into_stream();
        r.next().await
    };
    is_send(&fut);
}
