//! Integration tests of arrowfeed-spill, in one binary. Every test checks that the spill
//! directory is empty when it is done.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use arrowfeed_spill::{SharedError, Spill, SpillCompression, SpillReader};
use arrowfeed_traits::Error;
use futures::StreamExt;
use proptest::prelude::*;

/// `n` rows with ids from `first`: an int, a string, a list and a dictionary column.
fn batch(first: i64, n: usize) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(first..first + n as i64));
    let s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("text {}", first + i as i64)),
    ));
    let mut lb = ListBuilder::new(Int32Builder::new());
    for i in 0..n {
        for j in 0..(i % 4) as i32 {
            lb.values().append_value(j);
        }
        lb.append(true);
    }
    let keys = arrow_array::Int32Array::from_iter_values((0..n).map(|i| (i % 3) as i32));
    let dict: ArrayRef = Arc::new(
        DictionaryArray::<Int32Type>::try_new(
            keys,
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
        )
        .unwrap(),
    );
    RecordBatch::try_from_iter([
        ("id", ids),
        ("s", s),
        ("l", Arc::new(lb.finish()) as ArrayRef),
        ("d", dict),
    ])
    .unwrap()
}

fn schema() -> SchemaRef {
    batch(0, 0).schema()
}

fn ids(r: impl Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>) -> Vec<i64> {
    r.flat_map(|b| {
        b.unwrap()
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    })
    .collect()
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the spill directory: {left:?}");
}

#[test]
fn readers_opened_before_during_and_after_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, h) = Spill::builder(dir.path(), schema())
        .memory_budget(4000)
        .build()
        .unwrap();
    let before = h.reader();
    let before_thread = std::thread::spawn(move || ids(before));
    w.write(&batch(0, 10)).unwrap();
    w.write(&batch(10, 10)).unwrap();
    let during = h.reader();
    let during_thread = std::thread::spawn(move || ids(during));
    for k in 2..10 {
        w.write(&batch(k * 10, 10)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    w.finish().unwrap();
    let want: Vec<i64> = (0..100).collect();
    assert!(h.is_spilled());
    assert_eq!(before_thread.join().unwrap(), want);
    assert_eq!(during_thread.join().unwrap(), want);
    assert_eq!(ids(h.reader()), want);
    assert_eq!(ids(h.reader()), want, "replays as often as wanted");
    drop((w, h));
    assert_empty(dir.path());
}

#[test]
fn staying_under_the_limit_never_touches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, h) = Spill::builder(dir.path(), schema())
        .memory_budget(10 << 20)
        .build()
        .unwrap();
    for k in 0..20 {
        w.write(&batch(k * 5, 5)).unwrap();
        assert_empty(dir.path());
    }
    w.finish().unwrap();
    assert!(!h.is_spilled());
    assert_eq!(h.disk_bytes(), 0);
    assert!(h.memory_bytes() > 0 && h.memory_bytes() <= 10 << 20);
    assert_eq!(ids(h.reader()), (0..100).collect::<Vec<_>>());
}

#[test]
fn a_reader_continues_across_the_move_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let first_three: Vec<RecordBatch> = (0..3).map(|k| batch(k * 10, 10)).collect();
    let limit: usize = first_three
        .iter()
        .map(arrowfeed_traits::batch_memory_size)
        .sum();
    let (mut w, h) = Spill::builder(dir.path(), schema())
        .memory_budget(limit)
        .build()
        .unwrap();
    for b in &first_three {
        w.write(b).unwrap();
    }
    assert!(!h.is_spilled());
    let mut r = h.reader();
    let first = r.next().unwrap().unwrap();
    assert_eq!(first.num_rows(), 10);
    // This write moves everything to disk while `r` is in the middle.
    w.write(&batch(30, 10)).unwrap();
    assert!(h.is_spilled());
    assert_eq!(
        h.memory_bytes(),
        0,
        "the memory copies are released once on disk"
    );
    w.write(&batch(40, 10)).unwrap();
    w.finish().unwrap();
    let rest = ids(r);
    assert_eq!(rest, (10..50).collect::<Vec<_>>());
    drop((w, h));
    assert_empty(dir.path());
}

#[test]
fn an_error_reaches_every_reader_after_the_batches_before_it() {
    let dir = tempfile::tempdir().unwrap();
    for limit in [1usize, usize::MAX] {
        let (mut w, h) = Spill::builder(dir.path(), schema())
            .memory_budget(limit)
            .build()
            .unwrap();
        let early = h.reader();
        w.write(&batch(0, 3)).unwrap();
        w.write(&batch(3, 3)).unwrap();
        let cause = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upstream went away");
        w.abort(Error::io("/data/upstream.parquet", cause)).unwrap();
        for r in [early, h.reader()] {
            let items: Vec<_> = r.collect();
            assert_eq!(items.len(), 3, "limit {limit}");
            assert_eq!(items[1].as_ref().unwrap().num_rows(), 3);
            let err = items[2].as_ref().unwrap_err();
            assert!(
                err.to_string().contains("upstream went away")
                    && err.to_string().contains("/data/upstream.parquet"),
                "{err}"
            );
            // The source chain survives: SharedError -> the original arrowfeed error.
            let arrow_schema::ArrowError::ExternalError(inner) = err else {
                panic!("{err:?}")
            };
            let shared = inner.downcast_ref::<SharedError>().unwrap();
            assert!(matches!(shared.0.as_ref(), Error::Io { .. }));
            let src = std::error::Error::source(shared).unwrap();
            assert_eq!(src.to_string(), "upstream went away");
        }
        assert!(w.write(&batch(9, 1)).is_err(), "writing after an error");
        assert!(w.finish().is_err(), "finishing after an error");
    }
    assert_empty(dir.path());
}

#[test]
fn writing_after_finish_or_with_another_schema_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, h) = Spill::builder(dir.path(), schema()).build().unwrap();
    let other =
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
            .unwrap();
    let e = w.write(&other).unwrap_err();
    assert!(
        e.to_string().contains("\"x\"") && e.to_string().contains("\"id\""),
        "shows both schemas: {e}"
    );
    w.finish().unwrap();
    assert!(
        w.write(&batch(0, 1))
            .unwrap_err()
            .to_string()
            .contains("finished")
    );
    assert!(w.finish().is_err());
    assert_eq!(h.reader().count(), 0);
}

#[test]
fn a_writer_dropped_without_finish_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, h) = Spill::builder(dir.path(), schema())
        .memory_budget(1)
        .build()
        .unwrap();
    let r = h.reader();
    let t = std::thread::spawn(move || r.collect::<Vec<_>>());
    w.write(&batch(0, 2)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(w);
    let items = t.join().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("dropped without finish")
    );
    drop(h);
    assert_empty(dir.path());
}

/// Fails every write call after the first `ok` calls.
struct FailingWriter {
    inner: std::fs::File,
    calls: Arc<AtomicUsize>,
    ok: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(std::io::Error::other("injected: disk on fire"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn a_file_system_error_reaches_every_reader_and_leaves_nothing() {
    for ok in [0usize, 1, 3, 10] {
        let dir = tempfile::tempdir().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let (mut w, h) = Spill::builder(dir.path(), schema())
            .memory_budget(1)
            .wrap_file_writer(move |f| {
                Box::new(FailingWriter {
                    inner: f,
                    calls: c.clone(),
                    ok,
                })
            })
            .build()
            .unwrap();
        let early = h.reader();
        let mut failed = None;
        for k in 0..20 {
            if let Err(e) = w.write(&batch(k * 4, 4)) {
                failed = Some((k, e));
                break;
            }
        }
        let (k, e) = failed.expect("the injected failure surfaces");
        assert!(e.to_string().contains("disk on fire"), "{e}");
        for r in [early, h.reader()] {
            let items: Vec<_> = r.collect();
            assert_eq!(items.len(), k as usize + 1, "ok = {ok}");
            assert!(
                items
                    .last()
                    .unwrap()
                    .as_ref()
                    .unwrap_err()
                    .to_string()
                    .contains("disk on fire")
            );
        }
        drop((w, h));
        assert_empty(dir.path());
    }
}

#[test]
fn a_tiny_disk_quota_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, h) = Spill::builder(dir.path(), schema())
        .memory_budget(1)
        .disk_quota(64)
        .build()
        .unwrap();
    let e = w.write(&batch(0, 100)).unwrap_err();
    assert!(e.to_string().contains("disk quota of 64 bytes"), "{e}");
    let items: Vec<_> = h.reader().collect();
    assert_eq!(items.len(), 1);
    assert!(items[0].as_ref().unwrap_err().to_string().contains("quota"));
    drop((w, h));
    assert_empty(dir.path());
}

#[test]
fn the_file_is_gone_after_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let r = std::panic::catch_unwind(move || {
        let (mut w, h) = Spill::builder(&path, schema())
            .memory_budget(1)
            .build()
            .unwrap();
        w.write(&batch(0, 10)).unwrap();
        let mut reader = h.reader();
        reader.next().unwrap().unwrap();
        panic!("the consumer crashed mid-stream");
    });
    assert!(r.is_err());
    assert_empty(dir.path());
}

#[test]
fn a_path_that_is_not_a_directory_is_an_error() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let e = Spill::builder(f.path(), schema()).build().unwrap_err();
    assert!(
        e.to_string().contains(&f.path().display().to_string()),
        "{e}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn async_writer_and_readers_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, h) = Spill::builder(dir.path(), schema())
        .memory_budget(2000)
        .compression(SpillCompression::Lz4)
        .build()
        .unwrap();
    let live = h.reader().into_stream();
    let reader_task = tokio::spawn(async move {
        let items: Vec<_> = live.collect().await;
        ids(items.into_iter())
    });
    for k in 0..30 {
        w.write_async(batch(k * 7, 7)).await.unwrap();
        tokio::task::yield_now().await;
    }
    w.finish_async().await.unwrap();
    let want: Vec<i64> = (0..210).collect();
    assert_eq!(reader_task.await.unwrap(), want);
    let again: Vec<_> = h.reader().into_stream().collect().await;
    assert_eq!(ids(again.into_iter()), want);
    assert!(h.is_spilled());
}

#[test]
fn public_types_are_send() {
    fn is_send<T: Send>() {}
    is_send::<SpillReader>();
    is_send::<arrowfeed_spill::SpillStream>();
    is_send::<arrowfeed_spill::SpillWriter>();
    is_send::<arrowfeed_spill::SpillHandle>();
}

fn arb_compression() -> impl Strategy<Value = SpillCompression> {
    prop_oneof![
        Just(SpillCompression::None),
        Just(SpillCompression::Lz4),
        Just(SpillCompression::Zstd)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any batches, any limit, any compression, readers starting at any point: every reader
    /// replays exactly the input.
    #[test]
    fn every_reader_replays_exactly_the_input(
        sizes in proptest::collection::vec(0usize..40, 0..12),
        limit in prop_oneof![Just(1usize), 2usize..3000, Just(usize::MAX)],
        compression in arb_compression(),
        starts in proptest::collection::vec(0usize..13, 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, h) = Spill::builder(dir.path(), schema()).memory_budget(limit).compression(compression).build().unwrap();
        let mut readers = Vec::new();
        let mut first = 0i64;
        let mut want = Vec::new();
        for (k, &n) in sizes.iter().enumerate() {
            for &s in &starts {
                if s == k {
                    let r = h.reader();
                    readers.push(std::thread::spawn(move || ids(r)));
                }
            }
            w.write(&batch(first, n)).unwrap();
            prop_assert!(h.memory_bytes() <= limit, "{} bytes held in memory, limit {}", h.memory_bytes(), limit);
            want.extend(first..first + n as i64);
            first += n as i64;
        }
        w.finish().unwrap();
        let late = h.reader();
        readers.push(std::thread::spawn(move || ids(late)));
        for t in readers {
            prop_assert_eq!(t.join().unwrap(), want.clone());
        }
        drop((w, h));
        assert_empty(dir.path());
    }
}

/// A zero memory budget is refused naming the setting; one byte spills the first batch.
#[test]
fn a_zero_memory_budget_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = Spill::builder(dir.path(), schema())
        .memory_budget(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("memory_budget"),
        "{e}"
    );
    let (mut w, h) = Spill::builder(dir.path(), schema())
        .memory_budget(1)
        .build()
        .unwrap();
    w.write(&batch(0, 3)).unwrap();
    w.finish().unwrap();
    assert!(h.is_spilled());
}
