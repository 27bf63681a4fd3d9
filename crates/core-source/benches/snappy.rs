//! Snappy page decompression, the largest part of a Parquet scan's CPU time on numeric files:
//! every snappy page of `tpch.parquet` decompressed by our decoder one page at a time, two
//! pages at a time (as the page reader does when its reader reads both), and by the `snap`
//! crate (the parquet crate's codec) into a zeroed buffer, as the parquet crate calls it.
//!
//! Data: `ARROWFEED_BENCH_DATA` (default `/tmp/benchdata`), made by
//! `../shared/bench/gen_data.py`. Without it, pages of small 64-bit integers compressed here
//! by `snap` stand in, so that the benchmark still runs.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use arrowfeed_core_source::bench::{snappy_blocks, snappy_decompress, snappy_decompress_two};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn blocks() -> (&'static str, Vec<(Bytes, usize)>) {
    let dir = std::env::var_os("ARROWFEED_BENCH_DATA")
        .map_or_else(|| PathBuf::from("/tmp/benchdata"), PathBuf::from);
    let path = dir.join("tpch.parquet");
    if path.exists() {
        return ("tpch_pages", snappy_blocks(&path).unwrap());
    }
    println!("no tpch.parquet in ARROWFEED_BENCH_DATA; compressing pages of integers instead");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let pages = (0..200)
        .map(|_| {
            let page: Vec<u8> = (0..16_384)
                .flat_map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 200_000).to_le_bytes()
                })
                .collect();
            let block = snap::raw::Encoder::new().compress_vec(&page).unwrap();
            (Bytes::from(block), page.len())
        })
        .collect();
    ("integer_pages", pages)
}

fn snappy(c: &mut Criterion) {
    let (name, blocks) = blocks();
    let total: usize = blocks.iter().map(|b| b.1).sum();
    let mut g = c.benchmark_group(format!("snappy/{name}"));
    g.sample_size(20)
        .throughput(Throughput::Bytes(total as u64));
    g.bench_function("ours_one_at_a_time", |b| {
        b.iter(|| {
            for (block, len) in &blocks {
                let mut out = Vec::new();
                assert!(snappy_decompress(block, *len, &mut out));
                black_box(out);
            }
        })
    });
    g.bench_function("ours_in_pairs", |b| {
        b.iter(|| {
            for pair in blocks.chunks(2) {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                match pair {
                    [(a, la), (b, lb)] => {
                        assert!(snappy_decompress_two((a, *la, &mut x), (b, *lb, &mut y)))
                    }
                    [(a, la)] => assert!(snappy_decompress(a, *la, &mut x)),
                    _ => unreachable!(),
                }
                black_box((x, y));
            }
        })
    });
    g.bench_function("snap_crate", |b| {
        b.iter(|| {
            for (block, len) in &blocks {
                let mut out = vec![0; *len];
                snap::raw::Decoder::new()
                    .decompress(block, &mut out)
                    .unwrap();
                black_box(out);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, snappy);
criterion_main!(benches);
