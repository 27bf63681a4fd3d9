//! `arrowfeed demo`: a newcomer's first run, end to end on generated data.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{BinaryBuilder, Int32Builder, ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch, RecordBatchIterator,
};
use arrowfeed::prefetch::{Loader, Shuffle};
use arrowfeed::shard_store::{ShardStore, StoreWriter};
use arrowfeed::source::{BatchWriter, Format, WriteCompression};
use serde_json::json;

use crate::touch::touch_batch;
use crate::{CliResult, Failure};

/// Rows per generated batch.
const GEN_BATCH: u64 = 8192;

fn next(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *x >> 33
}

/// Rows `first..first + n` of the demo dataset, shaped like `../shared/bench`: id, label,
/// score, text (50-400 printable bytes), tokens (16-256 ints), image (1-8 KiB on a quarter of
/// the rows, 32 bytes otherwise).
fn generate(first: u64, n: u64) -> RecordBatch {
    let mut r = 0x5eed ^ first.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        first as i64..(first + n) as i64,
    ));
    let labels: ArrayRef = Arc::new(Int32Array::from_iter_values(
        (0..n).map(|_| (next(&mut r) % 1000) as i32),
    ));
    let scores: ArrayRef = Arc::new(Float32Array::from_iter_values(
        (0..n).map(|_| (next(&mut r) % 10_000) as f32 / 10_000.0),
    ));
    let mut text = StringBuilder::new();
    let mut tokens = ListBuilder::new(Int32Builder::new());
    let mut image = BinaryBuilder::new();
    let mut buf = Vec::new();
    for _ in 0..n {
        let len = 50 + next(&mut r) % 351;
        let s: String = (0..len)
            .map(|_| char::from(0x20 + (next(&mut r) % 95) as u8))
            .collect();
        text.append_value(s);
        for _ in 0..16 + next(&mut r) % 241 {
            tokens.values().append_value((next(&mut r) % 50_257) as i32);
        }
        tokens.append(true);
        let ilen = if next(&mut r).is_multiple_of(4) {
            1024 + next(&mut r) % 7169
        } else {
            32
        };
        buf.clear();
        buf.extend((0..ilen).map(|_| next(&mut r) as u8));
        image.append_value(&buf);
    }
    RecordBatch::try_from_iter([
        ("id", ids),
        ("label", labels),
        ("score", scores),
        ("text", Arc::new(text.finish()) as ArrayRef),
        ("tokens", Arc::new(tokens.finish()) as ArrayRef),
        ("image", Arc::new(image.finish()) as ArrayRef),
    ])
    .expect("the generated columns have equal lengths")
}

/// The process's peak resident memory, from /proc (0 where unavailable).
pub(crate) fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

/// The process's anonymous (heap) resident memory now, from /proc: unlike VmHWM it leaves out
/// pages of memory-mapped files (0 where unavailable).
pub(crate) fn anon_rss_bytes() -> u64 {
    proc_status_bytes("RssAnon:")
}

/// A `kB` field of /proc/self/status, in bytes (0 where unavailable).
fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<u64>().ok())
            })
        })
        .map_or(0, |kib| kib * 1024)
}

/// A simulated training step: read every byte of the batch and spend a little compute time.
fn train_step(batch: &RecordBatch) -> u64 {
    let x = touch_batch(batch).checksum;
    std::thread::sleep(Duration::from_micros(200));
    x
}

fn say(json: bool, msg: &str) {
    if !json {
        eprintln!("{msg}");
    }
}

pub(crate) fn run(dir: Option<PathBuf>, rows: u64, as_json: bool) -> CliResult {
    if rows == 0 {
        return Err(Failure::Usage("--rows must be at least 1".into()));
    }
    let (root, _tmp) = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| Failure::at(&d, e))?;
            (d, None)
        }
        None => {
            let t = std::env::temp_dir().join(format!("arrowfeed-demo-{}", std::process::id()));
            std::fs::create_dir_all(&t).map_err(|e| Failure::at(&t, e))?;
            (t.clone(), Some(RemoveOnDrop(t)))
        }
    };
    let parquet = root.join("demo.parquet");
    let store_dir = root.join("demo-store");

    // 1. Generate and write Parquet.
    let t = Instant::now();
    let schema = generate(0, 0).schema();
    let mut w = BatchWriter::create(
        &parquet,
        Format::Parquet,
        schema.clone(),
        WriteCompression::Default,
    )
    .map_err(|e| Failure::at(&parquet, e))?;
    let mut first = 0;
    while first < rows {
        let n = GEN_BATCH.min(rows - first);
        w.write(&generate(first, n))
            .map_err(|e| Failure::at(&parquet, e))?;
        first += n;
    }
    w.finish().map_err(|e| Failure::at(&parquet, e))?;
    let gen_s = t.elapsed().as_secs_f64();
    let parquet_bytes = std::fs::metadata(&parquet).map(|m| m.len()).unwrap_or(0);
    say(
        as_json,
        &format!(
            "1. generated {rows} ML-shaped rows into {} ({:.1} MB) in {gen_s:.2} s",
            parquet.display(),
            parquet_bytes as f64 / 1e6
        ),
    );

    // 2. Convert to a shard store.
    let t = Instant::now();
    let source = arrowfeed::open(&parquet).map_err(|e| Failure::at(&parquet, e))?;
    let input = RecordBatchIterator::new(source, schema);
    let manifest = StoreWriter::new()
        .shard_bytes(64 << 20)
        .overwrite(true)
        .write(&store_dir, input)
        .map_err(|e| Failure::at(&store_dir, e))?;
    let convert_s = t.elapsed().as_secs_f64();
    say(
        as_json,
        &format!(
            "2. converted it to a shard store {} ({} shards) in {convert_s:.2} s",
            store_dir.display(),
            manifest.shards.len()
        ),
    );

    // 3. Two shuffled epochs through the Loader.
    let store = ShardStore::open(&store_dir).map_err(|e| Failure::at(&store_dir, e))?;
    let loader = Loader::builder(Arc::new(store))
        .batch_size(256)
        .shuffle(Shuffle::Global)
        .seed(42)
        .workers(2)
        .memory_budget(128 << 20)
        .build()
        .map_err(|e| Failure::at(&store_dir, e))?;
    let mut epochs = Vec::new();
    for e in 0..2 {
        let mut it = loader
            .epoch(e)
            .map_err(|err| Failure::at(&store_dir, err))?;
        let mut check = 0u64;
        for b in it.by_ref() {
            let b = b.map_err(|err| Failure::at(&store_dir, arrowfeed::Error::from_arrow(err)))?;
            check ^= train_step(&b);
        }
        let m = it.metrics();
        say(
            as_json,
            &format!(
                "3.{} epoch {e}: {} rows in {:.2} s ({} rows/s), waited for data {:.3} s, gathered {:.2} s in workers, peak {} buffered",
                e + 1,
                crate::units::count(m.rows),
                m.elapsed.as_secs_f64(),
                crate::units::si(m.rows_per_s()),
                m.consumer_wait.as_secs_f64(),
                m.gather.as_secs_f64(),
                crate::units::bytes(m.peak_bytes as u64)
            ),
        );
        epochs.push(json!({"epoch": e, "rows": m.rows, "seconds": m.elapsed.as_secs_f64(), "rows_per_s": m.rows_per_s(),
            "consumer_wait_s": m.consumer_wait.as_secs_f64(), "gather_s": m.gather.as_secs_f64(),
            "peak_buffered_bytes": m.peak_bytes, "checksum": format!("{check:016x}")}));
    }
    let rss = peak_rss_bytes();
    if as_json {
        let v = json!({"rows": rows, "dir": root.display().to_string(), "generate_s": gen_s, "convert_s": convert_s,
            "shards": manifest.shards.len(), "epochs": epochs, "peak_rss_bytes": rss});
        crate::convert::write_stdout(&format!("{v}\n"))
    } else {
        eprintln!(
            "peak memory {} resident. Consumer wait near zero means the loop was never input-bound.",
            crate::units::bytes(rss)
        );
        Ok(())
    }
}

/// Removes the demo's temporary directory when the run ends, however it ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
