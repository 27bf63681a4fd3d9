//! Sequential full-store iteration next to arrow-rs' `FileDecoder` over a memory map of the same
//! shard files, every byte touched on both sides; and the store's open time.
//!
//! Run: `cargo run --release -p arrowfeed-shard-store --example scan_ratio -- STORE_DIR`
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrowfeed_shard_store::{OpenOptions, ShardStore};

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

/// The arrow-rs way: map a file, parse its footer, decode every block with `FileDecoder`.
fn arrow_rs_scan(path: &std::path::Path) -> (u64, usize) {
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    // The map is not what is compared: both sides map the same way (benchmark input, not
    // modified while mapped).
    let buf = Buffer::from(arrowfeed_traits::mmap::map_file(file, path, len, false).unwrap());
    let len = len as usize;
    let footer_len =
        arrow_ipc::reader::read_footer_length(buf[len - 10..].try_into().unwrap()).unwrap();
    let footer = arrow_ipc::root_as_footer(&buf[len - 10 - footer_len..len - 10]).unwrap();
    let schema = arrow_ipc::convert::try_fb_to_schema(footer.schema().unwrap()).unwrap();
    let mut decoder = arrow_ipc::reader::FileDecoder::new(Arc::new(schema), footer.version());
    for block in footer.dictionaries().iter().flatten() {
        let l = block.bodyLength() as usize + block.metaDataLength() as usize;
        decoder
            .read_dictionary(block, &buf.slice_with_length(block.offset() as usize, l))
            .unwrap();
    }
    let (mut x, mut rows) = (0u64, 0usize);
    for block in footer.recordBatches().unwrap() {
        let l = block.bodyLength() as usize + block.metaDataLength() as usize;
        let b = decoder
            .read_record_batch(block, &buf.slice_with_length(block.offset() as usize, l))
            .unwrap()
            .unwrap();
        rows += b.num_rows();
        x ^= touch(&b);
    }
    (x, rows)
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: scan_ratio STORE_DIR");
    let t = Instant::now();
    let store = ShardStore::open(&dir).unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let bytes: u64 = store.total_bytes().unwrap_or(0);
    let ours = |prefault: bool| {
        // A fresh store each time, so no shard is reused from an earlier round's cache.
        let store = ShardStore::open_with(&dir, OpenOptions::default().prefault(prefault)).unwrap();
        let t = Instant::now();
        let (mut x, mut rows) = (0u64, 0usize);
        for b in store.iter_shards(None) {
            let b = b.unwrap();
            rows += b.num_rows();
            x ^= touch(&b);
        }
        (t.elapsed().as_secs_f64(), x, rows)
    };
    let theirs = || {
        let t = Instant::now();
        let (mut y, mut rows) = (0u64, 0usize);
        for (file, _) in store.shard_rows() {
            let (a, r) = arrow_rs_scan(&std::path::Path::new(&dir).join(file));
            y ^= a;
            rows += r;
        }
        (t.elapsed().as_secs_f64(), y, rows)
    };
    for round in 0..4 {
        // Alternate the order so neither side always runs on a cache the other warmed.
        let (a, b) = if round % 2 == 0 {
            let a = ours(round < 2);
            (a, theirs())
        } else {
            let b = theirs();
            (ours(round < 2), b)
        };
        assert_eq!((a.1, a.2), (b.1, b.2), "both read the same data");
        println!(
            "round {round} (prefault {}): store {:.0} MB/s, arrow-rs FileDecoder+mmap {:.0} MB/s, ratio {:.3} ({} rows)",
            round < 2,
            bytes as f64 / 1e6 / a.0,
            bytes as f64 / 1e6 / b.0,
            b.0 / a.0,
            a.2
        );
    }
    println!("open: {open_ms:.2} ms for {} shards", store.num_shards());
}
