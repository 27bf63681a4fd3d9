//! Reading through a `ByteSource` (how remote objects are read) gives what reading the path
//! gives, reads only the ranges it needs, and fails on damage as the path readers do.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatchReader;
use arrowfeed_core_source::{
    IpcScanPlan, ParquetScanPlan, ReadOptions, info, info_source, open_source, open_with,
};
use arrowfeed_traits::{ByteSource, Error, MemorySource, run_plan_in_order};
use bytes::Bytes;
use futures::future::BoxFuture;
use proptest::prelude::*;

use crate::common::*;

/// A source over bytes in memory that counts its requests and the bytes they asked for.
#[derive(Debug)]
struct Counted {
    inner: MemorySource,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Counted {
    fn new(name: &str, data: Vec<u8>) -> Arc<Self> {
        Arc::new(Self {
            inner: MemorySource::new(name, data),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }
    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl ByteSource for Counted {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn size(&self) -> BoxFuture<'_, arrowfeed_traits::Result<u64>> {
        self.inner.size()
    }
    fn read(&self, range: Range<u64>) -> BoxFuture<'_, arrowfeed_traits::Result<Bytes>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(range.end.saturating_sub(range.start), Ordering::Relaxed);
        self.inner.read(range)
    }
}

fn source_of(path: &std::path::Path) -> Arc<Counted> {
    Counted::new("mem://data", std::fs::read(path).unwrap())
}

fn drain(r: impl RecordBatchReader) -> Vec<arrow_array::RecordBatch> {
    r.collect::<Result<_, _>>().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Every format through a source equals the same file through its path, for any columns
    /// and batch size.
    #[test]
    fn a_source_reads_what_the_path_reads(
        sizes in proptest::collection::vec(0usize..150, 1..5),
        batch_size in 1usize..200,
        pick in proptest::collection::vec(any::<bool>(), 4),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cols = [Col::Int64, Col::Utf8, Col::ListInt32, Col::DictUtf8];
        let schema = schema(&cols);
        let input = batches(&cols, &sizes, seed);
        let mut names: Vec<String> = schema
            .fields()
            .iter()
            .zip(&pick)
            .filter(|(_, p)| **p)
            .map(|(f, _)| f.name().clone())
            .collect();
        names.reverse();
        let mut options = ReadOptions::default().batch_size(batch_size);
        if !names.is_empty() {
            options = options.columns(names.clone());
        }
        for out in OUTS {
            let path = dir.path().join(format!("{out:?}"));
            write(&path, out, &schema, &input);
            let want = drain(open_with(&path, &options).unwrap());
            let src = source_of(&path);
            let got = drain(open_source(src.clone(), &options).unwrap());
            prop_assert_eq!(&got, &want, "{:?}", out);
            let want_info = info(&path).unwrap();
            let got_info = info_source(src).unwrap();
            prop_assert_eq!(got_info.rows, want_info.rows);
            prop_assert_eq!(got_info.unit_rows, want_info.unit_rows);
            prop_assert_eq!(got_info.compression, want_info.compression);
            prop_assert_eq!(got_info.file_bytes, want_info.file_bytes);
            prop_assert_eq!(got_info.schema, want_info.schema);
        }
    }
}

/// A Parquet column read through a source fetches that column's chunks and the footer, not
/// the object; and the scan plans built from a source equal those built from the path.
#[test]
fn a_projected_parquet_read_fetches_a_fraction_of_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64, Col::Utf8, Col::Binary, Col::ListInt32];
    let schema = schema(&cols);
    let input = batches(&cols, &[5_000, 5_000, 5_000], 3);
    let path = dir.path().join("p.parquet");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(5_000))
        .build();
    write_parquet(&path, &schema, &input, props);
    let size = std::fs::metadata(&path).unwrap().len();
    let src = source_of(&path);
    let options = ReadOptions::default().columns(["c0_Int64"]);
    let got = drain(open_source(src.clone(), &options).unwrap());
    assert_eq!(got, drain(open_with(&path, &options).unwrap()));
    let md = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&std::fs::File::open(&path).unwrap())
        .unwrap();
    let chunks: u64 = md
        .row_groups()
        .iter()
        .map(|rg| rg.column(0).byte_range().1)
        .sum();
    // The head (format detection), the tail (footer), and the column's chunks: nothing else.
    let allowed = 8 + (64 << 10) + chunks;
    assert!(
        src.bytes() <= allowed && allowed < size,
        "read {} bytes of a {size}-byte file for a column of {chunks} bytes",
        src.bytes()
    );

    let data = Bytes::from(std::fs::read(&path).unwrap());
    let read = move |r: Range<u64>| Ok(data.slice(r.start as usize..r.end as usize));
    let from_path = run_plan_in_order(
        ParquetScanPlan::try_new(&path, &options).unwrap(),
        read.clone(),
    )
    .unwrap();
    let from_source = run_plan_in_order(
        ParquetScanPlan::from_source(&(source_of(&path) as Arc<dyn ByteSource>), &options).unwrap(),
        read.clone(),
    )
    .unwrap();
    assert_eq!(from_source, from_path);

    let ipc = dir.path().join("f.arrow");
    write(&ipc, Out::IpcFileLz4, &schema, &input);
    let data = Bytes::from(std::fs::read(&ipc).unwrap());
    let read = move |r: Range<u64>| Ok(data.slice(r.start as usize..r.end as usize));
    let columns = ["c3_ListInt32".to_string()];
    let from_path = run_plan_in_order(
        IpcScanPlan::try_new(&ipc, Some(&columns)).unwrap(),
        read.clone(),
    )
    .unwrap();
    let from_source = run_plan_in_order(
        IpcScanPlan::from_source(&(source_of(&ipc) as Arc<dyn ByteSource>), Some(&columns))
            .unwrap(),
        read,
    )
    .unwrap();
    assert_eq!(from_source, from_path);
}

/// Opening a file through a source reads its head and its tail: a few requests, however large
/// the file, not one per row group or batch.
#[test]
fn opening_costs_a_few_requests() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64, Col::Utf8];
    let schema = schema(&cols);
    let input = batches(&cols, &[100; 40], 9);
    for out in [Out::Parquet, Out::IpcFile] {
        let path = dir.path().join(format!("{out:?}"));
        write(&path, out, &schema, &input);
        let src = source_of(&path);
        let _reader = open_source(src.clone(), &ReadOptions::default()).unwrap();
        let n = src.requests.load(Ordering::Relaxed);
        assert!(n <= 4, "{out:?}: {n} requests to open");
    }
}

/// A truncated object fails as a truncated file does: an error naming it, never a panic.
#[test]
fn truncated_objects_fail_like_truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64, Col::Utf8, Col::ListInt32];
    let schema = schema(&cols);
    let input = batches(&cols, &[300, 300], 5);
    for out in OUTS {
        let path = dir.path().join(format!("{out:?}"));
        write(&path, out, &schema, &input);
        let full = std::fs::read(&path).unwrap();
        for cut in [1usize, 7, full.len() / 3, full.len() / 2, full.len() - 3] {
            let short = full[..cut].to_vec();
            let cut_path = dir.path().join(format!("{out:?}-{cut}"));
            std::fs::write(&cut_path, &short).unwrap();
            let local = read_all(&cut_path);
            let src = Counted::new("mem://cut", short);
            let remote = open_source(src, &ReadOptions::default()).and_then(|s| {
                s.map(|b| b.map_err(Error::from_arrow))
                    .collect::<Result<Vec<_>, _>>()
            });
            match (&local, &remote) {
                (Err(_), Err(e)) => assert!(
                    e.to_string().contains("mem://cut"),
                    "{out:?} cut at {cut}: {e}"
                ),
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{out:?} cut at {cut}"),
                _ => panic!(
                    "{out:?} cut at {cut}: the path gave {:?}, the source {:?}",
                    local.as_ref().map(|b| b.len()),
                    remote.as_ref().map(|b| b.len())
                ),
            }
        }
    }
}
