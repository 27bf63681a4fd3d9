//! `arrowfeed bench`: measured reads, every value byte touched.

use std::path::Path;
use std::time::Instant;

use arrowfeed::ReadOptions;
use serde_json::json;

use crate::convert::write_stdout;
use crate::input::{Rng, projection, random_access};
use crate::touch::{Touched, touch_batch};
use crate::{CliResult, Failure};
use arrow_array::RecordBatch;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k]
}

/// What a benchmark loop saw: rows, touched bytes and each batch's latency.
#[derive(Default)]
struct Tally {
    rows: u64,
    touched: Touched,
    lat_ms: Vec<f64>,
}

impl Tally {
    /// Touches `batch`, which took since `asked` to arrive.
    fn record(&mut self, batch: &RecordBatch, asked: Instant) {
        self.touched.add(touch_batch(batch));
        self.rows += batch.num_rows() as u64;
        self.lat_ms.push(asked.elapsed().as_secs_f64() * 1e3);
    }

    fn batches(&self) -> usize {
        self.lat_ms.len()
    }

    /// The figures every mode reports, for a loop that took `seconds`.
    fn summary(mut self, seconds: f64) -> Summary {
        self.lat_ms.sort_by(f64::total_cmp);
        Summary {
            rows: self.rows,
            batches: self.lat_ms.len(),
            bytes: self.touched.bytes,
            seconds,
            p50: percentile(&self.lat_ms, 0.5),
            p99: percentile(&self.lat_ms, 0.99),
            checksum: self.touched.checksum,
        }
    }
}

struct Summary {
    rows: u64,
    batches: usize,
    bytes: u64,
    seconds: f64,
    p50: f64,
    p99: f64,
    checksum: u64,
}

impl Summary {
    fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.seconds
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }

    /// Prints `fields` (the mode's own) with the common figures, as one JSON object.
    fn write_json(&self, mut fields: serde_json::Value) -> CliResult {
        if let Some(m) = fields.as_object_mut() {
            for (k, v) in [
                ("rows", json!(self.rows)),
                ("batches", json!(self.batches)),
                ("bytes", json!(self.bytes)),
                ("seconds", json!(self.seconds)),
                ("rows_per_s", json!(self.rows_per_s())),
                ("mb_per_s", json!(self.mb_per_s())),
                ("p50_ms", json!(self.p50)),
                ("p99_ms", json!(self.p99)),
                ("checksum", json!(format!("{:016x}", self.checksum))),
            ] {
                m.insert(k.into(), v);
            }
        }
        write_stdout(&format!("{fields}\n"))
    }

    /// `N rows/s, M MB/s, per batch p50 ..., p99 ...`
    fn rates(&self) -> String {
        format!(
            "{} rows/s, {}/s, per batch p50 {:.3} ms, p99 {:.3} ms",
            crate::units::si(self.rows_per_s()),
            crate::units::bytes((self.bytes as f64 / self.seconds) as u64),
            self.p50,
            self.p99
        )
    }
}

/// Under a memory budget below the default, asks the kernel for no transparent huge pages in
/// this process (`PR_SET_THP_DISABLE`): the allocator's memory is then counted in 4 KiB pages,
/// not 2 MiB ones that a few live bytes keep whole, each in the region of one thread's heap.
/// On `ml.parquet` of 256,000 rows, peak anonymous memory at a 16 MiB budget went from 68-84
/// to 54-71 MiB, and at 64 MiB from 94-108 to 79-95 MiB, for 5-12% more wall time; at the
/// default budget, speed is kept and the huge pages stay.
fn small_pages_below_the_default(budget: usize) {
    #[cfg(target_os = "linux")]
    if budget < arrowfeed::decode_sched::DEFAULT_MEMORY_BUDGET {
        // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of
        // ours; a kernel without it returns an error, which changes nothing.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = budget;
}

/// When what the scan reads is its own memory (a remote object named by URL, not a
/// memory-mapped file), freed memory goes back to the OS after the delay fitted to `budget`
/// (`decode_sched::freed_memory_delay_ms`: sooner below the default). A memory-mapped scan
/// keeps the 10 s: within its budget without it, `ml.parquet` at 16 and 64 MiB ran 1.28× and
/// 1.22× slower with it (farm-bench, 7 pairs) for 45-49 against 60-71 MiB and 78-83 against
/// 88-109 MiB.
fn return_freed_memory_as_the_budget_asks(budget: usize) {
    crate::return_freed_memory_after(arrowfeed::decode_sched::freed_memory_delay_ms(budget));
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
    pub(crate) memory_budget: usize,
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
    if args.engine.as_ref().is_some_and(|e| e.memory_budget == 0) {
        return Err(Failure::Usage(
            "--memory-budget-mib must be at least 1".into(),
        ));
    }
    // Before the input is opened: what is allocated before takes the settings then in force
    // (set after the remote object's `HEAD`, the shorter delay left ml at 16 MiB at 102-124
    // MiB rather than 77-78).
    if let Some(e) = &args.engine {
        small_pages_below_the_default(e.memory_budget);
        if path.to_str().is_some_and(arrowfeed::is_url) {
            return_freed_memory_as_the_budget_asks(e.memory_budget);
        }
    }
    let mut options = ReadOptions::default();
    options.columns = args.columns;
    options.batch_size = args.batch_size;
    let started = Instant::now();
    // A URL is opened once, as the source the scan reads.
    let input = arrowfeed::input(path).map_err(|e| Failure::at(path, e))?;
    // A `file://` URL is a path by now: detect from the path, not the URL.
    let format = match &input {
        arrowfeed::source::Input::Source(s) => arrowfeed::source::detect_format_of(s.as_ref()),
        other => arrowfeed::source::detect_format(&other.name()),
    }
    .map_err(|e| Failure::at(path, e))?;
    let plannable = matches!(
        format,
        arrowfeed::source::Format::Parquet | arrowfeed::source::Format::ArrowFile
    );
    let mut source = match args.engine {
        Some(e) if plannable => {
            let scan = match input {
                arrowfeed::source::Input::Source(s) => arrowfeed::scan_source(s, &options),
                other => arrowfeed::scan(other.name(), &options),
            };
            let mut scan = scan
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
    let mut tally = Tally::default();
    loop {
        let t = Instant::now();
        let Some(batch) = source.next() else { break };
        let batch = batch.map_err(|e| Failure::at(path, e))?;
        tally.record(&batch, t);
    }
    let sum = tally.summary(started.elapsed().as_secs_f64());
    let (engine_name, engine_metrics) = match &source {
        Scanner::Sched(r) => {
            let m = r.metrics();
            let v = json!({"batch_rows": r.batch_rows(), "tasks": m.tasks, "parts": m.parts, "pieces": m.pieces, "io_threads": m.io_threads, "requests": m.requests, "bytes_read": m.bytes_read,
                "io_s": m.io_time.as_secs_f64(), "decode_s": m.decode_time.as_secs_f64(),
                "consumer_wait_s": m.consumer_wait.as_secs_f64(), "peak_budget_bytes": m.peak_budget_bytes,
                "peak_memory_bytes": m.peak_memory_bytes});
            ("sched", v)
        }
        Scanner::Reader(_) => ("reader", serde_json::Value::Null),
    };
    if as_json {
        sum.write_json(
            json!({"mode": "scan", "path": path.display().to_string(), "format": format.name(),
            "engine": engine_name, "engine_metrics": engine_metrics}),
        )
    } else {
        write_stdout(&format!(
            "scan {} ({engine_name}): {} rows in {} batches, {} in {:.3} s\n  {}\n",
            path.display(),
            crate::units::count(sum.rows),
            crate::units::count(sum.batches as u64),
            crate::units::bytes(sum.bytes),
            sum.seconds,
            sum.rates()
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
    let mut tally = Tally::default();
    let started = Instant::now();
    for idx in &all {
        let t = Instant::now();
        let b = ra
            .take(idx, proj.as_deref())
            .map_err(|e| Failure::at(path, e))?;
        tally.record(&b, t);
    }
    let sum = tally.summary(started.elapsed().as_secs_f64());
    if as_json {
        sum.write_json(json!({"mode": "take", "path": path.display().to_string(),
            "batch_size": batch_size, "seed": seed, "open_s": open_s}))
    } else {
        write_stdout(&format!(
            "take {}: {batches} batches of {batch_size} random rows in {:.3} s (opened in {:.1} ms)\n  {}\n",
            path.display(),
            sum.seconds,
            open_s * 1e3,
            sum.rates()
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
    let store = if crate::input::is_store(path)? {
        Some(std::sync::Arc::new(crate::input::open_store(path)?))
    } else {
        None
    };
    let ra: std::sync::Arc<dyn RandomAccess> = match &store {
        Some(s) => s.clone(),
        None => random_access(path)?,
    };
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
    let mut tally = Tally::default();
    let mut peak_anon = crate::demo::anon_rss_bytes();
    let t0 = Instant::now();
    loop {
        let t = Instant::now();
        let Some(batch) = it.next() else { break };
        let batch = batch.map_err(|e| Failure::at(path, arrowfeed::Error::from_arrow(e)))?;
        tally.record(&batch, t);
        if tally.batches() % 64 == 0 {
            // Sampled: heap only, mapped shard pages are not counted.
            peak_anon = peak_anon.max(crate::demo::anon_rss_bytes());
        }
    }
    let sum = tally.summary(t0.elapsed().as_secs_f64());
    let m = it.metrics();
    let cache = store.as_ref().and_then(|s| s.cache_metrics());
    if as_json {
        let cache = cache.map(|c| {
            json!({"hits": c.hits, "downloads": c.downloads, "read_ahead": c.read_ahead,
                "bytes_downloaded": c.bytes_downloaded, "evictions": c.evictions,
                "wait_s": c.wait.as_secs_f64()})
        });
        sum.write_json(json!({"mode": "epoch", "path": path.display().to_string(),
            "batch_size": a.batch_size, "workers": a.workers, "seed": a.seed, "epoch": a.epoch,
            "rank": a.rank, "world_size": a.world_size, "open_s": open_s,
            "consumer_wait_s": m.consumer_wait.as_secs_f64(), "gather_s": m.gather.as_secs_f64(),
            "peak_buffered_bytes": m.peak_bytes, "peak_rss_bytes": crate::demo::peak_rss_bytes(),
            "peak_heap_bytes_sampled": peak_anon, "cache": cache}))
    } else {
        let cache = cache.map_or(String::new(), |c| {
            format!(
                "  shard cache: {} downloads ({} ahead of use), {:.1} MB, {} hits, {} evictions; readers waited {:.3} s for shards\n",
                c.downloads,
                c.read_ahead,
                c.bytes_downloaded as f64 / 1e6,
                c.hits,
                c.evictions,
                c.wait.as_secs_f64()
            )
        });
        write_stdout(&format!(
            "epoch {} of {}: {} rows in {} batches, {:.3} s\n  {}\n  {m}\n{cache}",
            a.epoch,
            path.display(),
            crate::units::count(sum.rows),
            crate::units::count(sum.batches as u64),
            sum.seconds,
            sum.rates()
        ))
    }
}
