//! Criterion benchmarks of the scan engine beside the readers it replaces, on the same data in
//! the same run:
//!
//! - `parquet_scan/{ml,tpch}`: full scans, the engine (2 decode threads, memory map) against
//!   the parquet crate's `ParquetRecordBatchReader` on one thread.
//! - `remote_{tpch,ml_narrow}`: 5 ms of latency per request (and `remote_tpch_100mbps`: plus
//!   100 MB/s per request) through `LatencySource`, the engine against the parquet crate's
//!   async reader (`ParquetRecordBatchStreamBuilder`) over the same source.
//! - `ipc_scan`: an IPC shard, the engine against arrow-ipc's `FileDecoder` on a memory map.
//! - `projection`: bytes read when scanning one narrow column (printed, not timed).
//!
//! Data: `ARROWFEED_BENCH_DATA` (default `/tmp/benchdata`), made by
//! `../shared/bench/gen_data.py`. Without it, a small numeric file is written under `target/`
//! so the benchmark still runs.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrowfeed_core_source::{IpcScanPlan, LocalFile, MmapFile, ParquetScanPlan, ReadOptions};
use arrowfeed_decode_sched::{LatencySource, Scan, ScanReader};
use arrowfeed_traits::ByteSource;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

// Both sides allocate through the same allocator the CLI uses, set up as the CLI sets it up.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// As the CLI: freed memory stays in the process for 10 s (mimalloc's `purge_delay`, option 15).
fn criterion() -> Criterion {
    // SAFETY: mi_option_set stores a number in mimalloc's option table; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(15, 10_000) };
    Criterion::default()
}

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("ARROWFEED_BENCH_DATA")
        .map_or_else(|| PathBuf::from("/tmp/benchdata"), PathBuf::from);
    if dir.join("tpch.parquet").exists() {
        return dir;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-fallback");
    let path = dir.join("tpch.parquet");
    if !path.exists() {
        println!(
            "no shared bench data in ARROWFEED_BENCH_DATA; writing a small numeric file to {}",
            dir.display()
        );
        std::fs::create_dir_all(&dir).unwrap();
        let f = std::fs::File::create(&path).unwrap();
        let n = 2_000_000i64;
        let batch = RecordBatch::try_from_iter([
            (
                "l_orderkey",
                Arc::new(Int64Array::from_iter_values(0..n)) as _,
            ),
            (
                "l_price",
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|i| (i % 1000) as f64 * 1.5),
                )) as _,
            ),
        ])
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(250_000))
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    dir
}

/// Arrow bytes of a file's data, as the reference reader produces them (for MB/s).
fn arrow_bytes(path: &Path, columns: Option<&[&str]>) -> u64 {
    let f = std::fs::File::open(path).unwrap();
    let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let b = match columns {
        Some(c) => {
            let mask =
                parquet::arrow::ProjectionMask::columns(b.parquet_schema(), c.iter().copied());
            b.with_projection(mask)
        }
        None => b,
    };
    b.build()
        .unwrap()
        .map(|r| r.unwrap().get_array_memory_size() as u64)
        .sum()
}

fn engine_rows(
    path: &Path,
    source: Arc<dyn ByteSource>,
    options: &ReadOptions,
    tune: impl Fn(Scan) -> Scan,
) -> usize {
    let plan = ParquetScanPlan::try_new(path, options)
        .unwrap()
        .decode_batch_rows(8192);
    drain(
        tune(Scan::from_parts(source, Box::new(plan)).batch_size(8192))
            .reader()
            .unwrap(),
    )
}

/// Takes every batch of `reader`, returning the rows.
fn drain(mut reader: ScanReader) -> usize {
    let mut rows = 0;
    while let Some(b) = reader.next_batch().unwrap() {
        rows += black_box(b).num_rows();
    }
    rows
}

fn parquet_scan(c: &mut Criterion) {
    let dir = data_dir();
    let mut g = c.benchmark_group("parquet_scan");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for name in ["ml", "tpch"] {
        let path = dir.join(format!("{name}.parquet"));
        if !path.exists() {
            continue;
        }
        g.throughput(Throughput::Bytes(arrow_bytes(&path, None)));
        g.bench_function(format!("{name}/parquet_crate_1_thread"), |b| {
            b.iter(|| {
                let f = std::fs::File::open(&path).unwrap();
                let r = ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .with_batch_size(8192)
                    .build()
                    .unwrap();
                black_box(r.map(|b| b.unwrap().num_rows()).sum::<usize>())
            })
        });
        g.bench_function(format!("{name}/engine_2_threads_mmap"), |b| {
            b.iter(|| {
                let src = Arc::new(MmapFile::open(&path).unwrap());
                engine_rows(&path, src, &ReadOptions::default(), |s| {
                    s.decode_parallelism(2)
                })
            })
        });
        g.bench_function(format!("{name}/engine_2_threads_pread"), |b| {
            b.iter(|| {
                let src = Arc::new(LocalFile::open(&path).unwrap());
                engine_rows(&path, src, &ReadOptions::default(), |s| {
                    s.decode_parallelism(2)
                })
            })
        });
    }
    g.finish();
}

/// The parquet crate's async reader over a `ByteSource`.
struct AsyncSource(Arc<dyn ByteSource>);

impl AsyncFileReader for AsyncSource {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        let src = self.0.clone();
        async move {
            src.read(range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self
                .0
                .size()
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
            let tail = self.get_bytes(size - 8..size).await?;
            let len = u32::from_le_bytes(tail[..4].try_into().unwrap()) as u64;
            let footer = self.get_bytes(size - 8 - len..size - 8).await?;
            Ok(Arc::new(ParquetMetaDataReader::decode_metadata(&footer)?))
        }
        .boxed()
    }
}

fn async_reader_rows(
    source: Arc<dyn ByteSource>,
    columns: Option<&[&str]>,
    timed: &mut Duration,
) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let builder = ParquetRecordBatchStreamBuilder::new(AsyncSource(source))
            .await
            .unwrap();
        let builder = match columns {
            Some(c) => {
                let mask = parquet::arrow::ProjectionMask::columns(
                    builder.parquet_schema(),
                    c.iter().copied(),
                );
                builder.with_projection(mask)
            }
            None => builder,
        };
        // The footer is read before the clock starts, as it is for the engine's plan.
        let t = Instant::now();
        let stream = builder.with_batch_size(8192).build().unwrap();
        let rows = stream
            .try_fold(0usize, |n, b| async move { Ok(n + b.num_rows()) })
            .await
            .unwrap();
        *timed += t.elapsed();
        rows
    })
}

fn remote(c: &mut Criterion) {
    let dir = data_dir();
    let cases: [(&str, &str, Option<&[&str]>, u64); 3] = [
        ("remote_tpch", "tpch.parquet", None, 0),
        ("remote_tpch_100mbps", "tpch.parquet", None, 100_000_000),
        (
            "remote_ml_narrow",
            "ml.parquet",
            Some(&["id", "label", "score"]),
            0,
        ),
    ];
    for (group, file, columns, bw) in cases {
        let path = dir.join(file);
        if !path.exists() {
            continue;
        }
        let mut g = c.benchmark_group(group);
        g.sample_size(10).measurement_time(Duration::from_secs(30));
        g.throughput(Throughput::Bytes(arrow_bytes(&path, columns)));
        let slow = || -> Arc<dyn ByteSource> {
            // Positioned reads of only the requested bytes: mapping (and populating) the whole
            // file per iteration would charge the engine for bytes it never reads.
            Arc::new(
                LatencySource::new(LocalFile::open(&path).unwrap(), Duration::from_millis(5))
                    .bandwidth_per_request(bw),
            )
        };
        g.bench_function("parquet_async_reader", |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    black_box(async_reader_rows(slow(), columns, &mut timed));
                }
                timed
            })
        });
        let mut options = ReadOptions::default();
        options.columns = columns.map(|c| c.iter().map(|s| s.to_string()).collect());
        g.bench_function("engine_io16_decode2", |b| {
            b.iter(|| {
                engine_rows(&path, slow(), &options, |s| {
                    s.io_parallelism(16)
                        .decode_parallelism(2)
                        .max_request_bytes(8 << 20)
                })
            })
        });
        g.finish();
    }
}

fn ipc_scan(c: &mut Criterion) {
    let dir = data_dir().join("ipc");
    let Some(path) = std::fs::read_dir(&dir).ok().and_then(|d| {
        d.filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "arrow"))
            .min()
    }) else {
        return;
    };
    let mut g = c.benchmark_group("ipc_scan");
    g.sample_size(20);
    let total: u64 = {
        let f = std::fs::File::open(&path).unwrap();
        arrow_ipc::reader::FileReader::try_new(f, None)
            .unwrap()
            .map(|b| b.unwrap().get_array_memory_size() as u64)
            .sum()
    };
    g.throughput(Throughput::Bytes(total));
    g.bench_function("arrow_ipc_file_decoder_mmap", |b| {
        b.iter(|| {
            let map = MmapFile::open(&path).unwrap();
            let data = futures::executor::block_on(map.read(0..map.len())).unwrap();
            let buf = arrow_buffer::Buffer::from(data);
            let footer_len =
                i32::from_le_bytes(buf[buf.len() - 10..buf.len() - 6].try_into().unwrap()) as usize;
            let footer =
                arrow_ipc::root_as_footer(&buf[buf.len() - 10 - footer_len..buf.len() - 10])
                    .unwrap();
            let schema =
                Arc::new(arrow_ipc::convert::try_fb_to_schema(footer.schema().unwrap()).unwrap());
            let mut decoder = arrow_ipc::reader::FileDecoder::new(schema, footer.version());
            for block in footer.dictionaries().iter().flatten() {
                let len = block.bodyLength() as usize + block.metaDataLength() as usize;
                let d = buf.slice_with_length(block.offset() as usize, len);
                decoder.read_dictionary(block, &d).unwrap();
            }
            let mut rows = 0;
            for block in footer.recordBatches().iter().flatten() {
                let len = block.bodyLength() as usize + block.metaDataLength() as usize;
                let d = buf.slice_with_length(block.offset() as usize, len);
                rows += decoder
                    .read_record_batch(block, &d)
                    .unwrap()
                    .unwrap()
                    .num_rows();
            }
            black_box(rows)
        })
    });
    g.bench_function("engine_mmap", |b| {
        b.iter(|| {
            let plan = IpcScanPlan::try_new(&path, None).unwrap();
            drain(
                Scan::new(MmapFile::open(&path).unwrap(), plan)
                    .reader()
                    .unwrap(),
            )
        })
    });
    g.finish();
}

/// Not a timing: bytes the engine reads for one narrow column against that column's share of
/// the file.
fn projection(_c: &mut Criterion) {
    let path = data_dir().join("ml.parquet");
    if !path.exists() {
        return;
    }
    let file_len = std::fs::metadata(&path).unwrap().len();
    let options = ReadOptions::default().columns(["label"]);
    let plan = ParquetScanPlan::try_new(&path, &options).unwrap();
    let counted = Arc::new(LatencySource::new(
        MmapFile::open(&path).unwrap(),
        Duration::ZERO,
    ));
    let mut r = Scan::from_parts(counted.clone(), Box::new(plan))
        .reader()
        .unwrap();
    while r.next_batch().unwrap().is_some() {}
    let f = std::fs::File::open(&path).unwrap();
    let md = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .metadata()
        .clone();
    let col = md
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == "label")
        .unwrap();
    let share: i64 = md
        .row_groups()
        .iter()
        .map(|rg| rg.column(col).compressed_size())
        .sum();
    println!(
        "projection ml.parquet [label]: read {} bytes in {} requests; the column's chunks are {} bytes ({:.3}% of the {}-byte file)",
        counted.bytes_read(),
        counted.requests(),
        share,
        100.0 * share as f64 / file_len as f64,
        file_len
    );
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = projection, parquet_scan, remote, ipc_scan
}
criterion_main!(benches);
