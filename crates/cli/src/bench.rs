//! `arrowfeed bench`: measured reads, every value byte touched.

use std::path::Path;
use std::time::Instant;

use arrowfeed::ReadOptions;
use serde_json::json;

use crate::convert::write_stdout;
use crate::input::{Rng, projection, random_access};
use crate::touch::{Touched, touch_batch};
use crate::{CliResult, Failure};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k]
}

/// Settings of `bench --mode scan`.
pub(crate) struct ScanArgs {
    pub(crate) batch_size: Option<usize>,
    pub(crate) columns: Option<Vec<String>>,
    /// `None`: one reader on this thread.
    pub(crate) engine: Option<EngineSettings>,
}

/// How the scan engine runs.
pub(crate) struct EngineSettings {
    pub(crate) io_parallelism: usize,
    pub(crate) decode_parallelism: Option<usize>,
    pub(crate) memory_budget: u64,
}

/// What `bench --mode scan` reads from.
enum Scanner {
    Sched(arrowfeed::decode_sched::ScanReader),
    Reader(arrowfeed::Source),
}

impl Scanner {
    fn next(&mut self) -> Option<arrowfeed::Result<arrow_array::RecordBatch>> {
        match self {
            Self::Sched(r) => r.next_batch().transpose(),
            Self::Reader(r) => r.next().map(|b| b.map_err(arrowfeed::Error::from_arrow)),
        }
    }
}

/// Reads every batch of `path` in order, touching every value byte. Parquet and Arrow IPC
/// files go through the scan engine unless `args.engine` is `None`; other inputs (IPC
/// streams) through their reader.
pub(crate) fn scan(path: &Path, args: ScanArgs, as_json: bool) -> CliResult {
    if args.batch_size == Some(0) {
        return Err(Failure::Usage("--batch-size must be at least 1".into()));
    }
    if let Some(e) = &args.engine
        && (e.io_parallelism == 0 || e.decode_parallelism == Some(0))
    {
        return Err(Failure::Usage(
            "--io-parallelism and --decode-parallelism must be at least 1".into(),
        ));
    }
    let mut options = ReadOptions::default();
    options.columns = args.columns;
    options.batch_size = args.batch_size;
    let started = Instant::now();
    let format = arrowfeed::source::detect_format(path).map_err(|e| Failure::at(path, e))?;
    let plannable = matches!(
        format,
        arrowfeed::source::Format::Parquet | arrowfeed::source::Format::ArrowFile
    );
    let mut source = match args.engine {
        Some(e) if plannable => {
            let mut scan = arrowfeed::scan(path, &options)
                .map_err(|e| Failure::at(path, e))?
                .io_parallelism(e.io_parallelism)
                .memory_budget(e.memory_budget);
            if let Some(d) = e.decode_parallelism {
                scan = scan.decode_parallelism(d);
            }
            Scanner::Sched(scan.reader().map_err(|e| Failure::at(path, e))?)
        }
        _ => {
            Scanner::Reader(arrowfeed::open_with(path, &options).map_err(|e| Failure::at(path, e))?)
        }
    };
    let (mut rows, mut touched) = (0u64, Touched::default());
    let mut lat = Vec::new();
    loop {
        let t = Instant::now();
        let Some(batch) = source.next() else { break };
        let batch = batch.map_err(|e| Failure::at(path, e))?;
        touched.add(touch_batch(&batch));
        rows += batch.num_rows() as u64;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let seconds = started.elapsed().as_secs_f64();
    let batches = lat.len();
    let (engine_name, engine_metrics) = match &source {
        Scanner::Sched(r) => {
            let m = r.metrics();
            let v = json!({"tasks": m.tasks, "requests": m.requests, "bytes_read": m.bytes_read,
                "io_s": m.io_time.as_secs_f64(), "decode_s": m.decode_time.as_secs_f64(),
                "consumer_wait_s": m.consumer_wait.as_secs_f64(), "peak_budget_bytes": m.peak_budget_bytes});
            ("sched", v)
        }
        Scanner::Reader(_) => ("reader", serde_json::Value::Null),
    };
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let rows_per_s = rows as f64 / seconds;
    let bytes = touched.bytes;
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    if as_json {
        let v = json!({"mode": "scan", "path": path.display().to_string(), "format": format.name(),
            "engine": engine_name, "rows": rows, "batches": batches, "bytes": bytes, "seconds": seconds,
            "rows_per_s": rows_per_s, "mb_per_s": mb_per_s, "p50_ms": p50, "p99_ms": p99,
            "checksum": format!("{:016x}", touched.checksum), "engine_metrics": engine_metrics});
        write_stdout(&format!("{v}\n"))
    } else {
        write_stdout(&format!(
            "scan {} ({engine_name}): {rows} rows in {batches} batches, {:.1} MB in {seconds:.3} s\n  {rows_per_s:.0} rows/s, {mb_per_s:.1} MB/s, per batch p50 {p50:.3} ms, p99 {p99:.3} ms\n",
            path.display(),
            bytes as f64 / 1e6
        ))
    }
}

/// Gathers `batches` batches of `batch_size` uniformly random rows, touching every byte of
/// each, and reports rows/s and per-batch latency; the same JSON fields as `scan`.
pub(crate) fn take(
    path: &Path,
    batch_size: usize,
    batches: usize,
    seed: u64,
    columns: Option<Vec<String>>,
    as_json: bool,
) -> CliResult {
    use arrowfeed::traits::RandomAccess;
    if batch_size == 0 || batches == 0 {
        return Err(Failure::Usage(
            "--batch-size and --batches must be at least 1".into(),
        ));
    }
    let t_open = Instant::now();
    let ra = random_access(path)?;
    let open_s = t_open.elapsed().as_secs_f64();
    let n = ra.num_rows();
    if n == 0 {
        return Err(Failure::at(path, "the dataset has no rows"));
    }
    let proj = projection(&ra.schema(), columns).map_err(|e| Failure::at(path, e))?;
    let mut rng = Rng(seed);
    let all: Vec<Vec<u64>> = (0..batches)
        .map(|_| (0..batch_size).map(|_| rng.below(n)).collect())
        .collect();
    let (mut rows, mut touched) = (0u64, Touched::default());
    let mut lat = Vec::with_capacity(batches);
    let started = Instant::now();
    for idx in &all {
        let t = Instant::now();
        let b = ra
            .take(idx, proj.as_deref())
            .map_err(|e| Failure::at(path, e))?;
        touched.add(touch_batch(&b));
        rows += b.num_rows() as u64;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let rows_per_s = rows as f64 / seconds;
    let bytes = touched.bytes;
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    if as_json {
        let v = json!({"mode": "take", "path": path.display().to_string(), "rows": rows, "batches": batches,
            "batch_size": batch_size, "seed": seed, "bytes": bytes, "seconds": seconds, "open_s": open_s,
            "rows_per_s": rows_per_s, "mb_per_s": mb_per_s, "p50_ms": p50, "p99_ms": p99,
            "checksum": format!("{:016x}", touched.checksum)});
        write_stdout(&format!("{v}\n"))
    } else {
        write_stdout(&format!(
            "take {}: {batches} batches of {batch_size} random rows in {seconds:.3} s (opened in {:.1} ms)\n  {rows_per_s:.0} rows/s, {mb_per_s:.1} MB/s, per batch p50 {p50:.3} ms, p99 {p99:.3} ms\n",
            path.display(),
            open_s * 1e3
        ))
    }
}

/// Settings of `bench --mode epoch`.
pub(crate) struct EpochArgs {
    pub(crate) batch_size: usize,
    pub(crate) seed: u64,
    pub(crate) epoch: u64,
    pub(crate) workers: usize,
    pub(crate) shuffle: arrowfeed::prefetch::Shuffle,
    pub(crate) rank: u64,
    pub(crate) world_size: u64,
    pub(crate) columns: Option<Vec<String>>,
}

/// One epoch through the Loader, every batch touched; the same JSON fields as the other modes
/// plus the consumer's wait and the workers' gather time.
pub(crate) fn epoch(path: &Path, a: EpochArgs, as_json: bool) -> CliResult {
    use arrowfeed::prefetch::Loader;
    use arrowfeed::traits::RandomAccess;
    let started = Instant::now();
    let ra = random_access(path)?;
    let proj = projection(&ra.schema(), a.columns).map_err(|e| Failure::at(path, e))?;
    let mut b = Loader::builder(ra)
        .batch_size(a.batch_size)
        .seed(a.seed)
        .shuffle(a.shuffle)
        .workers(a.workers)
        .rank(a.rank, a.world_size);
    if let Some(p) = proj {
        b = b.projection(p);
    }
    let loader = b.build().map_err(|e| Failure::Usage(e.to_string()))?;
    let open_s = started.elapsed().as_secs_f64();
    let mut it = loader.epoch(a.epoch).map_err(|e| Failure::at(path, e))?;
    let (mut rows, mut touched) = (0u64, Touched::default());
    let mut lat = Vec::new();
    let mut peak_anon = crate::demo::anon_rss_bytes();
    let t0 = Instant::now();
    loop {
        let t = Instant::now();
        let Some(batch) = it.next() else { break };
        let batch = batch.map_err(|e| Failure::at(path, arrowfeed::Error::from_arrow(e)))?;
        touched.add(touch_batch(&batch));
        rows += batch.num_rows() as u64;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if lat.len() % 64 == 0 {
            // Sampled: heap only, mapped shard pages are not counted.
            peak_anon = peak_anon.max(crate::demo::anon_rss_bytes());
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let m = it.metrics();
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let rows_per_s = rows as f64 / seconds;
    let bytes = touched.bytes;
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    if as_json {
        let v = json!({"mode": "epoch", "path": path.display().to_string(), "rows": rows, "batches": lat.len(),
            "batch_size": a.batch_size, "workers": a.workers, "seed": a.seed, "epoch": a.epoch,
            "rank": a.rank, "world_size": a.world_size, "bytes": bytes, "seconds": seconds, "open_s": open_s,
            "rows_per_s": rows_per_s, "mb_per_s": mb_per_s, "p50_ms": p50, "p99_ms": p99,
            "consumer_wait_s": m.consumer_wait.as_secs_f64(), "gather_s": m.gather.as_secs_f64(),
            "peak_buffered_bytes": m.peak_bytes, "peak_rss_bytes": crate::demo::peak_rss_bytes(),
            "peak_heap_bytes_sampled": peak_anon,
            "checksum": format!("{:016x}", touched.checksum)});
        write_stdout(&format!("{v}\n"))
    } else {
        write_stdout(&format!(
            "epoch {} of {}: {rows} rows in {} batches, {seconds:.3} s\n  {rows_per_s:.0} rows/s, {mb_per_s:.1} MB/s, per batch p50 {p50:.3} ms, p99 {p99:.3} ms\n  {m}\n",
            a.epoch,
            path.display(),
            lat.len()
        ))
    }
}
