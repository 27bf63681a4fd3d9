//! Criterion benchmarks of the spill on ML-shaped batches (ids, labels, text, token lists,
//! image-like binary, as in ../shared/bench), next to arrow-ipc's `StreamWriter` and
//! `StreamReader` writing and reading the same batches directly, in the same run.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int32Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch};
use arrowfeed_spill::{Spill, SpillCompression};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// One 8,192-row batch shaped like the shared bench data.
fn ml_batch(seed: u64) -> RecordBatch {
    let n = 8192;
    let mut r = Rng(seed);
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64)));
    let labels: ArrayRef = Arc::new(Int32Array::from_iter_values(
        (0..n).map(|_| (r.next() % 1000) as i32),
    ));
    let scores: ArrayRef = Arc::new(Float32Array::from_iter_values(
        (0..n).map(|_| (r.next() % 1000) as f32 / 1000.0),
    ));
    let mut text = StringBuilder::new();
    let mut tokens = ListBuilder::new(Int32Builder::new());
    let mut image = BinaryBuilder::new();
    let mut bytes = Vec::new();
    for _ in 0..n {
        let len = 50 + (r.next() % 351) as usize;
        let s: String = (0..len)
            .map(|_| char::from(0x20 + (r.next() % 95) as u8))
            .collect();
        text.append_value(s);
        for _ in 0..16 + r.next() % 241 {
            tokens.values().append_value((r.next() % 50257) as i32);
        }
        tokens.append(true);
        let ilen = if r.next().is_multiple_of(4) {
            1024 + (r.next() % 7169) as usize
        } else {
            32
        };
        bytes.clear();
        bytes.extend((0..ilen).map(|_| r.next() as u8));
        image.append_value(&bytes);
    }
    RecordBatch::try_from_iter([
        ("id", ids),
        ("label", labels),
        ("score", scores),
        ("text", Arc::new(text.finish()) as ArrayRef),
        ("tokens", Arc::new(tokens.finish()) as ArrayRef),
        ("image", Arc::new(image.finish()) as ArrayRef),
    ])
    .unwrap()
}

/// XOR of every 8-byte word of every buffer: makes a replay read all its data, so a lazily
/// mapped replay cannot look faster than one that copies.
fn touch(b: &RecordBatch) -> u64 {
    fn data(d: &arrow_data::ArrayData) -> u64 {
        let mut x = 0u64;
        for buf in d.buffers() {
            let (words, _) = buf.as_slice().as_chunks::<8>();
            x ^= words.iter().fold(0u64, |a, w| a ^ u64::from_le_bytes(*w));
        }
        d.child_data().iter().fold(x, |a, c| a ^ data(c))
    }
    b.columns().iter().fold(0, |a, c| a ^ data(&c.to_data()))
}

fn logical_bytes(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .map(|b| b.get_array_memory_size() as u64)
        .sum()
}

fn bench(c: &mut Criterion) {
    let batches: Vec<RecordBatch> = (0..12).map(ml_batch).collect();
    let schema = batches[0].schema();
    let bytes = logical_bytes(&batches);
    let dir = tempfile::tempdir().unwrap();

    let mut g = c.benchmark_group("spill_write");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function("arrow_ipc_stream_writer", |b| {
        b.iter(|| {
            let path = dir.path().join("direct.arrows");
            let f =
                std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
            let mut w = arrow_ipc::writer::StreamWriter::try_new(f, &schema).unwrap();
            for batch in &batches {
                w.write(batch).unwrap();
            }
            w.finish().unwrap();
            drop(w);
            std::fs::remove_file(&path).unwrap();
        })
    });
    for (name, comp) in [
        ("none", SpillCompression::None),
        ("lz4", SpillCompression::Lz4),
        ("zstd", SpillCompression::Zstd),
    ] {
        g.bench_with_input(
            BenchmarkId::new("spill_to_disk", name),
            &comp,
            |b, &comp| {
                b.iter(|| {
                    let (mut w, h) = Spill::builder(dir.path(), schema.clone())
                        .memory_budget(1)
                        .compression(comp)
                        .build()
                        .unwrap();
                    for batch in &batches {
                        w.write(batch).unwrap();
                    }
                    w.finish().unwrap();
                    black_box(h.disk_bytes())
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("spill_replay");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let path = dir.path().join("direct.arrows");
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            &schema,
        )
        .unwrap();
        for batch in &batches {
            w.write(batch).unwrap();
        }
        w.finish().unwrap();
    }
    g.bench_function("arrow_ipc_stream_reader", |b| {
        b.iter(|| {
            let f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path).unwrap());
            let r = arrow_ipc::reader::StreamReader::try_new(f, None).unwrap();
            black_box(r.map(|b| touch(&b.unwrap())).fold(0, |a, x| a ^ x))
        })
    });
    for (name, comp) in [
        ("none", SpillCompression::None),
        ("lz4", SpillCompression::Lz4),
        ("zstd", SpillCompression::Zstd),
    ] {
        let (mut w, h) = Spill::builder(dir.path(), schema.clone())
            .memory_budget(1)
            .compression(comp)
            .build()
            .unwrap();
        for batch in &batches {
            w.write(batch).unwrap();
        }
        w.finish().unwrap();
        g.bench_function(BenchmarkId::new("spill_from_disk", name), |b| {
            b.iter(|| black_box(h.reader().map(|b| touch(&b.unwrap())).fold(0, |a, x| a ^ x)))
        });
    }
    let (mut w, h) = Spill::builder(dir.path(), schema.clone())
        .memory_budget(usize::MAX)
        .build()
        .unwrap();
    for batch in &batches {
        w.write(batch).unwrap();
    }
    w.finish().unwrap();
    g.bench_function("spill_from_memory", |b| {
        b.iter(|| black_box(h.reader().map(|b| touch(&b.unwrap())).fold(0, |a, x| a ^ x)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
