//! Criterion benchmarks of full Parquet scans over S3 (a real server: SeaweedFS on loopback),
//! the engine (`arrowfeed::scan` of the URL) against the parquet crate's async reader
//! (`ParquetObjectReader` + `ParquetRecordBatchStream`) over object_store, on the same object
//! in the same run:
//!
//! - `s3_scan/{ml,tpch}`: as the server answers;
//! - `s3_scan_5ms/{ml,tpch}`: 5 ms more per request on both sides (`LatencySource` under the
//!   engine, object_store's `ThrottledStore` under the async reader), as a distant region would.
//!
//! Needs the shared bench data (`ARROWFEED_BENCH_DATA`, default `/tmp/benchdata`, from
//! `../shared/bench/gen_data.py`) and a server in the environment as `cargo xtask test` sets it
//! (`ARROWFEED_TEST_S3_ENDPOINT`, `ARROWFEED_TEST_S3_BUCKET`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`); the files are uploaded once.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]
// `ParquetObjectReader` is deprecated in parquet 60.1 in favour of hand-written readers; it is
// still what a user of the parquet crate over object_store reaches for, hence the baseline.
#![allow(deprecated)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrowfeed::decode_sched::LatencySource;
use arrowfeed::object_store::{RemoteFile, RemoteOptions};
use arrowfeed::prelude::*;
use arrowfeed::traits::ByteSource;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use object_store::ObjectStore;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::async_reader::ParquetObjectReader;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn criterion() -> Criterion {
    // SAFETY: mi_option_set stores a number in mimalloc's option table; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(15, 10_000) };
    Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
}

struct Setup {
    bucket: String,
    files: Vec<(&'static str, String, u64)>,
}

/// Uploads the bench files the server lacks; `None` (with a note) without data or server.
fn setup() -> Option<Setup> {
    let data = std::env::var_os("ARROWFEED_BENCH_DATA")
        .map_or_else(|| PathBuf::from("/tmp/benchdata"), PathBuf::from);
    let Some(server) = arrowfeed::traits::testkit::s3_server() else {
        println!("s3_scan: no S3 server in the environment; nothing measured");
        return None;
    };
    let mut files = Vec::new();
    for name in ["tpch", "ml"] {
        let path = data.join(format!("{name}.parquet"));
        if !path.exists() {
            println!("s3_scan: {} is missing; skipped", path.display());
            continue;
        }
        let url = format!("s3://{}/bench/{name}.parquet", server.bucket);
        let size = std::fs::metadata(&path).unwrap().len();
        let present =
            RemoteFile::open(&url, &RemoteOptions::default()).is_ok_and(|f| f.len() == size);
        if !present {
            println!("s3_scan: uploading {} to {url}", path.display());
            arrowfeed::upload(&path, &url).unwrap();
        }
        files.push((name, url, size));
    }
    Some(Setup {
        bucket: server.bucket,
        files,
    })
}

/// The peer's client: object_store's S3 store from the same environment.
fn peer_store(bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .unwrap(),
    )
}

fn engine(source: Arc<dyn ByteSource>) -> usize {
    let options = ReadOptions::default().batch_size(8192);
    let reader = arrowfeed::scan_source(source, &options)
        .unwrap()
        .decode_parallelism(2)
        .io_parallelism(8)
        .reader()
        .unwrap();
    reader.map(|b| black_box(b.unwrap()).num_rows()).sum()
}

fn peer(rt: &tokio::runtime::Runtime, store: Arc<dyn ObjectStore>, key: &str, size: u64) -> usize {
    rt.block_on(async {
        let reader = ParquetObjectReader::new(store, key.into()).with_file_size(size);
        let mut stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .unwrap()
            .with_batch_size(8192)
            .build()
            .unwrap();
        let mut rows = 0;
        while let Some(b) = stream.next().await {
            rows += black_box(b.unwrap()).num_rows();
        }
        rows
    })
}

fn s3_scan(c: &mut Criterion) {
    let Some(setup) = setup() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = peer_store(&setup.bucket);
    let latency = Duration::from_millis(5);
    let throttled: Arc<dyn ObjectStore> = Arc::new(object_store::throttle::ThrottledStore::new(
        peer_store(&setup.bucket),
        object_store::throttle::ThrottleConfig {
            wait_get_per_call: latency,
            ..Default::default()
        },
    ));
    for (name, url, size) in &setup.files {
        let key = format!("bench/{name}.parquet");
        let remote: Arc<dyn ByteSource> =
            Arc::new(RemoteFile::open(url, &RemoteOptions::default()).unwrap());
        let rows = engine(remote.clone());
        assert_eq!(
            rows,
            peer(&rt, store.clone(), &key, *size),
            "{name}: row counts differ"
        );
        for (group, slow) in [("s3_scan", false), ("s3_scan_5ms", true)] {
            let mut g = c.benchmark_group(format!("{group}/{name}"));
            g.throughput(Throughput::Bytes(*size));
            g.bench_function("engine", |b| {
                b.iter(|| {
                    let source: Arc<dyn ByteSource> = if slow {
                        Arc::new(LatencySource::new(remote.clone(), latency))
                    } else {
                        remote.clone()
                    };
                    assert_eq!(engine(source), rows);
                })
            });
            let s = if slow {
                throttled.clone()
            } else {
                store.clone()
            };
            g.bench_function("parquet_async", |b| {
                b.iter(|| assert_eq!(peer(&rt, s.clone(), &key, *size), rows))
            });
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = s3_scan
}
criterion_main!(benches);
